"""`edgekit serve --workers N`: N daemon processes supervised by one parent, the load shared by the broker.

Python scores on one core per process, so more sensors per device means more processes. They share the
streams through the broker, not through a dispatcher of ours:
- window-1/hop-1 models (and text bundles): an MQTT 5 shared subscription (`$share/edgekit/...`), the
  broker deals each message to one worker;
- windowed models: the crc32 stream partitions (`--partition k/N`), so all readings of a stream, and so
  its windows, stay on one worker (each worker receives every message and drops the foreign ones).

Each worker is a full daemon (runtime.daemon) with its own status and heartbeat topics
(`<status>/workers/<k>`, `<heartbeat>/workers/<k>`) and, with --metrics-port P, its own Prometheus
endpoint on P+1+k. The parent holds the device's status (online once every worker is, the offline last
will), restarts a worker that dies (SIGKILL, OOM, a dead network thread), forwards SIGTERM and SIGHUP,
answers the heartbeat command with one body aggregating the workers' (runtime.stats.aggregate_snapshots),
and is the one process systemd talks to (READY, WATCHDOG).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import paho.mqtt.client as mqtt

from edgekit.bundle.manifest import Manifest
from edgekit.errors import ConfigError, EdgekitError
from edgekit.profiles import TargetProfile, load_profile
from edgekit.runtime.daemon import Daemon, DaemonConfig
from edgekit.runtime.heartbeat import HeartbeatClock
from edgekit.runtime.mqtt import Topics, connect_async, make_client, worker_topic
from edgekit.runtime.reload import resolve_bundle_path
from edgekit.runtime.service import Notifier
from edgekit.runtime.stats import aggregate_snapshots, prometheus_text, start_metrics_server

log = logging.getLogger(__name__)

SHARE_GROUP = "edgekit"  # $share/edgekit/<sensors filter> unless --share-group names another group
RESTART_BACKOFF_S = (0.5, 10.0)  # a worker that keeps dying is restarted ever later, up to 10 s apart
HEARTBEAT_WAIT_S = 2.0
EXIT_CANNOT_START = 78  # EX_CONFIG (sysexits.h): a worker refused its configuration; the supervisor gives up  # how long a heartbeat command waits for every worker's fresh heartbeat
_SYSTEMD_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def plan_workers(cfg: DaemonConfig, n: int) -> list[DaemonConfig]:
    """The DaemonConfig of each of `n` workers: shared subscription or stream partition, own topics/ports."""
    if n < 1:
        raise ConfigError(f"--workers {n}: need at least 1")
    if cfg.partition:
        raise ConfigError("--workers assigns the partitions itself: drop --partition")
    manifest = Manifest.load(resolve_bundle_path(cfg.bundle))
    w = manifest.window
    shared = manifest.kind == "text" or w is None or (w.length, w.hop) == (1, 1)
    if cfg.share_group and not shared:
        raise ConfigError(
            f"--share-group needs a window-1/hop-1 model (this one: window {w.length}, hop {w.hop}); "  # type: ignore[union-attr]
            "--workers alone partitions the streams by crc32"
        )
    out = []
    for k in range(n):
        out.append(
            replace(
                cfg,
                share_group=(cfg.share_group or SHARE_GROUP) if shared else None,
                partition=None if shared else f"{k}/{n}",
                worker=k,
                client=replace(cfg.client, client_id=f"{cfg.client.client_id}-w{k}")
                if cfg.client.client_id
                else cfg.client,
                metrics_port=cfg.metrics_port + 1 + k if cfg.metrics_port else cfg.metrics_port,
                health_file=cfg.health_file if k == 0 else None,  # one writer; all load the same bundle
                handle_signals=True,
            )
        )
    return out


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel sends SIGTERM to this worker when the supervisor dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(0)


def _worker_main(cfg: DaemonConfig, parent: int, verbose: bool) -> None:
    _die_with_parent(parent)
    for key in _SYSTEMD_ENV:  # only the supervisor speaks to systemd
        os.environ.pop(key, None)
    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s w{cfg.worker} %(name)s: %(message)s")
    logging.getLogger("edgekit").setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        daemon = Daemon(cfg)
    except EdgekitError as exc:  # a bad bundle, key or profile: a restart would fail the same way
        log.error("worker %d cannot start: %s", cfg.worker, exc)
        sys.exit(EXIT_CANNOT_START)
    sys.exit(daemon.run())


@dataclass
class Worker:
    cfg: DaemonConfig
    proc: Any = None  # multiprocessing.Process
    restarts: int = 0
    next_start: float = 0.0
    online_pid: int | None = None  # the pid that last said `online` on the worker's status topic
    heartbeat: dict | None = None
    heartbeat_at: float = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()


class Supervisor:
    """The parent of `serve --workers N`: starts, watches and restarts the workers; speaks for the device."""

    def __init__(self, cfg: DaemonConfig, n: int, profile: TargetProfile | None = None) -> None:
        self.cfg = cfg
        self.profile = profile or (
            load_profile(cfg.profile) if cfg.profile else TargetProfile(name="default")
        )
        self.workers = [Worker(c) for c in plan_workers(cfg, n)]
        self.topics = Topics(self.profile.mqtt, cfg.device)
        self.manifest = Manifest.load(resolve_bundle_path(cfg.bundle))
        self.notifier = Notifier()
        self.heartbeat = HeartbeatClock(cfg.heartbeat_s or self.profile.daemon.heartbeat_s, time.monotonic())
        self._ctx = mp.get_context("spawn")  # a fork of a process running paho threads is unsafe
        self._lock = threading.Lock()
        self._stop = False
        self._failed = 0  # the exit code when a worker cannot start at all
        self._hup = False
        self._ready = False
        self._asked: float | None = None  # monotonic time of a pending heartbeat command
        self._started = time.monotonic()
        self.verbose = logging.getLogger("edgekit").isEnabledFor(logging.DEBUG)
        copts = replace(
            cfg.client, client_id=f"edgekit-{cfg.device}-supervisor-{os.getpid()}", clean_start=True
        )
        self.client, self.address = make_client(copts)
        self.copts = copts
        self.client.will_set(
            self.topics.status, self._status("offline", "connection lost"), qos=1, retain=True
        )
        self.client.on_connect = self._on_connect
        self.client.message_callback_add(worker_topic(self.topics.status, "+"), self._on_worker_status)
        self.client.message_callback_add(worker_topic(self.topics.heartbeat, "+"), self._on_worker_heartbeat)
        self.client.message_callback_add(self.topics.cmd, self._on_command)

    # -- MQTT (paho's network thread) ---------------------------------------------------------------
    def _status(self, state: str, reason: str) -> str:
        m = self.manifest
        body = {"state": state, "reason": reason, "device": self.cfg.device, "model_id": m.model_id}
        body.update(model_version=m.model_version, verified=self.cfg.pubkey is not None, pid=os.getpid())
        body.update(workers=len(self.workers), ts=time.time())
        return json.dumps(body)

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker %s refused the supervisor's connection: %s", self.copts.url, reason)
            return
        subs = [worker_topic(self.topics.status, "+"), worker_topic(self.topics.heartbeat, "+")]
        client.subscribe([(t, 1) for t in subs] + [(self.topics.cmd, 1)])
        if self._ready:
            client.publish(self.topics.status, self._status("online", "reconnected"), qos=1, retain=True)

    def _from_worker(self, msg: mqtt.MQTTMessage) -> tuple[Worker, dict] | None:
        """The worker a message on `<topic>/workers/<k>` came from, and its JSON body."""
        try:
            k = int(msg.topic.rsplit("/", 1)[1])
            body = json.loads(msg.payload)
        except ValueError:
            return None
        if not 0 <= k < len(self.workers) or not isinstance(body, dict):
            return None
        return self.workers[k], body

    def _on_worker_status(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if (got := self._from_worker(msg)) is not None and got[1].get("state") == "online":
            got[0].online_pid = got[1].get("pid")

    def _on_worker_heartbeat(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if (got := self._from_worker(msg)) is not None:
            with self._lock:
                got[0].heartbeat, got[0].heartbeat_at = got[1], time.monotonic()

    def _on_command(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        # Workers get every command themselves (cmd is not shared); the supervisor only answers heartbeats.
        try:
            if json.loads(msg.payload).get("cmd") == "heartbeat":
                self._asked = time.monotonic()
        except (ValueError, AttributeError):
            pass

    # -- workers ------------------------------------------------------------------------------------
    def _start(self, w: Worker) -> None:
        w.proc = self._ctx.Process(
            target=_worker_main, args=(w.cfg, os.getpid(), self.verbose), name=f"edgekit-w{w.cfg.worker}"
        )
        w.proc.start()
        log.info("worker %d started (pid %d)", w.cfg.worker, w.proc.pid)

    def _watch(self, now: float) -> None:
        for w in self.workers:
            if w.alive() or now < w.next_start:
                continue
            if w.proc is not None:
                code = w.proc.exitcode
                if code == EXIT_CANNOT_START and not self._stop:
                    log.critical("worker %d cannot start; stopping the other workers", w.cfg.worker)
                    self._failed = EXIT_CANNOT_START
                    self._stop = True
                    return
                w.restarts += 1
                delay = min(RESTART_BACKOFF_S[0] * 2 ** min(w.restarts - 1, 5), RESTART_BACKOFF_S[1])
                log.warning(
                    "worker %d (pid %s) exited with code %s; restarting it (restart %d)",
                    w.cfg.worker,
                    w.pid,
                    code,
                    w.restarts,
                )
                w.proc.close()
                w.proc = None
                w.next_start = now + delay if w.restarts > 1 else now
                if now < w.next_start:
                    continue
            self._start(w)

    def snapshot(self) -> dict:
        """The device's heartbeat: the workers' latest heartbeats aggregated, and each one under `workers`."""
        with self._lock:
            beats = {w.cfg.worker: w.heartbeat for w in self.workers}
        snap = aggregate_snapshots(
            self.cfg.device, [b for b in beats.values() if b is not None], time.monotonic() - self._started
        )
        snap["workers"] = {
            str(w.cfg.worker): {
                "pid": w.pid,
                "alive": w.alive(),
                "restarts": w.restarts,
                "online": w.online_pid is not None and w.online_pid == w.pid,
                "heartbeat": beats[w.cfg.worker],
            }
            for w in self.workers
        }
        snap["restarts"] = sum(w.restarts for w in self.workers)
        snap["pid"] = os.getpid()
        return snap

    def _heartbeat_due(self, now: float) -> bool:
        if self._asked is not None:
            with self._lock:
                fresh = all(w.heartbeat_at > self._asked for w in self.workers if w.alive())
            if fresh or now - self._asked > HEARTBEAT_WAIT_S:
                self._asked = None
                return True
            return False
        return self.heartbeat.due(now)

    # -- lifecycle ----------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop = True

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "_hup", True))

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; returns 0 after a clean stop, EXIT_CANNOT_START when a worker
        refused its configuration (a bad bundle or key: restarting it would only fail again)."""
        if self.cfg.handle_signals:
            self._install_signals()
        metrics = None
        if self.cfg.metrics_port is not None:
            render = lambda: prometheus_text(self.snapshot(), self.cfg.device)  # noqa: E731
            metrics = start_metrics_server(self.cfg.metrics_host, self.cfg.metrics_port, render)
        connect_async(self.client, self.address, self.copts)
        self.client.loop_start()
        mode = "shared subscription" if self.workers[0].cfg.share_group else "crc32 stream partitions"
        log.info("supervising %d workers (%s) for device %s", len(self.workers), mode, self.cfg.device)
        try:
            while not self._stop:
                now = time.monotonic()
                self._watch(now)
                if self._hup:
                    self._hup = False
                    self._signal_workers(signal.SIGHUP)
                if not self._ready and all(w.online_pid == w.pid and w.pid for w in self.workers):
                    self._ready = True
                    self.client.publish(self.topics.status, self._status("online", ""), qos=1, retain=True)
                    self.notifier.ready(f"{len(self.workers)} workers scoring with {self.manifest.model_id}")
                if self._heartbeat_due(now):
                    self.client.publish(self.topics.heartbeat, json.dumps(self.snapshot()), qos=0)
                self.notifier.watchdog(now)
                time.sleep(0.05)
        finally:
            self._shutdown()
            if metrics is not None:
                metrics.shutdown()
        return self._failed

    def _signal_workers(self, sig: int) -> None:
        for w in self.workers:
            if w.alive():
                os.kill(w.pid, sig)  # type: ignore[arg-type]

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self._signal_workers(signal.SIGTERM)
        deadline = time.monotonic() + self.cfg.drain_timeout_s + 10.0
        for w in self.workers:
            if w.proc is None:
                continue
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                log.warning("worker %d ignored SIGTERM; killing it", w.cfg.worker)
                w.proc.kill()
                w.proc.join()
        info = self.client.publish(self.topics.status, self._status("offline", "stopped"), qos=1, retain=True)
        if self.client.is_connected():
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)
        self.client.disconnect()
        self.client.loop_stop()


def serve_workers(cfg: DaemonConfig, n: int) -> int:
    """`edgekit serve --workers N`."""
    return Supervisor(cfg, n).run()
