"""`edgekit evaluate --cascade`: the curve a user picks a cascade from, on the test split of a run.

Both models of the run are exported to FP32 ONNX in a temporary folder (the export skeleton's
`convert_fp32`, parity checked) and run through the device's engine: student alone, teacher alone, and the
cascade at a range of confidence thresholds (escalation rate, quality, anomaly recall, mean and p99
latency per window). Latency is measured per test window, batch 1, for both models in the same run,
interleaved; a cascade window costs the student's time plus, when it escalates, the teacher's.
The result is plain data (`CascadeEvaluation.to_dict`, cascade.json); `cascade_plot` draws it.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle.manifest import Cascade, Manifest
from edgekit.errors import ConfigError
from edgekit.escalation import (
    EscalationTarget,
    Split,
    cascade_point,
    choose_rule,
    escalation_mask,
    forced_escalations,
    student_confidence,
    threshold_for_rate,
)
from edgekit.profiles import TargetProfile, load_profile
from edgekit.run import load_run

log = logging.getLogger(__name__)

SCHEMA = 1
CASCADE_FILE = "cascade.json"
# validation escalation rates whose thresholds make the curve (more near 0, where cascades are used)
CURVE_RATES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


@dataclass
class CascadePoint:
    """One operating point on the test split."""

    threshold: float | None  # None: the model alone (student: never escalates; teacher: always)
    escalation_rate: float
    quality: float | None
    anomaly_recall: float | None
    latency_mean_ms: float
    latency_p99_ms: float


@dataclass
class CascadeEvaluation:
    """cascade.json: student alone, teacher alone, the chosen rule's point and the curve over thresholds."""

    run_dir: str
    profile: str
    metric: str
    measure: str
    test_windows: int
    latency_windows: int
    student: CascadePoint
    teacher: CascadePoint
    chosen: CascadePoint
    rule: dict[str, Any]
    curve: list[CascadePoint] = field(default_factory=list)
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def per_window_latency(
    student: tuple[Path, Manifest],
    teacher: tuple[Path, Manifest],
    windows: np.ndarray,
    profile: TargetProfile,
    repeats: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Batch-1 wall time (ms) of each window through each model's engine (preprocess, infer, postprocess):
    the median of `repeats` passes over the windows (one descheduling on a busy host does not make a window
    slow), the two models alternating window by window (and swapping order) so drift hits both alike."""
    from edgekit.runtime.engine import Engine

    engines = [Engine(d, profile, m) for d, m in (student, teacher)]
    for e in engines:  # warm-up: first runs allocate
        for w in windows[:20]:
            e.score(w[None])
    times = np.zeros((repeats, 2, len(windows)))
    for r in range(repeats):
        for i, w in enumerate(windows):
            for k in (0, 1) if (i + r) % 2 == 0 else (1, 0):
                t0 = time.perf_counter_ns()
                engines[k].score(w[None])
                times[r, k, i] = (time.perf_counter_ns() - t0) / 1e6
    med = np.median(times, axis=0)
    return med[0], med[1]


def _point(
    split: Split,
    escalate: np.ndarray,
    sample: np.ndarray,
    lat: tuple[np.ndarray, np.ndarray],
    thr: float | None,
) -> CascadePoint:
    p = cascade_point(split, escalate)
    ms = lat[0] + escalate[sample] * lat[1]
    return CascadePoint(
        thr,
        p["escalation_rate"],
        p["quality"],
        p["anomaly_recall"],
        float(ms.mean()),
        float(np.percentile(ms, 99)),
    )


def evaluate_cascade(
    run_dir: str | Path,
    out: str | Path,
    profile: TargetProfile | str = "x86-gateway",
    latency_windows: int = 500,
    seed: int = 0,
    target: EscalationTarget | None = None,
) -> CascadeEvaluation:
    """Evaluate the student / teacher cascade of RUN_DIR on its test split; write out/cascade.json and (with
    matplotlib) out/cascade.png. The chosen point is the rule for `target` chosen on validation (the ONNX
    models' outputs), else the run's rule (`edgekit distill`), else the rule for a rate of 0.1."""
    from edgekit.bench.cascade_plot import plot_cascade
    from edgekit.export.exporter import ExportOptions
    from edgekit.export.pipeline import EXPORTERS, convert_fp32

    if latency_windows < 1:
        raise ConfigError(f"--latency-windows must be at least 1, got {latency_windows}")
    prof = profile if isinstance(profile, TargetProfile) else load_profile(profile)
    run = load_run(run_dir)
    student_exp = EXPORTERS[run.kind](run, prof, ExportOptions(model="student"))
    if not student_exp.supports_cascade:
        raise ConfigError(f"evaluate --cascade: {run.kind} runs are not supported yet (sensor runs are)")
    with tempfile.TemporaryDirectory(prefix="edgekit-cascade-") as tmp:
        models = []
        for name in ("student", "teacher"):
            shared = convert_fp32(student_exp.for_model(name), Path(tmp) / name, Path(tmp) / name)
            models.append((shared.fp32.parent.parent / "fp32", shared.base))
        student, teacher = models
        val = student_exp.cascade_split(student, teacher, "val")
        test = student_exp.cascade_split(student, teacher, "test")
        rule = student_exp.run_rule() if target is None else None
        rule = rule or choose_rule(val, target or EscalationTarget())
        n = len(test.student.score)
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, min(n, latency_windows), replace=False))
        x = student_exp.windows.test_x[sample]
        lat = per_window_latency(student, teacher, x, prof)
    forced = forced_escalations(val, rule.severe_classes, rule.severe_min_probability)
    conf = student_confidence(val, rule.measure)
    thresholds = sorted({threshold_for_rate(conf, forced, r) for r in CURVE_RATES} | {rule.threshold})
    probe = Cascade(rule.mode, rule.measure, 0.0, rule.severe_classes, rule.severe_min_probability)
    curve = []
    for thr in thresholds:
        probe.threshold = thr
        curve.append(_point(test, escalation_mask(probe, test), sample, lat, thr))
    nothing, everything = np.zeros(n, bool), np.ones(n, bool)
    student_alone = _point(test, nothing, sample, lat, None)
    teacher_pt = cascade_point(test, everything)
    teacher_alone = CascadePoint(
        None,
        1.0,
        teacher_pt["quality"],
        teacher_pt["anomaly_recall"],
        float(lat[1].mean()),
        float(np.percentile(lat[1], 99)),
    )
    result = CascadeEvaluation(
        run_dir=str(Path(run_dir).resolve()),
        profile=prof.name,
        metric=test.metric,
        measure=rule.measure,
        test_windows=n,
        latency_windows=len(sample),
        student=student_alone,
        teacher=teacher_alone,
        chosen=_point(test, escalation_mask(rule, test), sample, lat, rule.threshold),
        rule={
            "measure": rule.measure,
            "threshold": rule.threshold,
            "severe_classes": rule.severe_classes,
            "severe_min_probability": rule.severe_min_probability,
            "validation": rule.validation,
        },
        curve=curve,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / CASCADE_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    plot_cascade(out, result.to_dict())
    return result
