"""Atomic install under ROOT/releases with current/previous symlinks, rollback, and refusal of bad bundles."""

from __future__ import annotations

import os

import pytest

from edgekit.cli import main
from edgekit.errors import BundleError
from edgekit.runtime.install import current_release, install_bundle, rollback


def _links(root):
    return {n: os.readlink(root / n) if (root / n).is_symlink() else None for n in ("current", "previous")}


def test_install_upgrade_rollback(sensor_bundle, second_release, keypair, tmp_path):
    root = tmp_path / "device"
    v1 = install_bundle(sensor_bundle, root, keypair[1])
    assert v1.parent == root / "releases" and v1.name.startswith("shuttle-student-1.0.0-")
    assert current_release(root) == v1 and _links(root)["previous"] is None
    v2 = install_bundle(second_release, root, keypair[1])
    assert "-1.0.1-" in v2.name
    assert _links(root) == {"current": f"releases/{v2.name}", "previous": f"releases/{v1.name}"}
    assert rollback(root) == v1
    assert _links(root) == {"current": f"releases/{v1.name}", "previous": f"releases/{v2.name}"}
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp links or unpack folders left


def test_install_from_tarball_via_cli(sensor_bundle, keypair, tmp_path, capsys):
    root = tmp_path / "device"
    tar = sensor_bundle.parent / (sensor_bundle.name + ".tar.gz")
    assert main(["install", str(tar), "--root", str(root), "--pubkey", str(keypair[1])]) == 0
    assert (root / "current" / "model.onnx").is_file()
    assert main(["rollback", "--root", str(root)]) != 0  # nothing to roll back to yet
    assert "nothing to roll back to" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["flip-model", "unsigned", "wrong-key"])
def test_bad_bundle_refused_and_current_untouched(sensor_bundle, bundle_copy, keypair, tmp_path, damage):
    root = tmp_path / "device"
    good = install_bundle(sensor_bundle, root, keypair[1])
    before = _links(root)
    pubkey = keypair[1]
    if damage == "flip-model":
        data = bytearray((bundle_copy / "model.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (bundle_copy / "model.onnx").write_bytes(bytes(data))
    elif damage == "unsigned":
        (bundle_copy / "manifest.sig").unlink()
    else:
        from edgekit.bundle.signing import keygen

        pubkey = keygen(tmp_path / "other.key")[1]
    with pytest.raises(BundleError):
        install_bundle(bundle_copy, root, pubkey)
    assert _links(root) == before and current_release(root) == good
    assert sorted(p.name for p in (root / "releases").iterdir()) == [good.name]
