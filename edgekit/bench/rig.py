"""Real processes and clients around a daemon under test, shared by `edgekit bench --e2e`, the demo and tests.

- `mqtt_client`: a connected paho MQTT 5 client set up for test traffic (TCP_NODELAY, no inflight cap).
- `Recorder`: a subscriber that records every message it gets, for waiting on and reading back.
- `DaemonProcess`: a real `edgekit serve` subprocess, ready once it says `online` on its status topic,
  stopped with SIGTERM (its exit code and log kept).

Device side: paho-mqtt and the runtime's topic layout only (no numpy, no onnxruntime), so tests of the
runtime and the bench import it without the training stack.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgekit.errors import EdgekitError
from edgekit.runtime.mqtt import Topics, parse_broker_url, set_nodelay

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 30.0


def mqtt_client(
    host: str,
    port: int,
    client_id: str = "",
    nodelay: bool = True,
    connect: bool = True,
    protocol: int = mqtt.MQTTv5,
    max_inflight: int = 0,
    **connect_kw: Any,
) -> mqtt.Client:
    """An MQTT client (5 unless `protocol`) for test traffic, connected unless `connect=False` (no loop
    started). `max_inflight` 0 is unlimited: QoS 1 pacing must not be throttled by the client."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if nodelay:
        c.on_socket_open = lambda _c, _u, s: set_nodelay(s)
    c.max_inflight_messages_set(max_inflight)
    c.reconnect_delay_set(0.2, 1)  # type: ignore[arg-type]  # back quickly after a broker restart
    if connect:
        c.connect(host, port, **connect_kw)
    return c


class Recorder:
    """A real MQTT subscriber that records (topic, payload) and the arrival time of every message.

    It subscribes on every (re)connect, so it keeps listening across a broker restart; `persistent`
    also keeps its session (subscription and queued messages) at a broker with persistence on.
    Retained messages are recorded unless `skip_retained` (then only what is published from now on).
    """

    def __init__(
        self,
        port: int,
        topics: Sequence[str],
        client_id: str = "",
        persistent: bool = False,
        host: str = "127.0.0.1",
        skip_retained: bool = False,
        timeout: float = 5.0,
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.arrivals: list[float] = []
        self._lock = threading.Lock()
        self._skip_retained = skip_retained
        self.subscribed = threading.Event()
        props = None
        if persistent:  # survive a broker restart (broker persistence on): keep subscription and queue
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client = mqtt_client(host, port, client_id, connect=False)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics])
        self.client.connect(host, port, clean_start=not persistent, properties=props)
        self.client.loop_start()
        if not self.subscribed.wait(timeout):
            self.close()
            raise EdgekitError(f"could not subscribe to {', '.join(topics)} on {host}:{port}")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        if msg.retain and self._skip_retained:
            return
        with self._lock:
            self.messages.append((msg.topic, msg.payload))
            self.arrivals.append(now)

    def on(self, suffix: str) -> list[bytes]:
        """Payloads received on topics ending with `suffix`, in arrival order."""
        with self._lock:
            return [p for t, p in self.messages if t.endswith(suffix)]

    def json(self, suffix: str) -> list[dict]:
        return [json.loads(p) for p in self.on(suffix)]

    def records(self) -> list[tuple[str, bytes, float]]:
        """(topic, payload, arrival unix time) of every message so far."""
        with self._lock:
            return [(t, p, a) for (t, p), a in zip(self.messages, self.arrivals, strict=True)]

    def wait_for(
        self,
        pred: Callable[[str, bytes], bool],
        timeout: float,
        start: int = 0,
        alive: Callable[[], bool] | None = None,
    ) -> tuple[str, bytes] | None:
        """The first message from index `start` on that satisfies `pred`, waiting up to `timeout` s.

        Returns None on timeout, or as soon as `alive()` turns false (the process that should publish died).
        """
        deadline = time.monotonic() + timeout
        seen = start
        while True:
            with self._lock:
                fresh = self.messages[seen:]
            for topic, payload in fresh:
                if pred(topic, payload):
                    return topic, payload
            seen += len(fresh)
            if time.monotonic() >= deadline or (alive is not None and not alive()):
                return None
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_online(_topic: str, payload: bytes) -> bool:
    try:
        return json.loads(payload).get("state") == "online"
    except (ValueError, AttributeError):
        return False


