"""orjson and the stdlib fallback (runtime.codec) give the same parsed readings, the same refusals and the
same reports: in process for a corpus and a fuzz, and through real daemon processes (EDGEKIT_JSON=stdlib)."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.bench.rig import DaemonProcess, Recorder, mqtt_client
from edgekit.runtime import codec
from edgekit.runtime.engine import Engine
from edgekit.runtime.payloads import (
    PayloadError,
    Schema,
    encode_batch,
    encode_reading,
    encode_senml,
    parse_payload,
)
from edgekit.runtime.scoring import Scorer
from edgekit.runtime.stats import Counters, LatencyHistogram

pytestmark = pytest.mark.skipif(codec.orjson is None, reason="orjson not installed: only the stdlib runs")

SCHEMA = Schema(["a", "b", "c"])
NOW = 1_700_000_100.0
CODECS = ["orjson", "stdlib"]

CORPUS: list[bytes] = [
    b'{"ts": 1700000000.25, "values": [1, 2.5, -3e-5]}',
    b'{"values": [1, 2, 3]}',
    b'{"ts": [1700000000, 1700000000.5], "values": [[1, 2, 3], [4, 5, 6]]}',
    encode_senml(1_700_000_000.0, [1.0, 2.0, 3.0], ["a", "b", "c"], base_name="x:"),
    b'[{"bt": 5, "n": "a", "v": 1}, {"n": "b", "v": 2}, {"n": "c", "v": 3}]',  # relative SenML time
    b'{"ts": 1, "values": [NaN, 1, 2]}',  # the stdlib reads NaN literals, orjson does not
    b'{"ts": 1, "values": [Infinity, -Infinity, 2]}',
    b'{"ts": 1, "values": [1e400, 1, 2]}',
    b'{"ts": 1, "values": [3.5e38, 1, 2]}',  # beyond float32
    b'{"ts": 1, "values": [-3.5e38, 1, 2]}',
    b'{"ts": 1, "values": [1, NaN, 3.5e38]}',
    b'{"ts": 1, "values": [123456789012345678901234567890, 1, 2]}',  # beyond 64 bits
    b'{"ts": 1, "values": [true, 1, 2]}',
    b'{"ts": 1, "values": [null, 1, 2]}',
    b'{"ts": 1, "values": ["1", 1, 2]}',
    b'{"ts": 1, "values": [1, 2]}',
    b'{"ts": 1, "values": []}',
    b'{"ts": "x", "values": [1, 2, 3]}',
    b'{"ts": 1, "ts": 2, "values": [1, 2, 3]}',  # duplicate key: the last wins in both
    b'{"ts": 1, "values": [-0.0, 0, 1]}',
    b"\xef\xbb\xbf{}",  # UTF-8 BOM
    b"\xff\xfe{}",  # not UTF-8
    b'{"ts": 1, "values": [1, 2, 3]',  # truncated
    b'"\\ud800"',  # lone surrogate
    b"[" * 5000 + b"]" * 5000,  # nested too deeply for orjson, and for the stdlib's recursion
    b"",
    b"{} []",
    b'  {"ts": 1, "values": [1, 2, 3]}  \n',
]


@pytest.fixture(autouse=True)
def restore_codec() -> Iterator[None]:
    before = codec.name
    yield
    codec.use(before)


def outcome(raw: bytes, name: str) -> tuple:
    """What parse_payload makes of `raw` under one codec: rows (bit patterns, so NaN == NaN) or the refusal."""
    codec.use(name)
    try:
        rows = parse_payload(raw, SCHEMA, NOW)
    except PayloadError as exc:
        return ("refused", exc.kind, exc.detail)
    return (
        "rows",
        rows.ts.dtype,
        rows.ts.tobytes(),
        rows.values.dtype,
        rows.values.shape,
        rows.values.tobytes(),
    )


def test_use_selects_and_falls_back():
    assert codec.use("orjson") == "orjson" and codec.loads is not None
    assert codec.use("stdlib") == "stdlib"
    with pytest.raises(ValueError):
        codec.use("ujson")


@pytest.mark.parametrize("raw", CORPUS, ids=range(len(CORPUS)))
def test_both_codecs_parse_the_corpus_identically(raw):
    assert outcome(raw, "orjson") == outcome(raw, "stdlib")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["ts", "values", "n", "v", "bt", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(obj=_json)
def test_both_codecs_agree_on_fuzzed_json(obj):
    raw = json.dumps(obj).encode()  # the stdlib writes NaN/Infinity literals for non-finite floats
    assert outcome(raw, "orjson") == outcome(raw, "stdlib")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=64))
def test_both_codecs_agree_on_random_bytes(raw):
    assert outcome(raw, "orjson") == outcome(raw, "stdlib")


class Sink:
    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def report(self, payload: bytes, anomaly: bool, stream: str) -> None:
        self.payloads.append(payload)

    def error(self, *_a: object, **_k: object) -> None:
        raise AssertionError("no error expected")


def reports_with(name: str, engine: Engine, rows: np.ndarray, threshold: float | None) -> list[dict]:
    codec.use(name)
    sink = Sink()
    sc = Scorer(engine, sink, Counters(), LatencyHistogram(), device="d", threshold=threshold)
    ts = 1_700_000_000.0 + np.arange(len(rows)) * 0.01
    for i in range(0, len(rows), 10):
        sc.handle("s", encode_batch(ts[i : i + 10], rows[i : i + 10]), time.perf_counter())
        sc.flush()
    out = []
    for p in sink.payloads:
        r = json.loads(p)  # the stdlib reader: what a consumer sees
        assert r.pop("latency_ms") >= 0  # timing differs between two runs
        out.append(r)
    return out


@pytest.mark.parametrize("threshold", [None, -math.inf], ids=["bundle-threshold", "every-window"])
def test_both_codecs_write_the_same_reports(sensor_bundle, shuttle_rows, threshold):
    x, _ = shuttle_rows
    engine = Engine(sensor_bundle)
    a = reports_with("orjson", engine, x[:300], threshold)
    b = reports_with("stdlib", engine, x[:300], threshold)
    assert len(a) > 0 and a == b
    if threshold is not None:
        assert all(r["threshold"] == -math.inf for r in a)  # written as -Infinity by both, never null


def _run_daemon(broker, bundle, x: np.ndarray, env: dict[str, str], device: str) -> list[dict]:
    with (
        Recorder(broker.port, [f"edgekit/{device}/anomalies"]) as out,
        DaemonProcess(bundle, broker.url, device, ["--threshold=-inf"], env=env) as d,
    ):
        assert d.wait_for(f"JSON codec {'stdlib' if env[codec.ENV] else 'orjson'}")
        pub = mqtt_client("127.0.0.1", broker.port)
        pub.loop_start()
        for i in range(len(x)):
            pub.publish(
                f"edgekit/{device}/sensors/s", encode_reading(1_700_000_000.0 + i * 0.01, x[i]), qos=1
            )
        deadline = time.monotonic() + 20
        while len(out.on("/anomalies")) < len(x) and time.monotonic() < deadline:
            time.sleep(0.05)
        pub.disconnect()
        pub.loop_stop()
        reports = out.json("/anomalies")
    for r in reports:
        r.pop("latency_ms")
        r.pop("device")
    return reports


def test_daemon_processes_with_and_without_orjson_publish_the_same_reports(
    broker, sensor_bundle, shuttle_rows
):
    x, _ = shuttle_rows
    fast = _run_daemon(broker, sensor_bundle, x[:200], {**os.environ, codec.ENV: ""}, "jfast")
    slow = _run_daemon(broker, sensor_bundle, x[:200], {**os.environ, codec.ENV: "stdlib"}, "jslow")
    assert len(fast) == 200 and fast == slow


@pytest.mark.parametrize(
    "body",
    [
        {"stream": "s", "score": 0.5, "threshold": -math.inf, "anomaly": True},
        {"stream": 'x","threshold":null', "id": '"threshold":null', "score": math.nan, "threshold": math.inf},
        {"stream": "s", "score": -math.inf, "probability": math.nan, "latency_ms": 1e-5},
    ],
)
def test_non_finite_report_fields_read_back_as_the_stdlib_wrote_them(body):
    odd = tuple(k for k, v in body.items() if isinstance(v, float) and not math.isfinite(v))
    codec.use("stdlib")
    ref = codec.dumps_flat(body, odd)
    codec.use("orjson")
    fast = codec.dumps_flat(body, odd)
    a, b = json.loads(fast), json.loads(ref)
    assert a.keys() == b.keys() and all(
        (isinstance(v, float) and math.isnan(v) and math.isnan(b[k])) or v == b[k] for k, v in a.items()
    )
