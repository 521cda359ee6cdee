"""systemd integration: a hardened unit file for `edgekit serve`, and sd_notify in plain stdlib.

sd_notify is one datagram to the AF_UNIX socket named in $NOTIFY_SOCKET (a leading '@' means the
abstract namespace), so the `systemd` Python package is not needed on the device.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import ConfigError


class Notifier:
    """Sends READY/WATCHDOG/STOPPING/STATUS to systemd when run under a Type=notify unit; no-op otherwise."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = ("\0" + addr[1:] if addr.startswith("@") else addr) or None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        # Pinging at half the watchdog period leaves room for one late ping.
        mine = pid is None or pid == str(os.getpid())
        self.watchdog_interval_s = int(usec) / 2e6 if usec and usec.isdigit() and mine else None
        self._next_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *states: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(states).encode(), self.address)
            return True
        except OSError:
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self, now: float | None = None) -> bool:
        """Ping the watchdog when one is due; call it from the loop whose liveness it vouches for."""
        if self.watchdog_interval_s is None:
            return False
        now = time.monotonic() if now is None else now
        if now < self._next_ping:
            return False
        self._next_ping = now + self.watchdog_interval_s
        return self.notify("WATCHDOG=1")


@dataclass
class UnitSpec:
    bundle: str
    device: str
    broker: str
    profile: str | None = None
    pubkey: str | None = None
    user: str = "edgekit"
    state_dir: str = "/var/lib/edgekit"
    watchdog_s: int = 30
    extra_args: list[str] = field(default_factory=list)
    python: str = sys.executable


def unit_path(path: str) -> str:
    """An absolute path for the unit that keeps symlinks as given.

    `ROOT/current` must stay `ROOT/current`: resolving it would pin the unit to today's release folder, so a
    restart after `edgekit install` or `rollback` would still serve the old model.
    """
    return os.path.abspath(os.path.expanduser(path))


def unit_name(device: str) -> str:
    return f"edgekit-{device}.service"


def _quote(arg: str) -> str:
    """One ExecStart argument: systemd expands % specifiers and $VARS, so those are escaped."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not any(c in arg for c in " \t\"'\\;"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(spec: UnitSpec) -> str:
    """The unit text: Type=notify with a watchdog, Restart=always, unprivileged user, read-only system."""
    if spec.watchdog_s < 2:
        raise ConfigError("--watchdog-s must be at least 2 seconds")
    for what, path in (("bundle", spec.bundle), ("pubkey", spec.pubkey), ("state dir", spec.state_dir)):
        if path and not Path(path).is_absolute():
            raise ConfigError(f"{what} path {path!r} must be absolute in a service unit")
    args = [
        spec.python,
        "-m",
        "edgekit",
        "serve",
        "--bundle",
        spec.bundle,
        "--broker",
        spec.broker,
        "--device",
        spec.device,
    ]
    if spec.profile:
        args += ["--profile", spec.profile]
    if spec.pubkey:
        args += ["--pubkey", spec.pubkey]
    args += spec.extra_args
    name = unit_name(spec.device)
    return f"""\
[Unit]
Description=edgekit anomaly daemon for device {spec.device} (profile {spec.profile or "default"})
Wants=network-online.target
After=network-online.target mosquitto.service

[Service]
Type=notify
NotifyAccess=main
ExecStart={" ".join(_quote(a) for a in args)}
ExecReload=/bin/kill -HUP $MAINPID
# Optional: EDGEKIT_MQTT_PASSWORD=... (keeps the password out of the unit and of `ps`).
EnvironmentFile=-/etc/edgekit/{name[:-8]}.env
Environment=PYTHONUNBUFFERED=1
Restart=always
RestartSec=2
WatchdogSec={spec.watchdog_s}
TimeoutStopSec=20
User={spec.user}
Group={spec.user}
StateDirectory={Path(spec.state_dir).name}
ReadWritePaths={spec.state_dir}
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
LockPersonality=yes
CapabilityBoundingSet=
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"""


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (a key may repeat); raises ConfigError on a line that is not key=value."""
    out: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        if section is None or "=" not in line:
            raise ConfigError(f"unit line {n}: expected [Section] or Key=Value, got {raw!r}")
        key, value = line.split("=", 1)
        if not key.strip() or not key.strip().replace("-", "").isalnum():
            raise ConfigError(f"unit line {n}: invalid key {key!r}")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def install_unit(spec: UnitSpec, unit_dir: str | Path = "/etc/systemd/system") -> Path:
    """Write the unit file into `unit_dir`; returns its path."""
    text = render_unit(spec)
    parse_unit(text)  # never write something systemd would reject as syntax
    path = Path(unit_dir) / unit_name(spec.device)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path} ({exc.strerror or exc}); run as root or pass --unit-dir"
        ) from None
    return path
