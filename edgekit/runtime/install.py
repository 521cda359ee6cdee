"""Device side: verify a bundle, install it under ROOT/releases/, and flip ROOT/current atomically.

Layout:  ROOT/releases/<model_id>-<version>-<sha8>/   one folder per verified release
         ROOT/current  -> releases/...                 what the daemon loads
         ROOT/previous -> releases/...                 what `rollback` returns to
A symlink is switched by creating it under a temporary name and os.replace()-ing it over the old one,
which is atomic on POSIX: a reader sees the old release or the new one, never neither. Files and folders
are fsynced before the switch and ROOT after it, so a power cut cannot leave `current` naming data that
never reached the disk. Installs and rollbacks on one ROOT take an exclusive flock on ROOT itself; whatever
`.incoming-*` folder or temporary link exists while holding it was left by a killed install and is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgekit.bundle.manifest import MANIFEST, SIGNATURE, Manifest, check_upgrade, is_plain_name, sha256_file
from edgekit.bundle.signing import verify_bundle
from edgekit.errors import BundleError
from edgekit.profiles import TargetProfile
from edgekit.runtime.engine import self_test
from edgekit.runtime.tune import tune_release
from edgekit.runtime.unpack import UnpackLimits, check_space, safe_extract

log = logging.getLogger(__name__)

CURRENT, PREVIOUS, RELEASES = "current", "previous", "releases"
INCOMING = ".incoming-"


@contextlib.contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Permission denied, disk full, read-only filesystem...: one line naming what failed, not a traceback."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, shutil.Error):  # copytree-style aggregate: report the first failure
            exc = OSError(str(exc.args[0][0][2]) if exc.args and exc.args[0] else str(exc))
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise BundleError(f"{what}: {exc.strerror or exc}{where}") from None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Exclusive lock on ROOT for one install or rollback; the kernel drops it when the holder dies."""
    with _os_errors(f"cannot use {root}"):
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BundleError(f"{root}: another edgekit install or rollback is running on it") from None
        _remove_stale(root)
        yield
    finally:
        os.close(fd)


