"""A private mosquitto on a free loopback port: the demo's default broker and the tests' fixture.

It runs the settings of the shipped device configuration (firmware_configs/mosquitto.conf: persistence,
autosave, queue limits), on its own port and storage folder, so tests exercise what a device runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.profiles import profile_dirs

# Settings of the shipped file that the private broker replaces with its own.
_OWN = ("listener", "persistence_location", "set_tcp_nodelay")


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


def device_conf_path() -> Path:
    """The shipped mosquitto.conf (next to the target profiles; wheels carry a copy)."""
    for d in profile_dirs():
        if (d / "mosquitto.conf").is_file():
            return d / "mosquitto.conf"
    raise EdgekitError("firmware_configs/mosquitto.conf is missing from this installation")


def device_settings() -> list[str]:
    """The shipped configuration's setting lines, without comments and without the ones in _OWN."""
    lines = (line.strip() for line in device_conf_path().read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#") and line.split()[0] not in _OWN]


class Broker:
    """Start/stop/restart a mosquitto 2.x bound to 127.0.0.1. Usable as a context manager."""

    def __init__(self, port: int | None = None, tcp_nodelay: bool = True, extra_conf: str = "") -> None:
        self.port = port or free_port()
        self.tcp_nodelay = tcp_nodelay
        self.extra_conf = extra_conf
        self._dir = tempfile.TemporaryDirectory(prefix="edgekit-mosquitto-")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # mosquitto started as root drops to its own user, which must still write its database here
            os.chmod(self._dir.name, 0o777)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_conf(self) -> Path:
        conf = Path(self._dir.name) / "mosquitto.conf"
        # mosquitto refuses a setting given twice: extra_conf wins over the shipped file and our own lines
        extra = {line.split()[0] for line in self.extra_conf.splitlines() if line.strip()}
        own = [
            f"persistence_location {self._dir.name}/",
            f"set_tcp_nodelay {'true' if self.tcp_nodelay else 'false'}",
        ]
        lines = [
            f"listener {self.port} 127.0.0.1",
            *(line for line in [*device_settings(), *own] if line.split()[0] not in extra),
            "log_type error",
            "log_type warning",
            self.extra_conf,
        ]
        conf.write_text("\n".join(lines) + "\n")
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

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would: no final save of the persistence database."""
        if self.proc and self.proc.poll() is None:
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
