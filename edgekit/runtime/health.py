"""The daemon's health file, and what deploy tools do with it: ask for a reload and wait for the verdict.

`edgekit serve --health-file ROOT/health.json` rewrites that file (atomically: temp file + rename) when it
has loaded its first model and after every hot-reload attempt: its pid, the release folder it is scoring
with, the model id/version, whether the last load was ok and, if not, why. A deploy tool (the Mender
update module, `edgekit flash`, `edgekit device health`) needs no broker access: it sends SIGHUP (or
`systemctl reload` for a systemd unit), then waits until the file reports, after that moment, the release
it expects (healthy) or a failed load (unhealthy); silence past the timeout is unhealthy too. A reload
swaps the model only after the daemon's golden self-test passed, so "healthy" means it passed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.errors import BundleError

log = logging.getLogger(__name__)

HEALTH_FILE = "health.json"


@dataclass(frozen=True)
class Health:
    pid: int
    ok: bool
    release: str  # resolved folder the daemon scores with (after ok) or keeps scoring with (after a failure)
    model_id: str
    model_version: str
    ts: float
    error: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> Health | None:
        """The health file's content, or None when absent or unreadable (a daemon mid-rename, a stale mess)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError):
            return None

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user (the daemon's own account)
            return True
        return True


def write_health(path: str | Path, health: Health) -> None:
    """Atomically replace the health file (readers see the old content or the new, never half of it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(asdict(health)) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a full disk must not take the scoring daemon down
        log.warning("cannot write health file %s: %s", path, exc.strerror or exc)


def running_daemon(health_file: str | Path) -> Health | None:
    """The daemon that writes this health file, when one is running; None when no daemon is configured."""
    h = Health.load(health_file)
    return h if h is not None and h.alive() else None


def request_reload(health: Health, service: str | None = None) -> None:
    """Ask the daemon to reload ROOT/current: `systemctl reload SERVICE` when named, else SIGHUP to its pid."""
    if service:
        try:
            subprocess.run(["systemctl", "reload", service], check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise BundleError(f"cannot reload service {service}: {exc}") from None
        return
    try:
        os.kill(health.pid, signal.SIGHUP)
    except OSError as exc:
        raise BundleError(f"cannot signal the daemon (pid {health.pid}): {exc.strerror or exc}") from None


def wait_healthy(health_file: str | Path, release: str | Path, since: float, timeout: float) -> Health:
    """Wait until the daemon reports scoring with `release` after `since`; BundleError when it reports a
    failed load or stays silent for `timeout` seconds."""
    want = Path(release).resolve()
    deadline = time.monotonic() + timeout
    while True:
        h = Health.load(health_file)
        if h is not None and h.ts >= since:
            if h.ok and Path(h.release).resolve() == want:
                return h
            if not h.ok:
                raise BundleError(f"the daemon refused the new model and kept {h.model_version}: {h.error}")
        if h is not None and not h.alive():
            raise BundleError(f"the daemon (pid {h.pid}) is not running")
        if time.monotonic() >= deadline:
            raise BundleError(f"health timeout: the daemon did not report the new model within {timeout:g} s")
        time.sleep(0.1)
