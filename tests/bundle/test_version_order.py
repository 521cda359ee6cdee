"""Semantic-version ordering used to refuse downgrades at install and hot reload."""

from __future__ import annotations

import dataclasses

import pytest

from edgekit.bundle.manifest import Manifest, check_upgrade, version_key
from edgekit.errors import BundleError


def test_version_key_orders_semver() -> None:
    order = [
        "0.1.0-rc.1",
        "0.1.0",
        "0.1.1",
        "0.2.0",
        "0.10.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-beta",
        "1.0.0",
    ]
    assert sorted(order, key=version_key) == order


def test_version_key_refuses_non_semver() -> None:
    with pytest.raises(BundleError, match="not a semantic version"):
        version_key("latest")


def _manifest(model_id: str, version: str) -> Manifest:
    fields = {f.name: None for f in dataclasses.fields(Manifest) if f.default is dataclasses.MISSING}
    fields.update(
        model_id=model_id,
        model_version=version,
        created_at="",
        kind="sensor",
        labels=[],
        threshold=0.5,
        profile="x",
    )
    return Manifest(**fields)


def test_check_upgrade() -> None:
    check_upgrade(None, _manifest("m", "0.1.0"))
    check_upgrade(_manifest("m", "0.1.0"), _manifest("m", "0.2.0"))
    check_upgrade(_manifest("m", "0.2.0"), _manifest("m", "0.2.0"))
    check_upgrade(_manifest("a", "0.9.0"), _manifest("b", "0.1.0"))
    with pytest.raises(BundleError, match=r"version 0\.1\.0.*0\.2\.0"):
        check_upgrade(_manifest("m", "0.2.0"), _manifest("m", "0.1.0"))
    check_upgrade(_manifest("m", "0.2.0"), _manifest("m", "0.1.0"), allow_downgrade=True)
