"""The bundle manifest: what a device needs to know about a model, and the hash of every file.

Device side: imports only the standard library, numpy-free. Training code imports this, never the reverse.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgekit.config import from_dict, to_dict
from edgekit.errors import BundleError, ConfigError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


@dataclass
class InputSpec:
    name: str = "x"
    dtype: Literal["float32", "float16", "int64"] = "float32"
    # None marks a dynamic axis (batch; sequence length for text).
    shape: list[int | None] = field(default_factory=list)


@dataclass
class OutputSpec:
    name: str = "logits"
    # softmax: score = softmax(output)[:, 1] (anomaly probability); identity: score = output[:, 0].
    score: Literal["softmax", "identity"] = "softmax"


@dataclass
class WindowSpec:
    length: int
    hop: int
    channels: list[str]


@dataclass
class Normalization:
    mean: list[float]
    std: list[float]


@dataclass
class Golden:
    """Inputs and expected outputs for the on-device self-test."""

    file: str = "golden.npz"
    atol: float = 1e-4
    rtol: float = 1e-3


@dataclass
class TextSpec:
    tokenizer: str = "tokenizer.json"
    max_length: int = 64


@dataclass
class Manifest:
    model_id: str
    model_version: str
    created_at: str
    kind: Literal["sensor", "text"]
    input: InputSpec
    output: OutputSpec
    labels: list[str]
    threshold: float
    profile: str
    schema_version: int = SCHEMA_VERSION
    model_file: str = "model.onnx"
    files: dict[str, str] = field(default_factory=dict)
    window: WindowSpec | None = None
    normalization: Normalization | None = None
    text: TextSpec | None = None
    golden: Golden = field(default_factory=Golden)
    quantization: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(to_dict(self), indent=2, sort_keys=True)

    def save(self, bundle_dir: str | Path) -> Path:
        path = Path(bundle_dir) / MANIFEST
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, bundle_dir: str | Path) -> Manifest:
        path = Path(bundle_dir) / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BundleError(f"{bundle_dir}: no {MANIFEST} (not a bundle)") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise BundleError(f"{path}: must hold a JSON object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise BundleError(
                f"{path}: schema_version {data.get('schema_version')!r} is not supported (expected {SCHEMA_VERSION})"
            )
        try:
            return from_dict(cls, data, where=str(path))
        except ConfigError as exc:
            raise BundleError(str(exc)) from None


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_files(bundle_dir: str | Path) -> dict[str, str]:
    """sha256 of every file in the bundle except the manifest and its signature."""
    root = Path(bundle_dir)
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in (MANIFEST, SIGNATURE)
    }


def check_hashes(bundle_dir: str | Path, manifest: Manifest) -> None:
    """Every listed file present with its hash, and no unlisted file; raises BundleError naming the file."""
    actual = hash_files(bundle_dir)
    if manifest.model_file not in manifest.files:
        raise BundleError(f"{bundle_dir}: manifest does not list the model file {manifest.model_file}")
    for name, digest in sorted(manifest.files.items()):
        if name not in actual:
            raise BundleError(f"{bundle_dir}: file {name} listed in the manifest is missing")
        if actual[name] != digest:
            raise BundleError(
                f"{bundle_dir}: file {name} does not match its sha256 in the manifest (modified or corrupted)"
            )
    extra = sorted(set(actual) - set(manifest.files))
    if extra:
        raise BundleError(f"{bundle_dir}: file {extra[0]} is not listed in the manifest")


_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def version_key(version: str) -> tuple:
    """Sort key of a semantic version (MAJOR.MINOR.PATCH[-pre][+build]); a pre-release sorts before its release.

    Raises BundleError for a version that is not semantic, since order cannot be decided then.
    """
    m = _SEMVER.match(version.strip())
    if m is None:
        raise BundleError(f"model_version {version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    major, minor, patch, pre = m.groups()
    # A release (no pre-release part) sorts after every pre-release of the same numbers (semver 11.3).
    pre_key: tuple = (
        (1,) if pre is None else (0, *((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")))
    )
    return (int(major), int(minor), int(patch), pre_key)


def check_upgrade(current: Manifest | None, new: Manifest, allow_downgrade: bool = False) -> None:
    """Refuse installing or loading `new` over `current` when it is an older version of the same model.

    Different model ids are not ordered (a new model replaces another freely); the same version is allowed
    (re-install, reload). Raises BundleError naming both versions unless `allow_downgrade`.
    """
    if current is None or allow_downgrade or current.model_id != new.model_id:
        return
    if version_key(new.model_version) < version_key(current.model_version):
        raise BundleError(
            f"refusing downgrade of {new.model_id}: bundle is version {new.model_version}, "
            f"the running/installed one is {current.model_version} (pass --allow-downgrade to force it)"
        )
