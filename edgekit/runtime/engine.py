"""One onnxruntime session per bundle, configured from the target profile; preprocess, infer, score."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgekit.bundle.manifest import Manifest
from edgekit.bundle.signing import verify_bundle
from edgekit.errors import BundleError
from edgekit.profiles import TargetProfile
from edgekit.runtime.stages import WindowStages

log = logging.getLogger(__name__)

_WARNED: set[str] = set()
_DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64}


def session_options(profile: TargetProfile | None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile is not None:
        opts.intra_op_num_threads = profile.threads.intra_op
        opts.inter_op_num_threads = profile.threads.inter_op
    return opts


def providers_for(profile: TargetProfile | None) -> list[tuple[str, dict]]:
    """The profile's providers in order, keeping those this onnxruntime build has (CPU always last)."""
    available = set(ort.get_available_providers())
    chosen: list[tuple[str, dict]] = []
    wanted = profile.execution_providers if profile is not None else []
    for ep in wanted:
        if ep.name in available:
            chosen.append((ep.name, {k: str(v) if isinstance(v, bool) else v for k, v in ep.options.items()}))
        else:
            if ep.name not in _WARNED:  # once per process, not once per session
                _WARNED.add(ep.name)
                log.warning(
                    "execution provider %s is not available in this onnxruntime build; skipping it", ep.name
                )
    if not any(name == "CPUExecutionProvider" for name, _ in chosen):
        chosen.append(("CPUExecutionProvider", {}))
    return chosen


def create_session(model_path: str | Path, profile: TargetProfile | None = None) -> ort.InferenceSession:
    try:
        chosen = providers_for(profile)  # once: it logs a warning per missing provider
        return ort.InferenceSession(
            str(model_path),
            sess_options=session_options(profile),
            providers=[name for name, _ in chosen],
            provider_options=[opts for _, opts in chosen],
        )
    except Exception as exc:  # onnxruntime raises its own exception types for bad models
        raise BundleError(f"{model_path}: onnxruntime cannot load the model ({exc})") from None


class Engine(WindowStages):
    """A loaded sensor bundle: `score(windows)` maps raw windows [B, W, C] to anomaly scores [B]."""

    def __init__(
        self, bundle_dir: str | Path, profile: TargetProfile | None = None, manifest: Manifest | None = None
    ) -> None:
        self.bundle_dir = Path(bundle_dir)
        self.manifest = manifest or Manifest.load(self.bundle_dir)
        m = self.manifest
        if m.kind != "sensor" or m.window is None:
            raise BundleError(f"{bundle_dir}: a {m.kind} bundle cannot score sensor windows")
        self.profile = profile
        self.session = create_session(self.bundle_dir / m.model_file, profile)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = m.output.name
        norm = m.normalization
        super().__init__(
            len(m.window.channels),
            norm.mean if norm is not None else None,
            norm.std if norm is not None else None,
            _DTYPES[m.input.dtype],
            m.output.score == "softmax",
        )

    @classmethod
    def from_verified(
        cls, bundle_dir: str | Path, public_key: str | Path | None, profile: TargetProfile | None = None
    ) -> Engine:
        """Verify signature and hashes, load, and run the golden self-test; raises BundleError on any failure."""
        manifest = verify_bundle(bundle_dir, public_key)
        engine = cls(bundle_dir, profile, manifest)
        engine.self_test()
        return engine

    @property
    def window(self) -> int:
        return self.manifest.window.length  # type: ignore[union-attr]

    @property
    def hop(self) -> int:
        return self.manifest.window.hop  # type: ignore[union-attr]

    @property
    def channels(self) -> int:
        return len(self.manifest.window.channels)  # type: ignore[union-attr]

    @property
    def threshold(self) -> float:
        return self.manifest.threshold

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run the session on already-preprocessed input; returns the raw model output as float32."""
        return np.asarray(self.session.run([self.output_name], {self.input_name: x})[0], dtype=np.float32)

    def score(self, windows: np.ndarray) -> np.ndarray:
        return self.postprocess(self.infer(self.preprocess(windows)))

    def self_test(self) -> None:
        """Golden pairs from export must reproduce here, on this device's onnxruntime."""
        path = self.bundle_dir / self.manifest.golden.file
        if not path.is_file():
            raise BundleError(f"{self.bundle_dir}: golden file {self.manifest.golden.file} is missing")
        with np.load(path) as g:
            inputs, expected = g["inputs"], g["outputs"]
        got = self.infer(self.preprocess(inputs))
        g = self.manifest.golden
        if got.shape != expected.shape or not np.allclose(got, expected, atol=g.atol, rtol=g.rtol):
            diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
            raise BundleError(
                f"{self.bundle_dir}: self-test failed: golden outputs differ by {diff:.3g} (atol {g.atol})"
            )
