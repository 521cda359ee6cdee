"""Bundle-test helpers: private copies of the shared signed bundle, and a re-signed second release."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgekit.bundle.manifest import Manifest, hash_files
from edgekit.bundle.signing import sign_bundle


@pytest.fixture
def bundle_copy(sensor_bundle, tmp_path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(sensor_bundle, dst)
    return dst


def _resign(bundle: Path, private_key: Path, **changes) -> Manifest:
    """Apply manifest changes, re-hash and re-sign: what a legitimate new release looks like."""
    m = Manifest.load(bundle)
    for k, v in changes.items():
        setattr(m, k, v)
    m.files = hash_files(bundle)
    m.save(bundle)
    sign_bundle(bundle, private_key)
    return m


@pytest.fixture
def second_release(sensor_bundle, tmp_path, keypair) -> Path:
    dst = tmp_path / "bundle-v2"
    shutil.copytree(sensor_bundle, dst)
    _resign(dst, keypair[0], model_version="1.0.1")
    return dst


@pytest.fixture
def resign():
    """resign(bundle, private_key, **manifest_changes) -> Manifest."""
    return _resign
