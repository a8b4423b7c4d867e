"""Peak memory and seconds per epoch of exact vs sampled graph batches (``train.graph_batches``),
on the default human graph and on a denser one (DoRothEA A–E), side by side, in one run.

    nice -n 19 .venv/bin/python benchmarks/graph_memory.py \\
        [--default-graph runs/demo/graph] [--large-graph DIR] [--train-genes 2048]

The graphs: ``--default-graph`` / ``--large-graph`` (built folders); when not given they are
built from ``graphs/human_default.toml`` / ``graphs/human_dorothea_ae.toml`` into
``<--work>/graphs/`` (kept for the next run). The model is the default fused model of
``configs/default.toml`` (random weights), trained with the default ``[train]`` settings and
``--batch-size`` genes per batch; sampled batches draw ``--num-neighbors`` edges per hop.

Every (graph, mode) runs in its own fresh process with ``--threads`` torch threads (default 1:
two threads on a 2-core machine shared with other jobs spin-wait and swing the times 2–5×). It
loads the graph and the bundled training data, then trains ``--epochs`` epochs over
``--train-genes`` training genes (0 = all; validation off) through
:func:`genesplice.training.loop.train_model`. A thread polls the process's RSS (``VmRSS``,
every 5 ms) during training: ``peak RSS`` is the highest value, ``training peak`` that peak
minus the RSS just before training (graph, data and model already loaded). ``s/epoch`` is the
measured wall time scaled to all training genes (× all / ``--train-genes``), ``CPU s/epoch``
the process's CPU time scaled the same way. For one batch of the same genes the table also
gives the edges each mode runs on — exact: the batch's receptive field
(:func:`genesplice.models.inference.restrict_graph`); sampled: the sampled subgraph — and the
gene nodes it holds.

Results: the table on stdout and ``<--work>/graph_memory.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from peers import last_lines, rss_now_kb  # noqa: E402

GRAPHS = {"default": ROOT / "graphs" / "human_default.toml",
          "dorothea_ae": ROOT / "graphs" / "human_dorothea_ae.toml"}


class PeakRss:
    """Highest ``VmRSS`` (kB) of this process while the ``with`` block runs."""

    def __init__(self, every: float = 0.005) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_now_kb())
            time.sleep(self.every)

    def __enter__(self) -> "PeakRss":
        self.peak = rss_now_kb()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_now_kb())


def worker(args: argparse.Namespace) -> dict:
    """One (graph, mode): load, train, measure; returns the row."""
    import torch

    from genesplice.graph.hetero import KnowledgeGraph
    from genesplice.models.inference import restrict_graph
    from genesplice.training.config import RunConfig
    from genesplice.training.experiment import build_model, model_args, prepare_from_config
    from genesplice.training.loop import train_model
    from genesplice.training.sampling import neighbor_sampler, sample_batch

    torch.set_num_threads(args.threads)
    t0 = time.time()
    kg = KnowledgeGraph.load(args.graph)
    cfg = RunConfig()
    data = prepare_from_config(cfg, graph=kg, progress=False)
    load_s = time.time() - t0
    train_cfg = replace(cfg.train, epochs=args.epochs, batch_size=args.batch_size,
                        graph_batches=args.mode,
                        num_neighbors=tuple(int(k) for k in args.num_neighbors.split(",")))
    torch.manual_seed(0)
    model = build_model(model_args(data, cfg.model.fused("fused"), cfg.model.sequence_encoder()))
    all_train = data.rows["train"]
    g = torch.Generator().manual_seed(0)
    n = len(all_train) if args.train_genes <= 0 else min(args.train_genes, len(all_train))
    train = all_train[torch.randperm(len(all_train), generator=g)[:n]]
    empty = train[:0]
    sub = replace(data, rows={"train": train, "val": empty, "test": empty})
    before = rss_now_kb()
    with PeakRss() as rss:
        t, cpu = time.time(), time.process_time()
        train_model(model, sub, train_cfg, progress=False)
        seconds, cpu = time.time() - t, time.process_time() - cpu
    gi = data.graph_inputs
    rows = train[:args.batch_size]
    if args.mode == "exact":
        field = restrict_graph(gi, rows, cfg.model.n_layers)
        edges = sum(ei.shape[1] for ei in field.edge_index_dict.values())
        genes = gi.num_nodes["gene"]
    else:
        b = sample_batch(gi, data.sequences, rows,
                         neighbor_sampler(gi, train_cfg.num_neighbors))
        edges = sum(ei.shape[1] for ei in b.graph.edge_index_dict.values())
        genes = b.graph.num_nodes["gene"]
    return {"graph": args.name, "mode": args.mode, "graph_edges": int(sum(
                ei.shape[1] for ei in gi.edge_index_dict.values())),
            "regulatory_edges": int(sum(ei.shape[1] for et, ei in gi.edge_index_dict.items()
                                        if et == ("gene", "regulates", "gene"))),
            "genes": int(gi.num_nodes["gene"]), "train_genes": n,
            "all_train_genes": len(all_train),
            "s_per_epoch": seconds / args.epochs * len(all_train) / n,
            "cpu_s_per_epoch": cpu / args.epochs * len(all_train) / n,
            "peak_rss_mib": rss.peak / 1024, "training_peak_mib": (rss.peak - before) / 1024,
            "batch_edges": int(edges), "batch_gene_nodes": int(genes), "load_s": load_s}


def _graph_dir(name: str, given: str | None, work: Path) -> Path:
    if given:
        return Path(given)
    out = work / "graphs" / name
    if not (out / "graph.json").exists():
        print(f"building {name} from {GRAPHS[name].relative_to(ROOT)} into {out} …", flush=True)
        subprocess.run([sys.executable, "-m", "genesplice", "build-graph", "--recipe",
                        str(GRAPHS[name]), "--out", str(out)], check=True, cwd=ROOT)
    return out


def _table(rows: list[dict]) -> str:
    head = ("| graph | message edges (regulatory) | mode | s/epoch | CPU s/epoch | peak RSS MiB "
            "| training peak MiB | edges / batch | gene nodes / batch |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['graph']} | {r['graph_edges']:,} ({r['regulatory_edges']:,}) | "
                     f"{r['mode']} | {r['s_per_epoch']:.1f} | {r['cpu_s_per_epoch']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} | "
                     f"{r['training_peak_mib']:.0f} | {r['batch_edges']:,} | "
                     f"{r['batch_gene_nodes']:,} |")
    lines += ["", "| graph | exact / sampled s/epoch | exact / sampled CPU s/epoch | exact / "
                  "sampled training peak | exact / sampled edges per batch |",
              "|---|---|---|---|---|"]
    for name in dict.fromkeys(r["graph"] for r in rows):
        by = {r["mode"]: r for r in rows if r["graph"] == name}
        if {"exact", "sampled"} <= set(by):
            e, s = by["exact"], by["sampled"]
            lines.append(f"| {name} | {e['s_per_epoch'] / s['s_per_epoch']:.2f}× | "
                         f"{e['cpu_s_per_epoch'] / s['cpu_s_per_epoch']:.2f}× | "
                         f"{e['training_peak_mib'] / max(s['training_peak_mib'], 1e-9):.2f}× | "
                         f"{e['batch_edges'] / max(s['batch_edges'], 1):.1f}× |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--default-graph", help="built default graph folder (default: build it)")
    p.add_argument("--large-graph", help="built DoRothEA A-E graph folder (default: build it)")
    p.add_argument("--work", default=str(HERE / "results"), help="graphs and JSON go here")
    p.add_argument("--train-genes", type=int, default=2048,
                   help="training genes per timed epoch (0 = all; s/epoch is scaled to all)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--num-neighbors", default="10,10", help="sampled: fan-out per hop")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per process (1: steady numbers on a shared machine)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--graph", help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    graphs = {"default": _graph_dir("default", args.default_graph, work),
              "dorothea_ae": _graph_dir("dorothea_ae", args.large_graph, work)}
    rows = []
    t0 = time.time()
    for name, path in graphs.items():
        for mode in ("exact", "sampled"):
            cmd = [sys.executable, __file__, "--worker", "--graph", str(path), "--name", name,
                   "--mode", mode, "--train-genes", str(args.train_genes), "--epochs",
                   str(args.epochs), "--batch-size", str(args.batch_size), "--num-neighbors",
                   args.num_neighbors, "--threads", str(args.threads)]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
            found = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not found:
                print(f"{name}/{mode} failed: {last_lines(proc.stderr)}", flush=True)
                continue
            rows.append(json.loads(found[-1][len("RESULT "):]))
            r = rows[-1]
            print(f"{name}/{mode}: {r['s_per_epoch']:.1f} s/epoch ({r['cpu_s_per_epoch']:.1f} "
                  f"CPU s), peak RSS "
                  f"{r['peak_rss_mib']:.0f} MiB ({r['training_peak_mib']:.0f} MiB in training)",
                  flush=True)
    (work / "graph_memory.json").write_text(json.dumps(rows, indent=1))
    print(f"\nexact vs sampled graph batches (batch {args.batch_size} genes, fan-out "
          f"{args.num_neighbors}, {args.threads} threads, {args.train_genes or 'all'} training "
          f"genes timed per epoch, scaled to all; {time.time() - t0:.0f} s in all)\n")
    print(_table(rows))


if __name__ == "__main__":
    main()