def _remove_stale(root: Path) -> None:
    """Leftovers of killed installs (we hold the lock, so no live install owns any of them)."""
    with _os_errors(f"cannot clean leftovers in {root}"):
        for p in root.iterdir():
            if p.name.startswith(INCOMING) and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
                log.info("removed %s left by an interrupted install", p)
            elif p.name.startswith((f".{CURRENT}.", f".{PREVIOUS}.")) and p.name.endswith(".tmp"):
                p.unlink()


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder's fsync makes its entries, e.g. a rename, durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Every file, then every folder bottom-up, so each folder's entries are durable after their data."""
    for dirpath, _dirnames, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            fsync_path(Path(dirpath) / name)
        fsync_path(Path(dirpath))


def _link(root: Path, name: str, target: str) -> None:
    tmp = root / f".{name}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, root / name)


def _target(root: Path, name: str) -> str | None:
    link = root / name
    return os.readlink(link) if link.is_symlink() else None


def current_release(root: str | Path) -> Path | None:
    """The release folder ROOT/current points at, or None before the first install."""
    target = _target(Path(root), CURRENT)
    return None if target is None else Path(root) / target


def _bundle_root(folder: Path) -> Path:
    """The folder holding manifest.json: `folder` itself or its single top-level subfolder (tarballs)."""
    if (folder / MANIFEST).is_file():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir()]
    if len(subs) == 1 and (subs[0] / MANIFEST).is_file():
        return subs[0]
    raise BundleError(f"{folder}: no {MANIFEST} found (not a bundle)")


@contextlib.contextmanager
def opened_bundle(bundle: str | Path, limits: UnpackLimits | None = None) -> Iterator[Path]:
    """A bundle folder as is, or a bundle tarball unpacked as install does (same header checks and caps) into
    a temporary folder removed afterwards."""
    bundle = Path(bundle)
    if bundle.is_dir() or not bundle.exists():
        yield bundle  # what is missing is reported by whoever reads the manifest
        return
    with tempfile.TemporaryDirectory(prefix="edgekit-bundle-") as tmp:
        safe_extract(bundle, Path(tmp), limits or UnpackLimits())
        yield _bundle_root(Path(tmp))


def _installed_manifest(root: Path) -> Manifest | None:
    """What `current` holds, to refuse downgrades; None when nothing (readable) is installed."""
    release = current_release(root)
    if release is None:
        return None
    try:
        return Manifest.load(release)
    except BundleError as exc:
        log.warning("cannot read the installed release's manifest, so no downgrade check: %s", exc)
        return None


def _stage_folder(src: Path, manifest: Manifest, staged: Path, limits: UnpackLimits) -> None:
    """Copy exactly the signed files of a verified bundle folder into `staged`."""
    names = [*sorted(manifest.files), MANIFEST, SIGNATURE]
    names = [n for n in names if (src / n).is_file()]  # an unsigned bundle has no signature file
    check_space(staged.parent, sum((src / n).stat().st_size for n in names), limits, str(src))
    for name in names:
        (staged / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / name, staged / name)


def _release_name(manifest: Manifest, bundle_dir: Path) -> str:
    # the manifest's hash covers every file's hash: one name per distinct signed release
    name = f"{manifest.model_id}-{manifest.model_version}-{sha256_file(bundle_dir / MANIFEST)[:8]}"
    if "/" in name or not is_plain_name(name):
        raise BundleError(f"{bundle_dir}: model_id/model_version make an unsafe folder name {name!r}")
    return name


def install_bundle(
    bundle: str | Path,
    root: str | Path,
    public_key: str | Path,
    profile: TargetProfile | None = None,
    allow_downgrade: bool = False,
    limits: UnpackLimits | None = None,
    variant: str | None = None,
    activate: bool = True,
) -> Path:
    """Verify (signature, hashes, version order, golden self-test) and install; returns the release now `current`.
    The device then measures which variant to run (edgekit.runtime.tune; `variant` forces one).

    With activate=False the verified release is only staged under ROOT/releases/ (`current` untouched) for a
    later activate_release(), e.g. after a fleet manager decided to commit. Any failure raises BundleError
    and leaves ROOT/current untouched.
    """
    bundle, root, limits = Path(bundle), Path(root), limits or UnpackLimits()
    if not (bundle.is_file() or bundle.is_dir()):
        raise BundleError(f"{bundle}: no such bundle folder or tarball")
    with _os_errors(f"cannot create {root / RELEASES}"):
        (root / RELEASES).mkdir(parents=True, exist_ok=True)
    with _locked(root):
        with _os_errors(f"cannot write in {root}"):
            tmp = Path(tempfile.mkdtemp(prefix=INCOMING, dir=root))
        try:
            release = _install_locked(
                bundle, root, tmp, public_key, profile, allow_downgrade, limits, variant, activate
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return release


def _install_locked(
    bundle: Path,
    root: Path,
    tmp: Path,
    public_key: str | Path,
    profile: TargetProfile | None,
    allow_downgrade: bool,
    limits: UnpackLimits,
    variant: str | None = None,
    activate: bool = True,
) -> Path:
    if bundle.is_file():
        with _os_errors(f"cannot unpack {bundle} into {root}"):
            safe_extract(bundle, tmp / "unpacked", limits)
            staged = _bundle_root(tmp / "unpacked")
        manifest = verify_bundle(staged, public_key)
        check_upgrade(_installed_manifest(root), manifest, allow_downgrade)
    else:
        manifest = verify_bundle(_bundle_root(bundle), public_key)
        check_upgrade(_installed_manifest(root), manifest, allow_downgrade)  # before copying anything
        staged = tmp / "release"
        with _os_errors(f"cannot copy {bundle} into {root}"):
            _stage_folder(_bundle_root(bundle), manifest, staged, limits)
        manifest = verify_bundle(staged, public_key)  # the copy, not just the source, is what runs
    name = _release_name(manifest, staged)
    release = root / RELEASES / name
    if release.exists():
        try:  # reuse it only if it is intact (a release from an older edgekit was never fsynced)
            verify_bundle(release, public_key)
            staged = release
        except BundleError as exc:
            log.warning("replacing damaged release %s: %s", release, exc)
    self_test(staged, manifest, profile)
    tune_release(staged, profile, variant=variant, manifest=manifest)
    with _os_errors(f"cannot install into {root}"):
        _fsync_tree(staged)
        if staged != release:
            if release.exists():  # damaged: moved aside (removed with tmp), so the gap is one rename long
                os.replace(release, tmp / "damaged")
            os.replace(staged, release)
        fsync_path(root / RELEASES)
    if not activate:
        log.info("staged %s %s as %s (current untouched)", manifest.model_id, manifest.model_version, release)
        return release
    old = _switch(root, f"{RELEASES}/{name}")
    log.info(
        "installed %s %s: current -> %s (previous -> %s)",
        manifest.model_id,
        manifest.model_version,
        f"{RELEASES}/{name}",
        old,
    )
    return release


def _switch(root: Path, rel_target: str) -> str | None:
    """Point current at rel_target (previous at the old current); returns the old current's target."""
    with _os_errors(f"cannot switch releases in {root}"):
        old = _target(root, CURRENT)
        if old != rel_target:
            if old is not None:
                _link(root, PREVIOUS, old)
            _link(root, CURRENT, rel_target)
        fsync_path(root)
    return old


