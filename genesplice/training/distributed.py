"""Several processes, one training run: ``torch.distributed`` under ``torchrun``.

``torchrun --standalone --nproc_per_node N -m genesplice train …`` starts N processes with
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT`` in their
environment. :func:`session` turns those into a process group (``nccl`` when the run's
device is CUDA, else ``gloo``); without them (a plain ``genesplice train``) it does nothing and
every helper here is a no-op that behaves as a world of one process, so single-process runs are
unchanged bit for bit.

Data parallelism is by genes: every rank holds the whole graph and model; each global
mini-batch of training genes (the same batches one process would draw) is split into one shard
per rank (:func:`shard`), each rank computes its shard's loss and gradient, and
:func:`allreduce_gradients` sums the gradients weighted by shard size, so every rank takes
the same optimizer step as one process on the whole batch. Rank 0 alone prints, draws progress
bars, writes checkpoints and reports; the others wait on barriers (:func:`rank0_first`).

Fault injection for the restart tests (:func:`fault_point`): ``GENESPLICE_FAULT_KILL =
"EPOCH:STEP[:RANK]"`` makes that rank SIGKILL itself at that step of that (1-based) epoch,
once: ``GENESPLICE_FAULT_MARKER`` names a file created just before, and the fault does not
fire again while it exists.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from genesplice.models.device import resolve_device

log = logging.getLogger(__name__)

#: how long a rank waits for the others at a collective (rank 0 may pretrain or build the
#: graph meanwhile); ``GENESPLICE_DIST_TIMEOUT`` (seconds) overrides it
DEFAULT_TIMEOUT_S = 4 * 3600
FAULT_ENV, FAULT_MARKER_ENV = "GENESPLICE_FAULT_KILL", "GENESPLICE_FAULT_MARKER"


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) set ``RANK`` and ``WORLD_SIZE``."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_rank0() -> bool:
    return rank() == 0


def restart_count() -> int:
    """How many times torchrun has restarted the workers (``--max-restarts``); 0 otherwise."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def local_device(device: torch.device) -> torch.device:
    """Each rank's own GPU (``cuda:LOCAL_RANK``) when the run's device is CUDA; ``device``
    itself otherwise (and always outside a process group)."""
    if device.type == "cuda" and active():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@contextlib.contextmanager
def session(device: str = "auto") -> Iterator[None]:
    """Initialise the process group from torchrun's environment (``backend``: nccl for a CUDA
    run, gloo otherwise) and destroy it on exit. Non-zero ranks print nothing to stdout
    (``GENESPLICE_LOG_ALL_RANKS=1`` keeps their output) and log warnings only. Without
    torchrun's variables, or inside an already initialised group, nothing happens."""
    if not launched_by_torchrun() or not dist.is_available() or dist.is_initialized():
        yield
        return
    backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    timeout = datetime.timedelta(seconds=float(os.environ.get("GENESPLICE_DIST_TIMEOUT",
                                                              DEFAULT_TIMEOUT_S)))
    store, rank_, world = next(dist.rendezvous("env://", timeout=timeout))
    # a fresh key space per torchrun attempt: after a restart no rank may read an address
    # the previous attempt's ranks published (gloo would dial a socket that is gone)
    store = dist.PrefixStore(f"genesplice/attempt{restart_count()}", store)
    dist.init_process_group(backend=backend, store=store, rank=rank_, world_size=world,
                            timeout=timeout)
    quiet = dist.get_rank() != 0 and os.environ.get("GENESPLICE_LOG_ALL_RANKS") != "1"
    root = logging.getLogger()
    level = root.level
    try:
        with contextlib.ExitStack() as stack:
            if quiet:
                root.setLevel(logging.WARNING)
                devnull = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
                stack.enter_context(contextlib.redirect_stdout(devnull))
            yield
    finally:
        root.setLevel(level)
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


