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


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_manifest,
    _add_build_graph,
    _add_validate,
    _add_demo,
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
