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
from pathlib import Path

from genesplice.io.atomic import check_writable_dir
from genesplice.io.errors import GeneSpliceInputError


def _add_manifest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-knowledge", help="verify bundled files against knowledge/MANIFEST.tsv")
    p.add_argument("--manifest", default=None, help="path to a MANIFEST.tsv (default: bundled)")
    p.set_defaults(func=_run_manifest)


def _run_manifest(args: argparse.Namespace) -> int:
    from genesplice.io.knowledge import read_manifest, verify_manifest

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


def _run_build_graph(args: argparse.Namespace) -> int:
    from genesplice.graph.build import build_graph
    from genesplice.graph.recipes import load_recipe
    from genesplice.training.report import graph_summary_text
    from genesplice.training.validate import check_recipe_inputs

    check_writable_dir(args.out)                       # before the build, not after it
    check_recipe_inputs(load_recipe(args.recipe))
    kg = build_graph(args.recipe, progress=not args.quiet)
    out = kg.save(args.out)
    print(graph_summary_text(kg))
    print(f"built in {kg.stats['seconds']['total']:.1f} s; saved to {out}")
    return 0


def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check input files with the pipeline's own readers "
                                        "before a long run")
    p.add_argument("files", nargs="+", metavar="FILE", help="input files (plain or .gz)")
    p.add_argument("--format", default=None, metavar="KIND",
                   help="kind of file (default: guessed from the name and the first line); "
                        "obo, gaf, gmt, reactome-mapping, reactome-hierarchy, reactome-names, "
                        "trrust, dorothea, tss, bed, gtf, gene-structure, expression, fasta, "
                        "fai, vcf, variants, gene-ids, recipe, config")
    p.set_defaults(func=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from genesplice.training.validate import validate_file

    failed = 0
    for path in args.files:  # every file is checked; each problem is one line on stderr
        try:
            print(validate_file(path, args.format))
        except GeneSpliceInputError as err:
            print(f"genesplice: error: {err}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def _add_device(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--device", default=None, metavar="{auto,cpu,cuda,cuda:N,mps}",
                   help=f"where tensors and models live (default: {default}; auto = CUDA if "
                        "available, else MPS, else CPU)")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on the bundled real data: build graph → "
                                    "pretrain → train fused model + ablations → evaluate on "
                                    "held-out chromosomes → predict (settings: the config "
                                    "defaults, configs/default.toml)")
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--recipe", default=None, help="graph recipe (default: human_default)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs per model (default: train.epochs, 5)")
    p.add_argument("--pretrain-steps", type=int, default=None,
                   help="masked-nucleotide pretraining steps (default: pretrain.steps, 250; "
                        "0: none)")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per model (default: train.seeds, 3)")
    p.add_argument("--max-genes", type=int, default=0,
                   help="label only this many genes (0: all; for a quick look)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: torch's default); 1 is faster on a busy machine")
    _add_device(p, "train.device, cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from genesplice.training.demo import run_demo

    check_writable_dir(args.out)
    run_demo(args.out, recipe=args.recipe, epochs=args.epochs, seeds=args.seeds,
             pretrain_steps=args.pretrain_steps, max_genes=args.max_genes,
             threads=args.threads, device=args.device, progress=not args.quiet)
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the fused model (and optional ablations), "
                                     "evaluate on the held-out chromosomes, write a report")
    p.add_argument("--config", default=None,
                   help="run config TOML (default: the built-in defaults, configs/default.toml)")
    p.add_argument("--out", required=True, help="output directory for checkpoints and report")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config fields, e.g. train.epochs=20 model.hidden=64 "
                        "pretrain.steps=0")
    p.add_argument("--variants", nargs="+", default=None, metavar="MODEL",
                   help="models to train (ablations of the fused model: fused, graph_only, "
                        "gat_only, graph_only_no_labels, linear_only, sequence_only, "
                        "promoter_graph, window_graph, window_only), each with train.seeds "
                        "seeds (default: train.variants of the config, else fused)")
    p.add_argument("--pretrained-encoder", default=None,
                   help="encoder checkpoint from `genesplice pretrain` to start from")
    p.add_argument("--resume", action="store_true", help="continue from checkpoints in --out")
    _add_device(p, "train.device of the config")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from genesplice.training import distributed
    from genesplice.training.config import RunConfig, load_config, with_overrides
    from genesplice.training.experiment import ABLATIONS, run_experiment
    from genesplice.training.validate import check_config_inputs

    cfg = load_config(args.config) if args.config else RunConfig(out_dir=args.out)
    cfg = with_overrides(cfg, args.overrides)
    if args.device is not None:
        cfg = with_overrides(cfg, [f"train.device={args.device}"])
    check_writable_dir(args.out)                       # output and inputs before any work
    check_config_inputs(cfg, args.config)
    variants = tuple(args.variants or cfg.train.variants or ("fused",))
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise GeneSpliceInputError(f"unknown model(s) {unknown} in --variants / "
                                   f"train.variants (expected any of {list(ABLATIONS)})")
    with distributed.session(cfg.train.device):   # torchrun: one process group (else no-op)
        summary = run_experiment(cfg, args.out, variants=variants,
                                 pretrained_encoder=args.pretrained_encoder,
                                 progress=not args.quiet, resume=args.resume,
                                 command="genesplice " + " ".join(sys.argv[1:]))
        _print_metrics(summary)
    return 0


