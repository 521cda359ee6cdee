"""Mender integration: build `edgekit-bundle` artifacts (host) and write the update module (device).

The artifact is made by the real `mender-artifact write module-image`: payload type `edgekit-bundle`, the
signed bundle tarball as its one file, provides `edgekit-bundle.<model_id>.version` and `.arch`. The
module is a small shell script in /usr/share/mender/modules/v3/ (the Mender client only looks there)
that hands each state to `edgekit mender state` with the device root it was written for; the state
logic is edgekit.flash.update_module.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.bundle.manifest import SIGNATURE, Manifest
from edgekit.errors import BundleError, ConfigError
from edgekit.flash.deploy import Target, bundle_arch
from edgekit.runtime.install import opened_bundle

PAYLOAD_TYPE = "edgekit-bundle"
MODULES_DIR = "/usr/share/mender/modules/v3"


@dataclass(frozen=True)
class ArtifactInfo:
    path: Path
    name: str
    device_types: tuple[str, ...]
    provides: dict[str, str]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"{name} not found on PATH (Debian: apt-get install {name})")
    return path


def bundle_tarball(bundle: Path, tmp: Path) -> Path:
    """The bundle as a tarball: as given, or a bundle folder packed under its own name."""
    if bundle.is_file():
        return bundle
    out = tmp / f"{bundle.name}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(bundle, arcname=bundle.name)
    return out


def build_artifact(
    bundle: str | Path, device_types: list[str], out: str | Path, sign_key: str | Path | None = None
) -> ArtifactInfo:
    """Wrap a signed edgekit bundle (folder or tarball) into a Mender artifact for `device_types`."""
    bundle, out = Path(bundle), Path(out)
    if not device_types:
        raise ConfigError("give at least one --device-type")
    if not bundle.exists():
        raise BundleError(f"{bundle}: no such bundle folder or tarball")
    with opened_bundle(bundle) as folder:
        manifest = Manifest.load(folder)
        if not (folder / SIGNATURE).is_file():
            raise BundleError(
                f"{bundle}: unsigned bundle (no {SIGNATURE}); devices refuse it, so no artifact"
            )
    mid, ver = manifest.model_id, manifest.model_version
    provides = {f"{PAYLOAD_TYPE}.{mid}.version": ver, f"{PAYLOAD_TYPE}.{mid}.arch": bundle_arch(manifest)}
    name = f"{mid}-{ver}"
    with tempfile.TemporaryDirectory(prefix="edgekit-artifact-") as tmp:
        cmd = [_tool("mender-artifact"), "write", "module-image", "-T", PAYLOAD_TYPE, "-n", name]
        for t in device_types:
            cmd += ["-t", t]
        cmd += ["-f", str(bundle_tarball(bundle, Path(tmp))), "--no-default-software-version"]
        for k, v in provides.items():
            cmd += ["--provides", f"{k}:{v}"]
        cmd += ["--clears-provides", f"{PAYLOAD_TYPE}.{mid}.*", "-o", str(out)]
        if sign_key is not None:
            cmd += ["-k", str(sign_key)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise BundleError(f"mender-artifact failed: {tail[-1] if tail else proc.returncode}")
    return ArtifactInfo(out, name, tuple(device_types), provides)


def module_script(target: Target, edgekit: str | None = None) -> str:
    """The update module: every state goes to `edgekit mender state` with this device's settings."""
    cmd = edgekit or shlex.join([sys.executable, "-m", "edgekit"])
    args = ["--root", str(target.root.resolve()), "--pubkey", str(target.pubkey.resolve())]
    args += ["--health-timeout", f"{target.health_timeout:g}", "--keep", str(target.keep)]
    if target.service:
        args += ["--service", target.service]
    return (
        "#!/bin/sh\n"
        f"# Mender update module (protocol v3) for {PAYLOAD_TYPE} payloads, written by `edgekit mender module`.\n"
        "# Mender calls it as: edgekit-bundle STATE FILES_DIR\n"
        f'exec {cmd} mender state "$1" "$2" {shlex.join(args)}\n'
    )


def install_module(target: Target, modules_dir: str | Path = MODULES_DIR, edgekit: str | None = None) -> Path:
    """Write the update module (mode 0755) into `modules_dir`; returns its path."""
    if not target.pubkey.is_file():
        raise ConfigError(f"--pubkey {target.pubkey}: no such file")
    path = Path(modules_dir) / PAYLOAD_TYPE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{PAYLOAD_TYPE}.tmp")
        tmp.write_text(module_script(target, edgekit), encoding="utf-8")
        tmp.chmod(0o755)
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
