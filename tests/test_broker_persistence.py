"""The shipped mosquitto.conf keeps persistent sessions across a broker crash: a real mosquitto with that
configuration, a QoS 1 message queued for an offline persistent subscriber, kill -9 after the autosave
interval, restart, and the message is delivered."""

from __future__ import annotations

import time

from edgekit.bench.rig import Recorder, mqtt_client
from edgekit.broker import Broker, device_conf_path, device_settings

TOPIC = "edgekit/d1/anomalies"


def settings() -> dict[str, str]:
    return dict(line.split(None, 1) for line in device_settings())


def test_shipped_conf_saves_often_enough():
    """Before: persistence without autosave_interval, i.e. mosquitto's 1800 s: a crash lost half an hour."""
    s = settings()
    assert s["persistence"] == "true", device_conf_path()
    assert (
        s.get("autosave_on_changes", "false") == "false" and 0 < int(s.get("autosave_interval", 1800)) <= 30
    )


def test_queued_message_survives_kill_9_after_autosave():
    interval = int(settings().get("autosave_interval", 1800))
    assert interval <= 30, "the shipped autosave_interval is too long for this test (and for a device)"
    with Broker() as broker:
        # client 'consumer' keeps a one-hour MQTT 5 session: the broker queues QoS 1 messages while it is away
        with Recorder(broker.port, [TOPIC], client_id="consumer", persistent=True):
            pass  # subscribed, then disconnected with the session kept

        pub = mqtt_client("127.0.0.1", broker.port)
        pub.loop_start()
        pub.publish(TOPIC, b"queued-1", qos=1).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()

        time.sleep(interval + 2)  # one autosave has happened since the message was queued
        broker.kill()
        broker.start()

        with Recorder(broker.port, [TOPIC], client_id="consumer", persistent=True) as sub:
            deadline = time.monotonic() + 10
            while not sub.messages and time.monotonic() < deadline:
                time.sleep(0.05)
            got = [payload for _topic, payload in sub.messages]
        assert got == [b"queued-1"], broker.log_text()
