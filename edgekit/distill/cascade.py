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
from edgekit.errors import ConfigError
from edgekit.escalation import (
    EscalationTarget,
    ModelOutputs,
    Split,
    choose_rule,
    evaluate_rule,
    severe_indices,
)

log = logging.getLogger(__name__)


def check_target(p: Prepared, cfg: DistillConfig) -> EscalationTarget:
    """The run's escalation target, checked against its classes before any training (ConfigError)."""
    target = EscalationTarget(cfg.escalate_rate, cfg.escalate_for_quality, list(cfg.severe_classes or []))
    if target.severe_classes and p.mode != "supervised":
        raise ConfigError("--severe-class needs a classifier (a supervised run); this run is label-free")
    severe_indices(list(p.classes), target.severe_classes)
    return target


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


def distill_rule(
    p: Prepared, target: EscalationTarget, res: dict[str, Any]
) -> tuple[Cascade | None, dict | None]:
    """(the rule for run.json, report.json's `cascade` entry: the rule's validation figures and its test
    figures); (None, None) when the teacher left some windows without an output (black-box gaps)."""
    val, test = split_of(p, res, "val"), split_of(p, res, "test")
    outs = (val.student, val.teacher, test.student, test.teacher)
    if any(np.isnan(o.score).any() for o in outs):
        log.info("no cascade rule: the teacher has no output for some validation or test windows")
        return None, None
    rule = choose_rule(val, target)
    return rule, {
        "measure": rule.measure,
        "threshold": rule.threshold,
        "severe_classes": rule.severe_classes,
        "validation": rule.validation,
        "test": evaluate_rule(test, rule),
    }
