"""`edgekit distill`: data -> teacher -> distilled student (+ the same student without KD) -> report."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekit import __version__
from edgekit.data import Normalizer, SensorTable, WindowSet, load_csv, load_dataset, make_windows, split_table
from edgekit.distill.evaluate import render_table, torch_latency_ms
from edgekit.distill.losses import LOSSES, probs_to_logits
from edgekit.distill.teacher_outputs import load_teacher_outputs, probs_to_two_class
from edgekit.distill.train import TrainConfig, fit, predict, set_seed
from edgekit.errors import DataError
from edgekit.metrics import agreement, best_f1_threshold, far_threshold, model_metrics
from edgekit.models.registry import ModelSpec, build_model, count_params
from edgekit.run import ArchSpec, Normalization, RunWindows, SensorRun, save_windows, write_run

log = logging.getLogger(__name__)

Mode = Literal["supervised", "unsupervised"]

# Window, hop and mode that suit each shipped dataset (Shuttle rows are independent readings).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "shuttle": {"window": 1, "hop": 1, "mode": "supervised"},
    "mitdb": {"window": 256, "hop": 8, "mode": "unsupervised"},
    "daphnet": {"window": 64, "hop": 16, "mode": "unsupervised"},
}


@dataclass
class DistillConfig:
    out: str
    dataset: str | None = None
    csv: str | None = None
    label_column: str | None = None
    timestamp_column: str | None = None
    channels: list[str] | None = None
    window: int | None = None
    hop: int | None = None
    mode: Mode | None = None
    teacher_outputs: str | None = None
    temperature: float = 4.0
    alpha: float = 0.5
    false_alarm_rate: float = 0.01
    seed: int = 0
    max_rows: int | None = None
    teacher_epochs: int = 40
    student_epochs: int = 60
    batch_size: int = 256
    teacher_hidden: int = 192
    student_hidden: int = 16
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class Prepared:
    table: SensorTable
    mode: Mode
    window: int
    hop: int
    norm: Normalizer
    train: WindowSet
    val: WindowSet
    test: WindowSet


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def prepare(cfg: DistillConfig) -> Prepared:
    """Load, split (no leakage), fit normalization on train rows only, and window each split separately."""
    if bool(cfg.dataset) == bool(cfg.csv):
        raise DataError("give exactly one of --dataset or --csv")
    defaults = DATASET_DEFAULTS.get(cfg.dataset or "", {})
    if cfg.dataset:
        table = load_dataset(cfg.dataset)
    else:
        table = load_csv(
            cfg.csv,
            label_column=cfg.label_column,
            timestamp_column=cfg.timestamp_column,
            channels=cfg.channels,
        )
    if cfg.max_rows and cfg.max_rows < len(table):
        if table.ordered:
            table = table.take(slice(0, cfg.max_rows))
        else:
            rng = np.random.default_rng(cfg.seed)
            table = table.take(np.sort(rng.choice(len(table), cfg.max_rows, replace=False)))
    window = cfg.window or defaults.get("window", 1 if not table.ordered else 32)
    hop = cfg.hop or defaults.get("hop", max(1, window // 4))
    if not table.ordered and window != 1:
        raise DataError(
            f"{table.name}: rows are independent readings, so windows must have length 1 (got {window})"
        )
    has_labels = table.labels is not None or cfg.teacher_outputs is not None
    mode: Mode = cfg.mode or defaults.get("mode") or ("supervised" if has_labels else "unsupervised")
    if mode == "supervised" and not has_labels:
        raise DataError(
            "supervised mode needs a --label-column or --teacher-outputs; use --mode unsupervised for unlabelled data"
        )
    splits = split_table(table, cfg.fractions, seed=cfg.seed)
    norm = Normalizer.fit(splits.train.values)
    # The training split is windowed densely (hop 1): every extra window is free transfer data for
    # the student, since the teacher labels it. Validation and test use the deployed hop.
    ws = [make_windows(splits.train, window, 1 if table.ordered else hop)] + [
        make_windows(s, window, hop) for s in (splits.val, splits.test)
    ]
    for w in ws:
        w.x = norm(w.x)
    if mode == "supervised" and cfg.teacher_outputs is None:
        for name, w in zip(("training", "validation", "test"), ws, strict=True):
            if w.y is None or not w.y.any():
                raise DataError(
                    f"{table.name}: the {name} split has no anomalies to {'learn from' if name == 'training' else 'evaluate on'}"
                    + (
                        " (they all fall in one time segment; try --mode unsupervised)"
                        if table.ordered
                        else ""
                    )
                )
    return Prepared(table, mode, window, hop, norm, *ws)


def _tcn_spec(channels: int, window: int, hidden: int, dropout: float, out_dim: int) -> ModelSpec:
    k = 1 if window == 1 else 3
    # enough dilated levels for the last step to see the whole window: 1 + 2(k-1)(2^L - 1) >= window
    levels = 4 if window == 1 else max(2, math.ceil(math.log2((window - 1) / (2 * (k - 1)) + 1)))
    return ModelSpec(
        "tcn",
        {
            "channels": channels,
            "hidden": hidden,
            "levels": levels,
            "kernel_size": k,
            "dropout": dropout,
            "out_dim": out_dim,
        },
    )


def _softmax1(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits, dim=1)[:, 1].numpy()


def _supervised(p: Prepared, cfg: DistillConfig) -> dict[str, Any]:
    c, w = p.train.x.shape[2], p.window
    xtr, xva, xte = (_tensor(s.x) for s in (p.train, p.val, p.test))
    ytr = None if p.train.y is None else _tensor(p.train.y)
    yva = None if p.val.y is None else _tensor(p.val.y)
    models: dict[str, tuple[nn.Module | None, ModelSpec | None]] = {}
    tcfg = TrainConfig(**{**asdict(cfg.train), "seed": cfg.seed, "batch_size": cfg.batch_size})

    if cfg.teacher_outputs:
        probs, hard = load_teacher_outputs(cfg.teacher_outputs, len(p.table))
        teacher_p = {k: probs[s.end_row] for k, s in (("train", p.train), ("val", p.val), ("test", p.test))}
        for k in ("train", "val"):
            missing = int(np.isnan(teacher_p[k]).sum())
            if missing:
                raise DataError(
                    f"{cfg.teacher_outputs}: no teacher output for {missing} {k} windows (every training and validation window needs one)"
                )
        t_logits = {
            k: probs_to_logits(_tensor(probs_to_two_class(np.nan_to_num(v), hard)))
            for k, v in teacher_p.items()
        }
        t_score = {k: np.where(np.isnan(v), np.nan, v) for k, v in teacher_p.items()}
        models["teacher"] = (None, None)
    else:
        spec = _tcn_spec(c, w, cfg.teacher_hidden, 0.1, 2)
        teacher = build_model(spec)
        fit(
            teacher,
            xtr,
            ytr,
            lambda m, xb, yb: F.cross_entropy(m(xb), yb),
            lambda m: F.cross_entropy(predict(m, xva), yva),
            TrainConfig(**{**asdict(tcfg), "epochs": cfg.teacher_epochs}),
            "teacher",
        )
        t_logits = {k: predict(teacher, x) for k, x in (("train", xtr), ("val", xva), ("test", xte))}
        t_score = {k: _softmax1(v) for k, v in t_logits.items()}
        models["teacher"] = (teacher, spec)

    hinton = LOSSES.get("hinton")
    kd_kwargs = {"temperature": cfg.temperature, "alpha": cfg.alpha}
    labelled = ytr is not None and yva is not None
    # labels ride along with the teacher logits in one target tensor: [label, logit0, logit1]
    lab_tr = ytr.float()[:, None] if ytr is not None else torch.full((len(xtr), 1), -1.0)
    targets = torch.cat([lab_tr, t_logits["train"]], dim=1)

    def kd_step(m: nn.Module, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        return hinton(m(xb), tb[:, 1:], tb[:, 0].long() if labelled else None, **kd_kwargs)

    def val_ce(m: nn.Module) -> float:
        if labelled:
            return float(F.cross_entropy(predict(m, xva), yva))
        return float(hinton(predict(m, xva), t_logits["val"], None, **kd_kwargs))

    s_spec = _tcn_spec(c, w, cfg.student_hidden, 0.0, 2)
    student = build_model(s_spec)
    fit(
        student,
        xtr,
        targets,
        kd_step,
        val_ce,
        TrainConfig(**{**asdict(tcfg), "epochs": cfg.student_epochs}),
        "student (KD)",
    )
    models["student"] = (student, s_spec)
    if labelled:
        baseline = build_model(s_spec)
        fit(
            baseline,
            xtr,
            ytr,
            lambda m, xb, yb: F.cross_entropy(m(xb), yb),
            val_ce,
            TrainConfig(**{**asdict(tcfg), "epochs": cfg.student_epochs}),
            "student (no KD)",
        )
        models["student_no_kd"] = (baseline, s_spec)

    scores: dict[str, dict[str, np.ndarray]] = {"teacher": t_score}
    for name in ("student", "student_no_kd"):
        if name in models:
            m = models[name][0]
            scores[name] = {k: _softmax1(predict(m, x)) for k, x in (("val", xva), ("test", xte))}
    thresholds = {}
    for name, sc in scores.items():
        if p.val.y is not None and p.val.y.any() and not np.isnan(sc["val"]).any():
            thresholds[name] = best_f1_threshold(p.val.y, sc["val"])
        else:
            thresholds[name] = 0.5
    return {
        "models": models,
        "scores": scores,
        "thresholds": thresholds,
        "score": "softmax",
        "loss": "hinton",
    }


def _unsupervised(p: Prepared, cfg: DistillConfig) -> dict[str, Any]:
    c, w = p.train.x.shape[2], p.window
    xtr, xva, xte = (_tensor(s.x) for s in (p.train, p.val, p.test))
    normal_tr = xtr if p.train.y is None else xtr[_tensor(p.train.y == 0)]
    normal_va = xva if p.val.y is None else xva[_tensor(p.val.y == 0)]
    if len(normal_tr) < 16:
        raise DataError(f"{p.table.name}: only {len(normal_tr)} normal training windows; need at least 16")
    tcfg = TrainConfig(**{**asdict(cfg.train), "seed": cfg.seed, "batch_size": min(cfg.batch_size, 128)})
    dummy = torch.zeros(len(normal_tr), 1)

    def recon_fit(m: nn.Module, epochs: int, desc: str) -> None:
        fit(
            m,
            normal_tr,
            dummy,
            lambda mm, xb, _t: mm(xb).exp().mean(),
            lambda mm: float(mm(normal_va).exp().mean()),
            TrainConfig(**{**asdict(tcfg), "epochs": epochs}),
            desc,
        )

    t_spec = ModelSpec(
        "autoencoder",
        {
            "channels": c,
            "window": w,
            "hidden": [4 * cfg.teacher_hidden, 2 * cfg.teacher_hidden],
            "bottleneck": 16,
        },
    )
    teacher = build_model(t_spec)
    recon_fit(teacher, cfg.teacher_epochs, "teacher (autoencoder)")
    # Label-free KD: a small autoencoder learns to reproduce the teacher's reconstructions (the teacher's
    # picture of "normal"), blended with its own reconstruction of the input by alpha. Regressing the
    # teacher's score directly fails here: the transfer set holds no anomalies, so a score regressor
    # never sees a high score and cannot extrapolate to one.
    budget_hidden = max(4, cfg.student_hidden * 4)
    s_spec = ModelSpec(
        "autoencoder", {"channels": c, "window": w, "hidden": [budget_hidden], "bottleneck": 4}
    )
    with torch.no_grad():
        t_recon = teacher.reconstruct(normal_tr)
    pairs = torch.stack([normal_tr, t_recon], dim=1)  # [N, 2, W, C]: input and teacher reconstruction
    recon_kd = LOSSES.get("recon-kd")

    def kd_step(m: nn.Module, _xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        return recon_kd(m.reconstruct(tb[:, 0]), tb[:, 1], tb[:, 0], alpha=cfg.alpha)

    student = build_model(s_spec)
    fit(
        student,
        pairs,
        pairs,
        kd_step,
        lambda m: float(m(normal_va).exp().mean()),
        TrainConfig(**{**asdict(tcfg), "epochs": cfg.student_epochs}),
        "student (KD)",
    )

    baseline = build_model(s_spec)
    recon_fit(baseline, cfg.student_epochs, "student (no KD)")
    b_spec = s_spec

    models = {"teacher": (teacher, t_spec), "student": (student, s_spec), "student_no_kd": (baseline, b_spec)}
    scores = {
        name: {k: predict(m, x)[:, 0].numpy() for k, x in (("val", xva), ("test", xte))}
        for name, (m, _s) in models.items()
    }
    val_normal = np.ones(len(p.val), bool) if p.val.y is None else p.val.y == 0
    thresholds = {
        name: far_threshold(sc["val"][val_normal], cfg.false_alarm_rate) for name, sc in scores.items()
    }
    return {
        "models": models,
        "scores": scores,
        "thresholds": thresholds,
        "score": "identity",
        "loss": "recon-kd",
    }


def distill(cfg: DistillConfig) -> dict[str, Any]:
    """Run the whole distillation and write RUN_DIR (checkpoints, run.json, windows.npz, report.json/.md)."""
    set_seed(cfg.seed)
    p = prepare(cfg)
    res = _supervised(p, cfg) if p.mode == "supervised" else _unsupervised(p, cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

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
    example = _tensor(p.test.x[:1])
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

    (out / "report.json").write_text(json.dumps(report, indent=2))
    table = render_table(report)
    (out / "report.md").write_text(f"# Distillation report: {report['dataset']} ({p.mode})\n\n{table}\n")

    calib = p.train.x[np.random.default_rng(cfg.seed).permutation(len(p.train))[:2048]]
    inv = lambda x: (x * p.norm.std + p.norm.mean).astype(np.float32)  # noqa: E731  windows are stored raw
    save_windows(
        out,
        RunWindows(inv(calib), inv(p.val.x), p.val.y, inv(p.test.x), y_test),
    )
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
    report["table"] = table
    return report