@contextlib.contextmanager
def rank0_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds and saves a graph or a cache), the other
    ranks afterwards (reading what it wrote)."""
    if not is_rank0():
        barrier()
    yield
    if is_rank0():
        barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (any picklable object; tensors go via the CPU).
    Used only for plain data the ranks exchange in memory, never for files."""
    if not active():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_object(obj: Any, dst: int = 0) -> list[Any] | None:
    """Every rank's ``obj`` as a list on rank ``dst`` (None elsewhere); ``[obj]`` in one
    process."""
    if not active():
        return [obj]
    box: list[Any] | None = [None] * world_size() if rank() == dst else None
    dist.gather_object(obj, box, dst=dst)
    return box


def broadcast_parameters(module: torch.nn.Module, src: int = 0) -> None:
    """Every parameter and buffer of ``module`` on every rank = rank ``src``'s."""
    if not active():
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=src)


def broadcast_tensor(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Rank ``src``'s ``t`` (same shape and dtype on every rank) on every rank, in place."""
    if active():
        wire = _on_wire(t)
        dist.broadcast(wire, src=src)
        if wire is not t:
            t.copy_(wire)
    return t


def _on_wire(t: torch.Tensor) -> torch.Tensor:
    """``t`` where the backend can send it: NCCL moves only CUDA tensors."""
    if dist.get_backend() == "nccl" and not t.is_cuda:
        return t.cuda()
    return t


def shard(rows: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global batch: every ``world_size``-th row from ``rank`` on
    (``DistributedSampler``'s interleaving, without padding — a rank may get one row fewer,
    or none; :func:`allreduce_gradients` weights by size)."""
    return rows[rank()::world_size()].contiguous() if active() else rows


def allreduce_gradients(module: torch.nn.Module, weight: float) -> None:
    """Sum ``weight * grad`` over the ranks into every parameter's ``.grad`` (one flat bucket,
    one all-reduce). With ``weight = len(shard) / len(batch)`` and each rank's loss a mean
    over its shard, the result is the gradient of the mean over the whole batch. A parameter
    no rank produced a gradient for keeps ``grad = None`` (as in one process, AdamW then skips
    it); one that only some ranks reached gets the others' contributions as zeros."""
    if not active():
        return
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    sizes = [p.numel() for p in params]
    total = sum(sizes)
    flat = torch.zeros(total + len(params), dtype=torch.float32, device=params[0].device)
    offset = 0
    for i, p in enumerate(params):
        if p.grad is not None:
            flat[offset:offset + sizes[i]] = p.grad.reshape(-1).to(torch.float32) * weight
            flat[total + i] = 1.0
        offset += sizes[i]
    dist.all_reduce(flat)
    reached = (flat[total:] > 0).tolist()
    offset = 0
    for i, p in enumerate(params):
        if reached[i]:
            g = flat[offset:offset + sizes[i]].view_as(p).to(p.dtype)
            p.grad = g.clone() if p.grad is None else p.grad.copy_(g)
        else:
            p.grad = None
        offset += sizes[i]


def allreduce_sums(values: dict[str, float]) -> dict[str, float]:
    """Per-key sums over the ranks (e.g. loss parts already weighted by shard size; a key
    some ranks lack counts 0 there); ``values`` itself in one process."""
    if not active():
        return values
    every: list[list[str] | None] = [None] * world_size()
    dist.all_gather_object(every, sorted(values))
    keys = sorted({k for ks in every for k in (ks or ())})
    t = _on_wire(torch.tensor([values.get(k, 0.0) for k in keys], dtype=torch.float64))
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist()))


def fault_point(epoch: int, step: int) -> None:
    """The test hook of the module docstring: SIGKILL this process at ``(epoch, step)`` (1-based
    epoch, 0-based step within it) when ``GENESPLICE_FAULT_KILL`` asks for it, once."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    parts = [int(x) for x in spec.split(":")]
    want_rank = parts[2] if len(parts) > 2 else 0
    if (parts[0], parts[1], want_rank) != (epoch, step, rank()):
        return
    marker = os.environ.get(FAULT_MARKER_ENV)
    if marker:
        if Path(marker).exists():
            return
        Path(marker).touch()
    log.warning("fault injection: rank %d kills itself at epoch %d step %d", rank(), epoch,
                step)
    os.kill(os.getpid(), signal.SIGKILL)
