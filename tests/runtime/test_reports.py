"""How reports leave the daemon (runtime.reports), on a real mosquitto: `reports: batch` puts every report
of one flush in one message, and the report QoS (profile daemon.report_qos, --report-qos) is honoured."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from edgekit.profiles import Daemon as DaemonSettings
from edgekit.profiles import TargetProfile
from edgekit.runtime.daemon import DaemonConfig
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.payloads import encode_batch, encode_reading

T0 = 1_700_000_000.0


def test_batch_mode_publishes_each_flush_as_one_message(rt, broker, mqtt_io, sensor_bundle, shuttle_rows):
    x, _ = shuttle_rows
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/anomalies", "edgekit/dev1/scores"])
    ts = T0 + np.arange(150) * 0.01
    cfg = DaemonConfig(
        bundle=str(sensor_bundle),
        client=ClientOptions(broker.url),
        device="dev1",
        threshold=-math.inf,
        publish_scores=True,
        reports="batch",
    )
    with rt.running(cfg) as d:
        pub = publish()
        pub.send("edgekit/dev1/sensors/s", encode_batch(ts[:50], x[:50]))  # 50 windows: one flush
        assert rt.wait_until(lambda: len(out.on("anomalies")) >= 1 and len(out.on("scores")) >= 1)
        first = out.json("anomalies")[0]
        assert isinstance(first, list) and [r["id"] for r in first] == [f"s@{t!r}" for t in ts[:50].tolist()]
        assert out.json("scores")[0] == first  # every window reported on both topics, one message each
        for i in range(50, 150):
            pub.send("edgekit/dev1/sensors/s", encode_reading(ts[i], x[i]))
        assert rt.wait_until(lambda: d.counters.reports == 150, 20)
    batches = out.json("anomalies")
    assert all(isinstance(b, list) and b for b in batches)
    ids = [r["id"] for b in batches for r in b]
    assert ids == [f"s@{t!r}" for t in ts.tolist()]  # all of them, once, in order
    assert len(batches) < 150 and d.counters.reports == 150  # flushes of several reports share a message


class QosRecorder:
    """A subscriber at QoS 2: each message arrives at the QoS it was published with."""

    def __init__(self, port: int, topic: str, connect) -> None:
        self.qos: list[int] = []
        self.ready = threading.Event()
        self.client = connect("127.0.0.1", port)
        self.client.on_message = lambda _c, _u, m: self.qos.append(m.qos)
        self.client.on_subscribe = lambda *_a: self.ready.set()
        self.client.subscribe(topic, qos=2)
        self.client.loop_start()
        assert self.ready.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize(
    ("profile_qos", "cli_qos", "expected"),
    [(None, None, 1), (0, None, 0), (None, 0, 0), (0, 2, 2)],
    ids=["default-follows-daemon.qos", "profile-report_qos", "flag", "flag-over-profile"],
)
def test_report_qos_is_honoured(rt, broker, sensor_bundle, shuttle_rows, profile_qos, cli_qos, expected):
    from edgekit.bench.rig import mqtt_client

    x, _ = shuttle_rows
    rec = QosRecorder(broker.port, "edgekit/dev1/anomalies", mqtt_client)
    profile = TargetProfile(name="t", daemon=DaemonSettings(report_qos=profile_qos))
    cfg = DaemonConfig(
        bundle=str(sensor_bundle),
        client=ClientOptions(broker.url),
        device="dev1",
        threshold=-math.inf,
        report_qos=cli_qos,
    )
    try:
        with rt.running(cfg, profile) as d:
            pub = rt.Publisher(broker.port)
            for i in range(20):
                pub.send("edgekit/dev1/sensors/s", encode_reading(T0 + i, x[i]))
            assert rt.wait_until(lambda: len(rec.qos) >= 20)
            assert d.report_qos == expected
            pub.close()
    finally:
        rec.close()
    assert set(rec.qos) == {expected}


def test_profile_refuses_an_unknown_report_mode(tmp_path):
    from edgekit.errors import ConfigError
    from edgekit.profiles import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(json.dumps({"name": "p", "daemon": {"reports": "bulk"}}))
    with pytest.raises(ConfigError, match="reports"):
        load_profile(str(path))
