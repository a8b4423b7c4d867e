"""Run configuration: frozen dataclasses, read from and written to TOML.

A :class:`RunConfig` is composed of sections (``[data]``, ``[train]``, ``[ridge]``); each section
is a flat frozen dataclass of str / int / float / bool / tuple fields. Model-architecture
sections (encoder, fusion) are added by the model code as further fields of ``RunConfig``; the
loader and writer handle any such section generically.

* :func:`load_config` reads TOML with ``tomllib``; an unknown section or key, or a value of the
  wrong type, is a :class:`GeneSpliceInputError` naming the key and the file.
* :func:`save_config` writes TOML atomically with a small writer for flat sections (no extra
  dependency); ``load_config(save_config(cfg))`` gives back ``cfg``.
* :func:`with_overrides` applies ``section.key=value`` strings (CLI flags) with type checks.
* :func:`config_to_dict` / :func:`config_from_dict` convert to plain data (for checkpoints).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from genesplice.io.errors import GeneSpliceInputError
from genesplice.io.chromosomes import normalize_chromosome

T = TypeVar("T")


@dataclass(frozen=True)
class DataConfig:
    """Input files ("" = the bundled default under ``knowledge/``) and the target unit."""

    expression_path: str = ""
    tss_path: str = ""
    graph_path: str = ""
    unit: str = "log10_ntpm1"

    def __post_init__(self) -> None:
        units = ("log10_ntpm1", "log1p_ntpm", "ntpm")
        if self.unit not in units:
            raise GeneSpliceInputError(f"data.unit = {self.unit!r} (expected one of {units})")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, early stopping, split and loss weights."""

    seed: int = 0
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.01
    warmup_steps: int = 20
    schedule: str = "cosine"          # "cosine" | "cyclic"
    cycle_steps: int = 0              # cyclic only; 0 = one cycle over the whole run
    epochs: int = 200
    batch_size: int = 0               # genes per batch; 0 = full batch
    patience: int = 20                # epochs without validation improvement before stopping
    stop_level_and_profile_separately: bool = True
    clip_norm: float = 1.0            # 0 = no clipping
    test_chromosomes: tuple[str, ...] = ("chr8",)
    val_chromosomes: tuple[str, ...] = ("chr9",)
    level_weight: float = 1.0         # MSE on the per-gene mean over tissues
    profile_weight: float = 1.0       # MSE on the centred per-tissue profile
    contrastive_weight: float = 0.0   # InfoNCE between sequence and graph views
    contrastive_temperature: float = 0.1
    aux_weight: float = 0.0           # auxiliary gene-function head
    label_smoothing: float = 0.1
    edge_dropout: float = 0.1         # second graph view for the contrastive loss
    linear_lr_scale: float = 0.1      # lr multiplier of the ridge-initialised linear path
    eval_every: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "test_chromosomes",
                           tuple(normalize_chromosome(c) for c in self.test_chromosomes))
        object.__setattr__(self, "val_chromosomes",
                           tuple(normalize_chromosome(c) for c in self.val_chromosomes))
        problems = []
        if self.schedule not in ("cosine", "cyclic"):
            problems.append(f"train.schedule = {self.schedule!r} (expected 'cosine' or 'cyclic')")
        if not self.lr > 0 or not 0 <= self.min_lr <= self.lr:
            problems.append(f"train.lr/min_lr = {self.lr}/{self.min_lr} (expected "
                            "0 <= min_lr <= lr, lr > 0)")
        for name in ("warmup_steps", "cycle_steps", "batch_size", "patience"):
            if getattr(self, name) < 0:
                problems.append(f"train.{name} = {getattr(self, name)} (expected >= 0)")
        if self.epochs < 1 or self.eval_every < 1:
            problems.append("train.epochs and train.eval_every must be >= 1")
        for name in ("weight_decay", "clip_norm", "level_weight", "profile_weight",
                     "contrastive_weight", "aux_weight", "linear_lr_scale"):
            if getattr(self, name) < 0:
                problems.append(f"train.{name} = {getattr(self, name)} (expected >= 0)")
        if not self.contrastive_temperature > 0:
            problems.append("train.contrastive_temperature must be > 0")
        if not 0 <= self.label_smoothing < 1 or not 0 <= self.edge_dropout < 1:
            problems.append("train.label_smoothing and train.edge_dropout must be in [0, 1)")
        if not self.test_chromosomes:
            problems.append("train.test_chromosomes is empty (expected e.g. ['chr8'])")
        both = sorted(set(self.test_chromosomes) & set(self.val_chromosomes))
        if both:
            problems.append(f"chromosomes {both} are in both train.test_chromosomes and "
                            "train.val_chromosomes")
        if problems:
            raise GeneSpliceInputError("; ".join(problems))


@dataclass(frozen=True)
class RidgeConfig:
    """The ridge baseline on gene -> term/pathway/TF membership features."""

    alphas: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
    min_genes_per_feature: int = 5

    def __post_init__(self) -> None:
        object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))
        if not self.alphas or any(not a > 0 for a in self.alphas):
            raise GeneSpliceInputError(f"ridge.alphas = {list(self.alphas)} (expected a "
                                       "non-empty list of numbers > 0)")
        if self.min_genes_per_feature < 1:
            raise GeneSpliceInputError("ridge.min_genes_per_feature must be >= 1")


