"""Bundle writing: golden pairs, hashes, signature, tarball, and an all-or-nothing publish.

Everything is built in a temporary folder beside the output and renamed into place at the end, so a
failed gate or a crash leaves no half-written bundle behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgekit.bundle.manifest import Manifest, hash_files
from edgekit.bundle.signing import sign_bundle
from edgekit.errors import BundleError

log = logging.getLogger(__name__)

GOLDEN_COUNT = 8


def tarball_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".tar.gz")


@contextlib.contextmanager
def staging(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """A scratch folder next to `out` (same filesystem, so the final rename is atomic), removed afterwards."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise BundleError(f"{out} already exists (pass overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def golden_indices(y: np.ndarray | None, n: int, count: int = GOLDEN_COUNT) -> np.ndarray:
    """Spread over the split, with anomalies among them when there are labels (both branches get tested)."""
    if y is None or not y.any() or y.all():
        return np.linspace(0, n - 1, min(count, n)).astype(int)
    pos, neg = np.flatnonzero(y), np.flatnonzero(y == 0)
    k = min(count // 2, len(pos))
    pick = np.r_[
        pos[np.linspace(0, len(pos) - 1, k).astype(int)],
        neg[np.linspace(0, len(neg) - 1, count - k).astype(int)],
    ]
    return np.sort(pick)


def write_golden(bundle_dir: Path, manifest: Manifest, **arrays: np.ndarray) -> Path:
    path = bundle_dir / manifest.golden.file
    np.savez(path, **arrays)
    return path


def seal(bundle_dir: Path, manifest: Manifest, private_key: str | Path | None) -> Manifest:
    """Hash every file into the manifest, save it, and sign it (or warn loudly that it is unsigned)."""
    manifest.files = hash_files(bundle_dir)
    manifest.save(bundle_dir)
    if private_key is not None:
        sign_bundle(bundle_dir, private_key)
    else:
        log.warning(
            "no --key given: bundle %s is UNSIGNED; devices verifying with a public key will refuse it",
            manifest.model_id,
        )
    return manifest


def make_tarball(bundle_dir: Path, tar_path: Path, arcname: str) -> Path:
    """gzip tarball of the bundle folder under one top-level folder `arcname`, with stable metadata."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(bundle_dir, arcname=arcname, filter=clean)
    return tar_path


def publish(staged_bundle: Path, out: Path, overwrite: bool = False) -> Path:
    """Tar the staged bundle, then rename bundle and tarball into place."""
    tar_tmp = make_tarball(staged_bundle, staged_bundle.parent / "bundle.tar.gz", out.name)
    old = None
    if out.exists():
        if not overwrite:
            raise BundleError(f"{out} already exists")
        old = staged_bundle.parent / "previous"
        os.replace(out, old)  # kept inside the staging folder, which is removed afterwards
    os.replace(staged_bundle, out)
    os.replace(tar_tmp, tarball_path(out))
    return out
