"""Hostile bundles: decompression bombs, member floods, links and escaping names in a tarball, forged huge
manifests, and signed manifests naming files outside the bundle. Each is refused in one line before it can
write (or read) anything large, and `current` is untouched."""

from __future__ import annotations

import os
import tarfile
import tracemalloc

import pytest

from edgekit.bundle.manifest import MANIFEST, Manifest, hash_files
from edgekit.bundle.signing import sign_bundle, verify_bundle
from edgekit.cli import main
from edgekit.errors import BundleError
from edgekit.runtime.install import current_release, install_bundle
from edgekit.runtime.unpack import MIB, UnpackLimits


def _written_bytes() -> int:
    """Bytes this process has passed to write() so far (Linux /proc accounting, any filesystem)."""
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("wchar:"))


def _tree_bytes(root) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_gzip_bomb_refused_from_headers_before_writing(gzip_bomb, sensor_bundle, keypair, tmp_path, capsys):
    assert gzip_bomb.stat().st_size < 3 * MIB  # the bomb: ~2.1 MB expanding to 2 GiB
    root = tmp_path / "device"
    good = install_bundle(sensor_bundle, root, keypair[1])
    before = _written_bytes()
    with pytest.raises(BundleError, match="refused before writing"):
        install_bundle(gzip_bomb, root, keypair[1])
    assert _written_bytes() - before < MIB  # the old code wrote all 2 GiB before refusing
    assert current_release(root) == good
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    assert _tree_bytes(root) < MIB
    assert main(["install", str(gzip_bomb), "--root", str(root), "--pubkey", str(keypair[1])]) == 2
    _one_line_error(capsys, "unpacks to more than 512 MiB", "pad.bin")


def test_cap_is_configurable_and_a_real_bundle_fits(sensor_bundle, keypair, tmp_path, capsys, make_tarball):
    tar = make_tarball(sensor_bundle, tmp_path / "b.tar.gz")
    root = tmp_path / "device"
    with pytest.raises(BundleError, match="more than 1024 bytes"):
        install_bundle(tar, root, keypair[1], limits=UnpackLimits(max_bytes=1024))
    args = ["install", str(tar), "--root", str(root), "--pubkey", str(keypair[1])]
    assert main([*args, "--max-unpacked-mb", "0"]) == 2
    _one_line_error(capsys, "--max-unpacked-mb must be at least 1")
    assert main([*args, "--max-unpacked-mb", "1"]) == 0
    assert (root / "current" / "model.onnx").is_file()


def test_member_flood_refused(sensor_bundle, keypair, tmp_path, capsys, make_tarball):
    flood = [(tarfile.TarInfo(f"{sensor_bundle.name}/f{i}"), b"") for i in range(1001)]
    tar = make_tarball(sensor_bundle, tmp_path / "flood.tar.gz", flood)
    root = tmp_path / "device"
    assert main(["install", str(tar), "--root", str(root), "--pubkey", str(keypair[1])]) == 2
    _one_line_error(capsys, "more than 1000 members")
    assert not (root / "current").exists() and _tree_bytes(root) == 0


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("shuttle-x86/evil", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (_member("shuttle-x86/hard", tarfile.LNKTYPE, "shuttle-x86/model.onnx"), "is a link"),
        (_member("shuttle-x86/fifo", tarfile.FIFOTYPE), "not a plain file or folder"),
        (_member("shuttle-x86/dev", tarfile.CHRTYPE), "not a plain file or folder"),
        (_member("/tmp/edgekit-absolute"), "not a plain relative path"),
        (_member("shuttle-x86/../../escaped"), "not a plain relative path"),
    ],
    ids=["symlink", "hardlink", "fifo", "device", "absolute", "dotdot"],
)
def test_links_devices_and_escaping_names_refused(
    sensor_bundle, keypair, tmp_path, capsys, make_tarball, member, message
):
    tar = make_tarball(sensor_bundle, tmp_path / "evil.tar.gz", [(member, b"")])
    root = tmp_path / "work" / "device"
    assert main(["install", str(tar), "--root", str(root), "--pubkey", str(keypair[1])]) == 2
    _one_line_error(capsys, message, "refused")
    assert not (tmp_path / "work" / "escaped").exists() and not (root / "current").exists()
    assert _tree_bytes(root) == 0  # refused from the headers: nothing was unpacked


