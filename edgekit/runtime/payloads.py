"""Sensor payload formats (single reading, batch, SenML) parsed into rows; auto-detected via a registry.

Every format yields `Rows`: `ts` float64 [R] (unix seconds) and `values` float32 [R, C] in the bundle's
channel order. Per-row problems (NaN/inf) are left for the stream to drop and count; anything that makes
the whole message unusable raises PayloadError with the counter kind it belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np

from edgekit.errors import DataError
from edgekit.registry import Registry
from edgekit.runtime import codec

# Error kinds detected while parsing a message (counters and the errors topic use the same names).
MALFORMED = "malformed"
WRONG_CHANNELS = "wrong_channels"

FLOAT32_MAX = float(np.finfo(np.float32).max)

# RFC 8428 section 4.5.3: times below 2**28 are relative to "now".
SENML_RELATIVE_LIMIT = 2.0**28


class PayloadError(DataError):
    """A message that cannot be used at all; `kind` names the counter it is charged to."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class Rows(NamedTuple):
    ts: np.ndarray  # float64 [R]
    values: np.ndarray  # float32 [R, C]


@dataclass
class Schema:
    """What a payload must match: the bundle's channel names, in order."""

    channels: list[str]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {name: i for i, name in enumerate(self.channels)}

    @property
    def width(self) -> int:
        return len(self.channels)


class PayloadFormat(Protocol):
    def detect(self, obj: Any) -> bool: ...

    def parse(self, obj: Any, schema: Schema, now: float) -> Rows: ...


PAYLOAD_FORMATS: Registry[PayloadFormat] = Registry("payload format")


_PLAIN = frozenset((float, int))


def _number(x: Any) -> bool:
    # bool is an int subclass; a reading of `true` is a publisher bug, not 1.0.
    return type(x) is float or type(x) is int


def _values_2d(values: Any, schema: Schema, rows: int | None) -> np.ndarray:
    """Numeric [R, C] float32 array from nested lists; strings, nulls and ragged rows are refused."""
    try:
        arr = np.asarray(values)
    except ValueError:  # ragged nesting (numpy >= 1.24 refuses to build object arrays implicitly)
        raise PayloadError(
            WRONG_CHANNELS, f"rows of different lengths (expected {schema.width} values each)"
        ) from None
    if arr.dtype.kind not in "fiu":
        raise PayloadError(MALFORMED, f"values must be numbers (got {arr.dtype.kind!r} data)")
    if rows is None:
        arr = arr.reshape(1, -1) if arr.ndim == 1 else arr
    if arr.ndim != 2 or (rows is not None and arr.shape[0] != rows):
        raise PayloadError(
            MALFORMED, f"values must be a list of {rows or 1} row(s) of numbers, got shape {arr.shape}"
        )
    if arr.shape[1] != schema.width:
        raise PayloadError(
            WRONG_CHANNELS, f"{arr.shape[1]} values per reading, the model expects {schema.width}"
        )
    return _to_float32(arr)


def _to_float32(arr: np.ndarray) -> np.ndarray:
    """float32 copy; values beyond float32 range become NaN (dropped later as non-finite) without the
    overflow warning (or the cost of np.errstate on every message)."""
    if arr.dtype.kind == "f":
        out_of_range = ~(np.abs(arr) <= FLOAT32_MAX)
        if out_of_range.any():
            arr = np.where(out_of_range, np.nan, arr)
    elif np.abs(arr).max(initial=0) > FLOAT32_MAX:  # integers too large for float32
        arr = np.where(np.abs(arr) <= FLOAT32_MAX, arr, np.nan)
    return arr.astype(np.float32)


class Reading:
    """`{"ts": 1700000000.25, "values": [c1, c2, ...]}`; `ts` may be omitted (receive time is used)."""

    def detect(self, obj: Any) -> bool:
        return type(obj) is dict and "values" in obj and not isinstance(obj.get("ts"), list)

    def parse(self, obj: Any, schema: Schema, now: float) -> Rows:
        ts = obj.get("ts", now)
        if not _number(ts):
            raise PayloadError(MALFORMED, f"ts must be a number of unix seconds, got {type(ts).__name__}")
        values = obj["values"]
        if type(values) is not list or (values and type(values[0]) is list):
            raise PayloadError(
                MALFORMED, "values must be a flat list of numbers (use the batch form for many rows)"
            )
        # The common case, a flat list of plain numbers, skips numpy's type inference (hot path): one
        # C-level pass for the types, min/max for the range (a NaN makes them fail or is skipped; either
        # way every out-of-range number is caught and the slow path decides).
        plain = len(values) == schema.width and _PLAIN.issuperset(map(type, values))
        if plain and values and min(values) >= -FLOAT32_MAX and max(values) <= FLOAT32_MAX:
            return Rows(np.array([ts], dtype=np.float64), np.array([values], dtype=np.float32))
        return Rows(np.array([ts], dtype=np.float64), _values_2d(values, schema, None))


class Batch:
    """`{"ts": [t0, t1, ...], "values": [[...], [...], ...]}`: one row of values per timestamp."""

    def detect(self, obj: Any) -> bool:
        return type(obj) is dict and isinstance(obj.get("ts"), list)

    def parse(self, obj: Any, schema: Schema, now: float) -> Rows:
        ts_list = obj["ts"]
        if not ts_list:
            raise PayloadError(MALFORMED, "batch with no rows")
        try:
            ts = np.asarray(ts_list)
        except ValueError:
            raise PayloadError(MALFORMED, "ts must be a flat list of numbers") from None
        if ts.ndim != 1 or ts.dtype.kind not in "fiu":
            raise PayloadError(MALFORMED, "ts must be a flat list of numbers")
        if type(obj.get("values")) is not list:
            raise PayloadError(MALFORMED, "batch needs values: a list with one row per ts")
        return Rows(ts.astype(np.float64), _values_2d(obj["values"], schema, len(ts)))


