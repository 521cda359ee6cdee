"""install/rollback under faults, for real: downgrades, SIGKILLed installs, a second install racing the first,
a full disk, no permission, and fsync ordering around the `current` switch."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from edgekit.bundle.manifest import Manifest
from edgekit.bundle.signing import verify_bundle
from edgekit.cli import main
from edgekit.errors import BundleError
from edgekit.runtime.install import current_release, install_bundle, rollback
from edgekit.runtime.unpack import UnpackLimits

EDGEKIT = [sys.executable, "-m", "edgekit"]


def _links(root: Path) -> dict[str, str | None]:
    return {n: os.readlink(root / n) if (root / n).is_symlink() else None for n in ("current", "previous")}


def _incoming(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name.startswith(".incoming-")] if root.is_dir() else []


def _assert_one_line(stderr: str, *needles: str) -> None:
    err = stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_downgrade_refused_unless_allowed(sensor_bundle, second_release, keypair, tmp_path, capsys):
    root = tmp_path / "device"
    v2 = install_bundle(second_release, root, keypair[1])
    with pytest.raises(BundleError, match=r"bundle is version 1\.0\.0, the running/installed one is 1\.0\.1"):
        install_bundle(sensor_bundle, root, keypair[1])
    tar = sensor_bundle.parent / (sensor_bundle.name + ".tar.gz")
    args = ["install", str(tar), "--root", str(root), "--pubkey", str(keypair[1])]
    assert main(args) == 2  # the replayed tarball too
    _assert_one_line(capsys.readouterr().err, "refusing downgrade", "1.0.0", "1.0.1", "--allow-downgrade")
    assert current_release(root) == v2 and _links(root)["previous"] is None
    assert main([*args, "--allow-downgrade"]) == 0
    assert Manifest.load(current_release(root)).model_version == "1.0.0"
    assert rollback(root) == v2  # rollback to the newer one is always allowed; it is not an install
    install_bundle(second_release, root, keypair[1])  # re-installing the same version is fine


def test_damaged_release_folder_is_replaced_not_reused(sensor_bundle, second_release, keypair, tmp_path):
    """A release folder whose data never reached the disk (power cut, older edgekit without fsync) is
    re-staged from the bundle instead of being pointed at again."""
    root = tmp_path / "device"
    v1 = install_bundle(sensor_bundle, root, keypair[1])
    install_bundle(second_release, root, keypair[1])
    os.truncate(v1 / "model.onnx", 0)
    again = install_bundle(sensor_bundle, root, keypair[1], allow_downgrade=True)
    assert again == v1 == current_release(root)
    verify_bundle(again, keypair[1])  # the old code pointed `current` at the empty model
    assert not _incoming(root)


@pytest.fixture
def slow_release(sensor_bundle, keypair, resign, make_tarball, tmp_path) -> Path:
    """A signed release with a 24 MiB payload: unpacking, hashing and copying it keep an install busy."""
    bundle = tmp_path / "big" / sensor_bundle.name
    shutil.copytree(sensor_bundle, bundle)
    with open(bundle / "payload.bin", "wb") as fh:
        fh.write(os.urandom(1 << 20) * 24)
    resign(bundle, keypair[0], model_version="1.1.0")
    return make_tarball(bundle, tmp_path / "big.tar.gz")


def _start_install(bundle: Path, root: Path, pubkey: Path) -> subprocess.Popen:
    cmd = [*EDGEKIT, "install", str(bundle), "--root", str(root), "--pubkey", str(pubkey)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop_mid_install(bundle: Path, root: Path, pubkey: Path) -> subprocess.Popen:
    """A real `edgekit install` process, SIGSTOPped as soon as its .incoming folder exists."""
    proc = _start_install(bundle, root, pubkey)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if _incoming(root):
            os.kill(proc.pid, signal.SIGSTOP)
            return proc
        time.sleep(0.0005)
    proc.kill()
    raise AssertionError(f"install never showed an .incoming folder (rc {proc.poll()}): {proc.communicate()}")


def test_sigkilled_install_leaves_current_and_is_cleaned_next_time(
    sensor_bundle, slow_release, keypair, tmp_path
):
    root = tmp_path / "device"
    good = install_bundle(sensor_bundle, root, keypair[1])
    proc = _stop_mid_install(slow_release, root, keypair[1])
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    leftovers = _incoming(root)
    assert leftovers and current_release(root) == good  # killed mid-way; `current` never moved
    new = install_bundle(slow_release, root, keypair[1])
    assert not _incoming(root), "the next install must remove what the killed one left"
    assert current_release(root) == new and (new / "payload.bin").stat().st_size == 24 << 20


def test_second_install_while_one_runs_is_refused_and_leaves_its_folder(
    sensor_bundle, slow_release, keypair, tmp_path
):
    root = tmp_path / "device"
    install_bundle(sensor_bundle, root, keypair[1])
    proc = _stop_mid_install(slow_release, root, keypair[1])
    try:
        live = _incoming(root)
        with pytest.raises(BundleError, match="another edgekit install or rollback is running"):
            install_bundle(sensor_bundle, root, keypair[1])
        with pytest.raises(BundleError, match="another edgekit install or rollback is running"):
            rollback(root)
        assert _incoming(root) == live  # a live install's folder is not stale
    finally:
        proc.send_signal(signal.SIGCONT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert Manifest.load(current_release(root)).model_version == "1.1.0" and not _incoming(root)


def _limit_file_size(nbytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return apply


def test_file_size_limit_during_copy_is_one_line(sensor_bundle, second_release, keypair, tmp_path):
    """RLIMIT_FSIZE makes the kernel fail the copy's write() with EFBIG: a real write error, no root needed."""
    root = tmp_path / "device"
    good = install_bundle(sensor_bundle, root, keypair[1])
    limit = (second_release / "model.onnx").stat().st_size // 2
    cmd = [*EDGEKIT, "install", str(second_release), "--root", str(root), "--pubkey", str(keypair[1])]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size(limit)
    )
    assert proc.returncode == 2
    _assert_one_line(proc.stderr, "File too large")
    assert current_release(root) == good and not _incoming(root)


