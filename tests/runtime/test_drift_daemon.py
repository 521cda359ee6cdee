"""Drift monitoring through real `edgekit serve` processes and a real mosquitto: the real Shuttle test split
replayed clean raises no drift, and the same rows with an offset, a gain change or a stuck channel raise the
right alert kind within a stated number of readings; out-of-range readings alert once per interval; the
heartbeat and the metrics endpoint carry the PSI values; a bundle without reference statistics (or a
profile with drift off) serves exactly as before.

Profile used (a copy of x86-gateway): window 200 readings, evaluated every 50, 2 consecutive evaluations.
So the first drift alert of a stream whose readings are all shifted is due at reading 200 + 50 = 250 at the
latest, a stuck channel's at reading 200, and an out-of-range reading's at once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from edgekit.bench.rig import DaemonProcess, Recorder, mqtt_client
from edgekit.bundle.manifest import Manifest
from edgekit.profiles import list_profiles
from edgekit.runtime.payloads import encode_reading
from edgekit.runtime.stats import prometheus_text

WINDOW, EVERY, CONSECUTIVE = 200, 50, 2
DRIFT_BOUND = WINDOW + (CONSECUTIVE - 1) * EVERY  # readings until a fully shifted stream must have alerted
T0 = 1_700_000_000.0


def write_profile(tmp: Path, **drift: object) -> Path:
    data = yaml.safe_load(list_profiles()["x86-gateway"].read_text())
    data["drift"] = {
        "window_readings": WINDOW,
        "evaluate_every": EVERY,
        "consecutive": CONSECUTIVE,
        "alert_interval_s": 3600,
        **drift,
    }
    path = tmp / "drift-test.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def replay(broker, bundle, profile: Path, streams: dict[str, np.ndarray], device: str, pubkey=None) -> dict:
    """Publish each stream's rows (one reading a message, QoS 1, interleaved), wait until the daemon has
    taken every reading, and return its alerts and last heartbeat."""
    args = ["--profile", str(profile), "--heartbeat-s", "3600"]
    args += ["--pubkey", str(pubkey)] if pubkey else []
    topics = [f"edgekit/{device}/alerts", f"edgekit/{device}/heartbeat"]
    total = sum(len(r) for r in streams.values())
    with Recorder(broker.port, topics) as rec, DaemonProcess(bundle, broker.url, device, args) as daemon:
        pub = mqtt_client("127.0.0.1", broker.port, max_inflight=1000)
        pub.loop_start()
        try:
            infos = []
            for i in range(max(len(r) for r in streams.values())):
                for name, rows in streams.items():
                    if i < len(rows):
                        topic = f"edgekit/{device}/sensors/{name}"
                        infos.append(pub.publish(topic, encode_reading(T0 + i, rows[i].tolist()), qos=1))
            for info in infos:
                info.wait_for_publish(30)

            def done(topic: str, payload: bytes) -> bool:
                return topic.endswith("heartbeat") and json.loads(payload)["counters"]["readings"] >= total

            beat = None
            for _ in range(60):  # ask for heartbeats until one shows every reading taken
                pub.publish(f"edgekit/{device}/cmd", json.dumps({"cmd": "heartbeat"}), qos=1)
                if (beat := rec.wait_for(done, 1.0)) is not None:
                    break
            assert beat is not None, daemon.log[-2000:]
        finally:
            pub.disconnect()
            pub.loop_stop()
    return {
        "alerts": rec.json("/alerts"),
        "heartbeat": json.loads(beat[1]),
        "log": daemon.output,
        "rc": daemon.returncode,
    }


@pytest.fixture
def profile(tmp_path) -> Path:
    return write_profile(tmp_path)


def beyond(ref, rows: np.ndarray, margin: float = 0.1) -> dict[str, set[float]]:
    """Per channel, the values of `rows` beyond the training range by more than `margin` x the range."""
    out = {}
    for c, ch in enumerate(ref.channels):
        pad = margin * (ch.max - ch.min)
        col = rows[:, c].astype(np.float64)
        out[ch.name] = {float(v) for v in col[(col < ch.min - pad) | (col > ch.max + pad)]}
    return out


def test_clean_test_split_raises_no_drift(broker, sensor_bundle, shuttle_rows, profile):
    """The whole real test split through the daemon: no drift or stuck alert, per channel or for the score;
    the only alerts are out_of_range ones, each for a reading that really is beyond the training range."""
    x, _ = shuttle_rows
    ref = Manifest.load(sensor_bundle).reference
    got = replay(broker, sensor_bundle, profile, {"s": x}, "drift-clean")
    kinds = [a["kind"] for a in got["alerts"]]
    assert "drift" not in kinds and "stuck" not in kinds, got["alerts"]
    real = beyond(ref, x)
    for a in got["alerts"]:
        assert a["kind"] == "out_of_range"
        assert any(v == pytest.approx(a["value"], rel=1e-6) for v in real[a["channel"]]), a
    drift = got["heartbeat"]["drift"]
    assert drift["evaluations"] == (len(x) - WINDOW) // EVERY + 1
    assert max(drift["psi"].values()) < 0.25 and drift["score_psi"] < 0.25
    assert got["rc"] == 0


def test_offset_gain_and_stuck_raise_the_right_alert(broker, sensor_bundle, shuttle_rows, profile):
    """Four streams of the same real rows in one daemon: +3 training std on f1, gain 1.5 on f7, f5 stuck,
    and clean. Each faulty stream's alert arrives within DRIFT_BOUND readings, on its channel only."""
    x, _ = shuttle_rows
    ref = Manifest.load(sensor_bundle).reference
    rows = x[:DRIFT_BOUND].astype(np.float64)
    offset, gain, stuck = rows.copy(), rows.copy(), rows.copy()
    offset[:, 0] += 3 * ref.channels[0].std
    gain[:, 6] *= 1.5
    stuck[:, 4] = stuck[0, 4]
    streams = {"offset": offset, "gain": gain, "stuck": stuck, "clean": rows}
    got = replay(broker, sensor_bundle, profile, streams, "drift-faults")

    def of(stream: str, kind: str) -> set[str]:
        return {a["channel"] for a in got["alerts"] if a["stream"] == stream and a["kind"] == kind}

    assert of("offset", "drift") == {"f1"}
    assert of("gain", "drift") == {"f7"}
    assert of("stuck", "stuck") == {"f5"}
    # only the faulty channel is flagged (a stuck channel's constant window is also a drifted one)
    for stream, channel in {"offset": "f1", "gain": "f7", "stuck": "f5"}.items():
        assert of(stream, "drift") <= {channel} and of(stream, "stuck") <= {"f5"}
    assert of("offset", "stuck") == of("gain", "stuck") == set()
    assert of("clean", "drift") == of("clean", "stuck") == set()
    for a in got["alerts"]:
        assert set(a) == {"kind", "stream", "channel", "value", "threshold", "ts"}
        if a["kind"] == "drift":
            assert a["value"] > a["threshold"] == 0.25
    # out_of_range alerts only where the rows really leave the range (the offset pushes f1's top past it)
    for a in got["alerts"]:
        if a["kind"] == "out_of_range":
            real = beyond(ref, streams[a["stream"]])[a["channel"]]  # the daemon parses float32
            assert any(v == pytest.approx(a["value"], rel=1e-6) for v in real), a
    drift = got["heartbeat"]["drift"]
    assert drift["streams"] == 4 and drift["psi"]["f1"] > 1.0 and drift["worst_stream"]["f1"] == "offset"
    assert drift["alerts"]["drift"] >= 2 and drift["alerts"]["stuck"] == 1
    # the heartbeat's PSI values as Prometheus gauges, channel-labelled, read back by prometheus_client
    fams = {
        f.name: f for f in text_string_to_metric_families(prometheus_text(got["heartbeat"], "drift-faults"))
    }
    gauges = {s.labels["channel"]: s.value for s in fams["edgekit_drift_psi"].samples}
    assert set(gauges) == {c.name for c in ref.channels} | {"score"}
    assert gauges["f1"] == pytest.approx(drift["psi"]["f1"])
    alerts = {s.labels["kind"]: s.value for s in fams["edgekit_drift_alerts"].samples}
    assert alerts["stuck"] == 1


