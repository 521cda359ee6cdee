"""One onnxruntime session per bundle, configured from the target profile; preprocess, infer, score."""

from __future__ import annotations

import ctypes.util
import functools
import importlib.util
import logging
import os
import zipfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnxruntime as ort

from edgekit.bundle.manifest import Manifest
from edgekit.bundle.signing import verify_bundle
from edgekit.errors import BundleError
from edgekit.profiles import ExecutionProvider, TargetProfile
from edgekit.runtime.selection import read_selection
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


# Shared libraries each GPU provider needs, one group per library (any name in a group will do): the fallback
# probe when onnxruntime's own provider library is not a separate file. onnxruntime lists a provider that was
# compiled in whether or not these exist, and then prints a red "EP Error" block on every session before
# falling back to CPU (for TensorRT, even when CUDA would work): we look before offering it.
PROVIDER_LIBRARIES: dict[str, tuple[tuple[str, ...], ...]] = {
    "CUDAExecutionProvider": (("cudart",), ("cublas",), ("cudnn",)),
    "TensorrtExecutionProvider": (("nvinfer", "nvinfer_10"), ("cudart",), ("cublas",)),
}
_PROVIDER_FILES = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "tensorrt"}


@functools.cache
def has_library(stem: str) -> bool:
    """Whether the dynamic loader can find lib<stem> (ldconfig cache, LD_LIBRARY_PATH or NVIDIA's wheels)."""
    if ctypes.util.find_library(stem):
        return True
    for soname in (f"lib{stem}.so", *(f"lib{stem}.so.{v}" for v in range(7, 14))):
        try:
            ctypes.CDLL(soname)  # honours LD_LIBRARY_PATH, which find_library may not
            return True
        except OSError:
            continue
    # pip's nvidia-*-cu12 wheels, which onnxruntime-gpu loads from site-packages
    nvidia = importlib.util.find_spec("nvidia")
    roots = list(nvidia.submodule_search_locations or ()) if nvidia is not None else []
    return any(any(Path(r).glob(f"*/lib/lib{stem}.so*")) for r in roots)


@functools.cache
def load_problem(path: str) -> str | None:
    """Why the dynamic loader cannot load `path` with its dependencies (e.g. 'libnvinfer.so.10: cannot open
    shared object file'), or None when it can: the exact check onnxruntime's session creation will make."""
    try:
        ctypes.CDLL(path, mode=getattr(os, "RTLD_LAZY", 0) | getattr(os, "RTLD_LOCAL", 0))
    except OSError as exc:
        return str(exc).splitlines()[0] if str(exc) else "cannot be loaded"
    return None


def provider_problem(
    name: str,
    available: Collection[str],
    libraries: Mapping[str, Sequence[Sequence[str]]] = PROVIDER_LIBRARIES,
) -> str | None:
    """Why this device cannot really run provider `name`, or None when it can."""
    if name not in available:
        return "not in this onnxruntime build"
    if short := _PROVIDER_FILES.get(name):  # onnxruntime-gpu ships each GPU provider as its own library
        capi = Path(ort.__file__).parent / "capi"
        for file in (f"libonnxruntime_providers_{short}.so", f"onnxruntime_providers_{short}.dll"):
            if (capi / file).is_file():
                return load_problem(str(capi / file))
    missing = [group[0] for group in libraries.get(name, ()) if not any(has_library(s) for s in group)]
    return f"lib{', lib'.join(missing)} not found" if missing else None


def usable_providers(
    wanted: Sequence[str],
    available: Collection[str] | None = None,
    libraries: Mapping[str, Sequence[Sequence[str]]] = PROVIDER_LIBRARIES,
) -> list[str]:
    """The providers of `wanted` this device can really run, in order (`available`: onnxruntime's list)."""
    have = ort.get_available_providers() if available is None else available
    return [n for n in wanted if provider_problem(n, have, libraries) is None]