def _print_metrics(summary: dict) -> None:
    for name, m in summary["metrics"].items():
        print(f"{name}: per-tissue r {m['pearson_tissue']:.3f}, per-gene r "
              f"{m['pearson_gene']:.3f}, r2 {m['r2_tissue']:.3f}")
    print(f"report: {summary['report']}")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="re-evaluate the checkpoints of a training run on its "
                                        "held-out chromosomes and rewrite its report")
    p.add_argument("--run", required=True, help="a folder written by `train` or `demo`")
    p.add_argument("--split", default="test", choices=["test", "val"])
    _add_device(p, "train.device of the run's config")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from genesplice.training.experiment import evaluate_run

    summary = evaluate_run(args.run, split=args.split, device=args.device)
    _print_metrics(summary)
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="per-tissue predictions of a trained checkpoint → CSV "
                                       "or AnnData (.h5ad)")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by training (.pt)")
    p.add_argument("--out", required=True, help="output CSV (first column gene_symbol, then "
                                                "one column per tissue), or an AnnData file "
                                                "when it ends in .h5ad (obs = tissues, var = "
                                                "genes, embeddings in varm)")
    p.add_argument("--genes", nargs="+", default=None, metavar="GENE",
                   help="symbols / Ensembl ids (default: every gene of the graph, the same "
                        "table as the training run's predictions.csv)")
    _add_input_overrides(p)
    p.set_defaults(func=_run_predict)


def _add_input_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--graph", default=None,
                   help="built graph folder (default: the one in the checkpoint's config)")
    p.add_argument("--expression", default=None,
                   help="expression table (default: the one in the checkpoint's config)")
    p.add_argument("--labelled-genes", default=None, metavar="FILE",
                   help="only for a checkpoint trained on a labelled-gene subset (a quick "
                        "run): the file listing those genes, one per line")
    _add_device(p, "train.device of the checkpoint's config")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _labelled_genes(path: str | None) -> list[str] | None:
    """The genes listed in a ``--labelled-genes`` file, one per line (None without one)."""
    if not path:
        return None
    if not Path(path).is_file():
        raise GeneSpliceInputError("labelled-genes file not found", path=path)
    return [g.strip() for g in Path(path).read_text().splitlines() if g.strip()]


def _load_api(args: argparse.Namespace):
    from genesplice.api import GeneSplice

    genes = _labelled_genes(args.labelled_genes)
    device = {} if args.device is None else {"device": args.device}
    return GeneSplice.load(args.checkpoint, graph=args.graph, expression=args.expression,
                           genes=genes, progress=not args.quiet, **device)


def _run_predict(args: argparse.Namespace) -> int:
    check_writable_dir(Path(args.out).parent)
    gs = _load_api(args)
    path = gs.write_predictions(args.out, genes=args.genes, progress=not args.quiet)
    if path.suffix.lower() == ".h5ad":
        what = "AnnData, obs = tissues, var = genes"
        n = len(args.genes) if args.genes else len(gs.genes)
    else:
        what = "CSV"
        with open(path) as fh:
            n = sum(1 for _ in fh) - 1
    print(f"wrote {path} ({what}): {n:,} genes x {len(gs.tissues)} tissues, unit {gs.unit}")
    return 0


