"""`edgekit device status`: what a device root holds and how the daemon is doing with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.bundle.manifest import Manifest
from edgekit.config import to_dict
from edgekit.errors import BundleError
from edgekit.flash.deploy import read_record
from edgekit.runtime.health import HEALTH_FILE, Health
from edgekit.runtime.install import CURRENT, PREVIOUS, RELEASES
from edgekit.runtime.selection import read_selection


def _selection(release: Path) -> dict[str, Any] | None:
    """The variant chosen on this device and the measurements behind it (`edgekit device tune`), if recorded."""
    try:
        sel = read_selection(release)
    except BundleError as exc:
        return {"error": str(exc)}
    return None if sel is None else to_dict(sel)


def _release(root: Path, link: str) -> dict[str, Any] | None:
    path = root / link
    if not path.is_symlink():
        return None
    folder = path.resolve()
    info: dict[str, Any] = {"release": folder.name}
    try:
        m = Manifest.load(folder)
        info |= {"model_id": m.model_id, "model_version": m.model_version, "profile": m.profile}
    except BundleError as exc:
        info["error"] = str(exc)
    record = read_record(folder)
    info |= {k: record.get(k) for k in ("installed_at", "committed_at", "via", "health", "health_detail")}
    info["selection"] = _selection(folder)
    return info


def device_status(root: str | Path) -> dict[str, Any]:
    """Current and previous release (version, install record, variant choice), kept releases, daemon health."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: no such install root")
    releases = []
    for p in sorted((root / RELEASES).glob("*")):
        if p.is_dir():
            record = read_record(p)
            releases.append(
                {"release": p.name, "health": record.get("health"), "detail": record.get("health_detail")}
            )
    h = Health.load(root / HEALTH_FILE)
    daemon = None
    if h is not None:
        daemon = {
            "pid": h.pid,
            "running": h.alive(),
            "ok": h.ok,
            "serving": Path(h.release).name,
            "model_version": h.model_version,
            "error": h.error,
        }
    return {
        "root": str(root),
        "current": _release(root, CURRENT),
        "previous": _release(root, PREVIOUS),
        "releases": releases,
        "daemon": daemon,
    }


def format_status(status: dict[str, Any]) -> str:
    lines = [f"root      {status['root']}"]
    for key in ("current", "previous"):
        r = status[key]
        if r is None:
            lines.append(f"{key:<9} (none)")
            continue
        lines.append(
            f"{key:<9} {r['release']}  {r.get('model_id')} {r.get('model_version')}  "
            f"installed {r.get('installed_at') or '?'}  health {r.get('health') or '?'}"
        )
        if r.get("health_detail"):
            lines.append(f"          {r['health_detail']}")
        if sel := r.get("selection"):
            lines.append(
                f"          variant {sel.get('variant')} on {sel.get('provider')} (tuned {sel.get('tuned_at')})"
            )
            for m in sel.get("measurements") or []:
                lines.append(f"            {json.dumps(m, sort_keys=True)}")
    d = status["daemon"]
    if d is None:
        lines.append("daemon    no health file (no daemon configured with --health-file ROOT/health.json)")
    else:
        state = "running" if d["running"] else "NOT running"
        verdict = "ok" if d["ok"] else f"last reload failed: {d['error']}"
        lines.append(
            f"daemon    pid {d['pid']} {state}, serving {d['serving']} ({d['model_version']}), {verdict}"
        )
    lines.append(f"releases  {len(status['releases'])} kept:")
    for r in status["releases"]:
        failed = f": {r['detail']}" if r["health"] == "failed" else ""
        lines.append(f"          {r['release']}  health {r['health'] or '?'}{failed}")
    return "\n".join(lines)
