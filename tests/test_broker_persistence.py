"""The shipped mosquitto.conf keeps persistent sessions across a broker crash: a real mosquitto with that
configuration, a QoS 1 message queued for an offline persistent subscriber, kill -9 after the autosave
interval, restart, and the message is delivered."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgekit.broker import Broker, device_conf_path, device_settings

TOPIC = "edgekit/d1/anomalies"


def settings() -> dict[str, str]:
    return dict(line.split(None, 1) for line in device_settings())


def persistent_subscriber(port: int, got: list[bytes]) -> tuple[mqtt.Client, threading.Event]:
    """Client 'consumer' with a one-hour MQTT 5 session, so the broker queues QoS 1 messages while it is away."""
    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="consumer", protocol=mqtt.MQTTv5)
    c.on_message = lambda _c, _u, msg: got.append(msg.payload)
    c.on_subscribe = lambda *_a: subscribed.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    return c, subscribed


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
        got: list[bytes] = []
        sub, subscribed = persistent_subscriber(broker.port, got)
        sub.subscribe(TOPIC, qos=1)
        assert subscribed.wait(5)
        sub.disconnect()  # session kept: subscription stays, QoS 1 messages are queued for it
        sub.loop_stop()

        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        pub.publish(TOPIC, b"queued-1", qos=1).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()

        time.sleep(interval + 2)  # one autosave has happened since the message was queued
        broker.kill()
        broker.start()

        sub, _ = persistent_subscriber(broker.port, got)
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        sub.disconnect()
        sub.loop_stop()
        assert got == [b"queued-1"], broker.log_text()
