"""Benchmark: build the default human graph vs. just reading the same files.

    .venv/bin/python benchmarks/build_graph.py [--recipe graphs/human_default.toml] [--repeats 1]

Each measurement runs in a fresh process (so caches and peak RSS are per job):

- **build**: ``genesplice.graph.build.build_graph(recipe)`` -- parse, resolve ids, filter,
  networkx assembly, ``HeteroData`` conversion, input sha256s.
- **raw read**: obonet ``read_obo`` of the GO file and ``pandas.read_csv`` of every other input
  of the recipe (GAF, gene-id table, UniProt map, HPA table, Reactome x3, TRRUST, DoRothEA) and
  the GMT-free rest -- nothing else. Measured twice: with Python's default garbage collector,
  and with the collector paused as the build does (the stricter baseline).

Prints the times, the ratio build / raw read (target <= 3: the build is parse-bound) and each
job's peak RSS.
"""
from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _peak_rss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def _raw_read(recipe_path: str, pause_gc: bool) -> tuple[float, float, dict]:
    import obonet
    import pandas as pd

    from genesplice.graph.recipes import load_recipe

    r = load_recipe(recipe_path)
    if pause_gc:
        gc.disable()
    t0 = time.perf_counter()
    sizes = {}
    g = obonet.read_obo(str(r.path(r.go.obo)))
    sizes["go.obo (obonet nodes)"] = len(g)
    tsv = dict(sep="\t", dtype=str)
    sizes["gaf"] = len(pd.read_csv(r.path(r.go.gaf), comment="!", header=None, **tsv))
    sizes["gene ids"] = len(pd.read_csv(r.path(r.genes.id_table), **tsv))
    sizes["uniprot map"] = len(pd.read_csv(r.path(r.genes.uniprot_map), **tsv))
    sizes["hpa"] = len(pd.read_csv(r.path(r.genes.universe_file), **tsv))
    for key in ("mapping", "hierarchy", "names"):
        sizes[f"reactome {key}"] = len(pd.read_csv(r.path(getattr(r.reactome, key)),
                                                   header=None, **tsv))
    sizes["trrust"] = len(pd.read_csv(r.path(r.regulatory.trrust), **tsv))
    sizes["dorothea"] = len(pd.read_csv(r.path(r.regulatory.dorothea), **tsv))
    secs = time.perf_counter() - t0
    return secs, _peak_rss_mib(), sizes


def _build(recipe_path: str) -> tuple[float, float, dict]:
    from genesplice.graph.build import build_graph

    t0 = time.perf_counter()
    kg = build_graph(recipe_path, progress=False)
    secs = time.perf_counter() - t0
    counts = {r.type: int(r.count) for r in kg.summary().itertuples()}
    counts["stage seconds"] = kg.stats["seconds"]
    return secs, _peak_rss_mib(), counts


def _child(fn, args, conn):
    conn.send(fn(*args))
    conn.close()


def _run(fn, *args):
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(fn, args, send))
    p.start()
    out = recv.recv()
    p.join()
    if p.exitcode:
        raise SystemExit(f"benchmark job failed (exit {p.exitcode})")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default=str(ROOT / "graphs" / "human_default.toml"))
    ap.add_argument("--repeats", type=int, default=1, help="runs of each job (best is kept)")
    args = ap.parse_args(argv)

    raw, raw_nogc, build = [], [], []
    for _ in range(args.repeats):
        raw.append(_run(_raw_read, args.recipe, False))
        raw_nogc.append(_run(_raw_read, args.recipe, True))
        build.append(_run(_build, args.recipe))
    best = lambda runs: min(runs, key=lambda x: x[0])  # noqa: E731
    (t_raw, m_raw, sizes), (t_raw0, m_raw0, _), (t_build, m_build, counts) = \
        best(raw), best(raw_nogc), best(build)
    print(f"recipe: {args.recipe}  (best of {args.repeats})")
    print(f"rows read: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    stage = counts.pop("stage seconds")
    print("graph: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print("build stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in stage.items()))
    print(f"{'job':<34}{'seconds':>9}{'peak RSS MiB':>14}")
    print(f"{'raw read (pandas/obonet)':<34}{t_raw:>9.1f}{m_raw:>14.0f}")
    print(f"{'raw read, GC paused like build':<34}{t_raw0:>9.1f}{m_raw0:>14.0f}")
    print(f"{'build_graph (default recipe)':<34}{t_build:>9.1f}{m_build:>14.0f}")
    print(f"ratio build / raw read: {t_build / t_raw:.2f} "
          f"(vs GC-paused raw read: {t_build / t_raw0:.2f}; target <= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