@dataclass(frozen=True)
class RunConfig:
    """One run: top-level name/output folder plus one field per TOML section."""

    name: str = "demo"
    out_dir: str = "runs/demo"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ridge: RidgeConfig = field(default_factory=RidgeConfig)


# --------------------------------------------------------------------------- conversion

def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, key: str, path: Any) -> Any:
    """Check a TOML/plain value against a field type; tuples from lists, floats from ints."""
    def bad(expected: str) -> GeneSpliceInputError:
        return GeneSpliceInputError(f"key {key!r}: expected {expected}, found {value!r}",
                                    path=path)
    if get_origin(tp) is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise bad("a list")
        elem = args[0]
        return tuple(_coerce(v, elem, f"{key}[{i}]", path) for i, v in enumerate(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    raise bad(f"a value of type {tp}")  # pragma: no cover - unsupported field type


def config_from_dict(cls: type[T], data: Mapping[str, Any], *,
                     path: str | os.PathLike | None = None, prefix: str = "") -> T:
    """Build ``cls`` (a config dataclass) from plain data; unknown keys are errors."""
    if not isinstance(data, Mapping):
        raise GeneSpliceInputError(f"section {prefix.rstrip('.') or '<top>'!r}: expected a "
                                   f"table, found {data!r}", path=path)
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in names]
    if unknown:
        raise GeneSpliceInputError(
            f"unknown key {prefix + unknown[0]!r} (expected one of "
            f"{sorted(prefix + n for n in names)})", path=path)
    kwargs = {}
    for k, v in data.items():
        tp = hints[k]
        if _is_section(tp):
            kwargs[k] = config_from_dict(tp, v, path=path, prefix=f"{prefix}{k}.")
        else:
            kwargs[k] = _coerce(v, tp, prefix + k, path)
    try:
        return cls(**kwargs)
    except GeneSpliceInputError as err:
        if path is not None and err.path is None:
            raise GeneSpliceInputError(err.problem, path=path) from err
        raise


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples become lists) — what checkpoints store."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = config_to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        else:
            out[f.name] = v
    return out


def load_config(path: str | os.PathLike, cls: type[T] = RunConfig) -> T:  # type: ignore[assignment]
    """Read a TOML run config; missing keys take their defaults."""
    path = Path(path)
    if not path.is_file():
        raise GeneSpliceInputError("config file not found", path=path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        line = getattr(err, "lineno", None)
        raise GeneSpliceInputError(f"invalid TOML ({getattr(err, 'msg', err)})", path=path,
                                   line=line) from err
    return config_from_dict(cls, data, path=path)


# --------------------------------------------------------------------------- TOML writer

def _toml_value(v: Any, key: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x, key) for x in v) + "]"
    raise TypeError(f"config key {key!r}: cannot write {type(v).__name__} to TOML")


def _bare(key: str) -> str:
    ok = key and all(c.isalnum() or c in "_-" for c in key) and key.isascii()
    return key if ok else json.dumps(key)


def to_toml(data: Mapping[str, Any]) -> str:
    """TOML text for a dict of scalars/lists and one level of sub-tables (sections)."""
    lines = []
    for k, v in data.items():
        if not isinstance(v, Mapping):
            lines.append(f"{_bare(k)} = {_toml_value(v, k)}")
    for k, v in data.items():
        if isinstance(v, Mapping):
            lines.append("")
            lines.append(f"[{_bare(k)}]")
            for kk, vv in v.items():
                if isinstance(vv, Mapping):
                    raise TypeError(f"config key {k}.{kk}: nested tables are not supported")
                lines.append(f"{_bare(kk)} = {_toml_value(vv, f'{k}.{kk}')}")
    return "\n".join(lines).lstrip("\n") + "\n"


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as TOML atomically (temp file in the same folder + ``os.replace``)."""
    from genesplice.io.atomic import atomic_write_text

    return atomic_write_text(path, to_toml(config_to_dict(cfg)))


def with_overrides(cfg: T, overrides: Iterable[str]) -> T:
    """Apply ``"section.key=value"`` (or ``"key=value"`` for top-level keys) overrides.

    The value is parsed as a TOML value (``0.01``, ``true``, ``["chr8"]``, ``"text"``); a bare
    word that is not valid TOML is taken as a string. Unknown keys and wrong types are errors.
    """
    data = config_to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise GeneSpliceInputError(f"override {item!r}: expected section.key=value")
        key, raw = (s.strip() for s in item.split("=", 1))
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        parts = key.split(".")
        target = data
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                raise GeneSpliceInputError(f"override {item!r}: unknown section {p!r} "
                                           f"(expected one of {sorted(k for k, v in data.items() if isinstance(v, dict))})")
            target = target[p]
        if parts[-1] not in target:
            raise GeneSpliceInputError(f"override {item!r}: unknown key {key!r}")
        target[parts[-1]] = value
    return config_from_dict(type(cfg), data)
