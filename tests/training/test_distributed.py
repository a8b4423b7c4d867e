"""torchrun / DDP (issue 12), each run a real subprocess on a small real slice (200 labelled
genes of the default graph, CPU, gloo): 2 processes match 1 process, a worker SIGKILLed
mid-epoch under ``torchrun --max-restarts`` is restarted and resumes from the checkpoint, and
one process SIGKILLed mid-epoch then resumed gives bit-identical results; ``genesplice embed``
under torchrun gives the store one process writes. Plus the gradient arithmetic on 2 gloo
ranks (synthetic toy tensors) and the one-process no-op."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genesplice.cli import main
from genesplice.training import distributed
from genesplice.training.checkpoint import load_checkpoint
from genesplice.training.embedding_store import INDEX_NAME

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

WORKER = str(Path(__file__).with_name("ddp_worker.py"))
#: 3 steps of 40 genes per epoch (120 training genes); the fault fires at epoch 2, step 1
SETTINGS = ["train.epochs=2", "train.batch_size=40", "train.warmup_steps=2", "train.patience=0"]
KILL_AT = "2:1"


def _gradient_worker(rank: int, init: str, errors) -> None:
    """One of 2 gloo ranks (synthetic tensors, shapes only): a shard's gradient, all-reduced,
    equals one process's gradient of the whole batch."""
    try:
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
        torch.manual_seed(0)
        model = torch.nn.ModuleDict({"lin": torch.nn.Linear(5, 3),
                                     "unused": torch.nn.Linear(2, 2)})
        x, y = torch.randn(7, 5), torch.randn(7, 3)
        rows = torch.arange(7)
        torch.nn.functional.mse_loss(model["lin"](x), y).backward()
        want = model["lin"].weight.grad.clone()
        model.zero_grad(set_to_none=True)
        mine = distributed.shard(rows)                  # 4 rows on rank 0, 3 on rank 1
        assert mine.tolist() == rows[rank::2].tolist()
        torch.nn.functional.mse_loss(model["lin"](x[mine]), y[mine]).backward()
        distributed.allreduce_gradients(model, len(mine) / len(rows))
        assert torch.allclose(model["lin"].weight.grad, want, atol=1e-6)
        assert model["unused"].weight.grad is None      # as in one process: AdamW skips it
        assert distributed.allreduce_sums({"a": 1.0, f"only{rank}": 2.0}) == \
            {"a": 2.0, "only0": 2.0, "only1": 2.0}
        assert distributed.broadcast_object({"r": rank}) == {"r": 0}
        got = distributed.gather_object(rank * 10)
        assert got == ([0, 10] if rank == 0 else None)
        dist.destroy_process_group()
    except BaseException as err:               # reported to the test process, then re-raised
        errors.put(f"rank {rank}: {type(err).__name__}: {err}")
        raise


def test_sharded_gradients_sum_to_the_whole_batch_gradient(tmp_path):
    errors = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_gradient_worker, args=(f"file://{tmp_path / 'store'}", errors), nprocs=2)
    assert errors.empty()


def test_one_process_is_a_world_of_one():
    assert not distributed.active() and distributed.rank() == 0 and distributed.is_rank0()
    rows = torch.arange(5)
    assert distributed.shard(rows) is rows
    assert distributed.broadcast_object(3) == 3 and distributed.gather_object(3) == [3]
    with distributed.session():                  # no torchrun variables here: a no-op
        assert not dist.is_initialized()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (distributed.FAULT_ENV, distributed.FAULT_MARKER_ENV, "RANK",
                        "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def _python(graph: Path, out: Path, *extra: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, WORKER, str(graph), str(out), *SETTINGS, *extra],
                          env=env or _env(), capture_output=True, text=True, timeout=900)


