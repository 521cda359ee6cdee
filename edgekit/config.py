"""Typed configuration: build dataclasses from YAML/dicts with errors that name the field and the file."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from edgekit.errors import ConfigError

T = TypeVar("T")


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file, turning I/O and syntax problems into a ConfigError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({getattr(exc, 'problem', exc)})") from None


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass `cls` from `data`, checking types; `where` prefixes errors (e.g. a file name)."""
    return _convert(cls, data, where, "")


def _fail(where: str, field: str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: field '{field or '<root>'}' {msg}")


def _convert(tp: Any, value: Any, where: str, field: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise _fail(where, field, f"must be a mapping, got {type(value).__name__}")
        hints = get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            prefix = f"{field}." if field else ""
            raise _fail(
                where, prefix + str(unknown[0]), f"is not a known setting (known: {', '.join(fields)})"
            )
        kwargs = {}
        for name, f in fields.items():
            sub = f"{field}.{name}" if field else name
            if name in value:
                kwargs[name] = _convert(hints[name], value[name], where, sub)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _fail(where, sub, "is required")
        try:
            return tp(**kwargs)
        except (ValueError, TypeError) as exc:
            raise _fail(where, field, str(exc)) from None
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where, field)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{where}: field '{field}' has an invalid value {value!r}"
        )
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise _fail(where, field, f"must be one of {', '.join(map(str, allowed))}; got {value!r}")
        return value
    if origin in (list, tuple, typing.Sequence):
        if not isinstance(value, (list, tuple)):
            raise _fail(where, field, f"must be a list, got {type(value).__name__}")
        (item_tp, *_rest) = get_args(tp) or (Any,)
        items = [_convert(item_tp, v, where, f"{field}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(where, field, f"must be a mapping, got {type(value).__name__}")
        _key_tp, val_tp = get_args(tp) or (str, Any)
        return {str(k): _convert(val_tp, v, where, f"{field}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(where, field, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, field, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, field, f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(where, field, f"must be a string, got {value!r}")
        return value
    return value


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) to plain dicts/lists, for JSON/YAML output."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