class SenML:
    """RFC 8428 SenML JSON: records `n` (channel name, after `bn`), `v`, `t` (after `bt`); grouped by time."""

    def detect(self, obj: Any) -> bool:
        return type(obj) is list and bool(obj) and type(obj[0]) is dict

    def parse(self, obj: Any, schema: Schema, now: float) -> Rows:
        bn, bt, bv = "", 0.0, 0.0
        rows: dict[float, list[float | None]] = {}
        for rec in obj:
            if type(rec) is not dict:
                raise PayloadError(MALFORMED, "SenML pack must be a list of objects")
            if "bn" in rec:
                bn = rec["bn"] if isinstance(rec["bn"], str) else ""
            if "bt" in rec:
                bt = self._num(rec, "bt")
            if "bv" in rec:
                bv = self._num(rec, "bv")
            if "v" not in rec:
                if any(k in rec for k in ("vs", "vb", "vd", "s")):
                    raise PayloadError(MALFORMED, "only numeric SenML values (v) are supported")
                if "n" in rec:
                    raise PayloadError(MALFORMED, f"SenML record {rec.get('n')!r} has no value")
                continue  # a record carrying base fields only
            n = rec.get("n", "")
            i = schema.index.get(bn + n) if isinstance(n, str) else None
            if i is None:
                i = schema.index.get(n) if isinstance(n, str) else None
            if i is None:
                raise PayloadError(
                    WRONG_CHANNELS,
                    f"SenML name {bn}{n!s} is not a channel of the model ({', '.join(schema.channels)})",
                )
            t = bt + self._num(rec, "t") if "t" in rec else bt
            if t < SENML_RELATIVE_LIMIT:
                t += now
            row = rows.setdefault(t, [None] * schema.width)
            if row[i] is not None:
                raise PayloadError(MALFORMED, f"SenML channel {schema.channels[i]} appears twice at t={t}")
            row[i] = bv + self._num(rec, "v")
        if not rows:
            raise PayloadError(MALFORMED, "SenML pack has no values")
        times = sorted(rows)
        for t in times:
            if any(v is None for v in rows[t]):
                missing = [c for c, v in zip(schema.channels, rows[t], strict=True) if v is None]
                raise PayloadError(
                    WRONG_CHANNELS, f"SenML readings at t={t} lack channel(s) {', '.join(missing)}"
                )
        return Rows(
            np.array(times, dtype=np.float64), _values_2d([rows[t] for t in times], schema, len(times))
        )

    @staticmethod
    def _num(rec: dict, key: str) -> float:
        x = rec[key]
        if not _number(x):
            raise PayloadError(MALFORMED, f"SenML field {key} must be a number, got {type(x).__name__}")
        return float(x)


for _name, _fmt in (("reading", Reading()), ("batch", Batch()), ("senml", SenML())):
    PAYLOAD_FORMATS.register(_name)(_fmt)

# Detection order; formats are disjoint, so the order only decides speed (single readings first).
_DETECT_ORDER = ("reading", "batch", "senml")


def parse_payload(raw: bytes | str, schema: Schema, now: float, fmt: str = "auto") -> Rows:
    """Decode one MQTT payload into rows. `now` (unix seconds) fills missing/relative times."""
    try:
        obj = codec.loads(raw)  # orjson when installed; the same results either way (runtime.codec)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(MALFORMED, f"not JSON ({exc})") from None
    except RecursionError:
        raise PayloadError(MALFORMED, "JSON nested too deeply") from None
    try:
        return _detect(obj, fmt).parse(obj, schema, now)
    except OverflowError:  # integers beyond float range (json accepts any size)
        raise PayloadError(MALFORMED, "a number is out of range") from None


def _detect(obj: Any, fmt: str) -> PayloadFormat:
    if fmt != "auto":
        return PAYLOAD_FORMATS.get(fmt)
    for name in _DETECT_ORDER:
        if PAYLOAD_FORMATS.get(name).detect(obj):
            return PAYLOAD_FORMATS.get(name)
    for name in PAYLOAD_FORMATS:  # formats registered by users
        if name not in _DETECT_ORDER and PAYLOAD_FORMATS.get(name).detect(obj):
            return PAYLOAD_FORMATS.get(name)
    raise PayloadError(
        MALFORMED,
        "unknown payload format (expected {ts, values}, batch {ts: [...], values: [[...]]} or SenML)",
    )


def encode_reading(ts: float, values: Sequence[float]) -> bytes:
    """The single-reading form, as publishers (tests, benchmarks, examples) send it."""
    return json.dumps({"ts": ts, "values": [float(v) for v in values]}).encode()


def encode_batch(ts: Sequence[float], values: np.ndarray) -> bytes:
    """The batch form: `{"ts": [...], "values": [[...], ...]}`."""
    return json.dumps(
        {"ts": [float(t) for t in ts], "values": np.asarray(values, dtype=np.float64).tolist()}
    ).encode()


def encode_senml(ts: float, values: Sequence[float], channels: Sequence[str], base_name: str = "") -> bytes:
    """One reading as a SenML pack (one record per channel, shared base time)."""
    recs: list[dict[str, Any]] = [
        {"n": name, "v": float(v)} for name, v in zip(channels, values, strict=True)
    ]
    recs[0].update({"bn": base_name, "bt": ts} if base_name else {"bt": ts})
    return json.dumps(recs).encode()
