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


_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_manifest,
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
        return int(args.func(args) or 0)
    except GeneSpliceInputError as err:
        print(f"genesplice: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genesplice: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
