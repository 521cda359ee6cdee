"""The daemon's paho client: paho-mqtt 2.x, with its per-message hot path made cheaper and a hook after
every read.

paho reads, decodes and dispatches every packet in Python; at thousands of messages per second that, not
the model, is most of a daemon's CPU. WatchedClient keeps paho's state machine (connect, sessions, QoS
flows, reconnects, TLS) and replaces only what a steady stream of messages pays for each time:
- reads: one recv() of up to RECV_CHUNK bytes serves paho's 1-byte reads of a whole burst;
- PUBLISH in: a message whose topic goes to `fast_publish` (the daemon's stream topics: no other callback
  filter can match them) is decoded with slicing and handed over as (topic, payload), without paho's
  message object, struct formats built per packet, topic-filter matching and debug-log arguments;
  anything else (properties, QoS 2, other topics, bad UTF-8) takes paho's own path;
- PUBACK in: with no on_publish callback, the in-flight message is released without building the reason
  code and properties objects nobody reads;
- in-flight bookkeeping: paho walks every in-flight message after each PUBACK looking for queued ones;
  none can exist while all stored messages are in flight;
- PUBLISH out: paho gives every message a threading.Condition for wait_for_publish() (~1.4 KB of the
  ~2.1 KB a queued QoS 1 report holds; benchmarks/overload_rss.py prints both); LeanInfo makes one only
  when somebody waits, so reports kept while disconnected or beyond the in-flight window cost ~0.7 KB.
These lean on paho's private attributes (`_in_packet`, `_out_messages`, `_inflight_messages`, ...) of
the 2.x line that pyproject pins (paho-mqtt>=2.0,<3); tests/runtime/test_client.py checks each path
against paho's own through a real broker.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt


def socket_backlog(sock: socket.socket | None) -> bool:
    """True when more bytes are already waiting on `sock` (another packet, or part of one)."""
    if sock is None:
        return False
    pending = getattr(sock, "pending", None)  # TLS: bytes decrypted into the SSL object's buffer
    if pending is not None and pending() > 0:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError, TypeError):  # closed or replaced during a reconnect: no backlog known
        return False


RECV_CHUNK = 65536  # bytes per recv() of the daemon's client (WatchedClient)


class FastMessage:
    """What a `fast_publish` handler gets: the two fields of paho's MQTTMessage the daemon reads."""

    __slots__ = ("payload", "topic")

    def __init__(self, topic: str, payload: bytes) -> None:
        self.topic, self.payload = topic, payload


_LAZY = threading.Lock()  # guards LeanInfo's lazy Condition against a waiter and the network thread


class LeanInfo(mqtt.MQTTMessageInfo):
    """paho's MQTTMessageInfo (the result of publish()) without a Condition per message: one is made
    only when somebody waits on it (wait_for_publish, is_published)."""

    __slots__ = ("_cond",)

    def __init__(self, mid: int) -> None:  # not paho's: that builds the Condition
        self.mid = mid
        self._published = False
        self.rc = mqtt.MQTT_ERR_SUCCESS
        self._iterpos = 0
        self._cond: threading.Condition | None = None

    @property  # type: ignore[override]
    def _condition(self) -> threading.Condition:  # paho's waiters take it here
        with _LAZY:
            if self._cond is None:
                self._cond = threading.Condition()
            return self._cond

    def _set_as_published(self) -> None:
        with _LAZY:  # a waiter that made its Condition before this sees _published under it, or is woken
            self._published = True
            cond = self._cond
        if cond is not None:
            with cond:
                cond.notify_all()


# MQTTMessage's fields, each set by WatchedClient.publish (test_client checks paho still has exactly these)
MESSAGE_SLOTS = frozenset(
    ("_topic", "dup", "info", "mid", "payload", "properties", "qos", "retain", "state", "timestamp")
)


