"""The `edgekit-bundle` update module's states (Mender update module protocol v3).

Mender calls `MODULE STATE FILES_DIR`; the payload's files are in FILES_DIR/files/. Mender itself refuses an
artifact for another device type before any state runs.

  ArtifactInstall   verify (arch, signature, hashes, version order, golden self-test) and stage the release
                    under ROOT/releases/; `current` is untouched, the staged name goes to ROOT/.mender-staged
  ArtifactCommit    make it current; when a daemon writes ROOT/health.json, have it reload and wait for it
                    to report the new model healthy, else restore current/previous and fail (Mender then
                    runs ArtifactRollback, ArtifactFailure and Cleanup, and `mender commit` exits non-zero)
  ArtifactRollback  drop a staged release, or go back to the previous one if the new one had become current
  SupportsRollback  Yes; NeedsArtifactReboot: No; other states: nothing to do
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from edgekit.errors import BundleError
from edgekit.flash.deploy import Target, commit, is_current, reload_daemon, stage
from edgekit.runtime.install import RELEASES, link_targets, rollback

log = logging.getLogger(__name__)

STAGED = ".mender-staged"


def _payload(files_dir: Path) -> Path:
    files = sorted(p for p in (files_dir / "files").glob("*") if p.is_file())
    if len(files) != 1:
        raise BundleError(f"{files_dir}/files: expected one edgekit bundle tarball, found {len(files)} files")
    return files[0]


def _staged(root: Path) -> Path | None:
    try:
        name = (root / STAGED).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return root / RELEASES / name if name else None


def _drop_staged(root: Path) -> None:
    (root / STAGED).unlink(missing_ok=True)


def artifact_install(files_dir: Path, target: Target) -> str:
    release = stage(_payload(files_dir), target, how="mender")
    (target.root / STAGED).write_text(release.name + "\n", encoding="utf-8")
    return f"staged {release.name} (current untouched until commit)"


def artifact_commit(target: Target) -> str:
    release = _staged(target.root)
    if release is None:
        raise BundleError(f"{target.root}: no staged release to commit")
    _drop_staged(target.root)  # whatever happens next, ArtifactRollback must not undo it a second time
    return f"{release.name} is current: " + commit(target, release)


def artifact_rollback(target: Target) -> str:
    release = _staged(target.root)
    if release is None:
        return "nothing staged: current untouched"
    _drop_staged(target.root)
    if is_current(target.root, release):  # a commit got as far as the switch, then died
        rollback(target.root)
        reload_daemon(target)
        return f"rolled back from {release.name}"
    if release.name not in {Path(t).name for t in link_targets(target.root) if t}:
        shutil.rmtree(release, ignore_errors=True)
    return f"dropped staged {release.name}: current untouched"


def run_state(state: str, files_dir: str | Path, target: Target) -> str | None:
    """Run one module state; returns what to print on stdout (Mender reads the answer of query states)."""
    files_dir = Path(files_dir)
    if state == "SupportsRollback":
        return "Yes"
    if state == "NeedsArtifactReboot":
        return "No"
    if state == "ArtifactInstall":
        msg = artifact_install(files_dir, target)
    elif state == "ArtifactCommit":
        msg = artifact_commit(target)
    elif state == "ArtifactRollback":
        msg = artifact_rollback(target)
    else:  # Download, ArtifactVerifyReboot, ArtifactFailure, Cleanup...: nothing of ours to do
        return None
    log.info("%s: %s", state, msg)
    return None
