"""The bundle manifest: what a device needs to know about a model, and the hash of every file.

Device side: imports only the standard library, numpy-free. Training code imports this, never the reverse.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from edgekit.config import from_dict, to_dict
from edgekit.errors import BundleError, ConfigError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
# Written by the device into an installed release (which variant/provider it measured fastest); not part of
# the signed bundle, so never hashed. It only chooses among signed variants, each of which is self-tested.
SELECTION = "selection.json"
# A real manifest is a few KB; the cap is checked before reading, so a forged huge one never reaches memory.
MAX_MANIFEST_BYTES = 1 << 20


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
    # K-class softmax: score = 1 - P(labels[normal_index]); None: P(class 1) for two classes, else the top
    # class's probability (no class is normal)
    normal_index: int | None = None


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
class Variant:
    """One conversion of the model a bundle carries (its own model file, golden pairs and figures)."""

    name: str
    mode: str  # quantization mode: fp32, fp16, int8-dynamic, int8-static-qdq
    model_file: str
    golden: Golden
    threshold: float
    quantization: dict[str, Any] = field(default_factory=dict)
    # this variant's test quality, parity, gate record and op check
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Cascade:
    """Student first, teacher for the hard cases: the escalation rule chosen on validation.

    A window escalates when the student's confidence < `threshold`, or when the student assigns it to (or
    finds it close to) one of `severe_classes`. `mode` local: the bundle carries the teacher (`teacher`,
    a variant with its own model file and golden pairs) and the daemon runs it; remote: only the rule,
    escalated windows go to the escalations topic for a teacher service.
    """

    mode: Literal["local", "remote"] = "remote"
    # max_prob, margin (top-1 minus top-2 probability), neg_entropy (classifiers; higher = surer);
    # score_distance (label-free scores: |score - threshold|)
    measure: Literal["max_prob", "margin", "neg_entropy", "score_distance"] = "max_prob"
    threshold: float = 0.0
    severe_classes: list[str] = field(default_factory=list)
    # a window whose probability of a severe class is at least this escalates even when not its top class
    severe_min_probability: float = 0.2
    teacher: Variant | None = None
    # the validation figures behind the choice (escalation rate, student/teacher/cascade quality, target)
    validation: dict[str, Any] = field(default_factory=dict)


@dataclass
class Histogram:
    """A reference distribution: interior bin edges, strictly increasing, and the fraction of the reference
    data in each bin: (-inf, edges[0]), [edges[0], edges[1]), ..., [edges[-1], inf).

    The edges are quantiles (deciles) of the reference data; ties (a value held by many readings) merge
    quantiles, so the bins are stored with their real fractions rather than assumed equal.
    """

    edges: list[float]
    fractions: list[float]

    def check(self, where: str) -> None:
        e, f = self.edges, self.fractions
        if len(f) != len(e) + 1 or any(b <= a for a, b in itertools.pairwise(e)) or any(x < 0 for x in f):
            raise BundleError(
                f"{where}: {len(e)} strictly increasing edges need {len(e) + 1} fractions >= 0 (got {len(f)})"
            )
        if not math.isclose(sum(f), 1.0, abs_tol=1e-6) or not all(map(math.isfinite, e)):
            raise BundleError(f"{where}: finite edges and fractions summing to 1 expected")


@dataclass
class ChannelReference:
    """One input channel in training, in raw (un-normalised) units: what the daemon's readings are."""

    name: str
    min: float
    max: float
    mean: float
    std: float
    bins: Histogram