class WatchedClient(mqtt.Client):
    """A paho client that remembers why its last connection attempt failed and whether its network loop
    has ended, so the daemon can say why it is not connected and exit when that thread dies.

    `after_read`, when set, runs on the network thread after every read from the socket (the packets it
    held have gone through their callbacks): the daemon scores what they brought there (runtime.handoff)
    and returns True when that published something, which is then written at once. It must not raise.

    `fast_publish(topic)`, when set, returns the handler of a received topic, or None for paho's own
    dispatch. Only a topic that no other subscription's callback could match may get one (paho would call
    every matching callback)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.last_connect_error: BaseException | None = None
        self.loop_error: BaseException | None = None
        self.loop_ended = threading.Event()
        self.after_read: Callable[[], bool] | None = None
        self.fast_publish: Callable[[str], Callable[[FastMessage], None] | None] | None = None
        # Read buffer: paho asks the socket for 1 byte (command), 1 byte per length byte, then the rest
        # of each packet, three or more recv() calls per packet; one recv() now serves a whole burst.
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object = None  # the socket _rbuf was read from (a reconnect starts afresh)
        self._rfull = False  # the last refill filled RECV_CHUNK: more may be waiting on the socket

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:
            self._rbuf, self._rpos, self._rsock, self._rfull = b"", 0, self._sock, False
        if self._rpos >= len(self._rbuf):
            if bufsize >= RECV_CHUNK:  # a large payload: straight from the socket, no copy
                return super()._sock_recv(bufsize)
            data = super()._sock_recv(RECV_CHUNK)  # BlockingIOError and EOF (b"") reach paho as before
            self._rfull = len(data) == RECV_CHUNK
            if len(data) <= bufsize:
                return data
            self._rbuf, self._rpos = data, 0
        pos = self._rpos
        out = self._rbuf[pos : pos + bufsize]
        self._rpos = pos + len(out)
        return out

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        route = self.fast_publish
        if route is None:
            return super()._handle_publish()
        header, pkt = self._in_packet["command"], self._in_packet["packet"]
        qos, n = (header & 0x06) >> 1, len(pkt)
        if qos == 2 or n < 2:
            return super()._handle_publish()
        end = 2 + ((pkt[0] << 8) | pkt[1])  # topic length, then the topic
        body = end + (2 if qos else 0)  # a packet id before the properties for QoS 1
        v5 = self._protocol == mqtt.MQTTv5
        if body + v5 > n or (v5 and pkt[body] != 0):  # truncated, or MQTT 5 properties: paho decides
            return super()._handle_publish()
        try:
            topic = bytes(pkt[2:end]).decode("utf-8")
        except UnicodeDecodeError:
            return super()._handle_publish()
        handler = route(topic)
        if handler is None:
            return super()._handle_publish()
        with self._in_callback_mutex:  # as paho holds it around its callbacks
            handler(FastMessage(topic, bytes(pkt[body + v5 :])))
        if qos and not self._manual_ack:
            return self._send_puback((pkt[end] << 8) | pkt[end + 1])
        return mqtt.MQTT_ERR_SUCCESS

    def _handle_pubackcomp(self, cmd: str) -> mqtt.MQTTErrorCode:  # type: ignore[override]
        pkt = self._in_packet["packet"]
        if cmd != "PUBACK" or len(pkt) < 2 or self.on_publish is not None:
            return super()._handle_pubackcomp(cmd)  # type: ignore[arg-type]
        mid = (pkt[0] << 8) | pkt[1]  # the reason code and properties after it go unread, as paho's do
        with self._out_message_mutex:  # what paho's _do_on_publish does, minus the callback
            msg = self._out_messages.pop(mid, None)
            if msg is None:
                return mqtt.MQTT_ERR_SUCCESS
            msg.info._set_as_published()
            if msg.qos > 0:
                self._inflight_messages -= 1
                if self._max_inflight_messages > 0:
                    return self._update_inflight()
        return mqtt.MQTT_ERR_SUCCESS

    def publish(  # type: ignore[override]
        self,
        topic: str,
        payload: bytes | None = None,
        qos: int = 0,
        retain: bool = False,
        properties: object = None,
    ) -> mqtt.MQTTMessageInfo:
        """paho's publish() for bytes payloads at QoS 0 or 1 without MQTT 5 properties, with a LeanInfo;
        anything else is paho's own. The same checks, queue limits, states and packets as paho's."""
        if type(payload) is not bytes or qos not in (0, 1) or properties is not None or not topic:
            return super().publish(topic, payload, qos, retain, properties)  # type: ignore[arg-type]
        topic_bytes = topic.encode("utf-8")
        self._raise_for_invalid_topic(topic_bytes)
        if len(payload) > 268435455:
            raise ValueError("Payload too large.")
        mid = self._mid_generate()
        info = LeanInfo(mid)
        if qos == 0:
            info.rc = self._send_publish(mid, topic_bytes, payload, 0, retain, False, info, None)
            return info
        message = mqtt.MQTTMessage.__new__(mqtt.MQTTMessage)
        message.timestamp = mqtt.time_func()
        message.state = mqtt.mqtt_ms_invalid
        message.dup = False
        message.mid = mid
        message._topic = topic_bytes
        message.payload = payload
        message.qos = 1
        message.retain = retain
        message.info = info
        message.properties = None
        with self._out_message_mutex:
            out = self._out_messages
            if (0 < self._max_queued_messages <= len(out)) or mid in out:
                info.rc = mqtt.MQTT_ERR_QUEUE_SIZE
                return info
            out[mid] = message
            if self._max_inflight_messages == 0 or self._inflight_messages < self._max_inflight_messages:
                self._inflight_messages += 1
                message.state = mqtt.mqtt_ms_wait_for_puback
                rc = self._send_publish(mid, topic_bytes, payload, 1, retain, False, info, None)
                if rc == mqtt.MQTT_ERR_NO_CONN:  # sent after the next connect, as paho does
                    self._inflight_messages -= 1
                    message.state = mqtt.mqtt_ms_publish
                info.rc = rc
            else:
                message.state = mqtt.mqtt_ms_queued
            return info

    def _update_inflight(self) -> mqtt.MQTTErrorCode:
        # Every stored message counted in flight: none is queued, so paho's walk over all of them (after
        # every PUBACK, O(in flight)) would find nothing to send.
        if len(self._out_messages) <= self._inflight_messages:
            return mqtt.MQTT_ERR_SUCCESS
        return super()._update_inflight()

    def buffered(self) -> int:
        """Bytes read from the socket that paho has not taken yet."""
        return len(self._rbuf) - self._rpos if self._rsock is self._sock else 0

    def backlog(self) -> bool:
        """Whether more input is already waiting: buffered, decrypted by TLS, or on the socket. The
        socket is only asked (a select) when the last refill filled the buffer: a shorter read emptied it
        an instant ago, and whatever arrived since wakes paho's select as usual."""
        if self.buffered():
            return True
        pending = getattr(self._sock, "pending", None)  # TLS: bytes decrypted into the SSL object
        if pending is not None and pending() > 0:
            return True
        return self._rfull and socket_backlog(self._sock)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # paho's select() cannot see our buffer: take every packet it holds before returning there
        while rc == mqtt.MQTT_ERR_SUCCESS and self.buffered() and self._sock is not None:
            rc = super().loop_read(max_packets)
        if self.after_read is None:
            return rc
        # paho writes a wake-up byte to its socketpair for every publish, so that select() returns for a
        # packet queued by another thread. This thread writes its own packets right below: no byte (and no
        # extra select) for them. A packet another thread queues meanwhile is written by the same
        # loop_write, or (after the restore) wakes the loop as usual.
        wake, self._sockpairW = self._sockpairW, None
        try:
            wrote = self.after_read()
        finally:
            self._sockpairW = wake
        if wrote and self._sock is not None:
            self.loop_write()
        return rc

    def reconnect(self) -> mqtt.MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:  # refused, unknown host, TLS verification: paho retries, we report
            self.last_connect_error = exc
            raise

    def loop_forever(self, timeout: float = 1.0, retry_first_connection: bool = False) -> mqtt.MQTTErrorCode:
        # loop_start() runs this in paho's network thread; an exception here ends that thread for good.
        try:
            return super().loop_forever(timeout, retry_first_connection)
        except BaseException as exc:
            self.loop_error = exc
            raise
        finally:
            self.loop_ended.set()