def _add_variant_effect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("variant-effect",
                       help="Δ predicted expression per tissue of SNVs / MNPs anywhere in the "
                            "model's sequence windows (promoters or long TSS windows) → CSV")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by training (.pt)")
    p.add_argument("--variants", required=True,
                   help="VCF (plain or .gz) or TSV with chrom, pos (1-based), ref, alt "
                        "[, id]; chromosome names may be 20 or chr20")
    p.add_argument("--out", required=True, help="output CSV: one row per (variant, gene) with "
                                                "delta_<tissue> columns and delta_mean")
    p.add_argument("--genome", nargs="+", default=None, metavar="FASTA",
                   help="indexed FASTA file(s), plain or bgzip (default: the genome the "
                        "checkpoint was trained with; the bundled hg38 regions for a "
                        "promoter-only model)")
    p.add_argument("--tss", default=None,
                   help="TSS table placing the windows on that genome (default: the "
                        "checkpoint's)")
    p.add_argument("--chunk-size", type=int, default=10_000,
                   help="variants read at a time (default 10000)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="(variant, gene) pairs scored at a time (default 256 for promoter "
                        "models, 8 for long windows)")
    _add_input_overrides(p)
    p.set_defaults(func=_run_variant_effect)


def _run_variant_effect(args: argparse.Namespace) -> int:
    checks = [("variant file", args.variants)] + [("genome FASTA", g)
                                                  for g in (args.genome or [])]
    if args.tss:
        checks.append(("TSS table", args.tss))
    for what, path in checks:
        if not Path(path).is_file():
            raise GeneSpliceInputError(f"{what} not found", path=path)
    check_writable_dir(Path(args.out).parent)
    for name in ("chunk_size", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise GeneSpliceInputError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
    gs = _load_api(args)
    path, attrs = gs.write_variant_effects(args.variants, args.out, genome=args.genome,
                                           tss=args.tss, chunk_size=args.chunk_size,
                                           batch_size=args.batch_size,
                                           progress=not args.quiet)
    print(f"{attrs['located']}\n{attrs['report']}\nwrote {path} (delta per tissue, "
          f"{attrs['unit']})")
    return 0


def _add_explain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="why a gene is predicted as it is in a tissue: GAT "
                                       "attention over its neighbours, per-base attributions")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by training (.pt)")
    p.add_argument("--gene", required=True, help="symbol or Ensembl id")
    p.add_argument("--tissue", required=True, help="tissue column of the expression table")
    p.add_argument("--out-dir", default=".", help="where the CSVs and the PNG go (default .)")
    p.add_argument("--top", type=int, default=10, help="neighbours kept per relation")
    p.add_argument("--ism-window", nargs=2, type=int, default=None, metavar=("START", "END"),
                   help="in-silico mutagenesis over these offsets to the TSS (end exclusive; "
                        "default the whole window)")
    _add_input_overrides(p)
    p.set_defaults(func=_run_explain)


def _run_explain(args: argparse.Namespace) -> int:
    from genesplice.io.atomic import atomic_write

    gs = _load_api(args)
    ex = gs.explain(args.gene, args.tissue, top=args.top,
                    ism_window=tuple(args.ism_window) if args.ism_window else None)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{ex.gene}_{ex.tissue}")
    written = []
    frames = [("neighbours", ex.neighbours), ("attributions", ex.attributions)]
    for name, df in frames:
        if df is not None:
            path = atomic_write(out / f"{stem}_{name}.csv",
                                lambda tmp, df=df: df.to_csv(tmp, index=False,
                                                             float_format="%.6g"))
            written.append(path)
    import matplotlib

    matplotlib.use("Agg")
    fig = ex.plot(top=min(args.top, 8))
    png = atomic_write(out / f"{stem}.png", lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    written.append(png)
    print(f"{ex.gene} in {ex.tissue}: predicted {ex.prediction:.3f} {ex.unit}")
    if len(ex.neighbours):
        top = ex.neighbours[ex.neighbours["rank"] <= 3]
        print(top[["relation", "neighbour_id", "neighbour_name", "weight"]]
              .to_string(index=False, float_format="{:.3f}".format))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


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
    p.add_argument("--contrastive-weight", type=float, default=None,
                   help="weight of the InfoNCE term between each crop and its second view "
                        "(default: pretrain.contrastive_weight; 0 = masked nucleotides only)")
    p.add_argument("--contrastive-views", choices=("rc", "shift", "both"), default=None,
                   help="second view: reverse complement, a crop shifted by up to "
                        "--max-shift-bp, or both (default: pretrain.contrastive_views)")
    p.add_argument("--max-shift-bp", type=int, default=None,
                   help="largest shift of the shifted view (default: pretrain.max_shift_bp)")
    p.add_argument("--contrastive-temperature", type=float, default=None,
                   help="InfoNCE temperature (default: pretrain.contrastive_temperature)")
    p.add_argument("--init-from", default=None,
                   help="continue from a `genesplice pretrain` checkpoint (encoder and heads; "
                        "its encoder config replaces the source's default)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    _add_device(p, "cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_pretrain)


def _chroms(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _run_pretrain(args: argparse.Namespace) -> int:
    from genesplice.models.device import resolve_device
    from genesplice.models.sequence_encoder import SequenceEncoderConfig
    from genesplice.training import pretrain as pt
    from genesplice.training.config import PretrainConfig

    check_writable_dir(Path(args.out).parent)
    device = resolve_device(args.device or "cpu")        # a missing device fails before work
    defaults = PretrainConfig()
    contrast = PretrainConfig(**{           # validated here, before any data is read
        name: getattr(defaults, name) if getattr(args, name) is None else getattr(args, name)
        for name in ("contrastive_weight", "contrastive_views", "max_shift_bp",
                     "contrastive_temperature")})
    resumed = pt.load_pretraining_state(args.init_from) if args.init_from else None

    if args.source == "promoters":
        data = pt.promoter_pretraining_sequences(
            args.promoters, args.tss,
            exclude_chromosomes=_chroms(args.test_chroms) + _chroms(args.val_chroms),
            held_out_chromosomes=_chroms(args.val_chroms))
        config, crop, batch = SequenceEncoderConfig.promoter(), None, args.batch_size or 64
    else:
        data = pt.window_pretraining_sequences(
            flank_bp=args.flank_bp, train_chromosomes=_chroms(args.train_chroms),
            held_out_chromosomes=_chroms(args.held_out_chroms), tss_path=args.tss)
        config, crop = SequenceEncoderConfig.long_study(), args.crop_bp
        batch = args.batch_size or 16
    if resumed is not None:
        config = resumed.config
    print(data.summary())
    result = pt.pretrain_encoder(
        config, data.train, steps=args.steps, lr=args.lr,
        warmup=args.warmup if args.warmup is not None else max(1, args.steps // 10),
        batch_size=batch, mask_prob=args.mask_prob, seed=args.seed, crop_bp=crop,
        held_out=data.held_out if data.held_out[0].shape[0] else None,
        checkpoint_path=args.out, progress=not args.quiet, num_threads=args.threads,
        contrastive_weight=contrast.contrastive_weight,
        contrastive_views=contrast.contrastive_views, max_shift_bp=contrast.max_shift_bp,
        contrastive_temperature=contrast.contrastive_temperature, device=device,
        init_state=resumed.encoder_state if resumed else None,
        init_heads=resumed.heads if resumed else None,
        extra={"source": args.source, "data": data.summary(),
               "init_from": str(args.init_from or "")})
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
    from genesplice.studies.long_sequence import LongSequenceStudyConfig, run_long_sequence_study

    try:
        flanks = tuple(int(round(float(x) * 1000)) for x in _chroms(args.flanks_kb))
    except ValueError as err:
        raise GeneSpliceInputError(f"--flanks-kb must be numbers, e.g. 10,50 (got "
                                   f"{args.flanks_kb!r})") from err
    config = LongSequenceStudyConfig(
        flanks_bp=flanks, train_chromosomes=_chroms(args.train_chroms),
        test_chromosomes=_chroms(args.test_chroms), encoders=_chroms(args.encoders),
        pretrain_steps=args.pretrain_steps, main_training_promoters=not args.no_main_promoters,
        seed=args.seed, num_threads=args.threads, progress=not args.quiet)
    result = run_long_sequence_study(config, out_dir=args.out)
    print(result.markdown())
    print(f"wrote {result.markdown_path} and {result.csv_path}")
    return 0


def _add_embed(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="TSS-window embeddings of genes into an on-disk cache "
                                     "(reused while encoder, genome, window and genes match)")
    p.add_argument("--genome", nargs="+", default=None, metavar="FASTA",
                   help="indexed FASTA files, plain or bgzip (default: the bundled GRCh37 chr20 "
                        "and chrX 1-70 Mb)")
    p.add_argument("--tss", default=None, metavar="FILE",
                   help="TSS table: BED, GTF or TSV (default: the bundled hg19 TSS BED)")
    p.add_argument("--upstream", type=int, default=50_000, help="bases before the TSS (50000)")
    p.add_argument("--downstream", type=int, default=50_000, help="bases from the TSS on (50000)")
    p.add_argument("--encoder", default=None, metavar="CK",
                   help="encoder checkpoint from `genesplice pretrain` (default: a randomly "
                        "initialised long_study encoder, seed 0)")
    p.add_argument("--genes", nargs="+", default=None, metavar="GENE",
                   help="gene ids of the TSS table (default: every gene in it)")
    p.add_argument("--batch-size", type=int, default=4, help="windows per forward pass (4)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", default="runs/embeddings",
                   help="the embedding store folder (default runs/embeddings)")
    _add_device(p, "auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_embed)


def _run_embed(args: argparse.Namespace) -> int:
    from genesplice.training import distributed
    from genesplice.training.embed import WindowSpec, embed_files, summary_lines

    check_writable_dir(args.out)
    spec = WindowSpec(args.upstream, args.downstream)
    with distributed.session(args.device or "auto"):    # torchrun: genes shared over ranks
        _, report = embed_files(args.genome, args.tss, spec, args.out,
                                encoder_path=args.encoder, genes=args.genes,
                                batch_size=args.batch_size, device=args.device or "auto",
                                num_threads=args.threads or None, progress=not args.quiet)
        print("\n".join(summary_lines(report)))
    return 0


def _add_graph_search(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graph-search",
                       help="label smoothers and graph-model settings, selected on the "
                            "validation chromosome (graph_search.md)")
    p.add_argument("--config", default=None, help="run config TOML (default: the defaults)")
    p.add_argument("--out", default="runs/graph_search", help="output directory")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config fields of the base setting")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_graph_search)


def _run_graph_search(args: argparse.Namespace) -> int:
    import torch

    from genesplice.studies.graph_search import run_graph_search
    from genesplice.training.config import RunConfig, load_config, with_overrides

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = with_overrides(load_config(args.config) if args.config else RunConfig(),
                         args.overrides)
    result = run_graph_search(cfg, args.out, progress=not args.quiet,
                              command="genesplice " + " ".join(sys.argv[1:]))
    print((Path(args.out) / "graph_search.md").read_text())
    print(f"selected on validation: {result['selected']}")
    return 0


def _add_finetune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a trained model to a new expression table "
                                        "(new tissues / conditions): keeps the whole "
                                        "model and maps its tissues to the new ones "
                                        "(starting from a ridge of new on old), then "
                                        "trains with early stopping on the validation "
                                        "chromosomes")
    p.add_argument("--checkpoint", required=True,
                   help="trained model checkpoint (e.g. runs/demo/fused.pt)")
    p.add_argument("--expression", required=True,
                   help="the new expression table (one column per tissue / condition)")
    p.add_argument("--out", required=True, help="output directory (finetuned.pt, "
                                                "predictions.csv, report.md, …)")
    p.add_argument("--freeze", nargs="*", default=[], metavar="PART",
                   help="keep these parts fixed: sequence, graph, fusion, trunk (all three), "
                        "heads (the base tissues' heads, linear path and label read-out) "
                        "(default: nothing frozen)")
    p.add_argument("--genes", type=int, default=0, metavar="N",
                   help="fine-tune on N labelled genes off the test chromosomes only (a "
                        "seeded sample; 0: all)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override the base run's config, e.g. train.epochs=10 train.lr=3e-4 "
                        "data.unit=ntpm")
    p.add_argument("--labelled-genes", default=None, metavar="FILE",
                   help="only for a base checkpoint trained on a labelled-gene subset (a quick "
                        "run): the file listing those genes, one per line")
    _add_device(p, "train.device of the checkpoint's config")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_finetune)


def _run_finetune(args: argparse.Namespace) -> int:
    from genesplice.training.finetune import run_finetune

    summary = run_finetune(args.checkpoint, args.expression, args.out,
                           freeze_parts=tuple(args.freeze), genes=args.genes,
                           base_genes=_labelled_genes(args.labelled_genes),
                           overrides=args.overrides, device=args.device,
                           progress=not args.quiet,
                           command="genesplice " + " ".join(sys.argv[1:]))
    split = summary["split"]
    print(f"{split} genes: per-tissue Pearson / per-gene Pearson")
    for name, m in summary["metrics"].items():
        print(f"  {name:48s} {m['pearson_tissue']:.3f} / {m['pearson_gene']:.3f}")
    print(f"checkpoint:  {summary['checkpoint']}\nreport:      {summary['report']}")
    return 0


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_manifest,
    _add_train,
    _add_finetune,
    _add_evaluate,
    _add_build_graph,
    _add_validate,
    _add_demo,
    _add_predict,
    _add_explain,
    _add_variant_effect,
    _add_pretrain,
    _add_embed,
    _add_long_sequence_study,
    _add_graph_search,
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
