"""`edgekit distill` for sensor data: prepare -> train (supervised, black-box or label-free) -> report,
and write RUN_DIR. Each stage lives in its own module; this one wires them and writes the folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit import __version__
from edgekit.data.ts_format import published_accuracies
from edgekit.distill.cascade import check_target, distill_rule
from edgekit.distill.config import DistillConfig, resolve, write_config
from edgekit.distill.label_free import train_label_free
from edgekit.distill.prepare import Prepared, prepare, tensor
from edgekit.distill.prepare_series import is_series_dataset, prepare_series
from edgekit.distill.report import render_table, torch_latency_ms, write_report
from edgekit.distill.supervised import train_supervised
from edgekit.distill.train import set_seed
from edgekit.escalation import rule_line
from edgekit.metrics import agreement, classification_metrics, model_metrics
from edgekit.models.registry import count_params
from edgekit.run import ArchSpec, Normalization, RunWindows, SensorRun, save_windows, write_run

__all__ = ["DistillConfig", "distill"]

# a class with less than this share of the labelled training windows (and under half an even share of
# K classes, so that 11 balanced classes are not all "rare") is rare: its recall gets a line
RARE_SHARE = 0.1


def _model_row(p: Prepared, res: dict[str, Any], name: str) -> dict[str, Any]:
    """Test figures of one model: the anomaly view (F1, recall, false alarms at its validation threshold)
    when a class is normal, and the class view (macro-F1, per-class figures, confusion matrix)."""
    sc = res["scores"][name]["test"]
    mask = ~np.isnan(sc)
    y = None if p.test.y is None or not mask.any() else p.test.y[mask]
    y_anom = None if y is None or p.normal is None else (y != p.normal).astype(np.int64)
    row = model_metrics(y_anom, sc[mask], res["thresholds"][name])
    probs = res.get("probs", {}).get(name)
    if probs is not None and y is not None:
        cls = classification_metrics(y, probs["test"][mask].argmax(axis=1), p.classes)
        row |= {k: cls[k] for k in ("macro_f1", "per_class", "confusion")} | {
            "class_accuracy": cls["accuracy"]
        }
        if p.series_problem:
            row["series_accuracy"] = _series_accuracy(p.test.end_row[mask], y, probs["test"][mask])
    return row


def _series_accuracy(series: np.ndarray, y: np.ndarray, probs: np.ndarray) -> float:
    """Accuracy per whole series (mean class probabilities over its windows), as published results count."""
    ids, inv = np.unique(series, return_inverse=True)
    mean = np.zeros((len(ids), probs.shape[1]))
    np.add.at(mean, inv, probs)
    truth = np.zeros(len(ids), np.int64)
    truth[inv] = y
    return float((mean.argmax(axis=1) == truth).mean())


def _label_summary(p: Prepared, res: dict[str, Any]) -> dict[str, Any]:
    """Classes, how much of the transfer set is labelled, and the rare classes (by labelled training share)."""
    known = p.labelled_train
    out: dict[str, Any] = {
        "classes": p.classes,
        "normal_class": None if p.normal is None else p.classes[p.normal],
        "labelled_rows": int(known.sum()),
        # the student's whole transfer set: training windows plus the augmented views it was given
        "transfer_rows": res.get("transfer_rows", len(p.train)),
        "labelled_fraction": float(known.mean()) if len(known) else 0.0,
        "no_kd_rows": res.get("no_kd_rows"),
        "rare_classes": [],
    }
    if known.any() and "probs" in res:
        share = np.bincount(p.train.y[known], minlength=len(p.classes)) / known.sum()
        out["rare_classes"] = [
            c
            for i, c in enumerate(p.classes)
            if share[i] < min(RARE_SHARE, 0.5 / len(p.classes)) and i != p.normal
        ]
    return out


def _evaluate(p: Prepared, cfg: DistillConfig, res: dict[str, Any], out: Path) -> dict[str, Any]:
    """Per-model test figures (and checkpoints saved to `out`), retention, agreement and the KD verdict."""
    y_test = p.test.y
    anomaly_rate = None if y_test is None or p.normal is None else float((y_test != p.normal).mean())
    report: dict[str, Any] = {
        "edgekit_version": __version__,
        "dataset": cfg.dataset or str(cfg.csv),
        "mode": p.mode,
        "blackbox": bool(cfg.teacher_outputs),
        "window": p.window,
        "hop": p.hop,
        "channels": p.table.channels,
        "windows": {"train": len(p.train), "val": len(p.val), "test": len(p.test)},
        "test_anomaly_rate": anomaly_rate,
        "kd": {
            "loss": res["loss"],
            "temperature": res.get("temperature", cfg.temperature),
            "alpha": res.get("alpha", cfg.alpha),
        },
        "seed": cfg.seed,
    }
    if p.mode == "supervised":
        report["teacher_kind"] = None if cfg.teacher_outputs else cfg.teacher
        report["augment"] = {"mode": cfg.augment, "views": cfg.augment_views if cfg.augment != "none" else 0}
        report["student_steps"] = cfg.student_steps
        # --tune: the grid, each point's validation macro-F1 and the chosen temperature and alpha
        report["tune"] = res.get("tune")
    if p.mode == "supervised":
        report |= _label_summary(p, res)
    if "transfer" in res:  # label-free: clean and perturbed windows in the transfer set, and the KD chosen
        report["label_free_transfer"] = res["transfer"]
    if p.series_problem:
        # aeon's published test accuracies (per series, official split) beside edgekit's series accuracy
        report["published_accuracy"] = published_accuracies(p.series_problem)
    example = tensor(p.test.x[:1])
    for name, (model, spec) in res["models"].items():
        row = _model_row(p, res, name)
        if model is not None:
            path = out / f"{name}.pt"
            torch.save(model.state_dict(), path)
            row |= {
                "params": count_params(model),
                "bytes": path.stat().st_size,
                "torch_ms": torch_latency_ms(model, example),
                "arch": spec.to_dict(),
            }
        else:
            row |= {"params": None, "bytes": None, "torch_ms": None, "arch": None}
        report[name] = row

    t, s = report["teacher"], report["student"]
    # K > 2 classes: macro-F1 is the quality figure; two classes keep the anomaly F1 they always had
    metric = "macro_f1" if len(p.classes) > 2 and p.mode == "supervised" else "f1"
    report["quality_metric"] = metric
    report["retention"] = s[metric] / t[metric] if t.get(metric) and s.get(metric) is not None else None
    if metric == "macro_f1":
        t_dec = res["probs"]["teacher"]["test"].argmax(axis=1)
        s_dec = res["probs"]["student"]["test"].argmax(axis=1)
    else:
        t_dec = res["scores"]["teacher"]["test"] >= res["thresholds"]["teacher"]
        s_dec = res["scores"]["student"]["test"] >= res["thresholds"]["student"]
    report["agreement"] = agreement(t_dec, s_dec)
    report["compression"] = t["params"] / s["params"] if t.get("params") else None
    nk = report.get("student_no_kd")
    ok = nk and s.get(metric) is not None and nk.get(metric) is not None
    report["kd_beats_no_kd"] = bool(s[metric] > nk[metric]) if ok else None
    both = nk and s.get("macro_f1") is not None and nk.get("macro_f1") is not None
    report["kd_gain"] = s["macro_f1"] - nk["macro_f1"] if both else None
    return report


def _write_windows(p: Prepared, seed: int, out: Path) -> None:
    calib = p.train.x[np.random.default_rng(seed).permutation(len(p.train))[:2048]]
    inv = lambda x: (x * p.norm.std + p.norm.mean).astype(np.float32)  # noqa: E731  windows are stored raw
    save_windows(out, RunWindows(inv(calib), inv(p.val.x), p.val.y, inv(p.test.x), p.test.y))


def distill(cfg: DistillConfig) -> dict[str, Any]:
    """Run the whole distillation and write RUN_DIR (checkpoints, run.json, config.yaml, windows.npz,
    report.json/.md); returns the report (with a rendered "table")."""
    cfg = resolve(cfg)
    set_seed(cfg.seed)
    p = prepare_series(cfg) if is_series_dataset(cfg.dataset) else prepare(cfg)
    target = check_target(p, cfg)  # a bad cascade target fails before training, not after
    res = train_supervised(p, cfg) if p.mode == "supervised" else train_label_free(p, cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    report = _evaluate(p, cfg, res, out)
    rule, report["cascade"] = distill_rule(p, target, res)
    table = render_table(report) + ("" if rule is None else "\n" + rule_line(rule, report["cascade"]["test"]))
    write_report(out, report, table, f"{report['dataset']} ({p.mode})")
    _write_windows(p, cfg.seed, out)
    run = SensorRun(
        dataset=report["dataset"],
        mode=p.mode,
        window=p.window,
        hop=p.hop,
        channels=p.table.channels,
        normalization=Normalization(**p.norm.to_dict()),
        labels=list(p.classes) if p.mode == "supervised" else ["normal", "anomaly"],
        normal_class=None if p.normal is None or p.mode != "supervised" else p.classes[p.normal],
        score=res["score"],
        thresholds=res["thresholds"],
        false_alarm_rate=cfg.false_alarm_rate if p.mode == "unsupervised" else None,
        models={
            name: ArchSpec(**spec.to_dict()) for name, (_m, spec) in res["models"].items() if spec is not None
        },
        seed=cfg.seed,
        cascade=rule,
    )
    write_run(out, run)
    # the windowing and mode this run resolved, so repeating it does not depend on today's defaults
    write_config(out, replace(cfg, window=p.window, hop=p.hop, mode=p.mode))
    report["table"] = table
    return report
