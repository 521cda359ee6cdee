"""`edgekit flash BUNDLE ssh://user@host[:port]/ROOT`: one device, with the system's ssh and scp.

Copies the bundle tarball to a temporary folder on the device, runs `edgekit device install` there (verify,
stage, activate, wait for the daemon's health file, restore the old release when unhealthy: the same steps
as the Mender module) and removes the copy. Nothing is installed by this host: the device decides.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from edgekit.errors import BundleError, ConfigError
from edgekit.flash.mender import bundle_tarball

BASE_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10")


@dataclass(frozen=True)
class SshTarget:
    user: str | None
    host: str
    port: int | None
    root: str

    @classmethod
    def parse(cls, url: str) -> SshTarget:
        u = urlsplit(url)
        if u.scheme != "ssh" or not u.hostname or not u.path or u.path == "/":
            raise ConfigError(f"{url!r}: expected ssh://[user@]host[:port]/ROOT (ROOT an absolute path)")
        try:
            port = u.port
        except ValueError:
            raise ConfigError(f"{url!r}: bad port") from None
        return cls(u.username, u.hostname, port, u.path)

    @property
    def dest(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        return f"{self.dest}:{self.port or 22}"


class Ssh:
    def __init__(self, target: SshTarget, identity: str | None, options: Sequence[str]) -> None:
        self.target = target
        self.opts = [*BASE_OPTIONS, *(["-i", identity] if identity else []), *options]

    def _run(self, cmd: list[str], what: str, timeout: float) -> str:
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise BundleError(f"{what} on {self.target}: no answer within {timeout:g} s") from None
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            why = lines[-1] if lines else f"exit {proc.returncode}"
            if proc.returncode == 255:  # ssh's own failure: the host, not the command
                raise BundleError(f"cannot reach {self.target}: {why}")
            raise BundleError(f"{what} failed on {self.target}: {why}")
        return proc.stdout

    def run(self, remote: str, what: str, timeout: float = 600) -> str:
        port = ["-p", str(self.target.port)] if self.target.port else []
        return self._run(["ssh", *self.opts, *port, self.target.dest, remote], what, timeout)

    def copy(self, local: Path, remote: str, timeout: float = 600) -> None:
        port = ["-P", str(self.target.port)] if self.target.port else []
        self._run(
            ["scp", "-q", *self.opts, *port, str(local), f"{self.target.dest}:{remote}"], "copy", timeout
        )


def flash(
    bundle: str | Path,
    url: str,
    pubkey: str,
    *,
    identity: str | None = None,
    edgekit: str = "edgekit",
    service: str | None = None,
    health_timeout: float = 60.0,
    ssh_options: Sequence[str] = (),
) -> list[str]:
    """Install `bundle` on the device behind `url` with a health check; returns what was done, line by line."""
    bundle = Path(bundle)
    if not bundle.exists():
        raise BundleError(f"{bundle}: no such bundle folder or tarball")
    target = SshTarget.parse(url)
    ssh = Ssh(target, identity, ssh_options)
    done: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgekit-flash-") as tmp:
        tarball = bundle_tarball(bundle, Path(tmp))
        remote_dir = ssh.run("mktemp -d /tmp/edgekit-flash.XXXXXX", "mktemp", timeout=30).strip()
        try:
            ssh.copy(tarball, f"{remote_dir}/{tarball.name}")
            done.append(f"copied {tarball.name} to {target}:{remote_dir}")
            args = ["device", "install", f"{remote_dir}/{tarball.name}", target.root, "--pubkey", pubkey]
            args += ["--health-timeout", f"{health_timeout:g}", *(["--service", service] if service else [])]
            out = ssh.run(
                f"{edgekit} {shlex.join(args)}", "edgekit device install", timeout=health_timeout + 600
            )
            done += [f"{target}: {line}" for line in out.strip().splitlines()]
        finally:
            with contextlib.suppress(BundleError):  # the verdict matters more than a leftover temp folder
                ssh.run(f"rm -rf {shlex.quote(remote_dir)}", "clean-up", timeout=30)
    return done