def _torchrun(graph: Path, out: Path, *launcher: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", "--monitor_interval", "0.2", *launcher,
                           WORKER, str(graph), str(out), *SETTINGS],
                          env=env or _env(), capture_output=True, text=True, timeout=900)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def _run(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


@pytest.fixture(scope="module")
def single(saved, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "single"
    _ok(_python(saved, out))
    return out


@pytest.fixture(scope="module")
def two(saved, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "two"
    _ok(_torchrun(saved, out))
    return out


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(single, two):
    one, ddp = _run(single), _run(two)
    assert (one["world_size"], ddp["world_size"]) == (1, 2)
    assert ddp["epochs"] == one["epochs"] == [1, 2]
    # the same global batches and steps; what differs is dropout / edge-dropout noise (each
    # rank draws its own) and InfoNCE negatives (per shard), so close but not equal
    assert abs(ddp["test_tissue_pearson"] - one["test_tissue_pearson"]) < 0.01
    ck = load_checkpoint(two / "fused.pt")
    assert ck.epoch == 2 and ck.extra["finished"] and len(ck.extra["rank_rng_states"]) == 1
    pred = np.load(two / "predictions.npy")
    assert pred.shape == np.load(single / "predictions.npy").shape
    assert np.isfinite(pred).all()
    assert not (two / "config.toml").exists()         # the worker writes no run folder files


@pytest.mark.slow
def test_torchrun_restarts_a_killed_worker_and_resumes(saved, two, tmp_path):
    out, marker = tmp_path / "elastic", tmp_path / "killed-once"
    proc = _torchrun(saved, out, "--max-restarts", "1",
                     env=_env(**{distributed.FAULT_ENV: f"{KILL_AT}:1",
                                 distributed.FAULT_MARKER_ENV: str(marker)}))
    _ok(proc)
    assert marker.exists()                            # rank 1 did die (SIGKILL) in epoch 2
    run = _run(out)
    assert run["restarts"] == 1 and run["resumed_from_epoch"] == 1
    assert run["epochs"] == [1, 2]
    # each rank's RNG stream is in the checkpoint: the restarted run is the uninterrupted one
    assert np.array_equal(np.load(out / "predictions.npy"), np.load(two / "predictions.npy"))
    a, b = (load_checkpoint(p / "fused.pt").model_state for p in (out, two))
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bit_identical(saved, single, tmp_path):
    out = tmp_path / "killed"
    killed = _python(saved, out, env=_env(**{distributed.FAULT_ENV: KILL_AT}))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    ck = load_checkpoint(out / "fused.pt")            # the last complete checkpoint
    assert ck.epoch == 1 and not ck.extra["finished"]
    assert not (out / "predictions.npy").exists()
    _ok(_python(saved, out, "--resume"))
    assert _run(out)["resumed_from_epoch"] == 1
    assert np.array_equal(np.load(out / "predictions.npy"), np.load(single / "predictions.npy"))
    a, b = (load_checkpoint(p / "fused.pt").model_state for p in (out, single))
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


#: real chr20 genes of the bundled hg19 TSS table (Ensembl ids), embedded from bundled GRCh37
EMBED_GENES = ["ENSG00000000419", "ENSG00000019186", "ENSG00000020256", "ENSG00000022277",
               "ENSG00000025293", "ENSG00000025772", "ENSG00000026559"]


@pytest.mark.slow
def test_embed_shards_genes_over_two_ranks(tmp_path):
    args = ["embed", "--upstream", "2000", "--downstream", "2000", "--device", "cpu",
            "--quiet", "--genes", *EMBED_GENES]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", "-m", "genesplice", *args, "--out",
                           str(tmp_path / "two")], env=_env(), capture_output=True, text=True,
                          timeout=600)
    _ok(proc)
    assert proc.stdout.count("7 embedded now") == 1              # rank 0 alone prints
    one, two = (json.loads((tmp_path / d / INDEX_NAME).read_text()) for d in ("one", "two"))
    assert one["genes"] == two["genes"] and two["n_done"] == 7
    a, b = (np.load(tmp_path / d / one["data_file"]) for d in ("one", "two"))
    assert np.allclose(a, b, atol=1e-5)                      # other batches, same vectors
