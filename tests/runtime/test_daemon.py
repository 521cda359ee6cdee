"""The daemon against a real mosquitto and real onnxruntime: replayed Shuttle data, every kind of bad
input, a payload fuzz, overload, and a windowed (window 32 / hop 8) model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.bundle.manifest import Manifest
from edgekit.data import load_dataset, make_windows
from edgekit.profiles import TargetProfile
from edgekit.runtime.daemon import DaemonConfig
from edgekit.runtime.engine import Engine
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.payloads import encode_batch, encode_reading, encode_senml

REPORT_KEYS = {
    "device",
    "stream",
    "id",
    "seq",
    "start_ts",
    "end_ts",
    "score",
    "threshold",
    "label",
    "anomaly",
    "model_id",
    "model_version",
    "variant",
    "latency_ms",
}
T0 = 1_700_000_000.0


def offline_ids(
    engine: Engine, stream: str, ts: np.ndarray, windows: np.ndarray, thr: float | None = None
) -> set[str]:
    """Report ids the daemon must publish: windows whose offline score reaches the threshold."""
    hits = engine.score(windows) >= (engine.threshold if thr is None else thr)
    return {f"{stream}@{t!r}" for t in ts[hits].tolist()}


def test_replayed_shuttle_rows_report_exactly_the_offline_anomalies(
    rt, broker, mqtt_io, sensor_bundle, keypair, shuttle_rows
):
    x, y = shuttle_rows
    listen, publish = mqtt_io
    engine = Engine(sensor_bundle)
    n = len(x)
    ts = T0 + np.arange(n) * 0.01
    expected = set()
    for s in ("single", "batch", "senml"):
        expected |= offline_ids(engine, s, ts, x[:, None, :])
    assert y.sum() > 0 and len(expected) > 0
    out = listen(["edgekit/dev1/anomalies"])
    with rt.running(
        DaemonConfig(
            bundle=str(sensor_bundle), client=ClientOptions(broker.url), device="dev1", pubkey=str(keypair[1])
        )
    ) as d:
        pub = publish()
        channels = engine.manifest.window.channels
        for i in range(n):
            pub.send("edgekit/dev1/sensors/single", encode_reading(ts[i], x[i]))
            pub.send("edgekit/dev1/sensors/senml", encode_senml(ts[i], x[i], channels, base_name="shuttle:"))
        for k in range(0, n, 100):
            pub.send("edgekit/dev1/sensors/batch", encode_batch(ts[k : k + 100], x[k : k + 100]))
        assert rt.wait_until(
            lambda: d.counters.windows == 3 * n and len(out.on("anomalies")) >= len(expected), 30
        )
        assert rt.wait_until(lambda: d.pending_publishes() == 0)
    reports = out.json("anomalies")
    assert {r["id"] for r in reports} == expected and len(reports) == len(expected)
    assert d.counters.readings == 3 * n and d.counters.anomalies == len(expected) == d.counters.reports
    assert sum(d.counters.errors.values()) == 0
    m = Manifest.load(sensor_bundle)
    for r in reports:
        assert set(r) == REPORT_KEYS
        assert (
            r["anomaly"] is True and r["label"] == "anomaly" and r["score"] >= r["threshold"] == m.threshold
        )
        assert (r["model_id"], r["model_version"], r["device"]) == (m.model_id, m.model_version, "dev1")
        assert r["start_ts"] == r["end_ts"] and 0 < r["latency_ms"] < 10_000


def _profile(**daemon: object) -> TargetProfile:
    p = TargetProfile(name="test")
    for k, v in daemon.items():
        setattr(p.daemon, k, v)
    return p


GOOD = [1.0] * 9
BAD_INPUTS = {
    # name: (list of (stream-or-topic, payload), counter kind, count[, ts of the good reading after])
    "malformed_json": ([("s", b"{not json")], "malformed", 1),
    "strings": ([("s", json.dumps({"ts": T0, "values": ["x"] * 9}).encode())], "malformed", 1),
    "wrong_channels": ([("s", encode_reading(T0, [1.0] * 8))], "wrong_channels", 1),
    "nan": ([("s", b'{"ts": 1700000000.0, "values": [NaN, 1, 1, 1, 1, 1, 1, 1, 1]}')], "non_finite", 1),
    "inf_in_batch": (
        [
            (
                "s",
                b'{"ts": [1700000000.0, 1700000000.1], "values": [[Infinity,1,1,1,1,1,1,1,1],[1,1,1,1,1,1,1,1,1]]}',
            )
        ],
        "non_finite",
        1,
    ),
    "out_of_order": (
        [("s", encode_reading(T0 + 1, GOOD)), ("s", encode_reading(T0, GOOD))],
        "out_of_order",
        1,
    ),
    "duplicate": ([("s", encode_reading(T0, GOOD)), ("s", encode_reading(T0, GOOD))], "duplicate", 1),
    "gap": (
        [
            ("s", encode_batch(T0 + np.arange(20) * 0.01, np.ones((20, 9)))),
            ("s", encode_reading(T0 + 60, GOOD)),
        ],
        "gap",
        1,
        T0 + 60.01,
    ),
    "oversized": ([("s", encode_reading(T0, GOOD) + b" " * 5000)], "oversized", 1),
    "unknown_topic": ([("edgekit/dev1/sensors/a/b", encode_reading(T0, GOOD))], "unknown_topic", 1),
    "stream_limit": ([("s", encode_reading(T0, GOOD)), ("s2", encode_reading(T0, GOOD))], "stream_limit", 1),
    "bad_command": ([("edgekit/dev1/cmd", b'{"cmd": "format-disk"}')], "bad_command", 1),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_counted_reported_and_the_stream_recovers(rt, case, broker, mqtt_io, sensor_bundle):
    sends, kind, count, *recover = BAD_INPUTS[case]
    good_ts = recover[0] if recover else T0 + 3600
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/errors", "edgekit/dev1/anomalies"])
    cfg = DaemonConfig(
        bundle=str(sensor_bundle),
        client=ClientOptions(broker.url),
        device="dev1",
        threshold=-math.inf,
        max_streams=1,
        error_interval_s=0,
    )
    with rt.running(cfg, _profile(max_payload_bytes=4096)) as d:
        pub = publish()
        for where, payload in sends:
            pub.send(where if "/" in where else f"edgekit/dev1/sensors/{where}", payload)
        pub.send("edgekit/dev1/sensors/s", encode_reading(good_ts, GOOD))  # a good reading afterwards
        assert rt.wait_until(lambda: any(r["end_ts"] == good_ts for r in out.json("anomalies"))), (
            "stream did not recover"
        )
        assert rt.wait_until(lambda: len(out.on("errors")) >= 1)
    errors = out.json("errors")
    assert d.counters.errors[kind] == count, errors
    assert sum(d.counters.errors.values()) == count, d.counters.errors
    assert errors[0]["kind"] == kind and errors[0]["count"] == count and errors[0]["detail"]


def test_overload_drops_are_bounded_counted_and_reported(rt, broker, mqtt_io, sensor_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/errors"])
    n = 3000
    cfg = DaemonConfig(bundle=str(sensor_bundle), client=ClientOptions(broker.url), device="dev1")
    with rt.running(cfg, _profile(queue_size=4, overload="drop-oldest", max_batch=1)) as d:
        pub = publish()
        for i in range(n):
            pub.send("edgekit/dev1/sensors/s", encode_reading(T0 + i, GOOD), qos=0)
        assert rt.wait_until(lambda: d.counters.messages == n and len(d.inbox) == 0, 30)
        assert rt.wait_until(lambda: d.counters.readings + d.counters.errors["dropped"] == n)
    assert d.counters.errors["dropped"] > 0
    assert any(e["kind"] == "dropped" for e in out.json("errors"))


# -- fuzz: random payloads through the broker, each with the counter it must land in ----------------
finite = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def payload_case(draw: st.DrawFn) -> tuple[str, bytes, str | None]:
    """(kind of case, payload, expected counter kind or None for accepted). ts are filled in later."""
    case = draw(
        st.sampled_from(
            ["good", "good_batch", "nan", "short", "long", "string", "garbage", "senml_bad", "past"]
        )
    )
    vals = draw(st.lists(finite, min_size=9, max_size=9))
    if case == "nan":
        vals[draw(st.integers(0, 8))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    if case == "short":
        vals = vals[: draw(st.integers(0, 8))]
    if case == "long":
        vals = vals + draw(st.lists(finite, min_size=1, max_size=3))
    if case == "string":
        vals[draw(st.integers(0, 8))] = draw(st.text(max_size=3))
    expect = {
        "good": None,
        "good_batch": None,
        "nan": "non_finite",
        "short": "wrong_channels",
        "long": "wrong_channels",
        "string": "malformed",
        "garbage": "malformed",
        "senml_bad": "wrong_channels",
        "past": "out_of_order",
    }[case]
    if case == "garbage":
        return (
            case,
            draw(
                st.binary(max_size=40).filter(lambda b: not b.strip().startswith((b"{", b"[")))
                | st.just(b"null")
            ),
            expect,
        )
    return case, json.dumps(vals).encode(), expect


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases=st.lists(payload_case(), min_size=1, max_size=25))
def test_fuzzed_payloads_never_stop_the_daemon_and_counters_add_up(rt, fuzz_daemon, cases):
    d, pub, out = fuzz_daemon
    stream = f"fz{d.counters.messages}"
    before = json.loads(json.dumps(d.counters.errors))
    msgs0, readings0 = d.counters.messages, d.counters.readings
    t = T0
    pub.send(f"edgekit/dev1/sensors/{stream}", encode_reading(t, GOOD))  # so that "past" has a past
    want: dict[str, int] = {}
    good_rows = 1
    for case, body, expect in cases:
        vals = json.loads(body) if case not in ("garbage",) else None
        t += 1.0
        if case == "garbage":
            payload = body
        elif case == "good_batch":
            payload = encode_batch([t, t + 0.5], np.array([vals, vals]))
            t += 0.5
        elif case == "senml_bad":
            payload = json.dumps([{"bt": t, "n": "nope", "v": 1.0}]).encode()
        elif case == "past":
            payload = json.dumps({"ts": T0 - 1.0, "values": vals}).encode()
        else:
            payload = json.dumps({"ts": t, "values": vals}).encode()
        pub.send(f"edgekit/dev1/sensors/{stream}", payload)
        good_rows += {"good": 1, "good_batch": 2}.get(case, 0)
        if expect:
            want[expect] = want.get(expect, 0) + 1
    sentinel = T0 + 10**6
    pub.send(f"edgekit/dev1/sensors/{stream}", encode_reading(sentinel, GOOD))
    assert rt.wait_until(
        lambda: any(r["id"] == f"{stream}@{sentinel!r}" for r in out.json("anomalies")), 20
    ), "daemon stopped scoring"
    assert d.counters.messages - msgs0 == len(cases) + 2
    assert d.counters.readings - readings0 == good_rows + 1
    got = {k: v - before[k] for k, v in d.counters.errors.items() if v != before[k]}
    assert got == want


@pytest.fixture
def fuzz_daemon(rt, broker, mqtt_io, sensor_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/anomalies"])
    cfg = DaemonConfig(
        bundle=str(sensor_bundle),
        client=ClientOptions(broker.url),
        device="dev1",
        threshold=-math.inf,
        gap_factor=0,
    )
    with rt.running(cfg) as d:
        yield d, publish(), out


def test_windowed_model_scores_every_hop_like_offline_windowing(rt, broker, mqtt_io, windowed_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/anomalies"])
    engine = Engine(windowed_bundle)
    table = load_dataset("mitdb").take(slice(0, 1200))
    ws = make_windows(table, engine.window, engine.hop)
    ts = T0 + np.arange(len(table)) / 360.0  # MIT-BIH is sampled at 360 Hz
    thr = float(np.quantile(engine.score(ws.x), 0.8))  # a threshold that yields a good number of reports
    expected = offline_ids(engine, "ecg", ts[engine.window - 1 :: engine.hop][: len(ws)], ws.x, thr)
    with rt.running(
        DaemonConfig(
            bundle=str(windowed_bundle), client=ClientOptions(broker.url), device="dev1", threshold=thr
        )
    ) as d:
        pub = publish()
        for k in range(0, len(table), 50):
            pub.send("edgekit/dev1/sensors/ecg", encode_batch(ts[k : k + 50], table.values[k : k + 50]))
        assert rt.wait_until(
            lambda: d.counters.windows == len(ws) and len(out.on("anomalies")) >= len(expected), 20
        )
    reports = out.json("anomalies")
    assert {r["id"] for r in reports} == expected
    for r in reports:
        assert r["end_ts"] - r["start_ts"] == pytest.approx((engine.window - 1) / 360.0, abs=1e-6)
