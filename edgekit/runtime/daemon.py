"""The on-device daemon: MQTT sensor readings in, anomaly reports out.

Two threads do the work. paho's network thread (runtime.link) triages each message (topic, size,
partition) and queues it on a bounded Inbox; after each read from the socket (runtime.mqtt's
WatchedClient.after_read) runtime.handoff has that same thread score what it read, in one batch, and
write the reports. Only under overload (a burst beyond one batch, or the scoring thread busy) does the
scoring thread (the caller of run()) take the queued messages, while the network thread goes on reading.
Either way the Scorer scores every ready window of every stream in one onnxruntime call and publishes
reports through runtime.sink. Nothing a publisher sends can raise out of either thread: every refusal
is counted, logged at most once per kind per interval, and reported on the errors topic. If a thread dies
anyway (a bug), run() returns EXIT_THREAD_DIED so that systemd restarts the service.

This module wires the pieces: runtime.link (the MQTT connection), runtime.commands (command topic and
reload policy), runtime.heartbeat (status and heartbeat bodies), runtime.scorers (the scorer of a bundle,
with its cascade and drift monitor; runtime.scoring is the hot path), runtime.sink (reports and errors out).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field, replace

from edgekit.config import to_dict
from edgekit.errors import ConfigError, EdgekitError
from edgekit.profiles import TargetProfile, load_profile
from edgekit.runtime import codec
from edgekit.runtime.commands import CommandQueue, ReloadPolicy, check_share_group
from edgekit.runtime.engine import Engine
from edgekit.runtime.escalations import DeviceCascade
from edgekit.runtime.handoff import Handoff
from edgekit.runtime.health import Health, write_health
from edgekit.runtime.heartbeat import HeartbeatClock, LinkState, QueueState, snapshot, status_body
from edgekit.runtime.inbox import Inbox
from edgekit.runtime.link import Link, Message
from edgekit.runtime.mqtt import (
    ClientOptions,
    Topics,
    check_topic_level,
    default_client_id,
    one_off_session,
    owns_stream,
    parse_partition,
)
from edgekit.runtime.reload import Reloader, load_engine
from edgekit.runtime.reports import report_qos
from edgekit.runtime.scorers import ScorerFactory
from edgekit.runtime.service import Notifier
from edgekit.runtime.sink import DaemonSink
from edgekit.runtime.stats import (
    Counters,
    LatencyHistogram,
    RateLimiter,
    prometheus_text,
    start_metrics_server,
)
from edgekit.runtime.text import TextEngine

log = logging.getLogger(__name__)

# Room for the topic (up to 64 KiB), the fixed header and properties around a max_payload_bytes payload,
# so that every payload the daemon could still count as `oversized` is delivered.
PACKET_HEADROOM = 65536 + 1024
# drift observations of a slow stream wait at most this long before housekeeping takes them in
DRIFT_MAX_AGE_S = 1.0
EXIT_THREAD_DIED = 70  # EX_SOFTWARE (sysexits.h): a daemon thread died; systemd's Restart= brings it back


@dataclass
class DaemonConfig:
    bundle: str
    client: ClientOptions = field(default_factory=ClientOptions)  # broker URL, TLS, credentials, id...
    device: str = "edge-1"
    profile: str | None = None
    pubkey: str | None = None
    allow_downgrade: bool = False  # hot reload may load an older version of the running model id
    share_group: str | None = None  # MQTT v5 shared subscription; only for window 1 / hop 1 models
    partition: str | None = None  # "K/N": own the streams with crc32(name) % N == K
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    threshold: float | None = None  # overrides the bundle's; -inf reports every window (benchmarks)
    publish_scores: bool | None = None  # overrides profile.daemon.publish_scores
    gap_factor: float = 10.0  # reset a stream after a gap > gap_factor x its median period (0: never)
    max_streams: int = 1024
    heartbeat_s: float | None = None  # overrides profile.daemon.heartbeat_s
    drain_timeout_s: float = 5.0
    error_interval_s: float = 10.0
    handle_signals: bool = True
    health_file: str | None = None  # rewritten after the first load and every reload (runtime.health)
    cascade: str | None = None  # bundle|off|local|remote: overrides profile.daemon.cascade (runtime.cascade)
    report_qos: int | None = None  # overrides profile.daemon.report_qos
    reports: str | None = None  # overrides profile.daemon.reports ("each" or "batch")
    worker: int | None = None  # index under `serve --workers` (runtime.workers); None: a lone daemon
    inline_scoring: bool | None = None  # overrides profile.daemon.inline_scoring (runtime.handoff)


class Daemon:
    def __init__(self, cfg: DaemonConfig, profile: TargetProfile | None = None) -> None:
        self.cfg = cfg
        self.profile = profile or (
            load_profile(cfg.profile) if cfg.profile else TargetProfile(name="default")
        )
        d = self.profile.daemon
        if cfg.pubkey is None and d.require_pubkey:
            raise ConfigError(f"profile {self.profile.name!r} sets daemon.require_pubkey: pass --pubkey KEY")
        self.partition = parse_partition(cfg.partition)
        if cfg.share_group and self.partition:
            raise ConfigError("use either --share-group or --partition, not both")
        if cfg.share_group:
            check_topic_level(cfg.share_group, "share group")
        self.topics = Topics(self.profile.mqtt, cfg.device)
        if cfg.worker is not None:  # serve --workers: the supervisor has the device's status topic
            self.topics = self.topics.for_worker(cfg.worker)
        self.counters, self.latency = Counters(), LatencyHistogram()
        self.limiter = RateLimiter(cfg.error_interval_s)
        self.sink = DaemonSink(
            self.topics, self.counters, self.limiter, d.qos, lambda: self.scorer.publish_scores
        )
        self.error = self.sink.error
        self.verified = cfg.pubkey is not None
        engine = check_share_group(load_engine(cfg.bundle, cfg.pubkey, self.profile), cfg.share_group)
        self.cascade = DeviceCascade(
            cfg.cascade or d.cascade,
            self.profile,
            cfg.device,
            self.topics,
            lambda topic, body, qos: self.client.publish(topic, body, qos=qos),
            self.error,
            lambda: self.scorer.publish_scores,
        )
        self.scorers = ScorerFactory(
            self.profile,
            self.sink,
            self.counters,
            self.latency,
            self.cascade,
            lambda body: self.client.publish(self.topics.alerts, body, qos=1),
            device=cfg.device,
            gap_factor=cfg.gap_factor,
            max_streams=cfg.max_streams,
            threshold=cfg.threshold,
            publish_scores=cfg.publish_scores,
        )
        self.scorer = self.scorers.build(engine, self.cascade.teacher(engine))
        # text bundle: text topics in, classifications out
        self.streams = self.topics.text if isinstance(engine, TextEngine) else self.topics.sensors
        self.inbox: Inbox[tuple[str, bytes, float]] = Inbox(d.queue_size, d.overload, d.queue_bytes)
        self.handoff = Handoff(
            self.inbox,
            self._score,
            lambda: self.client.backlog(),
            self.counters,
            inline=d.inline_scoring if cfg.inline_scoring is None else cfg.inline_scoring,
            batch=d.max_batch,
        )
        self.policy = ReloadPolicy(cfg.bundle, cfg.pubkey, cfg.share_group, cfg.allow_downgrade)
        self.reloader = Reloader(cfg.pubkey, self.profile, self.cascade.setting)
        self.commands = CommandQueue(self.error)
        self.notifier = Notifier()
        self.heartbeat = HeartbeatClock(cfg.heartbeat_s or d.heartbeat_s, time.monotonic())
        self.last_reload_error: str | None = None
        self._reload_requested: str | None = None
        self._stop = False
        self._started = time.monotonic()
        sub = self.streams.filter
        self.copts = replace(
            cfg.client,
            client_id=cfg.client.client_id or default_client_id(cfg.device, self.partition, cfg.share_group),
            keepalive_s=cfg.client.keepalive_s or d.keepalive_s,
            max_packet_bytes=cfg.client.max_packet_bytes or d.max_payload_bytes + PACKET_HEADROOM,
        )
        if cfg.share_group and not cfg.client.client_id:
            self.copts = one_off_session(self.copts)
        self.link = Link(
            self.copts,
            self.topics,
            subscription=f"$share/{cfg.share_group}/{sub}" if cfg.share_group else sub,
            qos=d.qos,
            status=self._status,
            on_sensor=self._on_sensor,
            on_command=self.commands.receive,
            error=self.error,
            counters=self.counters,
            limiter=self.limiter,
            stream_filter=sub,
            extra=[self.cascade.subscription],
        )
        self.client, self.connected, self.subscribed = (
            self.link.client,
            self.link.connected,
            self.link.subscribed,
        )
        self.client.after_read = self._after_read
        self.report_qos = report_qos(cfg.report_qos, d)
        self.reports = self.sink.attach(self.client, self.report_qos, cfg.reports or d.reports)

    @property
    def engine(self) -> Engine | TextEngine:
        return self.scorer.engine

    def _status(self, state: str, reason: str = "") -> str:
        return status_body(state, reason, self.cfg.device, self.engine, self.verified)

    # -- network thread ---------------------------------------------------------------------------
    def _on_sensor(self, msg: Message) -> None:
        recv = time.perf_counter()
        try:
            topic, payload = msg.topic, msg.payload
            stream = self.streams.stream_of(topic)
            max_bytes = self.profile.daemon.max_payload_bytes
            if stream is None:
                self.error("unknown_topic", f"no stream in topic {topic!r}")
            elif self.partition and not owns_stream(stream, self.partition):
                self.counters.foreign += 1
            elif len(payload) > max_bytes:  # refused before it takes queue memory
                self.error("oversized", f"{len(payload)} bytes > max_payload_bytes {max_bytes}", stream)
            elif n := self.handoff.offer((stream, payload, recv), len(payload)):
                box = self.inbox
                why = f"input queue full ({box.maxsize} messages / {box.max_bytes} bytes, {box.policy})"
                self.error("dropped", why, stream, n)
        except Exception as exc:  # paho would end its network thread on an exception
            log.exception("unexpected error handling a message")
            self.error("internal_error", f"{type(exc).__name__}: {exc}")

    def _after_read(self) -> bool:
        try:
            return self.handoff.after_read()
        except Exception as exc:  # paho would end its network thread on an exception
            log.exception("unexpected error after a read")
            self.error("internal_error", f"{type(exc).__name__}: {exc}")
            return True

    # -- either thread, under the hand-off lock: score messages --------------------------------------
    def _score(self, items: list[tuple[str, bytes, float]]) -> None:
        try:
            for item in items:
                self.scorer.handle(*item)
            self.scorer.flush()  # one model call for every window made ready by these messages
        except Exception as exc:  # a bug hit by one odd message must not end months of service
            log.exception("unexpected error while scoring; continuing")
            self.error("internal_error", f"{type(exc).__name__}: {exc}")
            self.scorer.clear()

    # -- scoring thread housekeeping: commands, reload, heartbeat, watchdog ------------------------
    def _housekeeping(self, now: float) -> None:
        for cmd in self.commands.take():
            if cmd.cmd == "heartbeat":
                self.heartbeat.request()
            elif why := self.policy.refuse_path(cmd.bundle):
                self.error("reload_failed", why)
            else:
                self._reload_requested = cmd.bundle or self.cfg.bundle
        if self._reload_requested and self.reloader.start(self._reload_requested):
            log.info("loading bundle %s", self._reload_requested)
            self._reload_requested = None
        if (outcome := self.reloader.take()) is not None:
            self._swap(outcome.engine, outcome.path, outcome.error, outcome.teacher)
        self.scorer.tick(DRIFT_MAX_AGE_S)
        if self.heartbeat.due(now):
            self.scorer.tick()  # the heartbeat's drift figures count every reading received so far
            self.client.publish(self.topics.heartbeat, json.dumps(self.snapshot()), qos=0)
        self.notifier.watchdog(now)

    def _swap(
        self,
        engine: Engine | TextEngine | None,
        path: str,
        error: str | None,
        teacher: Engine | TextEngine | None = None,
    ) -> None:
        if engine is not None:
            try:
                self.policy.check(self.engine, engine)
            except EdgekitError as exc:
                engine, error = None, str(exc)
        if engine is None:
            self.last_reload_error = error
            self.error("reload_failed", f"kept model {self.engine.manifest.model_version}: {error}")
            self._write_health(error)
            return
        if self.scorers.adopt(self.scorer, engine, teacher):
            log.warning("the new model's window or channels differ: stream buffers were reset")
        self.last_reload_error = None
        self.counters.reloads += 1
        self.client.publish(self.topics.status, self._status("online", "reloaded"), qos=1, retain=True)
        self._write_health(None)
        log.info(
            "now scoring with %s %s from %s", engine.manifest.model_id, engine.manifest.model_version, path
        )

    def _write_health(self, error: str | None) -> None:
        if self.cfg.health_file:
            m = self.engine.manifest
            h = Health(
                os.getpid(),
                error is None,
                str(self.engine.bundle_dir),
                m.model_id,
                m.model_version,
                time.time(),
                error,
            )
            write_health(self.cfg.health_file, h)

    def snapshot(self) -> dict:
        """Heartbeat body: counters, latency since start, model, queue and connection state."""
        return snapshot(
            device=self.cfg.device,
            started=self._started,
            engine=self.engine,
            threshold=self.scorer.threshold,
            counters=self.counters,
            latency=self.latency,
            link=LinkState(self.connected.is_set(), self.pending_publishes()),
            queue=QueueState(len(self.inbox), self.inbox.nbytes, self.scorer.open_streams),
            verified=self.verified,
            last_reload_error=self.last_reload_error,
            cascade=self.cascade.state(self.scorer.cascade, self.counters.windows),
            drift=self.scorer.drift.summary() if getattr(self.scorer, "drift", None) else None,
        )

    def pending_publishes(self) -> int:
        return self.link.pending()

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
        """Serve until stop() or SIGTERM/SIGINT; returns the exit code (0 after a clean stop,
        EXIT_THREAD_DIED when the MQTT network thread died)."""
        self._install_signals()
        metrics = None
        if self.cfg.metrics_port is not None:
            render = lambda: prometheus_text(self.snapshot(), self.cfg.device, self.latency)  # noqa: E731
            metrics = start_metrics_server(self.cfg.metrics_host, self.cfg.metrics_port, render)
        if not self.verified:
            log.warning(
                "no --pubkey: bundles are NOT signature-checked (an edited manifest or model would load); "
                "set daemon.require_pubkey in the profile to refuse this"
            )
        # Everything loaded so far (modules, the model, the profile) lives as long as the process: out of
        # the cyclic collector's sight, a full collection costs microseconds instead of ~16 ms of pause.
        gc.collect()
        gc.freeze()
        self.link.start()
        self._write_health(None)
        e = self.engine
        self.notifier.ready(f"scoring with {e.manifest.model_id} {e.manifest.model_version}")
        shape = (
            f"window {e.window}, hop {e.hop}" if isinstance(e, Engine) else f"text, {len(e.labels)} labels"
        )
        log.info(
            "serving %s (%s) as device %s, broker %s, JSON codec %s",
            e.manifest.model_id,
            shape,
            self.cfg.device,
            self.copts.url,
            codec.name,
        )
        code = 0
        try:
            while not self._stop:
                try:
                    self.handoff.serve_once(0.05, 1024, lambda: self._housekeeping(time.monotonic()))
                except Exception as exc:  # a housekeeping bug must not end months of service either
                    log.exception("unexpected error in the scoring loop; continuing")
                    self.error("internal_error", f"{type(exc).__name__}: {exc}")
                if fault := self.link.fault():
                    # Nothing would arrive any more while the watchdog kept being fed: exit, get restarted.
                    log.critical("the MQTT network thread died (%s); exiting for a restart", fault)
                    code = EXIT_THREAD_DIED
                    break
        finally:
            self._shutdown()
            if metrics is not None:
                metrics.shutdown()
        return code

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.handoff.drain()  # finish what was already received
        self.scorer.tick()  # and its drift observations (nothing is scored any more)
        self.client.publish(self.topics.status, self._status("offline", "stopped"), qos=1, retain=True)
        # Never connected: nothing can be delivered, so do not wait for it.
        deadline = time.monotonic() + (self.cfg.drain_timeout_s if self.link.ever_connected else 0.0)
        alive = not self.client.loop_ended.is_set()
        while alive and self.pending_publishes() and time.monotonic() < deadline:
            time.sleep(0.01)
        if n := self.pending_publishes():
            log.warning("exiting with %d report(s) not acknowledged by the broker", n)
        self.link.stop()
        log.info("stopped: %s", json.dumps(to_dict(self.counters)))
        if self.scorer.cascade is not None:  # what the cascade did, for the log (benchmarks read it)
            log.info(
                "cascade: %s", json.dumps(self.cascade.state(self.scorer.cascade, self.counters.windows))
            )


def serve(cfg: DaemonConfig) -> int:
    """Run the daemon until SIGTERM/SIGINT; the `edgekit serve` command."""
    return Daemon(cfg).run()
