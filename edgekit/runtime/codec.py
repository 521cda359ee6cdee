"""JSON for the hot path: orjson when its wheel is installed (edgekit[runtime]), the stdlib otherwise.

Both give the same results: anything orjson refuses (NaN/Infinity literals, integers beyond 64 bits,
invalid UTF-8, nesting past 1,024 levels) is decoded again by the stdlib, so accepted inputs, refusals and
their messages do not depend on which codec runs; reports holding a non-finite float (a threshold of
-inf in benchmarks, a NaN score) keep the stdlib's `-Infinity`/`NaN` where orjson
would write `null` (orjson writes the object, the stdlib's spelling of those few values is put in).
Only the spacing differs (orjson writes no blanks).

`EDGEKIT_JSON=stdlib` (read at import) or `use("stdlib")` forces the fallback, as on a device without
the wheel.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

ENV = "EDGEKIT_JSON"

try:
    import orjson
except ImportError:  # no wheel for this platform/Python: the stdlib serves
    orjson = None  # type: ignore[assignment]

_std_decoder = json.JSONDecoder()
_std_encoder = json.JSONEncoder()


def _std_loads(raw: bytes | bytearray | memoryview | str) -> Any:
    # RFC 8259: JSON between systems is UTF-8; decoding first skips json.loads' encoding sniffing.
    return _std_decoder.decode(raw if isinstance(raw, str) else bytes(raw).decode("utf-8"))


def _std_dumps(obj: Any) -> bytes:
    return _std_encoder.encode(obj).encode()


def _fast_loads(raw: bytes | bytearray | memoryview | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # stdlib decides (and words the refusal) for everything orjson refuses
        return _std_loads(raw)


def _fast_dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # e.g. an int beyond 64 bits: the stdlib writes it
        return _std_dumps(obj)


name: str = "stdlib"
loads: Callable[[bytes | bytearray | memoryview | str], Any] = _std_loads
dumps: Callable[[Any], bytes] = _std_dumps  # for finite floats only; see dumps_flat


def use(codec: str) -> str:
    """Select "orjson" (falls back to "stdlib" when not installed) or "stdlib"; returns the one in use."""
    global name, loads, dumps
    if codec not in ("orjson", "stdlib"):
        raise ValueError(f"unknown JSON codec {codec!r} (orjson or stdlib)")
    if codec == "orjson" and orjson is not None:
        name, loads, dumps = "orjson", _fast_loads, _fast_dumps
    else:
        name, loads, dumps = "stdlib", _std_loads, _std_dumps
    return name


def dumps_flat(obj: dict[str, Any], nonfinite: tuple[str, ...] = ()) -> bytes:
    """`dumps` of a flat object whose keys `nonfinite` hold NaN/inf floats: those are written as the stdlib
    writes them (`NaN`, `-Infinity`), where orjson would write null, so consumers read what they always did."""
    if not nonfinite:
        return dumps(obj)
    if name == "stdlib":
        return _std_dumps(obj)
    out = orjson.dumps({**obj, **dict.fromkeys(nonfinite)})
    for k in nonfinite:
        # `"key":null` cannot occur inside a JSON string (its quotes would be escaped), and keys are unique
        key = orjson.dumps(k)
        out = out.replace(key + b":null", key + b":" + _std_encoder.encode(obj[k]).encode(), 1)
    return out


use("stdlib" if os.environ.get(ENV, "").lower() == "stdlib" else "orjson")
