"""The cascade rule chosen on validation (edgekit.escalation): known values on synthetic outputs
(synthetic: constructed arrays, not data), and the rule a real distillation records in its run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.errors import ConfigError
from edgekit.escalation import (
    EscalationTarget,
    ModelOutputs,
    Split,
    choose_rule,
    escalation_mask,
    student_confidence,
)

LABELS = ["normal", "a", "b", "c"]


def synthetic_split(n: int = 1000, seed: int = 0) -> Split:
    """SYNTHETIC: a noisy 4-class student and a teacher that is always right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    tp = np.eye(4)[y] * 0.9 + 0.025
    return Split(ModelOutputs(1 - p[:, 0], 0.5, p), ModelOutputs(1 - tp[:, 0], 0.5, tp), y, LABELS, 0)


def test_rate_target_escalates_that_share_of_validation():
    val = synthetic_split()
    for rate in (0.05, 0.1, 0.3):
        rule = choose_rule(val, EscalationTarget(rate=rate))
        mask = escalation_mask(rule, val)
        assert mask.sum() == round(rate * len(mask))  # continuous confidences: no ties to fall short on
        assert rule.validation["escalation_rate"] == pytest.approx(rate)
        assert rule.validation["target"] == {"rate": rate, "quality": None}
    # more escalation, better cascade (the teacher is always right here)
    low = choose_rule(val, EscalationTarget(rate=0.05)).validation["cascade_quality"]
    high = choose_rule(val, EscalationTarget(rate=0.3)).validation["cascade_quality"]
    assert val.quality(val.decisions(val.student)) < low < high


def test_quality_target_reaches_it_with_the_fewest_escalations():
    val = synthetic_split(n=400)  # under MAX_CANDIDATES: every confidence is a candidate cut
    rule = choose_rule(val, EscalationTarget(quality=0.9))
    v = rule.validation
    assert v["teacher_quality"] == 1.0 and v["cascade_quality"] >= 0.9
    assert v["cascade_vs_teacher"] >= 0.9
    # the next lower confidence cut escalates one window fewer and misses the target
    conf = student_confidence(val, rule.measure)
    fewer = conf < conf[conf < rule.threshold].max()
    pred = np.where(fewer, val.decisions(val.teacher), val.decisions(val.student))
    assert val.quality(pred) < 0.9


def test_the_measure_that_ranks_errors_first_is_chosen():
    """SYNTHETIC: wrong answers are close calls between two classes (high max-prob, small margin, lower
    entropy than the right answers): only the margin puts them first, and it must win on validation."""
    wrong = np.tile([0.48, 0.47, 0.05], (100, 1))  # predicts class 0, truth is class 1
    right = np.tile([0.30, 0.40, 0.30], (400, 1))  # predicts class 1, truth is class 1
    probs = np.r_[wrong, right]
    y = np.ones(500, int)
    teacher = np.tile([0.0, 1.0, 0.0], (500, 1))
    labels = ["x", "y", "z"]
    val = Split(
        ModelOutputs(probs.max(1), 0.5, probs), ModelOutputs(np.ones(500), 0.5, teacher), y, labels, None
    )
    rule = choose_rule(val, EscalationTarget(rate=0.2))
    areas = rule.validation["measure_areas"]
    assert rule.measure == "margin"
    assert areas["margin"] > areas["max_prob"] and areas["margin"] > areas["neg_entropy"]
    # at 20% it escalates exactly the 100 close calls, and the cascade is right everywhere
    assert escalation_mask(rule, val)[:100].all() and rule.validation["cascade_quality"] == 1.0


def test_severe_class_always_escalates():
    val = synthetic_split()
    rule = choose_rule(val, EscalationTarget(rate=0.0, severe_classes=["c"], severe_min_probability=0.3))
    mask = escalation_mask(rule, val)
    probs = val.student.probs
    top_c = probs.argmax(axis=1) == 3
    near_c = probs[:, 3] >= 0.3
    assert top_c.any() and (near_c & ~top_c).any()
    assert mask[top_c | near_c].all()
    # rate 0: nothing else escalates, however unsure
    assert not mask[~(top_c | near_c)].any()
    assert rule.validation["severe_rate"] == pytest.approx((top_c | near_c).mean())


def test_label_free_scores_use_score_distance():
    """SYNTHETIC label-free scores: the windows nearest the decision threshold escalate."""
    rng = np.random.default_rng(1)
    y = (rng.random(800) < 0.1).astype(int)
    s = rng.normal(0, 1, 800) + 2.5 * y
    t = rng.normal(0, 0.3, 800) + 3.0 * y
    val = Split(ModelOutputs(s, 1.2), ModelOutputs(t, 1.5), y, ["normal", "anomaly"], 0)
    rule = choose_rule(val, EscalationTarget(rate=0.25))
    assert rule.measure == "score_distance" and set(rule.validation["measure_areas"]) == {"score_distance"}
    mask = escalation_mask(rule, val)
    assert mask.sum() == 200
    assert np.abs(s[mask] - 1.2).max() <= np.abs(s[~mask] - 1.2).min()
    with pytest.raises(ConfigError, match="severe-class needs a classifier"):
        choose_rule(val, EscalationTarget(rate=0.1, severe_classes=["anomaly"]))


def test_bad_targets_are_refused():
    with pytest.raises(ConfigError, match="one of the two"):
        EscalationTarget(rate=0.1, quality=0.99)
    with pytest.raises(ConfigError, match="escalate-rate"):
        EscalationTarget(rate=1.5)
    with pytest.raises(ConfigError, match="'pump' is not a class"):
        choose_rule(synthetic_split(), EscalationTarget(severe_classes=["pump"]))
    assert EscalationTarget().rate == 0.1


def test_distill_records_the_rule_in_the_run_and_report(sensor_run):
    from edgekit.run import load_run

    rule = load_run(sensor_run).info.cascade
    assert rule is not None and rule.measure in ("max_prob", "margin", "neg_entropy")
    v = rule.validation
    assert v["target"] == {"rate": 0.1, "quality": None}
    assert 0.0 < v["escalation_rate"] <= 0.1 and v["metric"] == "f1"
    assert {"student_quality", "teacher_quality", "cascade_quality"} <= set(v)
    report = json.loads((sensor_run / "report.json").read_text())
    assert report["cascade"]["threshold"] == rule.threshold
    assert 0.0 <= report["cascade"]["test"]["escalation_rate"] <= 1.0
    assert "cascade rule (escalation rate 0.1)" in (sensor_run / "report.md").read_text()


def test_distill_refuses_a_bad_target_before_training(tmp_path):
    from edgekit.distill.pipeline import DistillConfig, distill

    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="'pump' is not a class"):
        distill(DistillConfig(out=str(out), dataset="shuttle", max_rows=500, severe_classes=["pump"]))
    with pytest.raises(ConfigError, match="one of the two"):
        distill(
            DistillConfig(
                out=str(out), dataset="shuttle", max_rows=500, escalate_rate=0.1, escalate_for_quality=0.9
            )
        )
    assert not out.exists()  # nothing trained, nothing written
