"""`edgekit serve --workers N` as real processes on a real mosquitto: every stream scored exactly once, a
SIGKILLed worker restarted by the supervisor, the heartbeat aggregating the workers', and a windowed
model's streams kept whole on one worker each."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from edgekit.bench.rig import DaemonProcess, mqtt_client
from edgekit.bundle.manifest import Manifest
from edgekit.runtime.payloads import encode_reading

T0 = 1_700_000_000.0
DEV = "wdev"


def _send(pub, stream: str, ts: list[float], rows: np.ndarray) -> None:
    infos = [
        pub.publish(f"edgekit/{DEV}/sensors/{stream}", encode_reading(t, r), qos=1)
        for t, r in zip(ts, rows, strict=True)
    ]
    for i in infos:
        i.wait_for_publish(10)


def _heartbeat(rt, pub, listener) -> dict:
    n = len(listener.on("/heartbeat"))
    pub.publish(f"edgekit/{DEV}/cmd", json.dumps({"cmd": "heartbeat"}), qos=1)
    assert rt.wait_until(lambda: len(listener.on("/heartbeat")) > n, 10), "no heartbeat from the supervisor"
    return json.loads(listener.on("/heartbeat")[-1])


@pytest.fixture
def pub(broker):
    c = mqtt_client("127.0.0.1", broker.port, max_inflight=1000)
    c.loop_start()
    yield c
    c.disconnect()
    c.loop_stop()


def test_two_workers_share_a_window1_model_score_each_reading_once_and_survive_sigkill(
    rt, broker, mqtt_io, pub, sensor_bundle, shuttle_rows
):
    x, _ = shuttle_rows
    listen, _ = mqtt_io
    out = listen([f"edgekit/{DEV}/anomalies", f"edgekit/{DEV}/heartbeat"])
    streams = [f"s{k}" for k in range(8)]
    n = 40  # readings per stream
    with DaemonProcess(sensor_bundle, broker.url, DEV, ["--workers", "2", "--threshold=-inf"]) as d:
        for k, s in enumerate(streams):
            _send(pub, s, [T0 + k + i * 0.01 for i in range(n)], x[:n])
        assert rt.wait_until(lambda: len(out.on("/anomalies")) >= n * len(streams), 20)
        ids = [r["id"] for r in out.json("/anomalies")]
        assert len(ids) == len(set(ids)) == n * len(streams)  # every reading scored exactly once
        hb = _heartbeat(rt, pub, out)
        workers = hb["workers"]
        assert set(workers) == {"0", "1"}
        per = [w["heartbeat"]["counters"]["windows"] for w in workers.values()]
        assert all(p > 0 for p in per)  # the broker dealt messages to both
        assert hb["counters"]["windows"] == sum(per) == n * len(streams)
        assert hb["counters"]["readings"] == n * len(streams) and hb["restarts"] == 0

        victim = workers["1"]["pid"]
        os.kill(victim, signal.SIGKILL)

        def restarted() -> bool:
            w = _heartbeat(rt, pub, out)["workers"]["1"]
            return w["pid"] != victim and w["alive"] and w["online"] and w["restarts"] == 1

        assert rt.wait_until(restarted, 40, 0.5), d.log[-2000:]
        before = len(out.on("/anomalies"))
        for k, s in enumerate(streams):
            _send(pub, s, [T0 + 100 + k + i * 0.01 for i in range(n)], x[:n])
        assert rt.wait_until(lambda: len(out.on("/anomalies")) - before >= n * len(streams), 20)
        hb = _heartbeat(rt, pub, out)
        assert hb["restarts"] == 1
        beats = [w["heartbeat"] for w in hb["workers"].values()]
        assert all(b["counters"]["windows"] > 0 for b in beats)  # the new worker scores too
        # the aggregate is the sum of what the live workers report (the killed one's count died with it)
        assert hb["counters"]["windows"] == sum(b["counters"]["windows"] for b in beats)
        assert "worker 1 (pid" in d.log and "restarting it" in d.log
    assert d.returncode == 0
    ids = [r["id"] for r in out.json("/anomalies")]
    assert len(ids) == len(set(ids)) == 2 * n * len(streams)


def test_windowed_model_keeps_each_streams_windows_on_one_worker(rt, broker, mqtt_io, pub, windowed_bundle):
    listen, _ = mqtt_io
    out = listen([f"edgekit/{DEV}/anomalies", f"edgekit/{DEV}/heartbeat"])
    spec = Manifest.load(windowed_bundle).window
    window, hop, channels = spec.length, spec.hop, len(spec.channels)
    n = window + 9 * hop  # 10 windows per stream
    streams = [f"ecg{k}" for k in range(6)]
    rng = np.random.default_rng(0)
    with DaemonProcess(windowed_bundle, broker.url, DEV, ["--workers", "2", "--threshold=-inf"]):
        for k, s in enumerate(streams):
            ts = [T0 + k + i * 0.004 for i in range(n)]
            _send(pub, s, ts, rng.normal(size=(n, channels)).astype(np.float32))
        assert rt.wait_until(lambda: len(out.on("/anomalies")) >= 10 * len(streams), 20)
        time.sleep(0.5)  # a split stream would show as extra or missing windows: let them all arrive
        hb = _heartbeat(rt, pub, out)
    reports = out.json("/anomalies")
    for k, s in enumerate(streams):
        mine = sorted((r for r in reports if r["stream"] == s), key=lambda r: r["seq"])
        # one worker saw all of the stream's readings: 10 windows, seq 0..9, each ending hop readings later
        assert [r["seq"] for r in mine] == list(range(10)), s
        ts = [T0 + k + i * 0.004 for i in range(n)]
        assert [r["end_ts"] for r in mine] == [ts[window - 1 + j * hop] for j in range(10)]
        assert [r["start_ts"] for r in mine] == [ts[j * hop] for j in range(10)]
    beats = [w["heartbeat"] for w in hb["workers"].values()]
    # crc32 partitions: each worker got every message and dropped the other's streams as foreign
    assert all(b["counters"]["windows"] > 0 and b["counters"]["foreign"] > 0 for b in beats)
    assert hb["counters"]["windows"] == 10 * len(streams)
    assert hb["counters"]["foreign"] + hb["counters"]["readings"] == 2 * n * len(streams)


def test_supervisor_gives_up_when_workers_cannot_start(broker, sensor_bundle, tmp_path):
    from edgekit.bundle.signing import keygen

    _, other_pub = keygen(tmp_path / "other.key", tmp_path / "other.pub")  # not the key that signed it
    d = DaemonProcess(
        sensor_bundle, broker.url, DEV, ["--workers", "2", "--pubkey", str(other_pub)], wait_online=False
    )
    d.start()
    try:
        assert d.wait(60) == 78  # EX_CONFIG, instead of restarting workers that can only fail again
    finally:
        d.stop()
    assert "cannot start" in d.output
