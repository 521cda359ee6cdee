"""The daemon's MQTT link: one client built from ClientOptions, the retained status with its last will,
subscriptions renewed on every connect, one callback per topic filter, and connection trouble reported.

Callbacks run on paho's network thread. Sensor messages and commands go to the handlers the daemon gives;
anything else that arrives is counted as an unknown topic. A connection attempt that fails (refused,
unknown host, TLS verification) is counted as `connect_failed` and logged, rate-limited, with the broker
and the reason: paho itself retries silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import paho.mqtt.client as mqtt

from edgekit.runtime.client import FastMessage
from edgekit.runtime.mqtt import ClientOptions, Topics, connect_async, make_client
from edgekit.runtime.stats import Counters, RateLimiter

log = logging.getLogger(__name__)


class ErrorSink(Protocol):
    def __call__(
        self, kind: str, detail: str, stream: str | None = None, n: int = 1, publish: bool = True
    ) -> None: ...


Message = mqtt.MQTTMessage | FastMessage  # what a stream handler reads: .topic and .payload


def _literal(topic_filter: str) -> str:
    """The part of an MQTT topic filter before its first wildcard."""
    return topic_filter.split("+", 1)[0].split("#", 1)[0]


def fast_route(
    topic_filter: str, others: Sequence[str], handler: Callable[[Message], None]
) -> Callable[[str], Callable[[Message], None] | None] | None:
    """WatchedClient.fast_publish for the filter `P#` of `handler`: a topic under P gets `handler` unless
    one of the `others` filters matches it too (paho then calls both callbacks: its own dispatch decides).
    None (paho's dispatch for everything) for filters with `+`, whose matching a prefix cannot decide."""
    if "+" in topic_filter or not topic_filter.endswith("#"):
        return None
    prefix = topic_filter[:-1]
    # only filters whose topics can start with the prefix are checked per message (cmd usually cannot)
    overlap = [f for f in others if _literal(f).startswith(prefix) or prefix.startswith(_literal(f))]
    if not overlap:
        return lambda topic: handler if topic.startswith(prefix) else None

    def route(topic: str) -> Callable[[Message], None] | None:
        if not topic.startswith(prefix) or any(mqtt.topic_matches_sub(f, topic) for f in overlap):
            return None
        return handler

    return route


class Link:
    def __init__(
        self,
        opts: ClientOptions,
        topics: Topics,
        *,
        subscription: str,
        qos: int,
        status: Callable[[str, str], str],
        on_sensor: Callable[[Message], None],
        on_command: Callable[[bytes], None],
        error: ErrorSink,
        counters: Counters,
        limiter: RateLimiter,
        stream_filter: str | None = None,  # the topics on_sensor serves (default: the sensor streams)
        extra: Sequence[tuple[str, int, Callable[[mqtt.MQTTMessage], None]]] = (),  # (topic, qos, handler)
    ) -> None:
        self.opts, self.topics = opts, topics
        self.subscription, self.qos = subscription, qos
        self._status, self._error, self.counters, self.limiter = status, error, counters, limiter
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.stopping = False
        self._ever_connected = False
        self.client, self.address = make_client(opts)
        self.client.will_set(topics.status, status("offline", "connection lost"), qos=1, retain=True)
        self.client.on_connect, self.client.on_disconnect = self._on_connect, self._on_disconnect
        self.client.on_subscribe, self.client.on_connect_fail = self._on_subscribe, self._on_connect_fail
        # One callback per filter (paho matches them); on_message only sees what matches neither.
        sensors = stream_filter or topics.sensors_filter
        sensor = self._sensor(on_sensor)
        self.client.message_callback_add(topics.cmd, self._command(on_command))
        self.client.message_callback_add(sensors, lambda _c, _u, msg: sensor(msg))
        self.extra = [(topic, qos) for topic, qos, _ in extra]
        for topic, _, handler in extra:
            self.client.message_callback_add(topic, self._counted(handler))
        self.client.on_message = self._on_other
        # the stream topics skip paho's generic dispatch (runtime.client), where nothing else can match them
        self.client.fast_publish = fast_route(sensors, [topics.cmd, *(t for t, _ in self.extra)], sensor)

    @property
    def ever_connected(self) -> bool:
        return self._ever_connected

    def _sensor(self, on_sensor: Callable[[Message], None]) -> Callable[[Message], None]:
        cmd, counters = self.topics.cmd, self.counters

        def handle(msg: Message) -> None:
            if msg.topic != cmd:  # a custom layout may put cmd under the sensors filter: its own callback
                counters.messages += 1
                on_sensor(msg)

        return handle

    def _counted(self, handler: Callable[[mqtt.MQTTMessage], None]) -> Callable[..., None]:
        def callback(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            self.counters.messages += 1
            handler(msg)

        return callback

    def _command(self, on_command: Callable[[bytes], None]) -> Callable[..., None]:
        def callback(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            self.counters.messages += 1
            on_command(msg.payload)

        return callback

    def _on_other(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.counters.messages += 1
        self._error("unknown_topic", f"no stream in topic {msg.topic!r}")

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self._error("connect_refused", f"broker {self.opts.url} refused the connection: {reason}")
            return
        client.subscribe([(self.subscription, self.qos), (self.topics.cmd, 1), *self.extra])
        client.publish(self.topics.status, self._status("online", ""), qos=1, retain=True)
        if self._ever_connected:
            self.counters.reconnects += 1
        self._ever_connected = True
        self.connected.set()
        log.info(
            "connected to %s:%d, subscribed to %s", self.address.host, self.address.port, self.subscription
        )

    def _on_connect_fail(self, client: mqtt.Client, _u: object) -> None:
        exc = getattr(client, "last_connect_error", None)
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "connection failed"
        # Not published: it could only wait in the outgoing queue and arrive stale after the reconnect.
        detail = f"cannot reach broker {self.opts.url} ({reason}); retrying with backoff"
        self._error("connect_failed", detail, publish=False)

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, codes: list, _p: object) -> None:
        if failed := [str(c) for c in codes if getattr(c, "is_failure", False)]:
            self._error("connect_refused", f"broker refused the subscription: {', '.join(failed)}")
        else:
            self.subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if str(reason) == "Session taken over":  # another process connected with our client id
            log.error(
                "another client connected as %s; run one daemon per id (--client-id)", self.opts.client_id
            )
        elif not self.stopping and self.limiter.allow("disconnect")[0]:
            log.warning(
                "disconnected from the broker %s (%s); reconnecting with backoff", self.opts.url, reason
            )

    # -- used by the daemon ---------------------------------------------------------------------
    def start(self) -> None:
        connect_async(self.client, self.address, self.opts)
        self.client.loop_start()

    def publish(self, topic: str, payload: str, qos: int = 0, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def pending(self) -> int:
        # paho has no public count of QoS>0 messages awaiting PUBACK; its outgoing dict is that count.
        return len(getattr(self.client, "_out_messages", ()))

    def fault(self) -> str | None:
        """Why the network thread is gone, or None while it runs (or after a requested stop)."""
        if self.stopping or not self.client.loop_ended.is_set():
            return None
        exc = self.client.loop_error
        return f"{type(exc).__name__}: {exc}" if exc is not None else "the MQTT network loop returned"

    def stop(self) -> None:
        self.stopping = True
        self.client.disconnect()  # the session stays for session_expiry_s: a quick restart misses nothing
        self.client.loop_stop()
