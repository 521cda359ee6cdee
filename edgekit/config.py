"""Typed configuration: build dataclasses from YAML/dicts with errors that name the field and the file."""

from __future__ import annotations

import dataclasses
import math
import operator
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from edgekit.errors import ConfigError

T = TypeVar("T")

_CHECK = "edgekit.check"  # key of a Check in a dataclass field's metadata
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclasses.dataclass(frozen=True)
class Check:
    """The allowed values of one setting, beyond its type; from_dict refuses others naming field and value.

    Bounds apply to numbers (and imply a finite value); `test` returns what is allowed when it refuses a value.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    test: Callable[[Any], str | None] | None = None

    def refusal(self, value: Any) -> str | None:
        """What is allowed, when `value` is not; None when it is."""
        bounds = [
            (op, b)
            for op, b in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if b is not None
        ]
        if bounds and isinstance(value, (int, float)) and not isinstance(value, bool):
            ok = math.isfinite(value) and all(_OPS[op](value, b) for op, b in bounds)
            if not ok:
                return " and ".join(f"{op} {_number(b)}" for op, b in bounds)
        return self.test(value) if self.test is not None else None


def _number(b: float) -> str:
    return str(int(b)) if float(b).is_integer() and abs(b) < 1e15 else f"{b:g}"


def setting(
    default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **check: Any
) -> Any:
    """A dataclass field with a Check, e.g. `qos: int = setting(1, ge=0, le=2)`."""
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={_CHECK: Check(**check)}
    )


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


_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): ""}


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse(where: str, field: str, allowed: str, value: Any) -> ConfigError:
    return _fail(where, field, f"must be {allowed}; got {_got(value)}")


def alternatives(values: typing.Iterable[Any], last: str = "or") -> str:
    """'a, b or c' for a message listing allowed values."""
    items = [str(v) for v in values]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


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
                check = f.metadata.get(_CHECK)
                if check is not None and (allowed := check.refusal(kwargs[name])) is not None:
                    raise _refuse(where, sub, allowed, value[name])
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
        if len(errors) == 1:
            raise ConfigError(errors[0])
        kinds = [_KINDS.get(a, "a mapping" if dataclasses.is_dataclass(a) else str(a)) for a in args]
        if type(None) in args:
            kinds.append("null")
        raise _refuse(where, field, alternatives(k for k in kinds if k), value)
    if origin is Literal:
        allowed = get_args(tp)
        # type too: YAML's `true` equals 1 and 1.0 equals 1, but neither is the setting 1
        if not any(value == a and type(value) is type(a) for a in allowed):
            raise _refuse(where, field, f"one of {alternatives(allowed)}", value)
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
            raise _refuse(where, field, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _refuse(where, field, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _refuse(where, field, "a number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _refuse(where, field, "a string", value)
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