@contextlib.contextmanager
def _tmpfs(path: Path, size: int):
    path.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.decode().strip()}); see the RLIMIT_FSIZE test")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounting a tmpfs needs root")
def test_disk_full_on_a_real_tmpfs(sensor_bundle, second_release, keypair, tmp_path, capsys):
    """A small real tmpfs. Nearly full: the free-space check refuses before writing anything. With the
    reserve off and room for the bytes but not the 4 KiB pages they take, the copy's own write() gets ENOSPC.
    Both are one line, and `current` is untouched."""
    with _tmpfs(tmp_path / "disk", 4 << 20) as disk:
        root = disk / "device"
        no_reserve = UnpackLimits(reserve_bytes=0)
        good = install_bundle(sensor_bundle, root, keypair[1], limits=no_reserve)
        ballast = disk / "ballast"

        def leave_free(nbytes: int) -> None:
            ballast.unlink(missing_ok=True)
            ballast.write_bytes(b"\1" * (shutil.disk_usage(disk).free - nbytes))
            assert shutil.disk_usage(disk).free == nbytes

        leave_free(64 << 10)
        assert main(["install", str(second_release), "--root", str(root), "--pubkey", str(keypair[1])]) == 2
        _assert_one_line(capsys.readouterr().err, "free", "nothing was installed")
        assert current_release(root) == good and not _incoming(root)

        sizes = [p.stat().st_size for p in second_release.iterdir()]
        page = 4096
        room = -(-sum(sizes) // page) * page  # enough bytes for the check, fewer pages than the files take
        assert room < sum(-(-n // page) * page for n in sizes)
        leave_free(room)
        with pytest.raises(BundleError, match="No space left on device"):
            install_bundle(second_release, root, keypair[1], limits=no_reserve)
        assert current_release(root) == good and not _incoming(root)
        assert main(["install", str(second_release), "--root", str(root), "--pubkey", str(keypair[1])]) == 2
        _assert_one_line(capsys.readouterr().err)


def _world_readable_copy(*paths: Path) -> Path:
    """pytest's tmp dirs are private to root; `nobody` needs to read the bundle and key."""
    shared = Path(tempfile.mkdtemp(prefix="edgekit-perm-"))
    for p in paths:
        (shutil.copytree if p.is_dir() else shutil.copy)(p, shared / p.name)
    for dirpath, _dirs, files in os.walk(shared):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(Path(dirpath) / f, 0o644)
    return shared


def _as_unprivileged(cmd: list[str]) -> list[str]:
    """As root, drop to nobody (root ignores file modes); as a normal user, the read-only modes already bite."""
    if os.geteuid() != 0:
        return cmd
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot drop privileges")
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd]


def test_install_and_rollback_without_permission_are_one_line(sensor_bundle, second_release, keypair):
    shared = _world_readable_copy(sensor_bundle, second_release, keypair[1])
    try:
        root = shared / "device"
        install_bundle(shared / sensor_bundle.name, root, shared / keypair[1].name)
        install_bundle(shared / second_release.name, root, shared / keypair[1].name)
        before = _links(root)
        home = shared / "home"  # onnxruntime writes a telemetry id under $HOME, and warns when it cannot
        home.mkdir(mode=0o777)
        home.chmod(0o777)
        env = {**os.environ, "HOME": str(home)}
        for dirpath, _dirs, _files in os.walk(root):
            os.chmod(dirpath, 0o555)  # the device root belongs to someone else
        for args, needle in (
            (["install", str(shared / second_release.name)], "Permission denied"),  # a re-install
            (["rollback"], "Permission denied"),
        ):
            if args[0] == "install":
                args += ["--pubkey", str(shared / keypair[1].name)]
            cmd = _as_unprivileged([*EDGEKIT, *args, "--root", str(root)])
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=shared, env=env)
            assert proc.returncode == 2, proc.stderr
            _assert_one_line(proc.stderr, needle, str(root))
        nested = _as_unprivileged([*EDGEKIT, "rollback", "--root", str(root / "new" / "root")])
        proc = subprocess.run(nested, capture_output=True, text=True, timeout=120, cwd=shared, env=env)
        assert proc.returncode == 2
        _assert_one_line(proc.stderr, "no such install root")
        assert _links(root) == before and not _incoming(root)
    finally:
        for dirpath, _dirs, _files in os.walk(shared):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(shared)


def test_fsync_before_the_switch_and_root_after(
    sensor_bundle, second_release, keypair, tmp_path, monkeypatch, make_tarball
):
    """os.fsync and os.replace are wrapped to record the real path of each call, then call the real ones."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst, **kw) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    root = tmp_path / "device"
    release = install_bundle(make_tarball(sensor_bundle, tmp_path / "b.tar.gz"), root, keypair[1])

    files = {p.name for p in release.rglob("*") if p.is_file()}
    # selection.json: the device's measured variant choice (edgekit.runtime.tune), written before the switch too
    assert files == {"manifest.json", "manifest.sig", "model.onnx", "golden.npz", "selection.json"}
    moved = events.index(("replace", str(release)))  # the staged folder renamed into releases/
    flip = events.index(("replace", str(root / "current")))
    synced = [(i, Path(path)) for i, (kind, path) in enumerate(events) if kind == "fsync"]
    staged = {path.name: i for i, path in synced if "/.incoming-" in str(path)}
    assert files <= set(staged), f"not fsynced before the switch: {files - set(staged)}"
    assert staged[sensor_bundle.name] > max(staged[f] for f in files)  # the folder after its files
    assert max(staged.values()) < moved  # all durable before the release appears under releases/
    assert [i for i, path in synced if path == root / "releases"] == [
        moved + 1
    ]  # the new name, before the flip
    assert [path for i, path in synced if i > flip] == [root]  # the root folder after the flip

    install_bundle(second_release, root, keypair[1])
    events.clear()
    rollback(root)
    flip = events.index(("replace", str(root / "current")))
    assert [Path(path) for kind, path in events[flip:] if kind == "fsync"] == [root]
