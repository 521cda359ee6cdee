"""The cascade's part of an export: the escalation rule re-chosen on the exported student's and teacher's
validation outputs (`edgekit.escalation.choose_rule`, the target recorded by `edgekit distill` unless
export overrides it), its test figures, and the severe-class recall gate (gate.max_severe_recall_drop).

The teacher itself goes through the export skeleton (`edgekit.export.pipeline`) like the student."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgekit.bundle.manifest import Cascade, Manifest
from edgekit.errors import GateError
from edgekit.escalation import (
    EscalationTarget,
    choose_rule,
    class_decisions,
    evaluate_rule,
    rule_line,
    severe_indices,
)
from edgekit.export.exporter import ModelExporter
from edgekit.export.gate import refuse, severe_recall_gate
from edgekit.metrics import classification_metrics

log = logging.getLogger(__name__)

BundleModel = tuple[Path, Manifest]  # a bundle-shaped folder and the manifest view of one model in it


def cascade_rule(
    exporter: ModelExporter, student: BundleModel, teacher: BundleModel, target: EscalationTarget
) -> tuple[Cascade, dict[str, Any]]:
    """(the rule chosen on the exported models' validation outputs, manifest.metrics["cascade"]: its test
    figures and the rule distill chose on the torch models, for comparison)."""
    rule = choose_rule(exporter.cascade_split(student, teacher, "val"), target)
    test = evaluate_rule(exporter.cascade_split(student, teacher, "test"), rule)
    log.info("%s", rule_line(rule, test))
    distilled = exporter.run_rule()
    return rule, {
        "test": test,
        "distill_rule": None
        if distilled is None
        else {
            "measure": distilled.measure,
            "threshold": distilled.threshold,
            "validation": distilled.validation,
        },
    }


def severe_gate(
    exporter: ModelExporter, student: BundleModel, target: EscalationTarget, report: dict[str, Any]
) -> dict[str, Any]:
    """The exported student's test recall on each severe class vs the teacher's (report.json, the same
    test windows); GateError naming class and figures when it trails by more than the profile allows."""
    y, labels, normal = exporter.split_labels("test")
    severe_indices(labels, target.severe_classes)  # ConfigError naming an unknown class
    outputs = exporter.model_outputs(*student, "test")
    if y is None or outputs.probs is None:
        raise GateError("severe classes need a labelled classifier run (this run has no class labels)")
    per_class = classification_metrics(y, class_decisions(outputs, labels, normal), labels)["per_class"]
    teacher_rows = (report.get("teacher") or {}).get("per_class") or {}
    teacher = {c: (teacher_rows.get(c) or {}).get("recall") for c in target.severe_classes}
    if any(v is None for v in teacher.values()):
        raise GateError(
            f"{exporter.run.path}: report.json has no teacher recall for the severe classes "
            f"{', '.join(target.severe_classes)} (re-run `edgekit distill`)"
        )
    student_recall = {c: per_class[c]["recall"] for c in target.severe_classes}
    record, failures = severe_recall_gate(
        student_recall, teacher, exporter.profile.gate.max_severe_recall_drop
    )
    refuse(failures, str(student[1].quantization.get("mode", "default")), exporter.profile)
    return record