def test_out_of_range_alerts_are_rate_limited(broker, sensor_bundle, shuttle_rows, profile):
    x, _ = shuttle_rows
    ch = Manifest.load(sensor_bundle).reference.channels[2]
    bound = ch.max + 0.1 * (ch.max - ch.min)
    rows = np.repeat(x[:1].astype(np.float64), 30, axis=0)
    rows[:, 2] = bound + 5.0
    got = replay(broker, sensor_bundle, profile, {"hot": rows}, "drift-range")
    oor = [a for a in got["alerts"] if a["kind"] == "out_of_range"]
    assert len(oor) == 1  # 30 readings beyond the range, one alert per alert_interval_s (3600 s)
    assert (oor[0]["stream"], oor[0]["channel"]) == ("hot", "f3")
    assert oor[0]["value"] == pytest.approx(bound + 5.0) and oor[0]["threshold"] == pytest.approx(bound)
    assert got["heartbeat"]["drift"]["suppressed"] == 29


def test_bundle_without_reference_serves_as_before(
    broker, sensor_bundle, shuttle_rows, profile, keypair, resign, tmp_path
):
    """An older bundle (no reference) and a profile with drift off: no drift section, no alerts, every
    reading scored."""
    x, _ = shuttle_rows
    old = tmp_path / "old"
    shutil.copytree(sensor_bundle, old)
    resign(old, keypair[0], reference=None)
    assert "reference" not in json.loads((old / "manifest.json").read_text())
    rows = x[:DRIFT_BOUND].astype(np.float64)
    rows[:, 0] += 3 * 12.8  # would drift and leave the range with monitoring on
    got = replay(broker, old, profile, {"s": rows}, "drift-none", pubkey=keypair[1])
    assert got["alerts"] == []
    beat = got["heartbeat"]
    assert "drift" not in beat and beat["counters"]["windows"] == len(rows)
    off = write_profile(tmp_path, enabled=False)
    got = replay(broker, sensor_bundle, off, {"s": rows}, "drift-off")
    assert got["alerts"] == [] and "drift" not in got["heartbeat"]
    assert got["heartbeat"]["counters"]["windows"] == len(rows)
