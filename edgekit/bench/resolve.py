"""What every bench run resolves first (model-only and e2e): profile, budget, the report header, host vs target.

A bench report is a JSON document with a version (`REPORT_SCHEMA`); measurement modules fill it and
`edgekit.bench.report` writes it out with its tables and plots.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import edgekit.bench.latency as latency
from edgekit import __version__
from edgekit.bundle.manifest import Manifest
from edgekit.errors import ConfigError
from edgekit.profiles import TargetProfile, host_arch, load_profile

REPORT_SCHEMA = 1


def resolve_profile(bundle: str | Path, name: str | None) -> TargetProfile:
    """The named profile, or the one recorded in the bundle's manifest."""
    if name:
        return load_profile(name)
    manifest = Manifest.load(bundle)
    try:
        return load_profile(manifest.profile)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}; the bundle names profile {manifest.profile!r}, pass --profile NAME"
        ) from None


def resolve_budget(
    profile: TargetProfile, percentile: str | None, budget_ms: float | None
) -> tuple[float, float]:
    """(q, budget_ms): flags override the profile's latency section."""
    q = latency.parse_percentile(percentile or profile.latency.percentile)
    budget = profile.latency.budget_ms if budget_ms is None else budget_ms
    if budget <= 0:
        raise ConfigError(f"--budget-ms must be > 0, got {budget}")
    return q, budget


def profile_record(
    profile: TargetProfile, q: float, budget: float, overridden: bool = False
) -> dict[str, Any]:
    return {
        "name": profile.name,
        "budget_ms": budget,
        "percentile": latency.percentile_key(q),
        "budget_from": "flag" if overridden else "profile",
        "threads": asdict(profile.threads),
        "execution_providers": profile.provider_names,
    }


def report_header(
    mode: str,
    bundle: str,
    profile: TargetProfile,
    q: float,
    budget: float,
    budget_flag: float | None,
    percentile_flag: str | None,
) -> dict[str, Any]:
    """The fields every bench report starts with (model-only and e2e)."""
    return {
        "schema": REPORT_SCHEMA,
        "tool": f"edgekit bench {__version__}",
        "mode": mode,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "bundle": str(bundle),
        "profile": profile_record(
            profile, q, budget, overridden=budget_flag is not None or percentile_flag is not None
        ),
        "target": {
            "arch": profile.arch,
            "host_arch": host_arch(),
            "host_is_target": host_arch() == profile.arch,
        },
    }


def host_not_target(profile: TargetProfile) -> str | None:
    """None when this host has the target's architecture, else what to tell the user (as export does)."""
    host = host_arch()
    if host == profile.arch:
        return None
    return f"bench host is {host}, target is {profile.arch}; run `edgekit bench` on the device"


def mark_host(report: dict[str, Any], profile: TargetProfile) -> None:
    """Put the host-is-not-the-target warning where it is read: the verdict (and its line) and the notes."""
    warning = host_not_target(profile)
    if warning is None:
        return
    report["verdict"]["host_warning"] = warning
    report.setdefault("notes", []).append(
        f"not the target: measured on this {host_arch()} host, not on a {profile.name} ({profile.arch}); "
        "run `edgekit bench` on the device for its numbers"
    )
