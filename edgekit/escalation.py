"""The cascade's escalation rule (numpy only), shared by distill (records it in the run), export (re-chooses
it for the bundle's models) and bench (`edgekit evaluate --cascade`): student first, the teacher for the
windows the student is unsure of.

`choose_rule` picks, on the validation split, a confidence measure (classifiers: max_prob, margin or
neg_entropy, the one with the best quality-vs-escalation-rate area; label-free scores: score_distance) and a
threshold meeting an escalation rate or a share of the teacher's quality; severe classes always escalate.
The result is the manifest's `Cascade`. The measures themselves are `edgekit.runtime.confidence` (the device
computes the same number). The text distillation's own policy is `edgekit.distill.escalation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.bundle.manifest import Cascade
from edgekit.errors import ConfigError
from edgekit.metrics import macro_f1, prf
from edgekit.runtime.confidence import confidence, severe_in_sight

# Confidence measures a classifier's rule picks among; label-free scores have one (score_distance).
CLASSIFIER_MEASURES = ("max_prob", "margin", "neg_entropy")
# The measure is picked by its area under the quality-vs-escalation-rate curve over these validation
# escalation rates: the range a cascade is used in (past half the windows, running the teacher alone is
# simpler), so a measure that ranks well only at high rates does not win.
SELECTION_RATES = np.linspace(0.0, 0.5, 26)
DEFAULT_RATE = 0.1
# threshold candidates scanned for a quality target (quantiles of the confidence; all when fewer)
MAX_CANDIDATES = 512


@dataclass
class EscalationTarget:
    """What the rule is chosen for: an escalation rate, or a fraction of the teacher's quality (one of the
    two; neither: rate 0.1), and the severe classes that always escalate."""

    rate: float | None = None
    quality: float | None = None
    severe_classes: list[str] = field(default_factory=list)
    severe_min_probability: float = 0.2

    def __post_init__(self) -> None:
        if self.rate is not None and self.quality is not None:
            raise ConfigError("--escalate-rate and --escalate-for-quality: give one of the two, not both")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ConfigError(f"--escalate-rate must be in [0, 1], got {self.rate}")
        if self.quality is not None and not 0.0 < self.quality <= 1.0:
            raise ConfigError(f"--escalate-for-quality must be in (0, 1], got {self.quality}")
        if not 0.0 < self.severe_min_probability <= 1.0:
            raise ConfigError(f"severe_min_probability must be in (0, 1], got {self.severe_min_probability}")
        if self.rate is None and self.quality is None:
            self.rate = DEFAULT_RATE

    def to_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "quality": self.quality}

    @classmethod
    def from_flags(
        cls, rate: float | None, quality: float | None, severe: list[str] | None
    ) -> EscalationTarget | None:
        """The target the command-line flags ask for; None when none was given (use the run's rule)."""
        if rate is None and quality is None and severe is None:
            return None
        return cls(rate, quality, list(severe or []))

    @classmethod
    def of_rule(cls, rule: Cascade) -> EscalationTarget:
        """The target a rule was chosen for (recorded in its validation figures)."""
        t = rule.validation.get("target") or {}
        return cls(t.get("rate"), t.get("quality"), list(rule.severe_classes), rule.severe_min_probability)


@dataclass
class ModelOutputs:
    """One model's outputs on one split, as the device computes them: the score (anomaly probability or
    label-free score), its decision threshold, and the class probabilities of a softmax model."""

    score: np.ndarray
    threshold: float
    probs: np.ndarray | None = None


@dataclass
class Split:
    """Student and teacher outputs on one split, with its labels (class indices; None: unlabelled).

    `labels` are the class names ("normal", "anomaly" for label-free runs); `normal` the normal class's index
    (None: K classes without one). Quality is macro-F1 for K > 2 classes, else the anomaly F1.
    """

    student: ModelOutputs
    teacher: ModelOutputs
    y: np.ndarray | None
    labels: list[str]
    normal: int | None

    @property
    def metric(self) -> str:
        return "macro_f1" if len(self.labels) > 2 else "f1"

    def decisions(self, m: ModelOutputs) -> np.ndarray:
        return class_decisions(m, self.labels, self.normal)

    def quality(self, pred: np.ndarray) -> float | None:
        if self.y is None:
            return None
        if self.metric == "macro_f1":
            return macro_f1(self.y, pred, len(self.labels))
        normal = 0 if self.normal is None else self.normal
        return prf(self.y != normal, pred != normal)["f1"]

    def anomaly_recall(self, pred: np.ndarray) -> float | None:
        if self.y is None or self.normal is None:
            return None
        return prf(self.y != self.normal, pred != self.normal)["recall"]


def class_decisions(m: ModelOutputs, labels: list[str], normal: int | None) -> np.ndarray:
    """Class index per window: the top class (K > 2), else the anomaly decision at the model's threshold."""
    if m.probs is not None and len(labels) > 2:
        return m.probs.argmax(axis=1)
    anomalous = m.score >= m.threshold
    normal = 0 if normal is None else normal
    return np.where(anomalous, 1 - normal, normal)


def severe_indices(labels: list[str], severe: list[str]) -> list[int]:
    unknown = [c for c in severe if c not in labels]
    if unknown:
        raise ConfigError(f"--severe-class {unknown[0]!r} is not a class of this run ({', '.join(labels)})")
    return [labels.index(c) for c in severe]


def forced_escalations(split: Split, severe: list[str], min_probability: float) -> np.ndarray:
    """Windows that escalate whatever the confidence: the student's top class is severe, or it gives a
    severe class at least `min_probability`."""
    n = len(split.student.score)
    if not severe:
        return np.zeros(n, bool)
    probs = split.student.probs
    if probs is None:
        raise ConfigError("--severe-class needs a classifier (this run's scores are label-free)")
    return severe_in_sight(probs, np.array(severe_indices(split.labels, severe)), min_probability)


def student_confidence(split: Split, measure: str) -> np.ndarray:
    s = split.student
    return confidence(measure, probs=s.probs, score=s.score, threshold=s.threshold)


def escalation_mask(rule: Cascade, split: Split) -> np.ndarray:
    """The windows `rule` escalates: confidence below its threshold, or a severe class in sight."""
    forced = forced_escalations(split, rule.severe_classes, rule.severe_min_probability)
    return forced | (student_confidence(split, rule.measure) < rule.threshold)


def cascade_point(split: Split, escalate: np.ndarray) -> dict[str, float | None]:
    """Escalation rate and quality of the cascade that answers `escalate` windows with the teacher."""
    pred = np.where(escalate, split.decisions(split.teacher), split.decisions(split.student))
    return {
        "escalation_rate": float(escalate.mean()) if len(escalate) else 0.0,
        "quality": split.quality(pred),
        "anomaly_recall": split.anomaly_recall(pred),
    }


def threshold_for_rate(conf: np.ndarray, forced: np.ndarray, rate: float) -> float:
    """The highest threshold escalating at most `rate` of the windows, counting the forced ones (ties
    stay together, so the rate may fall a little short; forced ones alone may exceed it)."""
    free = np.sort(conf[~forced])
    k = int(np.floor(rate * len(conf) + 1e-9)) - int(forced.sum())
    if k <= 0 or not len(free):
        return float(free[0]) if len(free) else 0.0
    if k >= len(free):
        return float(free[-1]) + 1e-6
    return float(free[k])


def _candidates(conf: np.ndarray) -> np.ndarray:
    values = np.unique(conf)
    if len(values) > MAX_CANDIDATES:
        values = np.unique(np.quantile(conf, np.linspace(0, 1, MAX_CANDIDATES)))
    return np.r_[values, values[-1] + 1e-6]


def threshold_for_quality(split: Split, conf: np.ndarray, forced: np.ndarray, goal: float) -> float:
    """The lowest threshold (fewest escalations) whose cascade quality reaches `goal`; escalating every
    window (the teacher alone) when none does."""
    candidates = _candidates(conf)
    for thr in candidates:
        q = cascade_point(split, forced | (conf < thr))["quality"]
        if q is not None and q >= goal - 1e-12:
            return float(thr)
    return float(candidates[-1])


def measure_area(split: Split, measure: str, forced: np.ndarray) -> float | None:
    """Mean cascade quality over SELECTION_RATES on `split` (None without labels)."""
    conf = student_confidence(split, measure)
    qs = [
        cascade_point(split, forced | (conf < threshold_for_rate(conf, forced, r)))["quality"]
        for r in SELECTION_RATES
    ]
    return None if any(q is None for q in qs) else float(np.mean(qs))


def choose_rule(val: Split, target: EscalationTarget) -> Cascade:
    """The escalation rule for `target`, chosen on the validation split: the confidence measure with the
    best quality-vs-escalation-rate area (classifiers; label-free scores use score_distance), then the
    threshold meeting the rate or quality target. Its `validation` holds the figures behind the choice."""
    forced = forced_escalations(val, target.severe_classes, target.severe_min_probability)
    measures = CLASSIFIER_MEASURES if val.student.probs is not None else ("score_distance",)
    areas = {m: measure_area(val, m, forced) for m in measures}
    scored = {m: a for m, a in areas.items() if a is not None}
    # without labels no measure can be compared: the first (max_prob) stands
    measure = max(scored, key=lambda m: scored[m]) if scored else measures[0]
    conf = student_confidence(val, measure)
    teacher_q = val.quality(val.decisions(val.teacher))
    if target.quality is not None:
        if teacher_q is None:
            raise ConfigError("--escalate-for-quality needs labelled validation windows (this run has none)")
        threshold = threshold_for_quality(val, conf, forced, target.quality * teacher_q)
    else:
        threshold = threshold_for_rate(conf, forced, float(target.rate))
    rule = Cascade(
        measure=measure,  # type: ignore[arg-type]
        threshold=threshold,
        severe_classes=list(target.severe_classes),
        severe_min_probability=target.severe_min_probability,
    )
    point = cascade_point(val, escalation_mask(rule, val))
    rule.validation = {
        "target": target.to_dict(),
        "metric": val.metric,
        "windows": len(conf),
        "measure_areas": areas,
        "severe_rate": float(forced.mean()) if len(forced) else 0.0,
        **rule_figures(val, point),
    }
    return rule


def rule_figures(split: Split, point: dict[str, float | None]) -> dict[str, float | None]:
    """Escalation rate and student / teacher / cascade quality on a split (and the cascade's share of the
    teacher's quality)."""
    s = split.quality(split.decisions(split.student))
    t = split.quality(split.decisions(split.teacher))
    c = point["quality"]
    return {
        "escalation_rate": point["escalation_rate"],
        "student_quality": s,
        "teacher_quality": t,
        "cascade_quality": c,
        "cascade_vs_teacher": c / t if c is not None and t else None,
        "cascade_anomaly_recall": point["anomaly_recall"],
    }


def evaluate_rule(split: Split, rule: Cascade) -> dict[str, float | None]:
    """`rule_figures` of `rule` applied to another split (the test split)."""
    return rule_figures(split, cascade_point(split, escalation_mask(rule, split)))


def rule_line(rule: Cascade, test: dict[str, Any] | None = None) -> str:
    """One line for people: the rule, what it was chosen for, and its validation (and test) figures."""
    v = rule.validation
    target = v.get("target") or {}
    goal = (
        f"{target['quality']:.3g} of the teacher's {v.get('metric')}"
        if target.get("quality") is not None
        else f"escalation rate {target.get('rate')}"
    )
    severe = (
        f"; severe classes {', '.join(rule.severe_classes)} always escalate" if rule.severe_classes else ""
    )

    def figs(d: dict[str, Any]) -> str:
        q = lambda k: "-" if d.get(k) is None else f"{d[k]:.3f}"  # noqa: E731
        return (
            f"escalates {d['escalation_rate']:.1%}, {v.get('metric')} student {q('student_quality')}, "
            f"teacher {q('teacher_quality')}, cascade {q('cascade_quality')}"
        )

    line = (
        f"cascade rule ({goal}): escalate when {rule.measure} < {rule.threshold:.4g}{severe}; "
        f"validation: {figs(v)}"
    )
    return line + (f"; test: {figs(test)}" if test else "")
