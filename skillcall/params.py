"""Typed, strict access to one section of ``params.yaml``.

>>> from dataclasses import dataclass
>>> @dataclass
... class Collect:
...     seed: int
>>> from_dict(Collect, {"seed": 1}, "collect")
Collect(seed=1)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


class ParamsError(ValueError):
    pass


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ParamsError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return origin(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise ParamsError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from ``data``; unknown or missing keys are errors naming ``where.key``."""
    if not isinstance(data, dict):
        raise ParamsError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(fields)}")
    missing = [
        n
        for n, f in fields.items()
        if n not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ParamsError(f"{where}: missing key(s) {', '.join(missing)}")
    return cls(**{k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()})


def load_params(section: str, cls: type[T], path: str | Path = PARAMS_FILE) -> T:
    """``load_params("collect", CollectParams)`` -> the ``collect:`` section of params.yaml, typed."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if section not in data:
        raise ParamsError(f"{path}: no section {section!r}")
    try:
        return from_dict(cls, data[section], section)
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None


def as_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)