def activate_release(root: str | Path, release: str | Path) -> Path:
    """Make a staged (already verified) release under ROOT/releases/ current; previous keeps the old one."""
    root = Path(root)
    name = Path(release).name
    if not is_plain_name(name) or not (root / RELEASES / name / MANIFEST).is_file():
        raise BundleError(f"{root}: no staged release {name!r} under {RELEASES}/")
    with _locked(root):
        old = _switch(root, f"{RELEASES}/{name}")
    log.info("activated %s (previous -> %s)", name, old)
    return root / RELEASES / name


def link_targets(root: str | Path) -> tuple[str | None, str | None]:
    """What current and previous point to (relative targets), e.g. to restore them after a failed trial."""
    return _target(Path(root), CURRENT), _target(Path(root), PREVIOUS)


def restore_links(root: str | Path, current: str | None, previous: str | None) -> None:
    """Point current and previous back at what link_targets() returned (a trial activation undone)."""
    root = Path(root)
    with _locked(root), _os_errors(f"cannot switch releases in {root}"):
        for name, target in ((CURRENT, current), (PREVIOUS, previous)):
            if target is None:
                (root / name).unlink(missing_ok=True)
            else:
                _link(root, name, target)
        fsync_path(root)
    log.info("restored current -> %s (previous -> %s)", current, previous)


def prune_releases(root: str | Path, keep: int = 3) -> list[str]:
    """Remove release folders beyond the newest `keep`, never what current or previous points to."""
    root = Path(root)
    removed: list[str] = []
    with _locked(root):
        pinned = {Path(t).name for t in (_target(root, CURRENT), _target(root, PREVIOUS)) if t}
        with _os_errors(f"cannot list {root / RELEASES}"):
            folders = sorted(
                (p for p in (root / RELEASES).iterdir() if p.is_dir() and not p.is_symlink()),
                key=lambda p: p.stat().st_mtime,
                reverse=True,
            )
        for p in folders[max(keep, 0) :]:
            if p.name not in pinned:
                with _os_errors(f"cannot remove {p}"):
                    shutil.rmtree(p)
                removed.append(p.name)
        if removed:
            fsync_path(root / RELEASES)
    if removed:
        log.info("removed old releases: %s", ", ".join(removed))
    return removed


def rollback(root: str | Path) -> Path:
    """Swap current and previous; returns the release now current."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: no such install root")
    with _locked(root):
        cur, prev = _target(root, CURRENT), _target(root, PREVIOUS)
        if prev is None:
            raise BundleError(f"{root}: nothing to roll back to (no {PREVIOUS} release)")
        if not (root / prev / MANIFEST).is_file():
            raise BundleError(f"{root}: previous release {prev} is missing or incomplete")
        with _os_errors(f"cannot switch releases in {root}"):
            _link(root, CURRENT, prev)
            if cur is not None:
                _link(root, PREVIOUS, cur)
            fsync_path(root)
    log.info("rolled back: current -> %s (previous -> %s)", prev, cur)
    return root / prev
