"""Frozen config dataclasses ⇄ plain data ⇄ TOML, for every stage that reads a TOML file.

A config class is a frozen dataclass whose fields are str / int / float / bool / tuple values or
further config dataclasses (TOML sections). Nothing here knows a particular config.

* :func:`load_config` reads TOML with ``tomllib``; an unknown section or key, or a value of the
  wrong type, is a :class:`GeneSpliceInputError` naming the key and the file.
* :func:`save_config` writes TOML atomically with a small writer for flat sections (no extra
  dependency); ``load_config(save_config(cfg), type(cfg))`` gives back ``cfg``.
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
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from genesplice.io.atomic import atomic_write_text
from genesplice.io.errors import GeneSpliceInputError

T = TypeVar("T")


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, key: str, path: Any) -> Any:
    """Check a TOML/plain value against a field type; tuples from lists, floats from ints."""
    def bad(expected: str) -> GeneSpliceInputError:
        return GeneSpliceInputError(f"key {key!r}: expected {expected}, found {value!r}",
                                    path=path)
    if get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad("a list")
        elem = get_args(tp)[0]
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


def load_config(path: str | os.PathLike, cls: type[T]) -> T:
    """Read a TOML file into ``cls``; missing keys take their defaults."""
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
    except UnicodeDecodeError as err:
        raise GeneSpliceInputError("not UTF-8 text; expected a TOML file", path=path) from err
    return config_from_dict(cls, data, path=path)


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
    return atomic_write_text(path, to_toml(config_to_dict(cfg)))


def _parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise GeneSpliceInputError(f"override {item!r}: expected section.key=value")
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def with_overrides(cfg: T, overrides: Iterable[str]) -> T:
    """Apply ``"section.key=value"`` (or ``"key=value"`` for top-level keys) overrides.

    The value is parsed as a TOML value (``0.01``, ``true``, ``["chr8"]``, ``"text"``); a bare
    word that is not valid TOML is taken as a string. Unknown keys and wrong types are errors.
    """
    data = config_to_dict(cfg)
    sections = sorted(k for k, v in data.items() if isinstance(v, dict))
    for item in overrides:
        key, value = _parse_override(item)
        parts = key.split(".")
        target = data
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                raise GeneSpliceInputError(f"override {item!r}: unknown section {p!r} "
                                           f"(expected one of {sections})")
            target = target[p]
        if parts[-1] not in target:
            raise GeneSpliceInputError(f"override {item!r}: unknown key {key!r}")
        target[parts[-1]] = value
    return config_from_dict(type(cfg), data)
