"""What `edgekit bench` can time: a bundle through the device Engine, or a run's model in eager torch.

Every variant exposes the same three stages (preprocess, infer, postprocess) so they are timed the
same way. torch is imported only for a `torch:RUN_DIR` variant; a device without it skips that one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.text import load_texts, text_variant_fields
from edgekit.bundle.manifest import Manifest
from edgekit.errors import DataError, EdgekitError
from edgekit.profiles import TargetProfile
from edgekit.run import SensorRun, load_run
from edgekit.runtime.engine import Engine
from edgekit.runtime.stages import WindowStages
from edgekit.runtime.text import TextEngine

log = logging.getLogger(__name__)

TORCH_PREFIX = "torch:"
VARIANT_PREFIX = "variant:"


class VariantUnavailable(EdgekitError):
    """A variant cannot run on this machine (e.g. torch is not installed); it is skipped with a note."""


@dataclass
class Variant:
    name: str
    kind: str  # "bundle" | "torch"
    preprocess: Callable[[np.ndarray], Any]
    infer: Callable[[Any], np.ndarray]
    postprocess: Callable[[np.ndarray], np.ndarray]
    window: int
    channels: int
    providers: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    # Kept so that a bundle variant's Engine (golden inputs, normalization) stays reachable.
    engine: Engine | TextEngine | None = None


def bundle_variant(
    bundle_dir: str | Path, profile: TargetProfile | None, name: str | None = None, variant: str | None = None
) -> Variant:
    """A bundle run through the device Engine, or TextEngine (session threads and providers from the
    profile): the variant the device chose (Engine.load), or `variant` of a multi-variant bundle."""
    bundle_dir = Path(bundle_dir)
    manifest = Manifest.load(bundle_dir)
    engine: Engine | None = None
    if manifest.kind == "text":
        if variant is not None:
            manifest = manifest.for_variant(variant)
    elif variant is None:
        engine = Engine.load(bundle_dir, profile, manifest)
        manifest = engine.manifest
    else:
        manifest = manifest.for_variant(variant)
        engine = Engine(bundle_dir, profile, manifest)
    model_path = bundle_dir / manifest.model_file
    info = {
        "path": str(bundle_dir),
        "model_id": manifest.model_id,
        "model_version": manifest.model_version,
        "input_dtype": manifest.input.dtype,
        "variant": engine.variant if engine is not None else (variant or manifest.default_variant),
        "quantization": manifest.quantization,
        "model_bytes": model_path.stat().st_size,
        "bundle_profile": manifest.profile,
    }
    if engine is None:
        fields = text_variant_fields(bundle_dir, profile, manifest)
        info.update(fields.pop("info"))
        return Variant(name=name or bundle_dir.name, kind="bundle", info=info, **fields)
    return Variant(
        name=name or bundle_dir.name,
        kind="bundle",
        preprocess=engine.preprocess,
        infer=engine.infer,
        postprocess=engine.postprocess,
        window=engine.window,
        channels=engine.channels,
        providers=engine.providers,
        info=info,
        engine=engine,
    )


def torch_variant(spec: str, profile: TargetProfile | None, name: str | None = None) -> Variant:
    """`torch:RUN_DIR[#MODEL]`: a distillation run's model (default student) in eager torch, CPU."""
    run_dir, _, model_name = spec[len(TORCH_PREFIX) :].partition("#")
    model_name = model_name or "student"
    try:
        import torch
    except ImportError:
        raise VariantUnavailable(f"{spec}: torch is not installed on this machine; variant skipped") from None
    from edgekit.models.registry import ModelSpec, build_model, load_weights

    run_path = Path(run_dir)
    folder = load_run(run_path)
    weights = folder.checkpoint(model_name)  # DataError naming the models a (sensor) run has
    run = folder.info
    assert isinstance(run, SensorRun)  # checkpoint() accepts sensor runs only
    arch = run.models[model_name]
    model = load_weights(build_model(ModelSpec(arch.arch, dict(arch.kwargs))), str(weights))
    if profile is not None and profile.threads.intra_op > 0:
        torch.set_num_threads(profile.threads.intra_op)
    channels = len(run.channels)
    norm = run.normalization
    # The WindowStages the device Engine runs, bound to this run's statistics, so torch and onnxruntime
    # variants do exactly the same numpy work outside the model.
    stages = WindowStages(
        channels,
        norm.mean if norm is not None else None,
        norm.std if norm is not None else None,
        softmax=run.score == "softmax",
        normal_index=run.normal_index,
    )

    def preprocess(windows: np.ndarray) -> Any:
        return torch.from_numpy(stages.preprocess(windows))

    def infer(x: Any) -> np.ndarray:
        with torch.inference_mode():
            return model(x).numpy()

    return Variant(
        name=name or f"torch-{model_name}",
        kind="torch",
        preprocess=preprocess,
        infer=infer,
        postprocess=stages.postprocess,
        window=run.window,
        channels=channels,
        providers=["torch-eager-cpu"],
        info={
            "path": str(run_path),
            "model": model_name,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
    )


def load_variant(spec: str, profile: TargetProfile | None) -> Variant:
    """A bundle directory, or `torch:RUN_DIR[#MODEL]`."""
    if spec.startswith(TORCH_PREFIX):
        return torch_variant(spec, profile)
    return bundle_variant(spec, profile)


def own_variants(bundle_dir: Path, spec: str, profile: TargetProfile | None, running: str) -> list[Variant]:
    """`variant:NAME` (another variant the benchmarked bundle carries) or `variant:all` (every one but
    `running`, the variant the bundle itself is timed with)."""
    manifest = Manifest.load(bundle_dir)
    wanted = spec[len(VARIANT_PREFIX) :]
    names = [n for n in manifest.variant_names() if n != running] if wanted == "all" else [wanted]
    return [bundle_variant(bundle_dir, profile, f"{bundle_dir.name}:{n}", variant=n) for n in names]


def unique_names(variants: list[Variant]) -> None:
    """Make display names unique (two bundles called `bundle` in different folders)."""
    seen: dict[str, int] = {}
    for v in variants:
        n = seen.get(v.name, 0)
        seen[v.name] = n + 1
        if n:
            v.name = f"{v.name}#{n + 1}"


def load_windows(variant: Variant, data: str | Path | None = None) -> tuple[np.ndarray, str]:
    """RAW input windows [N, W, C]: a --data npz (key `inputs`, `test_x`, `x` or its only array) or the bundle's
    golden inputs; for a text bundle, texts [N] (bench.text.load_texts)."""
    if isinstance(variant.engine, TextEngine):
        return load_texts(variant.engine, data)
    if data is None:
        if variant.engine is None:
            raise DataError(f"{variant.name}: no golden inputs; pass --data WINDOWS.npz")
        eng = variant.engine
        path = eng.bundle_dir / eng.manifest.golden.file
        key = "inputs"
    else:
        text = str(data)
        path, key = Path(text), ""
        if not path.exists() and ":" in text:
            head, _, key = text.rpartition(":")
            path = Path(head)
    try:
        with np.load(path) as npz:
            names = list(npz.keys())
            key = key or next(
                (k for k in ("inputs", "test_x", "x") if k in names), names[0] if len(names) == 1 else ""
            )
            if key not in names:
                raise DataError(
                    f"{path}: no array {key or 'inputs'!r} (has: {', '.join(names)}); use FILE.npz:KEY"
                )
            windows = np.asarray(npz[key], dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read windows ({exc})") from None
    if windows.ndim != 3 or windows.shape[1:] != (variant.window, variant.channels) or len(windows) == 0:
        raise DataError(
            f"{path}:{key}: windows must be [N, {variant.window}, {variant.channels}] for {variant.name}, got {list(windows.shape)}"
        )
    return windows, f"{path}:{key}"
