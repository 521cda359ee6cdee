"""The on-device daemon: MQTT sensor readings in, anomaly reports out.

Two threads do the work. paho's network thread only triages each message (topic, size, partition) and
puts it on a bounded Inbox; the scoring thread (the caller of run()) hands messages to the Scorer, which
scores every ready window of every stream in one onnxruntime call and publishes reports through this
class. Nothing a publisher sends can raise out of either thread: every refusal is counted, logged at
most once per kind per interval, and reported on the errors topic.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from edgekit.config import to_dict
from edgekit.errors import ConfigError
from edgekit.profiles import TargetProfile, load_profile
from edgekit.runtime.engine import Engine
from edgekit.runtime.inbox import Inbox
from edgekit.runtime.mqtt import (
    ClientOptions,
    Topics,
    check_topic_level,
    connect_async,
    default_client_id,
    make_client,
    owns_stream,
    parse_partition,
)
from edgekit.runtime.reload import Reloader, load_engine, same_bundle_path
from edgekit.runtime.scoring import Scorer
from edgekit.runtime.service import Notifier
from edgekit.runtime.stats import (
    Counters,
    LatencyHistogram,
    RateLimiter,
    prometheus_text,
    start_metrics_server,
)

log = logging.getLogger(__name__)


@dataclass
class DaemonConfig:
    bundle: str
    broker: str = "mqtt://127.0.0.1:1883"
    device: str = "edge-1"
    profile: str | None = None
    pubkey: str | None = None
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    ca: str | None = None
    cert: str | None = None
    key_file: str | None = None
    protocol: int = 5
    tcp_nodelay: bool = True  # off only to measure what Nagle's algorithm costs (benchmarks)
    share_group: str | None = None  # MQTT v5 shared subscription; only for window 1 / hop 1 models
    partition: str | None = None  # "K/N": own the streams with crc32(name) % N == K
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    threshold: float | None = None  # overrides the bundle's; -inf reports every window (benchmarks)
    publish_scores: bool | None = None  # overrides profile.daemon.publish_scores
    gap_factor: float = 10.0  # reset a stream after a gap > gap_factor x its median period (0: never)
    max_streams: int = 1024
    max_queued_reports: int = 100_000
    heartbeat_s: float | None = None  # overrides profile.daemon.heartbeat_s
    drain_timeout_s: float = 5.0
    error_interval_s: float = 10.0
    handle_signals: bool = True


class Daemon:
    def __init__(self, cfg: DaemonConfig, profile: TargetProfile | None = None) -> None:
        self.cfg = cfg
        self.profile = profile or (
            load_profile(cfg.profile) if cfg.profile else TargetProfile(name="default")
        )
        d = self.profile.daemon
        self.partition = parse_partition(cfg.partition)
        if cfg.share_group and self.partition:
            raise ConfigError("use either --share-group or --partition, not both")
        if cfg.share_group:
            check_topic_level(cfg.share_group, "share group")
        self.topics = Topics(self.profile.mqtt, cfg.device)
        self.counters, self.latency = Counters(), LatencyHistogram()
        self.limiter = RateLimiter(cfg.error_interval_s)
        self.scorer = Scorer(
            self._checked(load_engine(cfg.bundle, cfg.pubkey, self.profile)),
            self,
            self.counters,
            self.latency,
            device=cfg.device,
            max_batch=d.max_batch,
            gap_factor=cfg.gap_factor,
            max_streams=cfg.max_streams,
            threshold=cfg.threshold,
            publish_scores=d.publish_scores if cfg.publish_scores is None else cfg.publish_scores,
        )
        self.inbox: Inbox[tuple[str, bytes, float]] = Inbox(d.queue_size, d.overload)
        self.reloader = Reloader(cfg.pubkey, self.profile)
        self.notifier = Notifier()
        self.heartbeat_s = cfg.heartbeat_s or d.heartbeat_s
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.last_reload_error: str | None = None
        self._commands: deque[dict] = deque(maxlen=16)
        self._reload_requested: str | None = None
        self._stop = False
        self._ever_connected = False
        self._started = time.monotonic()
        self._next_heartbeat = self._started + self.heartbeat_s
        client_id = cfg.client_id or default_client_id(cfg.device, self.partition, cfg.share_group)
        self.copts = ClientOptions(
            url=cfg.broker,
            client_id=client_id,
            username=cfg.username,
            password=cfg.password,
            ca=cfg.ca,
            cert=cfg.cert,
            key_file=cfg.key_file,
            keepalive_s=d.keepalive_s,
            protocol=cfg.protocol,
            nodelay=cfg.tcp_nodelay,
            max_queued=cfg.max_queued_reports,
        )
        self.client, self.address = make_client(self.copts)
        self.client.will_set(
            self.topics.status, self._status("offline", "connection lost"), qos=1, retain=True
        )
        self.client.on_connect, self.client.on_disconnect = self._on_connect, self._on_disconnect
        self.client.on_message, self.client.on_subscribe = self._on_message, self._on_subscribe

    @property
    def engine(self) -> Engine:
        return self.scorer.engine

    def _checked(self, engine: Engine) -> Engine:
        if self.cfg.share_group and (engine.window, engine.hop) != (1, 1):
            raise ConfigError(
                "--share-group splits a stream's readings across daemons, which only works for window-1/hop-1 "
                f"models (this one: window {engine.window}, hop {engine.hop}); use --partition K/N instead"
            )
        return engine

    def _status(self, state: str, reason: str = "") -> str:
        m = self.engine.manifest
        body = {"state": state, "reason": reason, "device": self.cfg.device, "model_id": m.model_id}
        body.update(model_version=m.model_version, pid=os.getpid(), ts=time.time())
        return json.dumps(body)

    # -- network thread ---------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self.error("connect_refused", f"broker refused the connection: {reason}")
            return
        sub = self.topics.sensors_filter
        if self.cfg.share_group:
            sub = f"$share/{self.cfg.share_group}/{sub}"
        client.subscribe([(sub, self.profile.daemon.qos), (self.topics.cmd, 1)])
        client.publish(self.topics.status, self._status("online"), qos=1, retain=True)
        if self._ever_connected:
            self.counters.reconnects += 1
        self._ever_connected = True
        self.connected.set()
        log.info("connected to %s:%d, subscribed to %s", self.address.host, self.address.port, sub)

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, codes: list, _p: object) -> None:
        if failed := [str(c) for c in codes if getattr(c, "is_failure", False)]:
            self.error("connect_refused", f"broker refused the subscription: {', '.join(failed)}")
        else:
            self.subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if str(reason) == "Session taken over":  # another process connected with our client id
            log.error(
                "another client connected as %s; run one daemon per id (--client-id)", self.copts.client_id
            )
        elif not self._stop and self.limiter.allow("disconnect")[0]:
            log.warning("disconnected from the broker (%s); reconnecting with backoff", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        recv = time.perf_counter()
        try:
            self.counters.messages += 1
            topic = msg.topic
            stream = self.topics.stream_of(topic)
            max_bytes = self.profile.daemon.max_payload_bytes
            if stream is None:
                if topic == self.topics.cmd:
                    self._on_command(msg.payload)
                else:
                    self.error("unknown_topic", f"no stream in topic {topic!r}")
            elif self.partition and not owns_stream(stream, self.partition):
                self.counters.foreign += 1
            elif len(msg.payload) > max_bytes:
                self.error("oversized", f"{len(msg.payload)} bytes > max_payload_bytes {max_bytes}", stream)
            elif not self.inbox.put((stream, msg.payload, recv)):
                self.error("dropped", f"input queue full ({self.inbox.maxsize}, {self.inbox.policy})", stream)
        except Exception as exc:  # paho would end its network thread on an exception
            log.exception("unexpected error handling a message")
            self.error("internal_error", f"{type(exc).__name__}: {exc}")

    def _on_command(self, payload: bytes) -> None:
        try:
            cmd = json.loads(payload)
            if not isinstance(cmd, dict) or cmd.get("cmd") not in ("reload", "heartbeat"):
                raise ValueError('expected {"cmd": "reload", "bundle": PATH} or {"cmd": "heartbeat"}')
            if not isinstance(cmd.get("bundle", ""), str):
                raise ValueError("bundle must be a path string")
        except (ValueError, UnicodeDecodeError) as exc:
            self.error("bad_command", str(exc))
            return
        self._commands.append(cmd)

    # -- Sink of the scorer (scoring thread); error() is called from both threads ------------------
    def report(self, payload: str, anomaly: bool, stream: str) -> None:
        if self.scorer.publish_scores:
            self.client.publish(self.topics.scores, payload, qos=0)
        if anomaly:
            info = self.client.publish(self.topics.anomalies, payload, qos=self.profile.daemon.qos)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self.error("report_lost", "outgoing queue full while disconnected", stream)
            else:
                self.counters.reports += 1

    def error(self, kind: str, detail: str, stream: str | None = None, n: int = 1) -> None:
        # Each kind is counted from one thread (internal_error: rarely both), so += loses nothing.
        errs = self.counters.errors
        errs[kind] = errs.get(kind, 0) + n
        ok, suppressed = self.limiter.allow(kind)
        if not ok:
            return
        more = f" (+{suppressed} similar suppressed)" if suppressed else ""
        log.warning("%s%s: %s%s", kind, f" [{stream}]" if stream else "", detail, more)
        body = {
            "kind": kind,
            "stream": stream,
            "detail": detail,
            "count": errs[kind],
            "suppressed": suppressed,
        }
        body["ts"] = time.time()
        self.client.publish(self.topics.errors, json.dumps(body), qos=1)

    # -- scoring thread housekeeping: commands, reload, heartbeat, watchdog ------------------------
    def _housekeeping(self, now: float) -> None:
        while self._commands:
            cmd = self._commands.popleft()
            path = cmd.get("bundle")
            if cmd["cmd"] == "heartbeat":
                self._next_heartbeat = 0.0
            elif self.cfg.pubkey is None and path and not same_bundle_path(path, self.cfg.bundle):
                self.error("reload_failed", "remote reload of another path needs --pubkey (signed bundles)")
            else:
                self._reload_requested = path or self.cfg.bundle
        if self._reload_requested and self.reloader.start(self._reload_requested):
            log.info("loading bundle %s", self._reload_requested)
            self._reload_requested = None
        if (outcome := self.reloader.take()) is not None:
            self._swap(outcome.engine, outcome.path, outcome.error)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_s
            self.client.publish(self.topics.heartbeat, json.dumps(self.snapshot()), qos=0)
        self.notifier.watchdog(now)

    def _swap(self, engine: Engine | None, path: str, error: str | None) -> None:
        if engine is not None:
            try:
                self._checked(engine)
            except ConfigError as exc:
                engine, error = None, str(exc)
        if engine is None:
            self.last_reload_error = error
            self.error("reload_failed", f"kept model {self.engine.manifest.model_version}: {error}")
            return
        if self.scorer.swap(engine):
            log.warning("the new model's window or channels differ: stream buffers were reset")
        self.last_reload_error = None
        self.counters.reloads += 1
        self.client.publish(self.topics.status, self._status("online", "reloaded"), qos=1, retain=True)
        log.info(
            "now scoring with %s %s from %s", engine.manifest.model_id, engine.manifest.model_version, path
        )

    def snapshot(self) -> dict:
        """Heartbeat body: counters, latency since start, model, queue and connection state."""
        m = self.engine.manifest
        lat = {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in self.latency.summary().items()
        }
        return {
            "device": self.cfg.device,
            "ts": time.time(),
            "uptime_s": round(time.monotonic() - self._started, 3),
            "model_id": m.model_id,
            "model_version": m.model_version,
            "bundle": str(self.engine.bundle_dir),
            "threshold": self.scorer.threshold,
            "connected": self.connected.is_set(),
            "counters": to_dict(self.counters),
            "latency_ms": lat,
            "queue_depth": len(self.inbox),
            "streams": len(self.scorer.streams.streams),
            "unacked": self.pending_publishes(),
            "last_reload_error": self.last_reload_error,
        }

    def pending_publishes(self) -> int:
        # paho has no public count of QoS>0 messages awaiting PUBACK; its outgoing dict is that count.
        return len(getattr(self.client, "_out_messages", ()))

    # -- lifecycle --------------------------------------------------------------------------------
    def request_reload(self, path: str | None = None) -> None:
        """Load `path` (default: the --bundle path, re-resolved) and swap it in between windows."""
        self._reload_requested = path or self.cfg.bundle

    def stop(self) -> None:
        """Ask run() to finish (safe from signal handlers and other threads)."""
        self._stop = True

    def _install_signals(self) -> None:
        if not self.cfg.handle_signals or threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())

    def run(self) -> int:
        """Serve until stop() or SIGTERM/SIGINT; returns the exit code (0 after a clean stop)."""
        self._install_signals()
        metrics = None
        if self.cfg.metrics_port is not None:
            render = lambda: prometheus_text(self.snapshot(), self.cfg.device, self.latency)  # noqa: E731
            metrics = start_metrics_server(self.cfg.metrics_host, self.cfg.metrics_port, render)
        connect_async(self.client, self.address, self.copts)
        self.client.loop_start()
        e = self.engine
        self.notifier.ready(f"scoring with {e.manifest.model_id} {e.manifest.model_version}")
        log.info(
            "serving %s (window %d, hop %d) as device %s",
            e.manifest.model_id,
            e.window,
            e.hop,
            self.cfg.device,
        )
        try:
            while not self._stop:
                try:
                    for item in self.inbox.get_many(1024, 0.05):
                        self.scorer.handle(*item)
                    self.scorer.flush()  # one model call for every window made ready by this drain
                    self._housekeeping(time.monotonic())
                except Exception as exc:  # a bug hit by one odd message must not end months of service
                    log.exception("unexpected error in the scoring loop; continuing")
                    self.error("internal_error", f"{type(exc).__name__}: {exc}")
                    self.scorer.batch.clear()
        finally:
            self._shutdown()
            if metrics is not None:
                metrics.shutdown()
        return 0

    def _shutdown(self) -> None:
        self.notifier.stopping()
        for item in self.inbox.get_many(len(self.inbox), 0):  # finish what was already received
            self.scorer.handle(*item)
        self.scorer.flush()
        self.client.publish(self.topics.status, self._status("offline", "stopped"), qos=1, retain=True)
        deadline = time.monotonic() + self.cfg.drain_timeout_s
        while self.pending_publishes() and time.monotonic() < deadline:
            time.sleep(0.01)
        if n := self.pending_publishes():
            log.warning("exiting with %d report(s) not acknowledged by the broker", n)
        self.client.disconnect()  # the session stays for session_expiry_s: a quick restart misses nothing
        self.client.loop_stop()
        log.info("stopped: %s", json.dumps(to_dict(self.counters)))


def serve(cfg: DaemonConfig) -> int:
    """Run the daemon until SIGTERM/SIGINT; the `edgekit serve` command."""
    return Daemon(cfg).run()
