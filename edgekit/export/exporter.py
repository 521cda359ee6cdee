"""What a model kind supplies to the export skeleton (`edgekit.export.pipeline.export_model`).

The skeleton runs the same steps for every kind (staging, ONNX, parity, quantize, op check, release gate,
manifest, golden, seal, self-test, publish); a `ModelExporter` subclass says only what differs: how to load
its model and held-out inputs, how to convert it to ONNX, how to score quality, and what its manifest and
golden file hold. To add a kind: subclass `ModelExporter` and add it to `EXPORTERS` in pipeline.py.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import re
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from edgekit import __version__
from edgekit.bench.machine import cpu_model
from edgekit.bundle.manifest import Cascade, Manifest, Reference
from edgekit.errors import ConfigError
from edgekit.escalation import EscalationTarget, ModelOutputs, Split
from edgekit.export.gate import GateModel, QualityMetric
from edgekit.profiles import TargetProfile
from edgekit.run import RunFolder

log = logging.getLogger(__name__)


@dataclass
class ExportOptions:
    model: str = "student"
    model_id: str | None = None
    version: str = "1.0.0"
    overwrite: bool = False
    latency_runs: int = 500
    # quantization modes the bundle carries (None: the profile's `variants`, else its one quantization.mode)
    variants: list[str] | None = None
    extra_provenance: dict[str, Any] = field(default_factory=dict)
    # student + teacher: local carries the teacher in the bundle, remote only the escalation rule
    cascade: Literal["local", "remote"] | None = None
    # the rule's target and severe classes (None: the run's, from `edgekit distill`; else a rate of 0.1)
    escalation: EscalationTarget | None = None


class ModelExporter(ABC):
    """One model kind's part of an export. Built from a validated run folder; loading the model and the
    held-out inputs happens in `__init__`, so a bad run fails before anything is staged."""

    kind: ClassVar[str]
    # gated quality figure (key in the metrics dict, name in messages)
    metric: ClassVar[QualityMetric]
    # the graph input a calibrating quantizer feeds
    input_name: ClassVar[str]
    # provenance: which converter made the ONNX graph
    converter: ClassVar[str]

    def __init__(self, run: RunFolder, profile: TargetProfile, options: ExportOptions) -> None:
        self.run, self.profile, self.options = run, profile, options

    # whether `edgekit export --cascade` can add this kind's teacher and escalation rule
    supports_cascade: ClassVar[bool] = False
    # quantization modes this kind can export (None: all); a profile's extra variants outside it are skipped
    supported_modes: ClassVar[tuple[str, ...] | None] = None

    @property
    def modes(self) -> list[str]:
        """The variants to export, default first: quantization.mode when listed, else the first listed."""
        mode = self.profile.quantization.mode
        listed = list(self.options.variants or self.profile.variants)
        if not self.options.variants and self.supported_modes is not None:
            # a profile serves every kind: its extra variants this kind cannot make are left out, not refused
            skipped = [m for m in listed if m not in self.supported_modes and m != mode]
            if skipped:
                log.info("%s bundles cannot carry %s: left out", self.kind, ", ".join(skipped))
            listed = [m for m in listed if m not in skipped]
        if not listed:
            return [mode]
        default = mode if mode in listed else listed[0]
        return [default, *dict.fromkeys(m for m in listed if m != default)]

    # --- naming -----------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def model_name(self) -> str:
        """The exported model's name: in parity messages, the default model id and report.json's row."""

    @property
    def report_row(self) -> str:
        """The report.json row holding the distilled model's figures."""
        return self.model_name

    @property
    def parity_threshold(self) -> float | None:
        """Decision threshold for parity agreement of a one-column score (None: argmax of class logits)."""
        return None

    # --- conversion and parity ----------------------------------------------------------------------------
    @abstractmethod
    def to_onnx(self, work: Path) -> Path:
        """Write the FP32 ONNX graph (checked) under `work`; return its path."""

    @abstractmethod
    def torch_outputs(self) -> np.ndarray:
        """The source model's raw outputs on the held-out inputs (the parity reference)."""

    @abstractmethod
    def onnx_outputs(self, model: Path) -> np.ndarray:
        """The ONNX graph's raw outputs on the same held-out inputs."""

    def calibration(self) -> np.ndarray | None:
        """Normalized calibration inputs for a calibrating quantizer; None when the kind has none."""
        return None

    # --- bundle ------------------------------------------------------------------------------------------
    @abstractmethod
    def manifest_fields(self) -> dict[str, Any]:
        """The kind's Manifest fields: kind, input, output, labels, threshold, window/normalization/text."""

    @abstractmethod
    def gate_model(self, bundle_dir: Path, manifest: Manifest) -> GateModel:
        """The release gate's view of the model in `bundle_dir` (model.onnx beside `manifest`)."""

    @abstractmethod
    def finish(self, bundle: Path, manifest: Manifest, candidate: dict[str, Any]) -> None:
        """After the gate passed: adjust the manifest or add files (`candidate`: the gated model's metrics)."""

    @abstractmethod
    def golden(self, bundle: Path, manifest: Manifest) -> dict[str, np.ndarray]:
        """Golden arrays for the device self-test: the model's inputs and the bundle's `outputs` on them."""

    def reference(self, bundle: Path, manifest: Manifest) -> Reference | None:
        """Training statistics for drift monitoring on the device (None: the kind has none)."""
        return None

    def extra_metrics(self) -> dict[str, Any]:
        """Kind-specific entries for manifest.metrics."""
        return {}

    @property
    @abstractmethod
    def provenance_files(self) -> list[Path]:
        """Run files whose sha256 goes into the provenance."""

    @property
    def source_model(self) -> str:
        return self.model_name

    # --- cascade (student first, teacher for the hard cases) ----------------------------------------------
    def for_model(self, name: str) -> ModelExporter:
        """The same run's model `name` (the cascade's teacher), exported with the same profile and options."""
        return type(self)(self.run, self.profile, replace(self.options, model=name))

    def run_rule(self) -> Cascade | None:
        """The escalation rule `edgekit distill` recorded in the run (None: none)."""
        return None

    def escalation_target(self) -> EscalationTarget:
        """The options' target, else the run's rule's, else the default (rate 0.1)."""
        if self.options.escalation is not None:
            return self.options.escalation
        rule = self.run_rule()
        return EscalationTarget.of_rule(rule) if rule is not None else EscalationTarget()

    def model_outputs(self, bundle: Path, manifest: Manifest, split: Literal["val", "test"]) -> ModelOutputs:
        """The bundle model's outputs (score, threshold, class probabilities) on a held-out split."""
        raise ConfigError(f"cascade bundles and severe classes are not supported for {self.kind} runs yet")

    def split_labels(self, split: Literal["val", "test"]) -> tuple[np.ndarray | None, list[str], int | None]:
        """(class indices or None, class names, normal class index or None) of a held-out split."""
        raise ConfigError(f"cascade bundles and severe classes are not supported for {self.kind} runs yet")

    def cascade_split(
        self,
        student: tuple[Path, Manifest],
        teacher: tuple[Path, Manifest],
        split: Literal["val", "test"],
    ) -> Split:
        """Student and teacher (each a bundle folder and its manifest view) on a held-out split."""
        y, labels, normal = self.split_labels(split)
        return Split(
            self.model_outputs(*student, split), self.model_outputs(*teacher, split), y, labels, normal
        )


def model_id_for(dataset: str, model: str) -> str:
    base = Path(str(dataset or "model")).stem
    return re.sub(r"[^a-z0-9]+", "-", f"{base}-{model}".lower()).strip("-")


def source_commit() -> tuple[str | None, bool | None]:
    """git commit of the edgekit source tree and whether it had uncommitted changes; None outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head.stdout.strip() or None, bool(dirty.stdout.strip())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance(run_dir: Path, files: list[Path], extra: dict[str, Any]) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort
    import torch

    commit, dirty = source_commit()
    return {
        "source_commit": commit,
        "source_dirty": dirty,
        "run_dir": str(run_dir.resolve()),
        "inputs_sha256": {f.name: _sha256(f) for f in files if f.is_file()},
        "versions": {
            "edgekit": __version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "python": platform.python_version(),
        },
        "export_host": {"machine": platform.machine(), "system": platform.system(), "processor": cpu_model()},
        **extra,
    }
