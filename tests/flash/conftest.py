"""Flashing fixtures: releases of the shared bundle, a device root with a real daemon, the real Mender client."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgekit.bench.rig import DaemonProcess
from edgekit.bundle.signing import keygen
from edgekit.runtime.install import install_bundle

REPO = Path(__file__).resolve().parents[2]
# The edgekit these tests run is this checkout's, also when the Mender client or sshd starts it.
EDGEKIT = f"env PYTHONPATH={REPO} {sys.executable} -m edgekit"
MODULE = Path("/usr/share/mender/modules/v3/edgekit-bundle")
DEVICE_TYPE = "edgekit-test-gw"


@pytest.fixture(scope="session")
def make_release(resign):
    """make_release(src, out, private_key, **manifest_changes) -> the re-signed folder (and its .tar.gz)."""

    def release(src: Path, out: Path, key: Path, **changes: object) -> Path:
        shutil.copytree(src, out)
        resign(out, key, **changes)
        with tarfile.open(out.with_name(out.name + ".tar.gz"), "w:gz") as tar:
            tar.add(out, arcname=out.name)
        return out

    return release


@pytest.fixture
def releases(sensor_bundle, keypair, make_release, tmp_path) -> dict[str, Path]:
    """v1 (1.0.0, the shared bundle) and v2 (1.0.1, same model) folders, signed with `keypair`."""
    return {
        "v1": make_release(sensor_bundle, tmp_path / "rel" / "v1", keypair[0], model_version="1.0.0"),
        "v2": make_release(sensor_bundle, tmp_path / "rel" / "v2", keypair[0], model_version="1.0.1"),
    }


@pytest.fixture
def other_key(tmp_path) -> tuple[Path, Path]:
    d = tmp_path / "other-key"
    d.mkdir()
    return keygen(d / "other.key", d / "other.pub")


@dataclass
class Device:
    root: Path
    pubkey: Path
    daemon: DaemonProcess | None = None

    @property
    def current(self) -> str:
        return (self.root / "current").resolve().name

    def start_daemon(self, broker_url: str, pubkey: Path | None = None, *extra: str) -> DaemonProcess:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        args = [
            "--pubkey",
            str(pubkey or self.pubkey),
            "--health-file",
            str(self.root / "health.json"),
            *extra,
        ]
        self.daemon = DaemonProcess(self.root / "current", broker_url, "gw-1", args, env=env).start()
        return self.daemon


@pytest.fixture
def device(releases, keypair, tmp_path):
    """A device root with v1 installed (current), its daemon not started yet; stopped afterwards."""
    dev = Device(tmp_path / "device", Path(keypair[1]))
    install_bundle(releases["v1"], dev.root, dev.pubkey)
    yield dev
    if dev.daemon is not None:
        dev.daemon.stop()


@dataclass
class Mender:
    """The real Mender client in standalone mode, its state in a temporary folder."""

    data: Path
    config: Path
    root: Path
    module: Path = MODULE
    device_type: str = DEVICE_TYPE

    def bind(self, pubkey: Path, health_timeout: float = 20) -> Path:
        """(Re)write the update module for the device root with this key and health timeout."""
        from edgekit.flash.deploy import Target
        from edgekit.flash.mender import install_module

        return install_module(
            Target(self.root, pubkey, health_timeout=health_timeout), MODULE.parent, EDGEKIT
        )

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        cmd = ["mender", "--config", str(self.config), "--data", str(self.data), "--no-syslog", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def mender(tmp_path, device) -> Mender:
    """Mender standalone with the edgekit-bundle module bound to `device` (skips without the Debian packages).

    The client reads update modules only from /usr/share/mender/modules/v3 and the artifact name only from
    /etc/mender/artifact_info, so those two are written (and the module removed afterwards).
    """
    for tool in ("mender", "mender-artifact"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (Debian: apt-get install mender-client mender-artifact)")
    if not os.access(MODULE.parent, os.W_OK) and not os.access(MODULE.parent.parent, os.W_OK):
        pytest.skip(f"cannot write the update module into {MODULE.parent} (not root)")
    info = Path("/etc/mender/artifact_info")
    if not info.exists():
        info.parent.mkdir(parents=True, exist_ok=True)
        info.write_text("artifact_name=factory\n", encoding="utf-8")
    data = tmp_path / "mender-data"
    data.mkdir()
    (data / "device_type").write_text(f"device_type={DEVICE_TYPE}\n", encoding="utf-8")
    config = tmp_path / "mender.conf"
    config.write_text(f'{{"DeviceTypeFile": "{data / "device_type"}"}}\n', encoding="utf-8")
    m = Mender(data, config, device.root)
    m.bind(device.pubkey)
    yield m
    MODULE.unlink(missing_ok=True)