class DaemonProcess:
    """A real `edgekit serve --bundle B --broker URL --device D [args]` subprocess, used as a context manager.

    `start()` returns once the daemon published `online` on its status topic (a retained `online` left
    by an earlier daemon does not count); it raises EdgekitError with the log's tail if the daemon exits
    or stays silent. With `wait_online=False` it returns as soon as the process runs (a daemon facing an
    unreachable broker, or one expected to refuse to start). `log` is the output so far (stdout and
    stderr, to `log_path` or a temporary file); `stop()` sends SIGTERM, waits, and keeps the exit code
    and the whole log in `returncode` and `output`.
    """

    def __init__(
        self,
        bundle: str | Path,
        broker_url: str,
        device: str,
        args: Sequence[str] = (),
        *,
        status_topic: str | None = None,
        log_path: str | Path | None = None,
        env: dict[str, str] | None = None,
        cpu: int | set[int] | None = None,
        ready_timeout: float = READY_TIMEOUT_S,
        wait_online: bool = True,
    ) -> None:
        self.cmd = [sys.executable, "-m", "edgekit", "serve", "--bundle", str(bundle)]
        self.cmd += ["--broker", broker_url, "--device", device, *args]
        self.broker = parse_broker_url(broker_url)
        if status_topic is None:
            from edgekit.profiles import MQTTTopics

            status_topic = Topics(MQTTTopics(), device).status
        self.status_topic = status_topic
        self.log_path = Path(log_path) if log_path is not None else None
        self.env = env
        self.cpu = cpu
        self.ready_timeout = ready_timeout
        self.wait_online = wait_online
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.output = ""
        self._log: Any = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> DaemonProcess:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "w+b")  # noqa: SIM115  closed in stop()
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115  a file, not a pipe: nobody must drain it
        if not self.wait_online:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
            pin(self.proc.pid, self.cpu)
            return self
        b = self.broker
        with Recorder(b.port, [self.status_topic], host=b.host, skip_retained=True) as status:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
            pin(self.proc.pid, self.cpu)
            if status.wait_for(_is_online, self.ready_timeout, alive=self.running) is None:
                rc = self.stop()
                what = f"exited with code {rc}" if rc not in (None, 0, -signal.SIGTERM) else "stayed silent"
                raise EdgekitError(
                    f"the daemon under test {what}: no `online` on {self.status_topic} within "
                    f"{self.ready_timeout:g} s; its log ends: {self.output[-800:].strip()}"
                )
        return self

    @property
    def log(self) -> str:
        """Everything the daemon printed so far (its whole log once stopped)."""
        if self._log is None:
            return self.output
        fd = self._log.fileno()
        # pread: the child shares this file's offset, which a seek here would move under its writes
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 15.0) -> bool:
        """Wait until `text` appears in the log; False on timeout."""
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None, "not started"
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None, "not started"
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (SIGKILL after `timeout` s); returns the exit code and keeps the log in `output`."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("daemon pid %d ignored SIGTERM for %g s; killing it", self.proc.pid, timeout)
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None
        if self._log is not None:
            self._log.flush()
            self._log.seek(0)
            self.output = self._log.read().decode(errors="replace")
            self._log.close()
            self._log = None
        return self.returncode

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pin(pid: int, cpu: int | set[int] | None) -> None:
    """Pin a process (0: this one) to one CPU (or a set of them), when asked and the machine has it."""
    cpus = {cpu} if isinstance(cpu, int) else cpu
    if cpus and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > max(cpus):
        os.sched_setaffinity(pid, cpus)


def rss_mb(pid: int) -> dict[str, float] | None:
    """VmRSS and peak VmHWM of a process in MB (Linux), or None."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    f = dict(line.split(":", 1) for line in lines if ":" in line)
    return {"rss": int(f["VmRSS"].split()[0]) / 1024, "peak": int(f["VmHWM"].split()[0]) / 1024}


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc; just [pid] elsewhere): a supervised daemon and its workers."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(k) for k in kids]
    return out


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int, tree: bool = False) -> float:
    """User + system CPU seconds of `pid` (with `tree`, and its live descendants) so far (Linux), or NaN."""
    total = 0.0
    for p in process_tree(pid) if tree else [pid]:
        try:
            # fields after the parenthesised command name; utime and stime are fields 14 and 15
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(f[11]) + int(f[12])) / _TICK
    return total if total or Path(f"/proc/{pid}").exists() else float("nan")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM of `pid` and its descendants (Linux >= 4.0, `5 > clear_refs`), so the next read is a
    peak since now; False where the kernel or permissions refuse."""
    ok = True
    for p in process_tree(pid):
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def peak_rss_per_process(pid: int) -> dict[int, float]:
    """Peak RSS (VmHWM, MB) of `pid` and of each of its descendants."""
    return {p: v["peak"] for p in process_tree(pid) if (v := rss_mb(p)) is not None}