def providers_for(profile: TargetProfile | None) -> list[tuple[str, dict]]:
    """The profile's providers this device can run, in order, with their options (CPU always last)."""
    available = ort.get_available_providers()
    wanted = profile.execution_providers if profile is not None else []
    usable = set(usable_providers([ep.name for ep in wanted], available))
    chosen = [
        (ep.name, {k: str(v) if isinstance(v, bool) else v for k, v in ep.options.items()})
        for ep in wanted
        if ep.name in usable
    ]
    if refused := [ep.name for ep in wanted if ep.name not in usable]:
        key = ",".join(refused)
        if key not in _WARNED:  # once per process, not once per session
            _WARNED.add(key)
            why = "; ".join(f"{n} ({provider_problem(n, available)})" for n in refused)
            log.warning(
                "the profile asks for execution providers this device cannot run, skipping them: %s", why
            )
    if not any(name == "CPUExecutionProvider" for name, _ in chosen):
        chosen.append(("CPUExecutionProvider", {}))
    return chosen


def on_provider(profile: TargetProfile | None, provider: str) -> TargetProfile | None:
    """`profile` narrowed to one execution provider (its options kept; CPU is still added as the fallback for
    nodes the provider lacks). None stays None for the CPU (no profile: onnxruntime's defaults)."""
    if profile is None and provider == "CPUExecutionProvider":
        return None
    base = profile or TargetProfile(name="device")
    eps = [ep for ep in base.execution_providers if ep.name == provider] or [ExecutionProvider(provider)]  # type: ignore[arg-type]
    return replace(base, execution_providers=eps)


def device_providers(profile: TargetProfile | None) -> list[str]:
    """The execution providers of `profile` this device really has (libraries probed), CPU always among them."""
    names = usable_providers(profile.provider_names if profile is not None else [])
    return names if "CPUExecutionProvider" in names else [*names, "CPUExecutionProvider"]


def chosen(
    bundle_dir: str | Path, manifest: Manifest, profile: TargetProfile | None
) -> tuple[str, TargetProfile | None]:
    """(variant, profile narrowed to the provider) that selection.json names, when it is still valid here;
    else the manifest's default variant on the profile's providers."""
    try:
        sel = read_selection(bundle_dir)
    except BundleError as exc:
        log.warning("ignoring the device's variant choice: %s", exc)
        sel = None
    if sel is None:
        return manifest.default_variant, profile
    if sel.variant not in manifest.variant_names():
        log.warning(
            "selection.json names variant %s, which %s lacks; loading the default", sel.variant, bundle_dir
        )
        return manifest.default_variant, profile
    if sel.provider not in device_providers(profile):
        log.warning(
            "selection.json names %s, which this device cannot run now; using the profile's", sel.provider
        )
        return sel.variant, profile
    return sel.variant, on_provider(profile, sel.provider)


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


_E = TypeVar("_E", bound="BundleEngine")


class BundleEngine:
    """What every loaded bundle has, whatever its kind: its manifest (as seen by the variant it runs), an
    onnxruntime session configured from the profile, and the two ways to load it. A kind sets `KIND`."""

    KIND = ""
    REFUSAL = ""  # how a bundle of another kind is refused: "a text bundle cannot score sensor windows"

    def __init__(
        self, bundle_dir: str | Path, profile: TargetProfile | None = None, manifest: Manifest | None = None
    ) -> None:
        self.bundle_dir = Path(bundle_dir)
        self.manifest = manifest or Manifest.load(self.bundle_dir)
        if self.manifest.kind != self.KIND:
            raise BundleError(f"{bundle_dir}: a {self.manifest.kind} bundle {self.REFUSAL}")
        self.profile = profile
        self.session = create_session(self.bundle_dir / self.manifest.model_file, profile)
        self.output_name = self.manifest.output.name

    @classmethod
    def load(
        cls: type[_E],
        bundle_dir: str | Path,
        profile: TargetProfile | None = None,
        manifest: Manifest | None = None,
    ) -> _E:
        """The variant and provider this device chose (the release's selection.json), else the default variant."""
        manifest = manifest or Manifest.load(bundle_dir)
        variant, prof = chosen(bundle_dir, manifest, profile)
        return cls(bundle_dir, prof, manifest.for_variant(variant))

    @classmethod
    def from_verified(
        cls: type[_E],
        bundle_dir: str | Path,
        public_key: str | Path | None,
        profile: TargetProfile | None = None,
    ) -> _E:
        """Verify signature and hashes, load (`load`) and run the golden self-test; BundleError on any failure."""
        engine = cls.load(bundle_dir, profile, verify_bundle(bundle_dir, public_key))
        engine.self_test()
        return engine

    def self_test(self) -> None:
        """Golden pairs from export must reproduce here, on this device's onnxruntime."""
        self_test(self.bundle_dir, self.manifest, self.profile)

    @property
    def variant(self) -> str:
        """The variant of the bundle this engine runs."""
        return self.manifest.default_variant

    @property
    def threshold(self) -> float:
        return self.manifest.threshold

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()


