"""Sensor bundles: a run's torch checkpoint exported with the TorchScript exporter, held-out windows from
windows.npz, and quality scored through the runtime Engine (the device's code path).

Quality: F1 at the model's own validation-chosen threshold (distill's rule, re-applied to the exported
model) on the test windows; K-class runs score the anomaly view (not the normal class). Label-free runs
and K-class runs without a normal class have no F1 and the gate falls back to decision agreement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekit.bundle.manifest import (
    Cascade,
    InputSpec,
    Manifest,
    Normalization,
    OutputSpec,
    Reference,
    WindowSpec,
)
from edgekit.escalation import ModelOutputs
from edgekit.export.exporter import ExportOptions, ModelExporter
from edgekit.export.gate import GateModel, Quality, QualityMetric
from edgekit.export.onnx import EXPORTER, export_torch, torch_outputs
from edgekit.export.package import golden_indices
from edgekit.export.reference import sensor_reference
from edgekit.metrics import best_f1_threshold, far_threshold, model_metrics
from edgekit.profiles import TargetProfile
from edgekit.run import WINDOWS_FILE, RunFolder, SensorRun
from edgekit.runtime.confidence import softmax
from edgekit.runtime.engine import Engine, create_session

# windows per onnxruntime call when scoring a whole split
BATCH = 4096


def choose_threshold(run: SensorRun, val_y: np.ndarray | None, val_scores: np.ndarray) -> float:
    """The same rule as `edgekit distill`: best-F1 on validation (supervised), else the false-alarm quantile."""
    if run.score == "softmax":
        y = run.anomaly_labels(val_y)
        if y is not None and y.any():
            return best_f1_threshold(y, val_scores)
        # K classes without a normal one: every window is reported with its class
        return 0.5 if run.normal_class is not None or len(run.labels) == 2 else 0.0
    normal = np.ones(len(val_scores), bool) if val_y is None else val_y == 0
    return far_threshold(val_scores[normal], run.false_alarm_rate or 0.01)


def batched_scores(engine: Engine, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    return np.concatenate([engine.score(x[i : i + batch]) for i in range(0, len(x), batch)])


class SensorExporter(ModelExporter):
    kind = "sensor"
    metric = QualityMetric("f1", "F1")
    input_name = "x"
    converter = EXPORTER
    supports_cascade = True

    def __init__(self, run: RunFolder, profile: TargetProfile, options: ExportOptions) -> None:
        from edgekit.data import Normalizer
        from edgekit.models.registry import ModelSpec, build_model, load_weights

        super().__init__(run, profile, options)
        assert isinstance(run.info, SensorRun)
        self.info: SensorRun = run.info
        self.weights = run.checkpoint(options.model)
        arch = self.info.models[options.model]
        self.model = load_weights(build_model(ModelSpec(arch.arch, dict(arch.kwargs))), str(self.weights))
        norm = self.info.normalization
        self.norm = Normalizer(np.asarray(norm.mean, np.float32), np.asarray(norm.std, np.float32))
        self.windows = run.windows()
        self.x_test = self.norm(self.windows.test_x)

    @property
    def model_name(self) -> str:
        return self.options.model

    @property
    def parity_threshold(self) -> float:
        return float(self.info.thresholds.get(self.options.model, 0.0))

    def to_onnx(self, work: Path) -> Path:
        import torch

        example = torch.from_numpy(self.norm(self.windows.test_x[:2]))
        return export_torch(self.model, example, work / "fp32.onnx", self.profile.opset)

    def torch_outputs(self) -> np.ndarray:
        return torch_outputs(self.model, self.x_test)

    def onnx_outputs(self, model: Path) -> np.ndarray:
        sess = create_session(model)
        name = sess.get_inputs()[0].name
        x = self.x_test
        return np.concatenate(
            [sess.run(None, {name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
        ).astype(np.float32)

    def calibration(self) -> np.ndarray:
        return self.norm(self.windows.calib_x)

    def manifest_fields(self) -> dict[str, Any]:
        info = self.info
        return {
            "kind": "sensor",
            "input": InputSpec("x", "float32", [None, info.window, len(info.channels)]),
            "output": OutputSpec("logits", info.score, info.normal_index),
            "labels": list(info.labels),
            "threshold": self.parity_threshold,
            "window": WindowSpec(info.window, info.hop, list(info.channels)),
            "normalization": Normalization(list(info.normalization.mean), list(info.normalization.std)),
        }

    def gate_model(self, bundle_dir: Path, manifest: Manifest) -> GateModel:
        engine = Engine(bundle_dir, self.profile, manifest)
        w = self.windows

        def quality() -> Quality:
            # the threshold is re-chosen on validation for this model, then test metrics
            thr = choose_threshold(self.info, w.val_y, batched_scores(engine, w.val_x))
            scores = batched_scores(engine, w.test_x)
            return Quality(
                model_metrics(self.info.anomaly_labels(w.test_y), scores, thr), scores >= thr, scores
            )

        # one raw window at a time through the device path (preprocess, infer, postprocess)
        singles = [w.test_x[i : i + 1] for i in range(min(len(w.test_x), 256))]
        return GateModel(quality, lambda i: engine.score(singles[i % len(singles)]))

    def finish(self, bundle: Path, manifest: Manifest, candidate: dict[str, Any]) -> None:
        manifest.threshold = float(candidate["threshold"])

    def golden(self, bundle: Path, manifest: Manifest) -> dict[str, np.ndarray]:
        engine = Engine(bundle, self.profile, manifest)
        idx = golden_indices(self.info.anomaly_labels(self.windows.test_y), len(self.windows.test_x))
        inputs = self.windows.test_x[idx].astype(np.float32)
        return {"inputs": inputs, "outputs": engine.infer(engine.preprocess(inputs))}

    def reference(self, bundle: Path, manifest: Manifest) -> Reference:
        """Channels from the run's training sample (windows.npz calib_x, raw units); the default variant's
        score on the validation windows."""
        val_scores = batched_scores(Engine(bundle, self.profile, manifest), self.windows.val_x)
        source = "channels: training windows (windows.npz calib_x); score: validation windows"
        return sensor_reference(self.windows.calib_x, list(self.info.channels), val_scores, source)

    @property
    def provenance_files(self) -> list[Path]:
        return [self.run.run_file, self.weights, self.run.path / WINDOWS_FILE]

    # --- cascade ---------------------------------------------------------------------------------------
    def run_rule(self) -> Cascade | None:
        return self.info.cascade

    def model_outputs(self, bundle: Path, manifest: Manifest, split: Literal["val", "test"]) -> ModelOutputs:
        engine = Engine(bundle, self.profile, manifest)
        x = self.windows.val_x if split == "val" else self.windows.test_x
        out = np.concatenate(
            [engine.infer(engine.preprocess(x[i : i + BATCH])) for i in range(0, len(x), BATCH)]
        )
        probs = softmax(out) if manifest.output.score == "softmax" else None
        return ModelOutputs(engine.postprocess(out).astype(np.float64), manifest.threshold, probs)

    def split_labels(self, split: Literal["val", "test"]) -> tuple[np.ndarray | None, list[str], int | None]:
        info = self.info
        y = self.windows.val_y if split == "val" else self.windows.test_y
        normal = info.labels.index(info.normal_class) if info.normal_class in info.labels else None
        # two classes without a named normal one: the first is normal (the anomaly score is P(class 1))
        return y, list(info.labels), 0 if normal is None and len(info.labels) == 2 else normal
