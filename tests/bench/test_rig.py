"""The rig shared by bench, demo and tests: a real `edgekit serve` process and real MQTT clients."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgekit.bench import DaemonProcess, Recorder, mqtt_client
from edgekit.errors import EdgekitError
from edgekit.runtime.payloads import encode_reading

GOOD = [1.0] * 9


def test_daemon_process_online_scores_and_stops_cleanly(broker, sensor_bundle: Path, tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    with Recorder(broker.port, ["edgekit/rig1/#"]) as seen:
        with DaemonProcess(sensor_bundle, broker.url, "rig1", ["--threshold=-inf"], log_path=log) as d:
            assert d.running()
            # start() returned after the daemon itself said online (not a retained message)
            assert any(s.get("state") == "online" for s in seen.json("status"))
            pub = mqtt_client("127.0.0.1", broker.port)
            pub.loop_start()
            pub.publish("edgekit/rig1/sensors/s", encode_reading(time.time(), GOOD), qos=1)
            assert seen.wait_for(lambda t, _p: t.endswith("/anomalies"), 10) is not None
            pub.disconnect()
            pub.loop_stop()
        assert d.returncode == 0 and not d.running()  # SIGTERM: clean exit
        assert d.output == log.read_text()
        assert seen.wait_for(lambda t, p: t.endswith("/status") and b'"offline"' in p, 10) is not None


def test_retained_online_of_an_earlier_daemon_does_not_count(broker, tmp_path: Path) -> None:
    """A daemon that cannot start fails fast with its log, even when the broker still holds an `online`."""
    pub = mqtt_client("127.0.0.1", broker.port)
    pub.loop_start()
    pub.publish("edgekit/rig2/status", b'{"state": "online"}', qos=1, retain=True).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()
    d = DaemonProcess(tmp_path / "no-such-bundle", broker.url, "rig2", ready_timeout=60)
    t0 = time.monotonic()
    with pytest.raises(EdgekitError, match="exited with code 2") as err:
        d.start()
    assert time.monotonic() - t0 < 30  # noticed the exit, did not wait out the timeout
    assert "no-such-bundle" in str(err.value) and not d.running()
