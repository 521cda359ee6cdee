"""Release gate: a converted model ships only if its quality holds against FP32 on the test split and,
where this host can stand in for the target, it is not slower than FP32 here.

Quality: F1 at the model's own validation-chosen threshold on the test windows, through the runtime
Engine (the device's code path). Label-free runs without test labels have no F1: quality is then the
agreement of the candidate's decisions with FP32's on the test windows, and `max_f1_drop` bounds the
disagreement rate instead.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from edgekit.distill.evaluate import model_metrics
from edgekit.errors import GateError
from edgekit.metrics import best_f1_threshold, far_threshold, percentiles
from edgekit.profiles import TargetProfile
from edgekit.runtime.engine import Engine

log = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
HOST_ARCH = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv7l": "armv7l",
}


@dataclass
class EvalSplit:
    """Real held-out windows, RAW (the Engine normalizes); y is None for label-free data."""

    val_x: np.ndarray
    val_y: np.ndarray | None
    test_x: np.ndarray
    test_y: np.ndarray | None
    score: Literal["softmax", "identity"]
    false_alarm_rate: float | None


def choose_threshold(split: EvalSplit, val_scores: np.ndarray) -> float:
    """The same rule as `edgekit distill`: best-F1 on validation (supervised), else the false-alarm quantile."""
    if split.score == "softmax":
        if split.val_y is not None and split.val_y.any():
            return best_f1_threshold(split.val_y, val_scores)
        return 0.5
    normal = np.ones(len(val_scores), bool) if split.val_y is None else split.val_y == 0
    return far_threshold(val_scores[normal], split.false_alarm_rate or 0.01)


def batched_scores(engine: Engine, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    return np.concatenate([engine.score(x[i : i + batch]) for i in range(0, len(x), batch)])


def quality(engine: Engine, split: EvalSplit) -> tuple[dict[str, Any], np.ndarray]:
    """Threshold re-chosen on validation for this model, then test metrics; returns (metrics, test scores)."""
    thr = choose_threshold(split, batched_scores(engine, split.val_x))
    test_scores = batched_scores(engine, split.test_x)
    m = model_metrics(split.test_y, test_scores, thr)
    return m, test_scores


def interleaved_latency(
    runners: dict[str, Callable[[int], object]], runs: int = 500, warmup: int = 50
) -> dict[str, dict[str, float]]:
    """Batch-1 wall time per model in ms. `runners[name](i)` runs one input (the i-th sample); models
    alternate (and swap order) run by run, so drift and cache effects hit all alike."""
    names = list(runners)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(warmup + runs):
        for n in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter_ns()
            runners[n](i)
            dt = (time.perf_counter_ns() - t0) / 1e6
            if i >= warmup:
                samples[n].append(dt)
    return {n: percentiles(np.asarray(s), (50, 99)) | {"runs": runs} for n, s in samples.items()}


def engine_runner(engine: Engine, windows: np.ndarray) -> Callable[[int], object]:
    """One raw window at a time through the device path (preprocess, infer, postprocess)."""
    singles = [windows[i : i + 1] for i in range(min(len(windows), 256))]
    return lambda i: engine.score(singles[i % len(singles)])


def host_arch() -> str:
    m = platform.machine().lower()
    return HOST_ARCH.get(m, m)


def latency_applicability(profile: TargetProfile, mode: str) -> str | None:
    """None when this host's timing can decide the latency check, else the reason it is skipped (recorded)."""
    if mode == "fp32":
        return "not applicable: fp32 is the reference"
    first = profile.provider_names[0]
    if first in GPU_PROVIDERS and first not in ort.get_available_providers():
        return "skipped: no CUDA/TensorRT on export host"
    if not profile.gate.require_quantized_faster:
        return "not required by profile (gate.require_quantized_faster: false)"
    if host_arch() != profile.arch:
        # An x86 core's INT8 kernels (VNNI or not) say nothing about a Cortex-A's; `edgekit bench` on the
        # device is the authority there.
        return f"skipped: export host is {host_arch()}, target is {profile.arch}; run `edgekit bench` on the device"
    return None


