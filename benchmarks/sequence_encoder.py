"""GeneSplice sequence encoder vs enformer-pytorch: seconds and peak RSS per forward pass.

    .venv/bin/python benchmarks/sequence_encoder.py            # the whole comparison, one run

Every measurement runs in its own fresh process (batch 1, inference, ``torch.no_grad``, CPU,
one forward pass), so ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is that model's peak alone.
The input is real DNA: GRCh37 chr20 centred on a TSS, read once from the bundled FASTA and
handed to every worker as a token file (A C G T N = 0..4, the convention both models share).

enformer-pytorch is installed into a throwaway virtual environment
(``benchmarks/.venv-enformer``, git-ignored; torch pinned to the project's CPU wheel first)
and is never a project dependency. It runs at its default size and at ``--enformer-dim``
(default 384 → 23.7 M parameters, the nearest width Enformer accepts to our 25.0 M base encoder).

Results: a table on stdout and ``benchmarks/results/sequence_encoder.json`` (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peers import ENFORMER_DEFAULT, ensure_peer_venv, rss_now_kb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENFORMER_VENV = HERE / ".venv-enformer"
DEFAULT_LENGTHS = (131_072, 196_608, 524_288, 1_048_576)
ENFORMER_LENGTH = 196_608


# ------------------------------------------------------------------------- worker side

def _worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokens = torch.from_numpy(np.load(args.tokens)[: args.length].astype(np.int64))[None]
    if args.model == "genesplice":
        from genesplice.models.sequence_encoder import SequenceEncoder, SequenceEncoderConfig
        model = SequenceEncoder(getattr(SequenceEncoderConfig, args.config)()).eval()
        mask = torch.ones_like(tokens, dtype=torch.bool)
        run = lambda: model(tokens, mask)  # noqa: E731
        warm = lambda: model(tokens[:, : args.warmup_bp], mask[:, : args.warmup_bp])  # noqa: E731
    else:
        from enformer_pytorch import Enformer
        model = Enformer.from_hparams(dim=args.dim, depth=args.depth, heads=8,
                                      output_heads=dict(human=5313, mouse=1643),
                                      target_length=896).eval()
        run = lambda: model(tokens)  # noqa: E731

        def warm():  # short input: skip the 896-bin crop once, then restore it
            model(tokens[:, : args.warmup_bp], target_length=-1)
            model.set_target_length(896)
    n_params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        if args.warmup_bp:
            warm()  # one short forward first (oneDNN set-up), same for both models
    rss_before = rss_now_kb()
    times = []
    with torch.no_grad():
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - start)
    seconds = min(times)
    out_shape = list(out["human"].shape) if isinstance(out, dict) else list(out.shape)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(seconds=seconds, peak_rss_mb=peak_kb / 1024,
                          rss_before_forward_mb=rss_before / 1024,
                          activation_mb=(peak_kb - rss_before) / 1024, n_parameters=n_params,
                          threads=torch.get_num_threads(), torch=torch.__version__, all_seconds=times,
                          output_shape=out_shape)))


# ------------------------------------------------------------------------- driver side

def _ensure_enformer_venv() -> Path:
    python, error = ensure_peer_venv(ENFORMER_VENV, "enformer-pytorch", "enformer_pytorch")
    if python is None:
        raise SystemExit(error)
    return python


def _real_tokens(n: int, path: Path) -> dict:
    """``n`` bases of GRCh37 chr20 centred on a TSS (hg19 Xpresso windows), as tokens 0..4."""
    import numpy as np
    sys.path.insert(0, str(ROOT))
    from genesplice.io.knowledge import knowledge_path
    from genesplice.sequence import GenomeWindows, read_tss_bed
    tss = read_tss_bed(knowledge_path("sequence/annotation/hg19_promoters_cage_corrected_withChr.bed.gz"))
    genome = GenomeWindows(knowledge_path("sequence/GRCh37_chr20.fa.gz"))
    row = tss[(tss["chrom"] == "chr20") & (tss["tss"] > 2_000_000)].iloc[0]
    w = genome.window(row["chrom"], int(row["tss"]), row["strand"], n // 2, n - n // 2)
    genome.close()
    if not bool(w.mask.all()):
        raise SystemExit("benchmark window leaves chr20; pick another gene")
    np.save(path, w.tokens.numpy().astype(np.uint8))
    return dict(gene=row["gene_id"], chrom="20", tss=int(row["tss"]), strand=row["strand"])


def _run(python: Path | str, tokens: Path, model: str, length: int, threads: int,
         timeout: int, warmup_bp: int, repeats: int = 1, **kw) -> dict:
    cmd = [str(python), str(Path(__file__).resolve()), "--worker", model, "--tokens", str(tokens),
           "--length", str(length), "--threads", str(threads), "--warmup-bp", str(warmup_bp),
           "--repeats", str(repeats)]
    for key, value in kw.items():
        cmd += [f"--{key}", str(value)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) if model == "genesplice" else "")
    wall = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(model=model, length=length, process_wall_s=time.perf_counter() - wall, **kw)
    return result


def _per_doubling(a: float, b: float, la: int, lb: int) -> float:
    return (b / a) ** (1.0 / math.log2(lb / la))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS))
    parser.add_argument("--config", default="base", choices=["base", "small"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads in every worker (same for both models)")
    parser.add_argument("--enformer-dim", type=int, default=384,
                        help="Enformer width for the matched-parameter run (384 → 23.7 M at depth 11; "
                             "its relative positions need dim / 8 heads divisible by 6, so 400 "
                             "(25.0 M) cannot run; 384 is the nearest and favours Enformer)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed forwards of our encoder per length; the minimum is reported "
                             "(Enformer runs once: its runs take minutes)")
    parser.add_argument("--skip-enformer", action="store_true")
    parser.add_argument("--warmup-bp", type=int, default=8_192,
                        help="one untimed forward on this many bases first (0: none)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per worker process")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sequence_encoder.json")
    # worker mode (internal)
    parser.add_argument("--worker", choices=["genesplice", "enformer"], help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.model = args.worker
        return _worker(args)

    started = time.perf_counter()
    enformer_python = None if args.skip_enformer else _ensure_enformer_venv()
    results: dict = dict(threads=args.threads, config=args.config, warmup_bp=args.warmup_bp,
                         repeats=args.repeats,
                         load_average_at_start=os.getloadavg(), genesplice=[], enformer=[])
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens.npy"
        results["input"] = _real_tokens(max(args.lengths + [ENFORMER_LENGTH]), tokens)
        for length in args.lengths:
            r = _run(sys.executable, tokens, "genesplice", length, args.threads, args.timeout,
                     args.warmup_bp, args.repeats, config=args.config)
            results["genesplice"].append(r)
            print(f"genesplice {args.config} {length:>9,} bp  {r['seconds']:7.2f} s  "
                  f"peak RSS {r['peak_rss_mb']:7.0f} MB  (+{r['activation_mb']:.0f} MB in forward)",
                  flush=True)
        if enformer_python is not None:
            for label, dim in (("default", ENFORMER_DEFAULT["dim"]), ("matched", args.enformer_dim)):
                r = _run(enformer_python, tokens, "enformer", ENFORMER_LENGTH, args.threads,
                         args.timeout, args.warmup_bp, dim=dim, depth=ENFORMER_DEFAULT["depth"])
                r["label"] = label
                results["enformer"].append(r)
                print(f"enformer {label} (dim {dim}) {ENFORMER_LENGTH:,} bp  {r['seconds']:7.2f} s  "
                      f"peak RSS {r['peak_rss_mb']:7.0f} MB  {r['n_parameters'] / 1e6:.1f} M params",
                      flush=True)
    results["total_wall_s"] = time.perf_counter() - started
    results["load_average_at_end"] = os.getloadavg()
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(results, indent=2))
    os.replace(tmp_out, args.out)
    print(f"\nwrote {args.out}")


def report(results: dict) -> None:
    ours = {r["length"]: r for r in results["genesplice"]}
    print(f"\n## GeneSplice encoder ({results['config']}, min of {results['repeats']} forwards, "
          f"{results['genesplice'][0]['n_parameters'] / 1e6:.2f} M params), batch 1, inference, "
          f"{results['threads']} threads; load average at start "
          f"{results['load_average_at_start'][0]:.1f}, at end {results['load_average_at_end'][0]:.1f}")
    print("| length (bp) | seconds | peak RSS (MB) | forward RSS (MB) | time ×/doubling | forward mem ×/doubling |")
    print("|---:|---:|---:|---:|---:|---:|")
    prev = None
    for length in sorted(ours):
        r = ours[length]
        growth = ("", "")
        if prev is not None:
            p = ours[prev]
            growth = (f"{_per_doubling(p['seconds'], r['seconds'], prev, length):.2f}",
                      f"{_per_doubling(max(p['activation_mb'], 1), max(r['activation_mb'], 1), prev, length):.2f}")
        print(f"| {length:,} | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} | "
              f"{r['activation_mb']:.0f} | {growth[0]} | {growth[1]} |")
        prev = length
    lo, hi = min(ours), max(ours)
    if hi > lo:
        print(f"\nper doubling over {lo:,} → {hi:,} bp: time "
              f"{_per_doubling(ours[lo]['seconds'], ours[hi]['seconds'], lo, hi):.2f}×, forward memory "
              f"{_per_doubling(max(ours[lo]['activation_mb'], 1), max(ours[hi]['activation_mb'], 1), lo, hi):.2f}× "
              f"(targets ≤ 2.1× and ≤ 2.0×); peak RSS at {hi:,} bp {ours[hi]['peak_rss_mb']:.0f} MB (target < 1024)")
    if not results["enformer"] or ENFORMER_LENGTH not in ours:
        return
    me = ours[ENFORMER_LENGTH]
    print(f"\n## At {ENFORMER_LENGTH:,} bp: Enformer / GeneSplice")
    print("| Enformer | params (M) | seconds | peak RSS (MB) | speed-up (×) | our peak RSS / theirs | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    targets = {"default": "≥ 50× faster, ≤ 1/5 RSS", "matched": "≥ 10× faster, ≤ 1/2 RSS"}
    for r in results["enformer"]:
        print(f"| {r['label']} (dim {r['dim']}) | {r['n_parameters'] / 1e6:.1f} | {r['seconds']:.1f} | "
              f"{r['peak_rss_mb']:.0f} | {r['seconds'] / me['seconds']:.1f} | "
              f"{me['peak_rss_mb'] / r['peak_rss_mb']:.3f} | {targets[r['label']]} |")
    print(f"| GeneSplice {results['config']} | {me['n_parameters'] / 1e6:.1f} | {me['seconds']:.2f} | "
          f"{me['peak_rss_mb']:.0f} | 1 | 1 | |")


if __name__ == "__main__":
    main()
