"""Device side of a deployment: stage a verified release, activate it behind a health check, or undo it.

Shared by the Mender update module (edgekit.flash.mender) and `edgekit flash` over ssh (which runs
`edgekit install` and `edgekit device health` on the device). Imports only the device side (runtime,
bundle, profiles): it runs where there is no training stack.

Each release gets an install record, `ROOT/records/<release>.json` (installed_at, how, health and its
detail), read by `edgekit device status`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgekit.bundle.manifest import Manifest
from edgekit.errors import BundleError, ConfigError
from edgekit.profiles import host_arch, load_profile
from edgekit.runtime.health import HEALTH_FILE, Health, request_reload, running_daemon, wait_healthy
from edgekit.runtime.install import (
    activate_release,
    current_release,
    install_bundle,
    link_targets,
    opened_bundle,
    prune_releases,
    restore_links,
    rollback,
)

log = logging.getLogger(__name__)

RECORDS = "records"  # ROOT/records/<release>.json: when and how installed, health


@dataclass
class Target:
    """One device root and how to deploy onto it."""

    root: Path
    pubkey: Path
    service: str | None = None  # systemd unit to `systemctl reload`; None: SIGHUP the daemon's pid
    health_timeout: float = 60.0
    keep: int = 3

    @property
    def health_file(self) -> Path:
        return self.root / HEALTH_FILE


def bundle_arch(manifest: Manifest) -> str:
    """The CPU architecture the bundle was exported for (its target profile's arch)."""
    try:
        return load_profile(manifest.profile).arch
    except ConfigError as exc:
        raise BundleError(f"cannot tell which CPU the bundle targets: {exc}") from None


def check_arch(bundle: str | Path, machine: str | None = None) -> Manifest:
    """Refuse a bundle exported for another CPU architecture than this device's; returns its manifest."""
    with opened_bundle(bundle) as folder:
        manifest = Manifest.load(folder)
    want, have = bundle_arch(manifest), machine or host_arch()
    if want != have:
        raise BundleError(
            f"{manifest.model_id} {manifest.model_version} is built for {want} (profile {manifest.profile}), "
            f"this device is {have}"
        )
    return manifest


def _record_path(release: Path) -> Path:
    # beside the release, not inside: a release folder holds exactly its signed files (verify refuses others)
    return release.parent.parent / RECORDS / f"{release.name}.json"


def write_record(release: Path, **fields: Any) -> dict[str, Any]:
    """Merge fields into the release's install record (written atomically)."""
    record = read_record(release) | fields
    path = _record_path(release)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return record


def read_record(release: Path) -> dict[str, Any]:
    """The install record of a release folder (resolved: ROOT/current works too); {} when there is none."""
    release = release.resolve()
    try:
        data = json.loads(_record_path(release).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def prune(target: Target) -> list[str]:
    """Keep the newest `keep` releases plus current and previous; drop the records of removed ones."""
    removed = prune_releases(target.root, target.keep)
    for name in removed:
        (target.root / RECORDS / f"{name}.json").unlink(missing_ok=True)
    return removed


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stage(bundle: str | Path, target: Target, how: str) -> Path:
    """Verify (arch, signature, hashes, version order, golden self-test) and stage; `current` untouched."""
    check_arch(bundle)
    release = install_bundle(bundle, target.root, target.pubkey, activate=False)
    write_record(release, installed_at=now_iso(), via=how, health="staged", health_detail=None)
    return release


def check_health(target: Target, release: Path) -> str:
    """Have the running daemon reload ROOT/current (which must be `release`) and wait for its verdict.

    Without a daemon writing ROOT/health.json, verification and the golden self-test at staging were the
    health check. Returns what was checked; raises BundleError when unhealthy.
    """
    daemon = running_daemon(target.health_file)
    if daemon is None:
        stale = Health.load(target.health_file)
        who = f"daemon pid {stale.pid} is not running" if stale else "no daemon configured for this root"
        return f"{who}: verified and self-tested on this device"
    since = time.time()
    request_reload(daemon, target.service)
    h = wait_healthy(target.health_file, release, since, target.health_timeout)
    return f"daemon pid {h.pid} reloaded {h.model_id} {h.model_version} and passed its golden self-test"


def commit(target: Target, release: Path) -> str:
    """Make the staged `release` current; if the daemon does not report it healthy, put current and
    previous back, have the daemon reload the old one, and raise BundleError."""
    before = link_targets(target.root)
    activate_release(target.root, release)
    try:
        detail = check_health(target, release)
    except BundleError as exc:
        restore_links(target.root, *before)
        reload_daemon(target)
        write_record(release, health="failed", health_detail=str(exc))
        raise BundleError(f"rolled back to the previous release: {exc}") from None
    write_record(release, health="ok", health_detail=detail, committed_at=now_iso())
    prune(target)
    return detail


def reload_daemon(target: Target) -> None:
    """Have a running daemon load ROOT/current again (after a rollback); nothing when none runs."""
    daemon = running_daemon(target.health_file)
    if daemon is not None:
        try:
            request_reload(daemon, target.service)
        except BundleError as exc:
            log.warning("%s", exc)


def is_current(root: Path, release: Path) -> bool:
    cur = current_release(root)
    return cur is not None and cur.resolve() == release.resolve()


def install_checked(bundle: str | Path, target: Target, how: str) -> tuple[Path, str]:
    """stage() then commit(): the whole single-device install behind a health check."""
    release = stage(bundle, target, how)
    return release, commit(target, release)


def rollback_device(target: Target) -> tuple[Path, str]:
    """`edgekit device rollback`: current <-> previous, then the running daemon reloads and must report it.

    The switch on disk stands either way; BundleError when a running daemon does not follow (a daemon
    refuses to reload an older version of its model unless started with --allow-downgrade).
    """
    release = rollback(target.root)
    daemon = running_daemon(target.health_file)
    if daemon is None:
        return release, "no daemon configured for this root"
    try:
        return release, check_health(target, release)
    except BundleError as exc:
        raise BundleError(
            f"current -> {release.name}, but the running daemon did not follow: {exc} "
            "(restart it, or run it with --allow-downgrade)"
        ) from None
