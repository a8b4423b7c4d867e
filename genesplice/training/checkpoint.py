"""Checkpoints: one place that writes and reads them (training, resume, api and cli all use it).

A checkpoint is a ``torch.save`` of a dict holding only tensors and plain Python containers /
scalars, so it loads with ``torch.load(weights_only=True)`` (no pickled objects). Writing goes to
a temp file in the target folder and is moved into place with ``os.replace``: an interrupted
save leaves the previous checkpoint intact.

Stored keys: format, version, model_state, optimizer_state, scheduler_state, config (plain dict),
step, epoch, best_metric, rng_state (python / numpy / torch [/ cuda]), data_checksums, extra.
"""
from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genesplice.io.atomic import atomic_write

from genesplice.io.errors import DAMAGED_FILE_ERRORS, GeneSpliceInputError

FORMAT = "genesplice-checkpoint"
VERSION = 1

_SCALARS = (str, int, float, bool, type(None))


def _check_plain(obj: Any, where: str) -> None:
    """Raise TypeError naming the key path of anything weights_only loading would reject."""
    if isinstance(obj, torch.Tensor) or isinstance(obj, _SCALARS):
        return
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint {where}: key {k!r} must be str or int")
            _check_plain(v, f"{where}.{k}")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(f"checkpoint {where}: {type(obj).__name__} is not a tensor or plain "
                    "container/scalar (convert it before saving; loading uses weights_only)")


# --------------------------------------------------------------------------- RNG state

def capture_rng_state() -> dict[str, Any]:
    """Python, numpy (legacy global) and torch (CPU, and CUDA if present) RNG states, as plain
    data and tensors."""
    py = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [int(py[0]), [int(x) for x in py[1]], None if py[2] is None else float(py[2])],
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss),
                  "cached_gaussian": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((int(py[0]), tuple(int(x) for x in py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), int(n["pos"]),
                         int(n["has_gauss"]), float(n["cached_gaussian"])))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- save / load

@dataclass(frozen=True)
class Checkpoint:
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    scheduler_state: dict[str, Any] | None
    config: dict[str, Any]
    step: int
    epoch: int
    best_metric: float | None
    rng_state: dict[str, Any] | None
    data_checksums: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)
    path: str = ""


def save_checkpoint(path: str | os.PathLike, *, model_state: Mapping[str, torch.Tensor],
                    optimizer_state: Mapping[str, Any] | None = None,
                    scheduler_state: Mapping[str, Any] | None = None,
                    config: Mapping[str, Any] | None = None, step: int = 0, epoch: int = 0,
                    best_metric: float | None = None,
                    rng_state: Mapping[str, Any] | None = None,
                    data_checksums: Mapping[str, str] | None = None,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically; returns the path.

    Everything must be tensors or plain containers/scalars (a ``TypeError`` names the offending
    key otherwise). ``config`` is the plain dict from ``genesplice.training.config.config_to_dict``;
    ``data_checksums`` maps input name -> sha256 (e.g. knowledge files, graph).
    """
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_state": dict(model_state),
        "optimizer_state": None if optimizer_state is None else dict(optimizer_state),
        "scheduler_state": None if scheduler_state is None else dict(scheduler_state),
        "config": dict(config or {}),
        "step": int(step),
        "epoch": int(epoch),
        "best_metric": None if best_metric is None else float(best_metric),
        "rng_state": None if rng_state is None else dict(rng_state),
        "data_checksums": {str(k): str(v) for k, v in (data_checksums or {}).items()},
        "extra": dict(extra or {}),
    }
    _check_plain(payload, "root")
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write(path, write)


def load_checkpoint(path: str | os.PathLike, *, map_location: str | torch.device = "cpu"
                    ) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise GeneSpliceInputError("checkpoint not found", path=path)
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except DAMAGED_FILE_ERRORS as err:  # truncated, tampered or foreign: one line
        raise GeneSpliceInputError(f"not a readable checkpoint ({type(err).__name__}: "
                                   f"{str(err).splitlines()[0] if str(err) else ''}); expected a "
                                   "file written by genesplice save_checkpoint", path=path) from err
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise GeneSpliceInputError(f"not a genesplice checkpoint (expected format {FORMAT!r})",
                                   path=path)
    if raw.get("version") != VERSION:
        raise GeneSpliceInputError(f"checkpoint version {raw.get('version')!r} (expected "
                                   f"{VERSION})", path=path)
    missing = [f.name for f in fields(Checkpoint) if f.name != "path" and f.name not in raw]
    if missing:
        raise GeneSpliceInputError(f"damaged checkpoint: missing {', '.join(missing)}", path=path)
    return Checkpoint(model_state=raw["model_state"], optimizer_state=raw["optimizer_state"],
                      scheduler_state=raw["scheduler_state"], config=raw["config"],
                      step=raw["step"], epoch=raw["epoch"], best_metric=raw["best_metric"],
                      rng_state=raw["rng_state"], data_checksums=raw["data_checksums"],
                      extra=raw["extra"], path=str(path))


def compare_checksums(saved: Mapping[str, str], current: Mapping[str, str], *,
                      path: str | os.PathLike | None = None) -> None:
    """Raise :class:`GeneSpliceInputError` naming every input whose checksum differs from (or is
    missing compared with) the one the checkpoint was trained on."""
    diffs = []
    for k in sorted(set(saved) | set(current)):
        a, b = saved.get(k), current.get(k)
        if a != b:
            diffs.append(f"{k}: checkpoint {a[:12] if a else 'absent'} vs now "
                         f"{b[:12] if b else 'absent'}")
    if diffs:
        raise GeneSpliceInputError("inputs differ from those the checkpoint was trained on: "
                                   + "; ".join(diffs), path=path)
