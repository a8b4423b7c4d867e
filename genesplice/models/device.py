"""Where models and tensors run: ``cpu``, ``cuda`` (``cuda:1`` …), ``mps`` or ``auto``.

:func:`resolve_device` turns the ``train.device`` setting into a :class:`torch.device`;
``auto`` picks CUDA if it is available, else Apple's MPS, else the CPU. Asking for a device
this machine does not have is bad input (:class:`GeneSpliceInputError`, one line), never a
silent fall-back to the CPU.
"""
from __future__ import annotations

import contextlib

import torch

from genesplice.io.errors import GeneSpliceInputError

#: the accepted names (a CUDA name may carry an index: ``cuda:1``)
DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The :class:`torch.device` for ``name`` (``None`` means ``auto``).

    Raises :class:`GeneSpliceInputError` for an unknown name or a device that is not
    available here.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = "auto" if name is None else str(name).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":", 1)[0]
    if kind not in DEVICES:
        raise GeneSpliceInputError(f"device {name!r} is not one of {list(DEVICES)}")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise GeneSpliceInputError(f"device {name!r} is not a valid device name ({err})") \
            from None
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise GeneSpliceInputError(f"device {name!r} was asked for but CUDA is not "
                                       "available (use 'auto' or 'cpu')")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GeneSpliceInputError(f"device {name!r}: only {torch.cuda.device_count()} "
                                       "CUDA device(s) here")
    if kind == "mps" and not _mps_available():
        raise GeneSpliceInputError(f"device {name!r} was asked for but MPS is not available "
                                   "(use 'auto' or 'cpu')")
    return device


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (CPU for a module without parameters)."""
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing (float32) on any other device."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
