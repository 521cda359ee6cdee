"""MQTT plumbing for the daemon: broker URLs, topic layout, and a paho client set up for low latency.

The client sets TCP_NODELAY on every socket it opens (Nagle's algorithm holds small MQTT packets back
for tens of milliseconds), reconnects with capped exponential backoff, and keeps QoS 1 publishes made
while disconnected in its outgoing queue (bounded by `max_queued`) to send them after reconnecting.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import ssl
import unicodedata
import zlib
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgekit.errors import ConfigError
from edgekit.profiles import MQTTTopics
from edgekit.runtime import fastprops
from edgekit.runtime.client import WatchedClient

log = logging.getLogger(__name__)

_SCHEMES = {"mqtt": (1883, False), "tcp": (1883, False), "mqtts": (8883, True), "ssl": (8883, True)}


@dataclass
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


def parse_broker_url(url: str) -> BrokerAddress:
    """`mqtt://[user[:pass]@]host[:port]` (also tcp://, mqtts://, ssl://); a bare `host[:port]` means mqtt://."""
    if "://" not in url:
        url = "mqtt://" + url
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigError(f"broker URL {url!r}: scheme must be one of {', '.join(_SCHEMES)}")
    default_port, tls = _SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ConfigError(f"broker URL {url!r}: invalid port") from None
    if not parts.hostname:
        raise ConfigError(f"broker URL {url!r}: no host")
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def check_topic_level(value: str, what: str) -> str:
    # Control characters are legal UTF-8 but MQTT says topics SHOULD NOT carry them, and mosquitto drops
    # the connection over them: a daemon would reconnect forever instead of failing once at start.
    if not value or any(c in value for c in "/+#") or any(unicodedata.category(c) == "Cc" for c in value):
        raise ConfigError(
            f"{what} {value!r} must be a non-empty MQTT topic level without / + # or control characters"
        )
    if len(value.encode("utf-8")) > 1024:
        raise ConfigError(f"{what} is {len(value.encode('utf-8'))} bytes long; at most 1024 are allowed")
    return value


class StreamTopics:
    """One per-stream topic template (`{stream}` one whole level) resolved for a device: filter, topic, stream."""

    def __init__(self, template: str, device: str, what: str) -> None:
        if "{stream}" not in template:
            raise ConfigError(f"mqtt.{what} topic {template!r} must contain {{stream}}")
        self.template = template.replace("{device}", device)
        self._prefix, self._suffix = self.template.split("{stream}", 1)
        # A trailing {stream} is subscribed as '#' so that deeper topics arrive and are counted as
        # unknown instead of vanishing silently; '+' elsewhere.
        self.filter = self._prefix + "#" if not self._suffix else self.template.replace("{stream}", "+")

    def topic(self, stream: str) -> str:
        return self.template.replace("{stream}", stream)

    def stream_of(self, topic: str) -> str | None:
        """Stream name of one of these topics, or None for any other topic."""
        p, s = self._prefix, self._suffix
        if not topic.startswith(p) or not topic.endswith(s) or len(topic) <= len(p) + len(s):
            return None
        stream = topic[len(p) : len(topic) - len(s)] if s else topic[len(p) :]
        return None if "/" in stream else stream


class Topics:
    """The profile's topic templates resolved for one device; maps sensor (and text) topics back to streams."""

    def __init__(self, templates: MQTTTopics, device: str) -> None:
        check_topic_level(device, "device id")
        fill = {"device": device}
        self.anomalies = templates.anomalies.format(**fill)
        self.scores = templates.scores.format(**fill)
        self.classifications = templates.classifications.format(**fill)
        self.status = templates.status.format(**fill)
        self.errors = templates.errors.format(**fill)
        self.heartbeat = templates.heartbeat.format(**fill)
        self.cmd = templates.cmd.format(**fill)
        self.alerts = templates.alerts.format(**fill)
        self.sensors = StreamTopics(templates.sensors, device, "sensors")
        self.text = StreamTopics(templates.text, device, "text")
        self.sensors_filter = self.sensors.filter

    def for_worker(self, k: int) -> Topics:
        """Worker k of `serve --workers`: its own status and heartbeat topics, every other topic shared."""
        t = copy.copy(self)
        t.status, t.heartbeat = worker_topic(self.status, k), worker_topic(self.heartbeat, k)
        return t

    def sensor_topic(self, stream: str) -> str:
        return self.sensors.topic(stream)

    def stream_of(self, topic: str) -> str | None:
        """Stream name of a sensor topic, or None for any other topic."""
        return self.sensors.stream_of(topic)


def worker_topic(topic: str, k: int | str) -> str:
    """The per-worker topic under a device topic (`k` may be `+`, the filter of all workers)."""
    return f"{topic}/workers/{k}"


def parse_partition(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        k, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ConfigError(f"--partition {text!r}: expected K/N, e.g. 0/2") from None
    if not 0 <= k < n:
        raise ConfigError(f"--partition {text!r}: need 0 <= K < N")
    return k, n


def owns_stream(stream: str, partition: tuple[int, int]) -> bool:
    """Stable across processes and machines (unlike hash()), so every daemon agrees on the owner."""
    return zlib.crc32(stream.encode()) % partition[1] == partition[0]


def default_client_id(device: str, partition: tuple[int, int] | None, share_group: str | None) -> str:
    """Stable per device (and partition), so a restarted daemon resumes its broker session; members of a
    share group are interchangeable and get a unique id each."""
    if share_group:
        return f"edgekit-{device}-{share_group}-{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
    if partition:
        return f"edgekit-{device}-p{partition[0]}of{partition[1]}"
    return f"edgekit-{device}"


def one_off_session(opts: ClientOptions) -> ClientOptions:
    """No session kept after the connection ends: for client ids unique to one process (a share-group
    member). Such a session is never resumed, and while the broker kept it, it went on taking its share
    of the group's messages, lost with it (a SIGKILLed worker swallowed half the readings)."""
    return replace(opts, clean_start=True, session_expiry_s=0)


@dataclass
class ClientOptions:
    """How to reach the broker: every client the daemon makes is built from one of these (mqtt-io style)."""

    url: str = "mqtt://127.0.0.1:1883"
    client_id: str | None = None  # None: the daemon picks a stable one (default_client_id)
    username: str | None = None
    password: str | None = None
    ca: str | None = None
    cert: str | None = None
    key_file: str | None = None
    keepalive_s: int | None = None  # None: the profile's daemon.keepalive_s (30 s without a profile)
    protocol: int = 5  # 5 or 311
    nodelay: bool = True
    # reports kept while disconnected; beyond this they are counted as lost. A queued report holds ~0.7 KB
    # (runtime.client.LeanInfo; paho's own ~2 KB), so 40,000 keep a worker within ~30 MB of its idle RSS
    max_queued: int = 40_000
    # QoS 1 reports awaiting PUBACK: 100 capped reports at 100 per broker round trip, so a broker slowed
    # by a busy CPU (50 ms) would hold the daemon at 2,000 reports/s while its own CPU idles
    max_inflight: int = 1000
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    # A persistent session (clean start off, stable client id): across a network drop, a broker restart
    # (mosquitto with persistence) or a daemon restart within session_expiry_s, the broker keeps our
    # subscriptions and queues QoS 1 readings for us. mosquitto 2.0 only persists MQTT 5 sessions that
    # were opened with clean start off, so it is off from the first connect.
    clean_start: bool = False
    session_expiry_s: int = 300
    # MQTT 5 Maximum Packet Size: the broker drops larger messages instead of sending them, so a huge
    # payload never reaches this process's memory (paho reads a whole packet before any check can run).
    max_packet_bytes: int | None = None
    fast_properties: bool = True  # runtime.fastprops: paho's MQTT 5 properties without per-packet tables


def set_nodelay(sock: object) -> bool:
    """Disable Nagle's algorithm on a TCP socket (plain or TLS); False when the socket is not TCP."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
        return True
    except (OSError, AttributeError):
        return False


def make_client(opts: ClientOptions) -> tuple[WatchedClient, BrokerAddress]:
    """A paho client (callback API v2) configured from `opts`; not yet connected."""
    addr = parse_broker_url(opts.url)
    protocol = mqtt.MQTTv5 if opts.protocol == 5 else mqtt.MQTTv311
    if protocol == mqtt.MQTTv5 and opts.fast_properties:
        fastprops.install()  # ~20 µs less per received message and per acknowledged report
    kwargs = {} if protocol == mqtt.MQTTv5 else {"clean_session": opts.clean_start}
    client = WatchedClient(
        CallbackAPIVersion.VERSION2, client_id=opts.client_id or "", protocol=protocol, **kwargs
    )
    username = opts.username or addr.username
    password = opts.password or addr.password or os.environ.get("EDGEKIT_MQTT_PASSWORD")
    if username:
        client.username_pw_set(username, password)
    if addr.tls or opts.ca or opts.cert:
        try:
            client.tls_set(
                ca_certs=opts.ca,
                certfile=opts.cert,
                keyfile=opts.key_file,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"TLS setup failed ({exc}); check --ca/--cert/--key-file") from None
    client.max_queued_messages_set(opts.max_queued)
    client.max_inflight_messages_set(opts.max_inflight)
    client.reconnect_delay_set(opts.reconnect_min_s, opts.reconnect_max_s)  # type: ignore[arg-type]
    if opts.nodelay:

        def on_socket_open(_client: mqtt.Client, _userdata: object, sock: object) -> None:
            if not set_nodelay(sock):
                log.debug("could not set TCP_NODELAY on %r", sock)

        client.on_socket_open = on_socket_open
    return client, addr


def connect_async(client: mqtt.Client, addr: BrokerAddress, opts: ClientOptions) -> None:
    """Start connecting in the background (the network loop retries with backoff until it succeeds)."""
    keepalive = opts.keepalive_s or 30
    if opts.protocol != 5:
        client.connect_async(addr.host, addr.port, keepalive)
        return
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = opts.session_expiry_s
    if opts.max_packet_bytes:
        props.MaximumPacketSize = opts.max_packet_bytes
    client.connect_async(addr.host, addr.port, keepalive, clean_start=opts.clean_start, properties=props)
