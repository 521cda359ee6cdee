"""`edgekit distill` for sensor data: prepare -> train (supervised, black-box or label-free) -> report,
and write RUN_DIR. Each stage lives in its own module; this one wires them and writes the folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit import __version__
from edgekit.distill.config import DistillConfig, write_config
from edgekit.distill.label_free import train_label_free
from edgekit.distill.prepare import Prepared, prepare, tensor
from edgekit.distill.report import render_table, torch_latency_ms, write_report
from edgekit.distill.supervised import train_supervised
from edgekit.distill.train import set_seed
from edgekit.metrics import agreement, model_metrics
from edgekit.models.registry import count_params
from edgekit.run import ArchSpec, Normalization, RunWindows, SensorRun, save_windows, write_run

__all__ = ["DistillConfig", "distill"]


def _evaluate(p: Prepared, cfg: DistillConfig, res: dict[str, Any], out: Path) -> dict[str, Any]:
    """Per-model test figures (and checkpoints saved to `out`), retention, agreement and the KD verdict."""
    y_test = p.test.y
    report: dict[str, Any] = {
        "edgekit_version": __version__,
        "dataset": cfg.dataset or str(cfg.csv),
        "mode": p.mode,
        "blackbox": bool(cfg.teacher_outputs),
        "window": p.window,
        "hop": p.hop,
        "channels": p.table.channels,
        "windows": {"train": len(p.train), "val": len(p.val), "test": len(p.test)},
        "test_anomaly_rate": None if y_test is None else float(y_test.mean()),
        "kd": {"loss": res["loss"], "temperature": cfg.temperature, "alpha": cfg.alpha},
        "seed": cfg.seed,
    }
    example = tensor(p.test.x[:1])
    for name, (model, spec) in res["models"].items():
        sc = res["scores"][name]["test"]
        mask = ~np.isnan(sc)
        y = None if y_test is None or not mask.any() else y_test[mask]
        row = model_metrics(y, sc[mask], res["thresholds"][name])
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
    report["retention"] = s["f1"] / t["f1"] if t.get("f1") and s.get("f1") is not None else None
    t_dec = res["scores"]["teacher"]["test"] >= res["thresholds"]["teacher"]
    s_dec = res["scores"]["student"]["test"] >= res["thresholds"]["student"]
    report["agreement"] = agreement(t_dec, s_dec)
    report["compression"] = t["params"] / s["params"] if t.get("params") else None
    nk = report.get("student_no_kd")
    report["kd_beats_no_kd"] = (
        None if not nk or s["f1"] is None or nk["f1"] is None else bool(s["f1"] > nk["f1"])
    )
    return report


def _write_windows(p: Prepared, seed: int, out: Path) -> None:
    calib = p.train.x[np.random.default_rng(seed).permutation(len(p.train))[:2048]]
    inv = lambda x: (x * p.norm.std + p.norm.mean).astype(np.float32)  # noqa: E731  windows are stored raw
    save_windows(out, RunWindows(inv(calib), inv(p.val.x), p.val.y, inv(p.test.x), p.test.y))


def distill(cfg: DistillConfig) -> dict[str, Any]:
    """Run the whole distillation and write RUN_DIR (checkpoints, run.json, config.yaml, windows.npz,
    report.json/.md); returns the report (with a rendered "table")."""
    set_seed(cfg.seed)
    p = prepare(cfg)
    res = train_supervised(p, cfg) if p.mode == "supervised" else train_label_free(p, cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    report = _evaluate(p, cfg, res, out)
    table = render_table(report)
    write_report(out, report, table, f"{report['dataset']} ({p.mode})")
    _write_windows(p, cfg.seed, out)
    run = SensorRun(
        dataset=report["dataset"],
        mode=p.mode,
        window=p.window,
        hop=p.hop,
        channels=p.table.channels,
        normalization=Normalization(**p.norm.to_dict()),
        labels=["normal", "anomaly"],
        score=res["score"],
        thresholds=res["thresholds"],
        false_alarm_rate=cfg.false_alarm_rate if p.mode == "unsupervised" else None,
        models={
            name: ArchSpec(**spec.to_dict()) for name, (_m, spec) in res["models"].items() if spec is not None
        },
        seed=cfg.seed,
    )
    write_run(out, run)
    # the windowing and mode this run resolved, so repeating it does not depend on today's defaults
    write_config(out, replace(cfg, window=p.window, hop=p.hop, mode=p.mode))
    report["table"] = table
    return report
