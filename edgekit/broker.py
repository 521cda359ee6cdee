"""A private mosquitto on a free loopback port: the demo's default broker and the tests' fixture."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edgekit.errors import EdgekitError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_mosquitto() -> str:
    path = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )
    if not path:
        raise EdgekitError(
            "mosquitto is not installed (apt-get install -y mosquitto), or pass --broker mqtt://HOST:PORT"
        )
    return path


class Broker:
    """Start/stop/restart a mosquitto 2.x bound to 127.0.0.1. Usable as a context manager."""

    def __init__(self, port: int | None = None, tcp_nodelay: bool = True, extra_conf: str = "") -> None:
        self.port = port or free_port()
        self.tcp_nodelay = tcp_nodelay
        self.extra_conf = extra_conf
        self._dir = tempfile.TemporaryDirectory(prefix="edgekit-mosquitto-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_conf(self) -> Path:
        conf = Path(self._dir.name) / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"set_tcp_nodelay {'true' if self.tcp_nodelay else 'false'}\n"
            "max_queued_messages 100000\n"
            "log_type error\nlog_type warning\n"
            f"{self.extra_conf}\n"
        )
        return conf

    def start(self, timeout: float = 10.0) -> Broker:
        conf = self._write_conf()
        log = open(Path(self._dir.name) / "mosquitto.log", "ab")  # noqa: SIM115  closed with the process
        self.proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EdgekitError(
                    f"mosquitto exited at start (code {self.proc.returncode}); log: {self.log_text()[-500:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise EdgekitError(f"mosquitto did not listen on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def log_text(self) -> str:
        p = Path(self._dir.name) / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()
