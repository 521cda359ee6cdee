"""Signature, hashes and golden self-test: any flipped byte, missing or extra file is caught."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgekit.bundle.manifest import MANIFEST, SIGNATURE, Manifest
from edgekit.bundle.signing import keygen, verify_bundle
from edgekit.cli import main
from edgekit.errors import BundleError
from edgekit.runtime.engine import Engine, self_test


def _flip(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def test_intact_bundle_verifies_via_cli(sensor_bundle, keypair, capsys):
    assert main(["verify", str(sensor_bundle), "--pubkey", str(keypair[1])]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["model.onnx", "golden.npz", MANIFEST, SIGNATURE])
def test_one_flipped_byte_in_any_file_is_refused(bundle_copy, keypair, capsys, name):
    _flip(bundle_copy / name)
    expected = {
        "model.onnx": "model.onnx does not match its sha256",
        "golden.npz": "golden.npz does not match its sha256",
        MANIFEST: "signature does not match",
        SIGNATURE: "signature does not match",
    }[name]
    with pytest.raises(BundleError, match=expected):
        verify_bundle(bundle_copy, keypair[1])
    assert main(["verify", str(bundle_copy), "--pubkey", str(keypair[1])]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_missing_extra_and_unsigned(bundle_copy, keypair):
    (bundle_copy / "extra.txt").write_text("not listed")
    with pytest.raises(BundleError, match=r"extra\.txt is not listed"):
        verify_bundle(bundle_copy, keypair[1])
    (bundle_copy / "extra.txt").unlink()
    (bundle_copy / SIGNATURE).unlink()
    with pytest.raises(BundleError, match="unsigned"):
        verify_bundle(bundle_copy, keypair[1])


def test_other_key_is_refused(sensor_bundle, tmp_path):
    _priv, pub = keygen(tmp_path / "other.key")
    with pytest.raises(BundleError, match="signed with another key"):
        verify_bundle(sensor_bundle, pub)


def test_golden_pairs_reproduce_and_catch_a_swapped_model(bundle_copy, sensor_bundle, keypair, resign):
    Engine.from_verified(sensor_bundle, keypair[1]).self_test()
    # a correctly signed bundle whose golden outputs do not match its model (e.g. a wrong build) fails on load
    with np.load(bundle_copy / "golden.npz") as g:
        inputs, outputs = g["inputs"], g["outputs"]
    np.savez(bundle_copy / "golden.npz", inputs=inputs, outputs=outputs + 0.5)
    resign(bundle_copy, keypair[0])
    manifest = verify_bundle(bundle_copy, keypair[1])
    with pytest.raises(BundleError, match="self-test failed"):
        self_test(bundle_copy, manifest)
    with pytest.raises(BundleError, match="self-test failed"):
        Engine.from_verified(bundle_copy, keypair[1])


def test_unsigned_export_fails_verify(sensor_run, tmp_path, keypair, caplog):
    from edgekit.export.pipeline import ExportOptions, export_run

    out = export_run(
        sensor_run, "x86-gateway", tmp_path / "unsigned", key=None, options=ExportOptions(latency_runs=10)
    )
    assert "UNSIGNED" in caplog.text
    assert not (out / SIGNATURE).exists() and Manifest.load(out).model_id
    with pytest.raises(BundleError, match="unsigned"):
        verify_bundle(out, keypair[1])
    shutil.rmtree(out)
