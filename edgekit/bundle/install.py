"""Device side: verify a bundle, install it under ROOT/releases/, and flip ROOT/current atomically.

Layout:  ROOT/releases/<model_id>-<version>-<sha8>/   one folder per verified release
         ROOT/current  -> releases/...                 what the daemon loads
         ROOT/previous -> releases/...                 what `rollback` returns to
A symlink is switched by creating it under a temporary name and os.replace()-ing it over the old one,
which is atomic on POSIX: a reader sees the old release or the new one, never neither.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgekit.bundle.manifest import MANIFEST, Manifest, sha256_file
from edgekit.bundle.signing import verify_bundle
from edgekit.errors import BundleError
from edgekit.profiles import TargetProfile

log = logging.getLogger(__name__)

CURRENT, PREVIOUS, RELEASES = "current", "previous", "releases"


def self_test(bundle_dir: str | Path, manifest: Manifest, profile: TargetProfile | None = None) -> None:
    """Golden pairs must reproduce on this device's onnxruntime (sensor and text bundles)."""
    from edgekit.runtime.engine import Engine, create_session

    if manifest.kind == "sensor":
        Engine(bundle_dir, profile, manifest).self_test()
        return
    # text: the golden file holds token ids, so no tokenizer is needed to prove the model
    path = Path(bundle_dir) / manifest.golden.file
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: golden file {manifest.golden.file} is missing")
    sess = create_session(Path(bundle_dir) / manifest.model_file, profile)
    with np.load(path) as g:
        feeds = {i.name: g[i.name] for i in sess.get_inputs() if i.name in g.files}
        expected = g["outputs"]
    missing = [i.name for i in sess.get_inputs() if i.name not in feeds]
    if missing:
        raise BundleError(f"{bundle_dir}: golden file lacks model inputs {', '.join(missing)}")
    got = np.asarray(sess.run([manifest.output.name], feeds)[0], dtype=np.float32)
    gl = manifest.golden
    if got.shape != expected.shape or not np.allclose(got, expected, atol=gl.atol, rtol=gl.rtol):
        diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
        raise BundleError(
            f"{bundle_dir}: self-test failed: golden outputs differ by {diff:.3g} (atol {gl.atol})"
        )


def _bundle_root(folder: Path) -> Path:
    """The folder holding manifest.json: `folder` itself or its single top-level subfolder (tarballs)."""
    if (folder / MANIFEST).is_file():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir()]
    if len(subs) == 1 and (subs[0] / MANIFEST).is_file():
        return subs[0]
    raise BundleError(f"{folder}: no {MANIFEST} found (not a bundle)")


def _extract(tar_path: Path, dest: Path) -> Path:
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            for member in tar.getmembers():
                if not (member.isfile() or member.isdir()):
                    raise BundleError(f"{tar_path}: member {member.name} is not a plain file or folder")
            tar.extractall(dest, filter="data")  # refuses absolute paths and '..' escapes
    except (tarfile.TarError, OSError) as exc:
        # tarfile's "r:*" error lists every method it tried on separate lines: the CLI prints one line
        raise BundleError(f"{tar_path}: cannot unpack ({' '.join(str(exc).split())})") from None
    return _bundle_root(dest)


@contextmanager
def opened_bundle(bundle: str | Path) -> Iterator[Path]:
    """A bundle folder as is, or a bundle tarball unpacked as install does into a temporary folder (removed after)."""
    bundle = Path(bundle)
    if bundle.is_dir() or not bundle.exists():
        yield bundle  # what is missing is reported by whoever reads the manifest, as before
        return
    with tempfile.TemporaryDirectory(prefix="edgekit-bundle-") as tmp:
        yield _extract(bundle, Path(tmp))


def _link(root: Path, name: str, target: str) -> None:
    tmp = root / f".{name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, root / name)


def _target(root: Path, name: str) -> str | None:
    link = root / name
    return os.readlink(link) if link.is_symlink() else None


def install_bundle(
    bundle: str | Path, root: str | Path, public_key: str | Path, profile: TargetProfile | None = None
) -> Path:
    """Verify (signature, hashes, golden self-test) and install; returns the release folder now `current`.

    Any failure raises BundleError and leaves ROOT/current untouched.
    """
    bundle, root = Path(bundle), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / RELEASES).mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".incoming-", dir=root) as tmp:
        if bundle.is_file():
            src = _extract(bundle, Path(tmp) / "unpacked")
        elif bundle.is_dir():
            src = _bundle_root(bundle)
        else:
            raise BundleError(f"{bundle}: no such bundle folder or tarball")
        manifest = verify_bundle(src, public_key)
        self_test(src, manifest, profile)
        # the manifest's hash covers every file's hash: one name per distinct signed release
        name = f"{manifest.model_id}-{manifest.model_version}-{sha256_file(src / MANIFEST)[:8]}"
        release = root / RELEASES / name
        if not release.exists():
            staged = Path(tmp) / "release"
            shutil.copytree(src, staged)
            verify_bundle(staged, public_key)  # the copy, not just the source, is what runs
            os.replace(staged, release)
    rel_target = f"{RELEASES}/{name}"
    old = _target(root, CURRENT)
    if old != rel_target:
        if old is not None:
            _link(root, PREVIOUS, old)
        _link(root, CURRENT, rel_target)
    log.info(
        "installed %s %s: current -> %s (previous -> %s)",
        manifest.model_id,
        manifest.model_version,
        rel_target,
        old,
    )
    return release


def rollback(root: str | Path) -> Path:
    """Swap current and previous; returns the release now current."""
    root = Path(root)
    cur, prev = _target(root, CURRENT), _target(root, PREVIOUS)
    if prev is None:
        raise BundleError(f"{root}: nothing to roll back to (no {PREVIOUS} release)")
    if not (root / prev / MANIFEST).is_file():
        raise BundleError(f"{root}: previous release {prev} is missing or incomplete")
    _link(root, CURRENT, prev)
    if cur is not None:
        _link(root, PREVIOUS, cur)
    log.info("rolled back: current -> %s (previous -> %s)", prev, cur)
    return root / prev


def current_release(root: str | Path) -> Path | None:
    target = _target(Path(root), CURRENT)
    return None if target is None else Path(root) / target
