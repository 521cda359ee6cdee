"""Bench fixtures: a bundle exported for a target of another architecture than this host's."""

from __future__ import annotations

import platform

import pytest


@pytest.fixture(scope="session")
def foreign_bundle(tmp_path_factory, sensor_run, keypair):
    """A signed bundle of `sensor_run` for a target this host is not (a Raspberry Pi 4 on x86, else x86)."""
    from edgekit.export.pipeline import ExportOptions, export_run

    target = "x86-gateway" if platform.machine().lower() in ("aarch64", "arm64") else "raspberry-pi-4"
    out = tmp_path_factory.mktemp("bundles") / f"shuttle-{target}"
    return export_run(sensor_run, target, out, key=keypair[0], options=ExportOptions(latency_runs=20))
