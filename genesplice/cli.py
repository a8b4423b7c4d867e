"""Command-line interface: ``genesplice <subcommand> ...``.

Thin by design (``get_parser()`` + ``main(argv=None)``, as in obonet): each subcommand parses
its arguments and calls library code. Bad input raises :class:`GeneSpliceInputError`, which is
printed as one line (file:line: problem) with a non-zero exit code, never a traceback.

To add a subcommand: write ``_add_<name>(sub)`` that registers the parser and sets
``func=<handler>``, and add it to ``_SUBCOMMANDS``. Handlers import their stage lazily so that
``genesplice --help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from genesplice.errors import GeneSpliceInputError


def _add_manifest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-knowledge", help="verify bundled files against knowledge/MANIFEST.tsv")
    p.add_argument("--manifest", default=None, help="path to a MANIFEST.tsv (default: bundled)")
    p.set_defaults(func=_run_manifest)


def _run_manifest(args: argparse.Namespace) -> int:
    from genesplice.knowledge import read_manifest, verify_manifest

    problems = verify_manifest(args.manifest)
    n = len(read_manifest(args.manifest))
    if problems:
        for line in problems:
            print(f"genesplice: {line}", file=sys.stderr)
        return 1
    print(f"{n} files match MANIFEST.tsv")
    return 0


def _add_build_graph(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-graph", help="build a knowledge graph from a TOML recipe")
    p.add_argument("--recipe", default="graphs/human_default.toml",
                   help="graph recipe (default: graphs/human_default.toml)")
    p.add_argument("--out", required=True, help="output directory (tensors.pt + graph.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_build_graph)


def print_graph_summary(kg, file=None) -> None:
    """The summary table (nodes/edges per type) and the build report lines."""
    file = file or sys.stdout
    table = kg.summary()
    print(table.to_string(index=False, formatters={"count": "{:,}".format}), file=file)
    for line in kg.report_lines():
        print(line, file=file)


def _run_build_graph(args: argparse.Namespace) -> int:
    from genesplice.graph.build import build_graph

    kg = build_graph(args.recipe, progress=not args.quiet)
    out = kg.save(args.out)
    print_graph_summary(kg)
    print(f"built in {kg.stats['seconds']['total']:.1f} s; saved to {out}")
    return 0


def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check one input file before a long build")
    p.add_argument("file", help="input file (plain or .gz)")
    p.add_argument("--format", choices=("obo", "gaf", "gmt", "tsv", "bed", "gtf", "fasta"),
                   default=None,
                   help="file format (default: guessed from the name)")
    p.set_defaults(func=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from genesplice.annotations.validate import validate_file

    print(validate_file(args.file, args.format))
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on the bundled data (for now: build the "
                                    "default graph and report it)")
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--recipe", default=None, help="graph recipe (default: human_default)")
    p.set_defaults(func=lambda a: run_demo(a.out, recipe=a.recipe))


def run_demo(out: str = "runs/demo", *, recipe: str | None = None, progress: bool = True) -> dict:
    """Build the default graph into ``<out>/graph``, print its summary, write
    ``<out>/report.md``. Returns a dict of what was produced (later issues add training,
    evaluation and prediction steps here and extend the report)."""
    from pathlib import Path

    from genesplice.graph.build import build_graph
    from genesplice.graph.recipes import default_recipe_path

    out_dir = Path(out)
    recipe = recipe or str(default_recipe_path())
    kg = build_graph(recipe, progress=progress)
    graph_dir = kg.save(out_dir / "graph")
    print_graph_summary(kg)
    table = kg.summary()
    lines = [f"# GeneSplice demo", "", f"Recipe: `{recipe}`  ", f"Graph: `{graph_dir}` "
             f"(built in {kg.stats['seconds']['total']:.1f} s)", "", "## Knowledge graph", "",
             "| kind | type | count |", "|---|---|---:|"]
    lines += [f"| {r.kind} | {r.type} | {r.count:,} |" for r in table.itertuples()]
    lines += ["", *[f"- {x}" for x in kg.report_lines()], ""]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines))
    print(f"wrote {report}")
    return {"graph": graph_dir, "report": report, "knowledge_graph": kg}


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="masked-nucleotide pretraining of the sequence encoder "
                                        "(checkpoint that train can start from)")
    p.add_argument("--out", default="runs/pretrain/encoder.pt", help="checkpoint to write")
    p.add_argument("--source", choices=("promoters", "windows"), default="promoters",
                   help="promoters: EPDnew 60 bp core promoters of training-chromosome genes, "
                        "with the fused model's promoter encoder (default); windows: TSS "
                        "windows of the GRCh37 chr20/chrX cohort, with the long-sequence "
                        "study's encoder")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=None,
                   help="default 64 (promoters) / 16 (windows)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=None, help="default steps // 10")
    p.add_argument("--mask-prob", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-chroms", default="chr8", help="never trained on (comma list)")
    p.add_argument("--val-chroms", default="chr9",
                   help="held out: the masked loss is reported on them (promoters)")
    p.add_argument("--promoters", default=None, help="promoter FASTA (default: bundled EPDnew)")
    p.add_argument("--tss", default=None, help="gene symbol -> chromosome table (promoters) or "
                                               "TSS BED (windows); default bundled")
    p.add_argument("--train-chroms", default="chrX", help="windows: training chromosomes")
    p.add_argument("--held-out-chroms", default="chr20", help="windows: scored only")
    p.add_argument("--flank-bp", type=int, default=10_000, help="windows: ± bases around TSS")
    p.add_argument("--crop-bp", type=int, default=4_096, help="windows: random crop per step")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_pretrain)


def _chroms(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _run_pretrain(args: argparse.Namespace) -> int:
    from genesplice.training import pretrain as pt

    if args.source == "promoters":
        from genesplice.training.run import promoter_encoder_config
        data = pt.promoter_pretraining_sequences(
            args.promoters, args.tss,
            exclude_chromosomes=_chroms(args.test_chroms) + _chroms(args.val_chroms),
            held_out_chromosomes=_chroms(args.val_chroms))
        config, crop, batch = promoter_encoder_config(), None, args.batch_size or 64
    else:
        from genesplice.training.long_sequence import long_study_encoder_config
        data = pt.window_pretraining_sequences(
            flank_bp=args.flank_bp, train_chromosomes=_chroms(args.train_chroms),
            held_out_chromosomes=_chroms(args.held_out_chroms), tss_path=args.tss)
        config, crop, batch = long_study_encoder_config(), args.crop_bp, args.batch_size or 16
    print(data.summary())
    result = pt.pretrain_encoder(
        config, data.train, steps=args.steps, lr=args.lr,
        warmup=args.warmup if args.warmup is not None else max(1, args.steps // 10),
        batch_size=batch, mask_prob=args.mask_prob, seed=args.seed, crop_bp=crop,
        held_out=data.held_out if data.held_out[0].shape[0] else None,
        checkpoint_path=args.out, progress=not args.quiet, num_threads=args.threads,
        extra={"source": args.source, "data": data.summary()})
    print(result.summary())
    return 0


def _add_long_sequence_study(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("long-sequence-study",
                       help="does long sequence help? 60 bp vs ±10 kb vs ±50 kb embeddings, "
                            "ridge, train chrX / test chr20")
    p.add_argument("--out", default="runs/long_sequence",
                   help="writes long_sequence.md and long_sequence.csv here")
    p.add_argument("--flanks-kb", default="10,50", help="genome windows ±kb (comma list)")
    p.add_argument("--train-chroms", default="chrX")
    p.add_argument("--test-chroms", default="chr20")
    p.add_argument("--encoders", default="random,pretrained",
                   help="any of random,pretrained ('' for k-mer features only)")
    p.add_argument("--pretrain-steps", type=int, default=300)
    p.add_argument("--no-main-promoters", action="store_true",
                   help="skip the 60 bp rows trained with the main set's promoters added")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_long_sequence_study)


def _run_long_sequence_study(args: argparse.Namespace) -> int:
    from genesplice.training.long_sequence import run_long_sequence_study

    try:
        flanks = [int(round(float(x) * 1000)) for x in _chroms(args.flanks_kb)]
    except ValueError as err:
        raise GeneSpliceInputError(f"--flanks-kb must be numbers, e.g. 10,50 (got "
                                   f"{args.flanks_kb!r})") from err
    result = run_long_sequence_study(
        args.out, flanks_bp=flanks, train_chromosomes=_chroms(args.train_chroms),
        test_chromosomes=_chroms(args.test_chroms), encoders=_chroms(args.encoders),
        pretrain_steps=args.pretrain_steps, main_training_promoters=not args.no_main_promoters,
        seed=args.seed, num_threads=args.threads, progress=not args.quiet)
    print(result.markdown())
    print(f"wrote {result.markdown_path} and {result.csv_path}")
    return 0


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_manifest,
    _add_build_graph,
    _add_validate,
    _add_demo,
    _add_pretrain,
    _add_long_sequence_study,
]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genesplice",
        description="Gene expression from DNA sequence and knowledge graphs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        rc = args.func(args)
        return rc if isinstance(rc, int) else 0
    except GeneSpliceInputError as err:
        print(f"genesplice: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genesplice: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
