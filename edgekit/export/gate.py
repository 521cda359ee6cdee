"""Release gate, one for every model kind: a converted model ships only if its quality holds against FP32
on the held-out split and, where this host can stand in for the target, it is not slower than FP32 here.

The kind supplies a `GateModel` per model (how to score its quality, how to run one input); the gate
compares them. Quality is the kind's metric (F1 for sensor runs, macro-F1 for text) and may drop at most
`gate.max_f1_drop`. When the held-out data has no labels the metric is undefined: quality is then the
agreement of the candidate's decisions with FP32's, and `max_f1_drop` bounds the disagreement rate instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from edgekit.errors import GateError
from edgekit.metrics import percentiles
from edgekit.profiles import TargetProfile, host_arch

log = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


@dataclass(frozen=True)
class QualityMetric:
    """The figure a kind is gated on: its key in the metrics dict and its name in messages."""

    key: str
    label: str


@dataclass
class Quality:
    """One model's quality on the held-out split."""

    metrics: dict[str, Any]  # recorded in the manifest
    decisions: np.ndarray  # per held-out input, compared with FP32's when there are no labels
    scores: np.ndarray | None = None  # continuous scores, for the score correlation (label-free)


@dataclass
class GateModel:
    """What the gate needs of one model: its quality, and one held-out input at a time (the i-th)."""

    quality: Callable[[], Quality]
    run_one: Callable[[int], object]


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


# A bundle carrying fp32 beside the candidate leaves the choice to the device (edgekit.runtime.tune): it
# never runs a variant slower than another correct one it carries, so export only records the timing.
DEVICE_DECIDES = "recorded only: the bundle carries fp32 too and the device runs the fastest correct variant"


def latency_gate(
    lat: dict[str, dict[str, float]], profile: TargetProfile, mode: str, device_decides: bool = False
) -> tuple[str, str | None]:
    """(status recorded in the manifest, failure message or None) for the candidate `mode` vs "fp32"."""
    skip = latency_applicability(profile, mode)
    if skip is None and device_decides:
        skip = DEVICE_DECIDES
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


def severe_recall_gate(
    student: dict[str, float | None], teacher: dict[str, float | None], limit: float | None
) -> tuple[dict[str, Any], list[str]]:
    """(record, failures): the student's test recall on each severe class vs the teacher's, which it may
    trail by at most `limit` (gate.max_severe_recall_drop; None: recorded only)."""
    record: dict[str, Any] = {"max_severe_recall_drop": limit, "classes": {}}
    failures = []
    for cls, s in student.items():
        t = teacher.get(cls)
        drop = None if s is None or t is None else t - s
        record["classes"][cls] = {"student_recall": s, "teacher_recall": t, "drop": drop}
        if limit is not None and drop is not None and drop > limit:
            failures.append(
                f"student recall on severe class {cls!r} is {s:.3f} vs the teacher's {t:.3f}: {drop:.3f} below "
                f"(allowed {limit:g}, gate.max_severe_recall_drop)"
            )
    record["status"] = "not checked" if limit is None else "failed" if failures else "passed"
    return record, failures


def refuse(failures: list[str], mode: str, profile: TargetProfile) -> None:
    if failures:
        raise GateError(
            f"release gate refused the {mode} model for {profile.name}: " + "; ".join(failures), mode=mode
        )


def release_gate(
    ref: GateModel,
    cand: GateModel | None,
    metric: QualityMetric,
    profile: TargetProfile,
    mode: str,
    latency_runs: int = 500,
    device_decides: bool = False,
) -> dict[str, Any]:
    """Evaluate FP32 and the candidate; return the gate record (the candidate's quality under "candidate"),
    or raise GateError listing every failure. `cand` is None for an fp32 export (the reference is the candidate).
    `device_decides`: the bundle also carries fp32, so the latency check only records (see DEVICE_DECIDES).
    """
    ref_q = ref.quality()
    record: dict[str, Any] = {
        "mode": mode,
        "max_f1_drop": profile.gate.max_f1_drop,
        "fp32": ref_q.metrics,
        "host_arch": host_arch(),
    }
    models = {"fp32": ref} if cand is None else {"fp32": ref, mode: cand}
    lat = interleaved_latency({n: m.run_one for n, m in models.items()}, runs=latency_runs)
    record["latency_ms"] = lat
    ref_value = ref_q.metrics.get(metric.key)
    if cand is None:
        record |= {
            "candidate": ref_q.metrics,
            "quality_metric": metric.key if ref_value is not None else "none",
            "quality_gate": "not applicable: fp32 is the reference",
            "latency_gate": latency_applicability(profile, mode),
        }
        return record

    cand_q = cand.quality()
    record["candidate"] = cand_q.metrics
    cand_value = cand_q.metrics.get(metric.key)
    limit = profile.gate.max_f1_drop
    failures: list[str] = []
    if ref_value is not None and cand_value is not None:
        drop, failure = check_drop(metric.label, ref_value, cand_value, limit)
        record |= {"quality_metric": metric.key, f"{metric.key}_drop": drop}
        failures += [failure] if failure else []
    else:
        agree = float((ref_q.decisions == cand_q.decisions).mean())
        both = ref_q.scores is not None and cand_q.scores is not None and len(ref_q.scores) > 1
        corr = float(np.corrcoef(ref_q.scores, cand_q.scores)[0, 1]) if both else None
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

    status, failure = latency_gate(lat, profile, mode, device_decides)
    record["latency_gate"] = status
    record["latency_ratio_p50"] = lat[mode]["p50"] / lat["fp32"]["p50"]
    failures += [failure] if failure else []
    refuse(failures, mode, profile)
    return record