def test_forged_huge_manifest_is_not_read_into_memory(bundle_copy, keypair, capsys):
    # sparse: 256 MiB of apparent size, no disk used; the old code read all of it before the signature check
    os.truncate(bundle_copy / MANIFEST, 256 * MIB)
    tracemalloc.start()
    try:
        with pytest.raises(BundleError, match="over the 1048576-byte limit"):
            verify_bundle(bundle_copy, keypair[1])
        with pytest.raises(BundleError, match="over the 1048576-byte limit"):
            Manifest.load(bundle_copy)  # what a daemon without --pubkey reads
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MIB
    assert main(["verify", str(bundle_copy), "--pubkey", str(keypair[1])]) == 2
    _one_line_error(capsys, "over the 1048576-byte limit")


def test_deeply_nested_unsigned_manifest_is_one_line(bundle_copy):
    (bundle_copy / MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleError, match="not valid JSON"):
        Manifest.load(bundle_copy)


def _sign_edited(bundle, private_key, edit) -> None:
    """Re-hash, apply `edit` to the manifest, save and sign: a validly signed but hostile release."""
    m = Manifest.load(bundle)
    m.files = hash_files(bundle)
    edit(m)
    m.save(bundle)
    sign_bundle(bundle, private_key)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("golden.file", "../g.npz"),
        ("golden.file", "/tmp/g.npz"),
        ("model_file", "../model.onnx"),
        ("model_file", "./model.onnx"),
        ("files", "sub/../../x"),
    ],
)
def test_signed_file_names_outside_the_bundle_fail_verify(
    bundle_copy, sensor_bundle, keypair, tmp_path, capsys, field, value
):
    if not value.startswith("/"):  # the file really exists where the name points: only the name check helps
        src = bundle_copy / ("golden.npz" if field == "golden.file" else "model.onnx")
        os.makedirs(os.path.dirname(os.path.normpath(bundle_copy / value)), exist_ok=True)
        (tmp_path / "outside").write_bytes(src.read_bytes())
        os.replace(tmp_path / "outside", os.path.normpath(bundle_copy / value))

    def edit(m: Manifest) -> None:
        if field == "golden.file":
            m.golden.file = value
        elif field == "model_file":
            m.files[value] = m.files["model.onnx"]
            m.model_file = value
        else:
            m.files[value] = m.files["model.onnx"]

    _sign_edited(bundle_copy, keypair[0], edit)
    with pytest.raises(BundleError, match="not a plain relative file name inside the bundle"):
        verify_bundle(bundle_copy, keypair[1])
    root = tmp_path / "device"
    good = install_bundle(sensor_bundle, root, keypair[1])
    assert main(["install", str(bundle_copy), "--root", str(root), "--pubkey", str(keypair[1])]) == 2
    _one_line_error(capsys, "not a plain relative file name", value)
    assert current_release(root) == good
    assert main(["verify", str(bundle_copy), "--pubkey", str(keypair[1])]) == 2
    _one_line_error(capsys, "not a plain relative file name")


def test_golden_file_must_be_signed(bundle_copy, keypair):
    def edit(m: Manifest) -> None:
        m.golden.file = "golden2.npz"  # present, but outside the signed list of files

    _sign_edited(bundle_copy, keypair[0], edit)
    (bundle_copy / "golden2.npz").write_bytes((bundle_copy / "golden.npz").read_bytes())
    with pytest.raises(BundleError, match=r"does not list its golden\.file golden2\.npz"):
        verify_bundle(bundle_copy, keypair[1])
