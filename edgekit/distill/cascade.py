"""The cascade rule at distill time: the trained student's and teacher's validation outputs -> `choose_rule`
(edgekit.escalation) -> run.json `cascade` and report.json `cascade` (validation and test figures).

`edgekit export --cascade` re-chooses the rule with the same function on the exported models' outputs."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edgekit.bundle.manifest import Cascade
from edgekit.distill.config import DistillConfig
from edgekit.distill.prepare import Prepared
from edgekit.escalation import EscalationTarget, ModelOutputs, Split, choose_rule, evaluate_rule

log = logging.getLogger(__name__)


def target_of(cfg: DistillConfig) -> EscalationTarget:
    return EscalationTarget(cfg.escalate_rate, cfg.escalate_for_quality, list(cfg.severe_classes or []))


def _outputs(res: dict[str, Any], name: str, split: str) -> ModelOutputs:
    probs = res.get("probs", {}).get(name)
    return ModelOutputs(
        np.asarray(res["scores"][name][split], np.float64),
        float(res["thresholds"][name]),
        None if probs is None else np.asarray(probs[split], np.float64),
    )


def split_of(p: Prepared, res: dict[str, Any], split: str) -> Split:
    y = getattr(p, split).y
    return Split(
        _outputs(res, "student", split), _outputs(res, "teacher", split), y, list(p.classes), p.normal
    )


def distill_rule(p: Prepared, cfg: DistillConfig, res: dict[str, Any]) -> tuple[Cascade | None, dict | None]:
    """(the rule for run.json, report.json's `cascade` entry: the rule's validation figures and its test
    figures); (None, None) when the teacher left some windows without an output (black-box gaps)."""
    val, test = split_of(p, res, "val"), split_of(p, res, "test")
    outs = (val.student, val.teacher, test.student, test.teacher)
    if any(np.isnan(o.score).any() for o in outs):
        log.info("no cascade rule: the teacher has no output for some validation or test windows")
        return None, None
    rule = choose_rule(val, target_of(cfg))
    return rule, {
        "measure": rule.measure,
        "threshold": rule.threshold,
        "severe_classes": rule.severe_classes,
        "validation": rule.validation,
        "test": evaluate_rule(test, rule),
    }
