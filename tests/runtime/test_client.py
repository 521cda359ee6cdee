"""runtime.client.WatchedClient against paho's own paths, through a real mosquitto: buffered reads, the
fast PUBLISH dispatch (QoS 0 and 1, MQTT 5 and 3.1.1), the PUBACK shortcut with queued messages, and the
routing rule that keeps paho's dispatch wherever another callback could match."""

from __future__ import annotations

import threading
import time
import tracemalloc

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgekit.bench.rig import mqtt_client
from edgekit.runtime.client import MESSAGE_SLOTS, RECV_CHUNK, FastMessage, LeanInfo, WatchedClient
from edgekit.runtime.link import fast_route
from edgekit.runtime.mqtt import ClientOptions, make_client


def wait(pred, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def watched(broker, client_id: str, protocol: int = 5, **opts: object) -> WatchedClient:
    client, addr = make_client(ClientOptions(url=broker.url, client_id=client_id, protocol=protocol, **opts))
    client.connected_evt = threading.Event()  # type: ignore[attr-defined]
    client.on_connect = lambda c, *a: c.connected_evt.set()
    if protocol == 5:
        client.connect(addr.host, addr.port, clean_start=True)
    else:
        client.connect(addr.host, addr.port)
    return client


def subscribe(client: mqtt.Client, topic: str, qos: int) -> None:
    done = threading.Event()
    client.on_subscribe = lambda *a: done.set()
    client.subscribe(topic, qos=qos)
    assert done.wait(5)


def test_a_burst_is_read_in_one_go_and_every_packet_arrives_whole(broker):
    """The daemon's client reads up to RECV_CHUNK bytes per recv() and hands paho its packets from there:
    a burst left waiting on the socket (small readings, then payloads larger than the buffer, then small
    ones again) arrives complete and in order, and after_read runs once per read, not once per packet."""
    client, addr = make_client(ClientOptions(url=broker.url, client_id="burst-test"))
    got: list[bytes] = []
    reads: list[int] = []
    subscribed = threading.Event()
    client.on_message = lambda _c, _u, m: got.append(m.payload)
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, *a: c.subscribe("burst/#", qos=0)

    def after_read() -> bool:
        reads.append(len(got))
        return False

    client.after_read = after_read
    client.connect(addr.host, addr.port)
    client.loop_start()
    pub = mqtt_client("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        assert subscribed.wait(5)
        client.loop_stop()  # nobody reads: the broker's packets pile up on the socket
        small = [b'{"ts": %d, "values": [1.0, 2.0]}' % i for i in range(400)]
        large = [bytes([65 + i]) * (RECV_CHUNK + 1000 * i) for i in range(3)]
        sent = small[:200] + large + small[200:]
        infos = [pub.publish(f"burst/s{i % 4}", p, qos=1) for i, p in enumerate(sent)]
        for info in infos:
            info.wait_for_publish(5)
        time.sleep(0.3)  # the broker has forwarded everything to the stopped client
        before = len(reads)
        client.loop_start()
        deadline = time.monotonic() + 10
        while len(got) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert got == sent
        assert 1 <= len(reads) - before < 20  # ~30 KB of small packets, 200 KB of large ones: a few reads
        assert client.buffered() == 0
    finally:
        pub.disconnect()
        pub.loop_stop()
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("protocol", [5, 4], ids=["mqtt5", "mqtt311"])
def test_fast_dispatch_hands_over_exactly_what_paho_would(broker, protocol):
    """Stream topics go through fast_publish, byte for byte; a message with MQTT 5 properties, and every
    other topic, still goes through paho's callbacks; QoS 1 ones are acknowledged either way."""
    client = watched(broker, f"fast-{protocol}", protocol=protocol)
    fast: list[tuple[str, bytes]] = []
    slow: list[tuple[str, bytes]] = []
    client.on_message = lambda _c, _u, m: slow.append((m.topic, m.payload))

    def handler(msg: FastMessage) -> None:
        fast.append((msg.topic, msg.payload))

    client.fast_publish = lambda topic: handler if topic.startswith("s/") else None
    client.loop_start()
    pub = mqtt_client("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        assert client.connected_evt.wait(5)
        subscribe(client, "#", 1)
        plain = [
            ("s/a", b'{"ts": 1, "values": [1.0]}', 0),
            ("s/\u00e9t\u00e9", b"", 0),  # a UTF-8 topic, an empty payload
            ("s/big", bytes(range(256)) * 600, 1),  # > RECV_CHUNK, QoS 1
            ("s/q1", b"x" * 10, 1),
        ]
        for topic, payload, qos in plain:
            pub.publish(topic, payload, qos=qos).wait_for_publish(5)
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = ("k", "v")
        pub.publish("s/props", b"with properties", qos=1, properties=props).wait_for_publish(5)
        pub.publish("other/t", b"elsewhere", qos=0).wait_for_publish(5)
        assert wait(lambda: len(fast) + len(slow) >= len(plain) + 2)
        time.sleep(0.2)
        with_props = ("s/props", b"with properties")
        if protocol == 5:  # its properties: paho decodes it
            assert fast == [(t, p) for t, p, _ in plain]
            assert sorted(slow) == sorted([with_props, ("other/t", b"elsewhere")])
        else:  # MQTT 3.1.1 carries no properties (the publisher's were dropped): the fast path takes it
            assert fast == [(t, p) for t, p, _ in plain] + [with_props]
            assert slow == [("other/t", b"elsewhere")]
    finally:
        pub.disconnect()
        pub.loop_stop()
        client.disconnect()
        client.loop_stop()


def test_qos1_messages_taken_by_the_fast_path_are_acknowledged(broker):
    """A persistent session that left PUBACKs unsent gets those messages again after a reconnect."""
    got: list[bytes] = []

    def handler(msg: FastMessage) -> None:
        got.append(msg.payload)

    def session() -> WatchedClient:
        client, addr = make_client(ClientOptions(url=broker.url, client_id="acked", clean_start=False))
        ready = threading.Event()
        client.on_connect = lambda c, *a: c.subscribe("s/#", qos=1)
        client.on_subscribe = lambda *a: ready.set()
        client.fast_publish = lambda topic: handler
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        client.connect(addr.host, addr.port, clean_start=False, properties=props)
        client.loop_start()
        assert ready.wait(5)
        return client

    client = session()
    pub = mqtt_client("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        for i in range(50):
            pub.publish("s/x", b"%d" % i, qos=1).wait_for_publish(5)
        assert wait(lambda: len(got) == 50)
        time.sleep(0.3)  # the PUBACKs reach the broker
        client.disconnect()
        client.loop_stop()
        got.clear()
        client = session()
        time.sleep(1.0)
        assert got == []  # nothing redelivered: every message was acknowledged
    finally:
        pub.disconnect()
        pub.loop_stop()
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("on_publish", [False, True], ids=["shortcut", "paho-callback"])
def test_pubacks_release_in_flight_and_queued_reports(broker, on_publish):
    """3,000 QoS 1 publishes through a window of 10 in flight: every PUBACK frees its message (and lets a
    queued one go out), every info says published, nothing is left; with an on_publish callback paho's own
    path runs and calls it for each."""
    client = watched(broker, "acks", max_inflight=10, max_queued=0)
    acked: list[int] = []
    if on_publish:
        client.on_publish = lambda _c, _u, mid, _rc, _p: acked.append(mid)
    sub = mqtt_client("127.0.0.1", broker.port)
    received: list[bytes] = []
    sub.on_message = lambda _c, _u, m: received.append(m.payload)
    sub.loop_start()
    client.loop_start()
    try:
        assert client.connected_evt.wait(5)
        subscribe(sub, "reports/#", 1)
        infos = [client.publish("reports/x", b"%d" % i, qos=1) for i in range(3000)]
        assert wait(lambda: all(i.is_published() for i in infos), 30)
        assert wait(lambda: len(received) == 3000)
        assert received == [b"%d" % i for i in range(3000)]
        assert client._out_messages == {} and client._inflight_messages == 0
        assert len(acked) == (3000 if on_publish else 0)
    finally:
        sub.disconnect()
        sub.loop_stop()
        client.disconnect()
        client.loop_stop()


def test_publish_builds_every_field_of_pahos_message():
    """WatchedClient.publish sets MQTTMessage's fields itself: a paho that adds one must fail here."""
    assert set(mqtt.MQTTMessage.__slots__) == MESSAGE_SLOTS


def queued_bytes(client: mqtt.Client, n: int) -> float:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            client.publish("reports/x", b"r" * 300 + b"%d" % i, qos=1)
        return (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()


def test_reports_kept_while_disconnected_cost_a_third_and_all_go_out_in_order(broker):
    """Reports published before the connection exists stay queued (max_queued bounds them, the next is
    refused with QUEUE_SIZE) at about a third of paho's memory per report (no Condition each), and all
    go out in order once connected; wait_for_publish from another thread returns when one is acked
    (the Condition made on demand)."""
    plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plain", protocol=mqtt.MQTTv5)
    plain.max_queued_messages_set(0)
    lean = WatchedClient(mqtt.CallbackAPIVersion.VERSION2, client_id="lean", protocol=mqtt.MQTTv5)
    lean.max_queued_messages_set(0)
    paho_cost, lean_cost = queued_bytes(plain, 2000), queued_bytes(lean, 2000)
    assert lean_cost < 0.4 * paho_cost, (lean_cost, paho_cost)

    client, addr = make_client(
        ClientOptions(url=broker.url, client_id="queued", max_queued=500, max_inflight=20)
    )
    infos = [client.publish("reports/q", b"%d" % i, qos=1) for i in range(500)]
    assert all(isinstance(i, LeanInfo) for i in infos)  # NO_CONN for the first 20 (in flight), as paho
    assert {i.rc for i in infos} <= {mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN}
    assert client.publish("reports/q", b"one too many", qos=1).rc == mqtt.MQTT_ERR_QUEUE_SIZE
    sub = mqtt_client("127.0.0.1", broker.port)
    received: list[bytes] = []
    sub.on_message = lambda _c, _u, m: received.append(m.payload)
    sub.loop_start()
    try:
        subscribe(sub, "reports/#", 1)
        client.connect(addr.host, addr.port, clean_start=True)
        client.loop_start()
        assert wait(lambda: len(received) == 500, 20)
        assert received == [b"%d" % i for i in range(500)]
        assert all(i._published for i in infos)
        late = client.publish("reports/q", b"late", qos=1)
        waited = threading.Event()
        waiter = threading.Thread(target=lambda: (late.wait_for_publish(10), waited.set()), daemon=True)
        waiter.start()
        assert waited.wait(10) and late.is_published()
        assert wait(lambda: client._out_messages == {}) and client._inflight_messages == 0
        qos0 = client.publish("reports/q", b"qos0", qos=0)
        qos0.wait_for_publish(5)
        assert qos0.is_published() and wait(lambda: received[-1] == b"qos0")
    finally:
        sub.disconnect()
        sub.loop_stop()
        client.disconnect()
        client.loop_stop()


def test_fast_route_leaves_overlapping_and_wildcard_filters_to_paho():
    def h(_m: FastMessage) -> None:
        return None

    route = fast_route("edgekit/d/sensors/#", ["edgekit/d/cmd", "edgekit/d/escalations/answers"], h)
    assert route is not None
    assert route("edgekit/d/sensors/s1") is h and route("edgekit/d/sensors/a/b") is h
    assert route("edgekit/d/cmd") is None and route("edgekit/d/sensorsX") is None
    # cmd inside the sensors filter (a custom layout): paho calls both callbacks, so paho decides
    inner = fast_route("site/#", ["site/cmd", "site/+/answers"], h)
    assert inner is not None
    assert inner("site/cmd") is None and inner("site/x/answers") is None and inner("site/x/raw") is h
    assert fast_route("site/+/raw", [], h) is None  # '+' inside: a prefix cannot decide