@dataclass
class Reference:
    """Reference statistics from the training run for drift monitoring on the device (runtime.drift).

    `channels` follow window.channels; `score` is the distribution of the model's score on validation
    windows (None when the bundle's kind has no one score). `readings`/`windows` say how much data is behind them.
    """

    channels: list[ChannelReference]
    score: Histogram | None = None
    readings: int = 0
    windows: int = 0
    source: str = ""

    def check(self, where: str, channels: list[str] | None) -> None:
        names = [c.name for c in self.channels]
        if channels is not None and names != channels:
            raise BundleError(f"{where}: reference.channels {names} differ from window.channels {channels}")
        for c in self.channels:
            c.bins.check(f"{where}: reference channel {c.name!r}")
            if not (c.min <= c.max and all(map(math.isfinite, (c.min, c.max, c.mean, c.std)))):
                raise BundleError(f"{where}: reference channel {c.name!r} needs finite min <= max, mean, std")
        if self.score is not None:
            self.score.check(f"{where}: reference score")


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
    # Several variants of the model (empty: one implicit variant, the top-level model_file/golden). The
    # top-level model_file, golden, threshold and quantization always describe the default variant, so a
    # reader that knows nothing of variants loads that one.
    variants: list[Variant] = field(default_factory=list)
    cascade: Cascade | None = None
    # training statistics for drift monitoring; None: the device does not watch drift (older bundles)
    reference: Reference | None = None

    def to_json(self) -> str:
        data = to_dict(self)
        if not self.variants:  # a single-model bundle stays readable by an edgekit that predates variants
            del data["variants"]
        if self.cascade is None:
            del data["cascade"]
        if self.reference is None:
            del data["reference"]
        return json.dumps(data, indent=2, sort_keys=True)

    def save(self, bundle_dir: str | Path) -> Path:
        path = Path(bundle_dir) / MANIFEST
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, bundle_dir: str | Path) -> Manifest:
        path = Path(bundle_dir) / MANIFEST
        try:
            data = read_capped(path, MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            raise BundleError(f"{bundle_dir}: no {MANIFEST} (not a bundle)") from None
        return cls.from_bytes(data, str(path))

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> Manifest:
        """Parse and validate manifest bytes (the exact bytes whose signature was checked); `where` names them."""
        try:
            data = json.loads(raw.decode("utf-8"))
        # RecursionError: deeply nested JSON, which an unsigned manifest (no --pubkey) may hold
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise BundleError(f"{where}: not valid JSON ({type(exc).__name__}: {exc})") from None
        if not isinstance(data, dict):
            raise BundleError(f"{where}: must hold a JSON object")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise BundleError(
                f"{where}: schema_version {data.get('schema_version')!r} is not supported (expected {SCHEMA_VERSION})"
            )
        try:
            manifest = from_dict(cls, data, where=where)
        except ConfigError as exc:
            raise BundleError(str(exc)) from None
        manifest.check_names(where)
        if manifest.reference is not None:
            manifest.reference.check(where, manifest.window.channels if manifest.window else None)
        names = [v.name for v in manifest.variants]
        if len(set(names)) != len(names):
            raise BundleError(f"{where}: variant names repeat ({', '.join(names)})")
        if names and manifest.model_file not in {v.model_file for v in manifest.variants}:
            raise BundleError(
                f"{where}: model_file {manifest.model_file} is none of the variants' model files"
            )
        return manifest

    def named_files(self) -> dict[str, str]:
        """The files the manifest points at by field (model, golden, tokenizer, variants'): field -> name."""
        named = {"model_file": self.model_file, "golden.file": self.golden.file}
        if self.text is not None:
            named["text.tokenizer"] = self.text.tokenizer
        for v in self.variants:
            named[f"variants[{v.name}].model_file"] = v.model_file
            named[f"variants[{v.name}].golden.file"] = v.golden.file
        if self.cascade is not None and self.cascade.teacher is not None:
            named["cascade.teacher.model_file"] = self.cascade.teacher.model_file
            named["cascade.teacher.golden.file"] = self.cascade.teacher.golden.file
        return named

    @property
    def default_variant(self) -> str:
        """The variant the top-level fields describe (what loads when the device chose nothing)."""
        for v in self.variants:
            if v.model_file == self.model_file:
                return v.name
        return str(self.quantization.get("mode") or "default")

    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants] or [self.default_variant]

    def for_variant(self, name: str | None) -> Manifest:
        """This manifest as seen by one variant: its model file, golden pairs, threshold and quantization
        on top (None or the default: the manifest itself). BundleError for a name the bundle lacks."""
        if name is None or (name == self.default_variant and not self.variants):
            return self
        for v in self.variants:
            if v.name == name:
                return self._seen_as(v)
        raise BundleError(
            f"{self.model_id} {self.model_version} has no variant {name!r} (it carries: {', '.join(self.variant_names())})"
        )

    def for_cascade_teacher(self) -> Manifest:
        """This manifest as seen by the local cascade's teacher: its model file, golden pairs, threshold and
        quantization on top, so the same engine and self-test load it. BundleError when there is none."""
        teacher = self.cascade.teacher if self.cascade is not None else None
        if teacher is None:
            raise BundleError(f"{self.model_id} {self.model_version} carries no cascade teacher")
        return self._seen_as(teacher, variants=[], cascade=None)

    def _seen_as(self, v: Variant, **more: Any) -> Manifest:
        """This manifest with `v`'s model file, golden pairs, threshold, quantization and metrics on top."""
        return replace(
            self,
            model_file=v.model_file,
            golden=v.golden,
            threshold=v.threshold,
            quantization=v.quantization,
            metrics={**self.metrics, **v.metrics},
            **more,
        )

    def check_names(self, where: str) -> None:
        """Every file name in the manifest is a plain relative name inside the bundle (BundleError if not).

        A signed `golden.file: ../g.npz` would otherwise make the self-test read outside the bundle.
        """
        named = {f"files[{name!r}]": name for name in self.files} | self.named_files()
        for field_name, name in named.items():
            if not is_plain_name(name):
                raise BundleError(
                    f"{where}: {field_name} {name!r} is not a plain relative file name inside the bundle"
                )


def is_plain_name(name: str) -> bool:
    """A relative POSIX path of plain components: no absolute path, '..', '.', empty part, backslash or NUL."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name or name.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def read_capped(path: str | Path, limit: int) -> bytes:
    """A small file's bytes; BundleError before reading anything when it is larger than `limit`."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        # read at most limit + 1: also bounds a file that grows after the fstat, or a FIFO (size 0)
        data = b"" if size > limit else fh.read(limit + 1)
    if size > limit or len(data) > limit:
        raise BundleError(
            f"{path}: {max(size, len(data))} bytes is over the {limit}-byte limit for this file"
        )
    return data


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
        if p.is_file() and p.name not in (MANIFEST, SIGNATURE, SELECTION)
    }


def check_hashes(bundle_dir: str | Path, manifest: Manifest) -> None:
    """Every listed file present with its hash, and no unlisted file; raises BundleError naming the file."""
    actual = hash_files(bundle_dir)
    for field_name, name in manifest.named_files().items():
        if name not in manifest.files:  # so the file it names is covered by the signature
            what = "the model file" if field_name == "model_file" else f"its {field_name}"
            raise BundleError(f"{bundle_dir}: manifest does not list {what} {name}")
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