class Engine(BundleEngine, WindowStages):
    """A loaded sensor bundle: `score(windows)` maps raw windows [B, W, C] to anomaly scores [B]."""

    KIND = "sensor"
    REFUSAL = "cannot score sensor windows"

    def __init__(
        self, bundle_dir: str | Path, profile: TargetProfile | None = None, manifest: Manifest | None = None
    ) -> None:
        BundleEngine.__init__(self, bundle_dir, profile, manifest)
        m = self.manifest
        if m.window is None:
            raise BundleError(f"{bundle_dir}: a sensor bundle without a window spec")
        self.input_name = self.session.get_inputs()[0].name
        norm = m.normalization
        WindowStages.__init__(
            self,
            len(m.window.channels),
            norm.mean if norm is not None else None,
            norm.std if norm is not None else None,
            _DTYPES[m.input.dtype],
            m.output.score == "softmax",
            m.output.normal_index,
        )

    @property
    def window(self) -> int:
        return self.manifest.window.length  # type: ignore[union-attr]

    @property
    def hop(self) -> int:
        return self.manifest.window.hop  # type: ignore[union-attr]

    @property
    def channels(self) -> int:
        return len(self.manifest.window.channels)  # type: ignore[union-attr]

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Run the session on already-preprocessed input; returns the raw model output as float32."""
        return np.asarray(self.session.run([self.output_name], {self.input_name: x})[0], dtype=np.float32)

    def score(self, windows: np.ndarray) -> np.ndarray:
        return self.postprocess(self.infer(self.preprocess(windows)))

    def self_test(self) -> None:
        """Golden pairs from export must reproduce here, on this device's onnxruntime."""
        self_test(self.bundle_dir, self.manifest, self.profile, engine=self)


def load_golden(bundle_dir: Path, manifest: Manifest) -> dict[str, np.ndarray]:
    """The golden arrays of `manifest`'s (variant's) golden file; BundleError when missing or unreadable."""
    path = bundle_dir / manifest.golden.file
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: golden file {manifest.golden.file} is missing")
    try:
        with np.load(path) as g:
            return {k: g[k] for k in g.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # ValueError: pickled objects are refused
        raise BundleError(f"{path}: not a readable golden .npz ({exc})") from None


def self_test(
    bundle_dir: str | Path,
    manifest: Manifest,
    profile: TargetProfile | None = None,
    engine: Engine | None = None,
) -> None:
    """Golden pairs must reproduce on this device's onnxruntime (sensor and text bundles); BundleError if not.

    Sensor golden files hold raw windows (`inputs`), run through the Engine's own preprocessing; text golden
    files hold token ids keyed by input name, so no tokenizer is needed to prove the model. `engine` reuses
    an already loaded sensor Engine instead of opening a second session.
    """
    bundle_dir = Path(bundle_dir)
    golden = load_golden(bundle_dir, manifest)
    if manifest.kind == "sensor":
        engine = engine or Engine(bundle_dir, profile, manifest)
        _require(golden, ["inputs", "outputs"], bundle_dir)
        got = engine.infer(engine.preprocess(golden["inputs"]))
    else:
        sess = create_session(bundle_dir / manifest.model_file, profile)
        names = [i.name for i in sess.get_inputs()]
        _require(golden, [*names, "outputs"], bundle_dir)
        got = np.asarray(sess.run([manifest.output.name], {n: golden[n] for n in names})[0], dtype=np.float32)
    expected = golden["outputs"]
    gl = manifest.golden
    if got.shape != expected.shape or not np.allclose(got, expected, atol=gl.atol, rtol=gl.rtol):
        diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
        raise BundleError(
            f"{bundle_dir}: self-test failed: golden outputs differ by {diff:.3g} (atol {gl.atol})"
        )


def _require(golden: dict[str, np.ndarray], keys: list[str], bundle_dir: Path) -> None:
    missing = [k for k in keys if k not in golden]
    if missing:
        raise BundleError(f"{bundle_dir}: golden file lacks {', '.join(missing)}")