def latency_verdict(ref: dict[str, float], cand: dict[str, float]) -> bool:
    """Candidate is acceptable when its median batch-1 latency is not above FP32's."""
    return cand["p50"] <= ref["p50"]


def latency_gate(
    lat: dict[str, dict[str, float]], profile: TargetProfile, mode: str
) -> tuple[str, str | None]:
    """(status recorded in the manifest, failure message or None) for the candidate `mode` vs "fp32"."""
    skip = latency_applicability(profile, mode)
    faster = latency_verdict(lat["fp32"], lat[mode])
    if skip is not None:
        if not faster:
            ratio = lat[mode]["p50"] / lat["fp32"]["p50"]
            log.warning("%s is %.2fx FP32's median latency on this host (not gated: %s)", mode, ratio, skip)
        return skip, None
    if faster:
        return "passed", None
    return "failed", (
        f"{mode} is slower than FP32 on this host: median {lat[mode]['p50']:.4f} ms vs {lat['fp32']['p50']:.4f} ms "
        "(gate.require_quantized_faster)"
    )


def check_drop(metric: str, ref: float, cand: float, limit: float) -> tuple[float, str | None]:
    """(drop, failure message or None): the candidate may lose at most `limit` of `metric` vs FP32."""
    drop = ref - cand
    if drop > limit:
        return drop, f"{metric} dropped {drop:.4f} vs FP32 ({ref:.4f} -> {cand:.4f}; allowed {limit:g})"
    return drop, None


def refuse(failures: list[str], mode: str, profile: TargetProfile) -> None:
    if failures:
        raise GateError(f"release gate refused the {mode} model for {profile.name}: " + "; ".join(failures))


def release_gate(
    ref: Engine,
    cand: Engine | None,
    split: EvalSplit,
    profile: TargetProfile,
    mode: str,
    latency_runs: int = 500,
) -> dict[str, Any]:
    """Evaluate FP32 and the candidate; return the gate record, or raise GateError listing every failure.

    `cand` is None for an fp32 export (the reference is the candidate).
    """
    ref_q, ref_scores = quality(ref, split)
    record: dict[str, Any] = {
        "mode": mode,
        "max_f1_drop": profile.gate.max_f1_drop,
        "fp32": ref_q,
        "host_arch": host_arch(),
    }
    engines = {"fp32": ref} if cand is None else {"fp32": ref, mode: cand}
    lat = interleaved_latency(
        {n: engine_runner(e, split.test_x) for n, e in engines.items()}, runs=latency_runs
    )
    record["latency_ms"] = lat
    failures: list[str] = []
    if cand is None:
        record |= {
            "candidate": ref_q,
            "quality_metric": "f1" if ref_q.get("f1") is not None else "none",
            "quality_gate": "not applicable: fp32 is the reference",
            "latency_gate": latency_applicability(profile, mode),
        }
        return record

    cand_q, cand_scores = quality(cand, split)
    record["candidate"] = cand_q
    limit = profile.gate.max_f1_drop
    if ref_q.get("f1") is not None and cand_q.get("f1") is not None:
        drop, failure = check_drop("F1", ref_q["f1"], cand_q["f1"], limit)
        record |= {"quality_metric": "f1", "f1_drop": drop}
        failures += [failure] if failure else []
    else:
        agree = float(((ref_scores >= ref_q["threshold"]) == (cand_scores >= cand_q["threshold"])).mean())
        corr = float(np.corrcoef(ref_scores, cand_scores)[0, 1]) if len(ref_scores) > 1 else None
        record |= {
            "quality_metric": "decision_agreement_vs_fp32 (no test labels)",
            "decision_agreement": agree,
            "score_correlation": corr,
            "disagreement": 1.0 - agree,
        }
        if 1.0 - agree > limit:
            failures.append(
                f"decisions disagree with FP32 on {1 - agree:.2%} of test windows (allowed {limit:.2%})"
            )
    record["quality_gate"] = "failed" if failures else "passed"

    status, failure = latency_gate(lat, profile, mode)
    record["latency_gate"] = status
    record["latency_ratio_p50"] = lat[mode]["p50"] / lat["fp32"]["p50"]
    failures += [failure] if failure else []
    refuse(failures, mode, profile)
    return record
