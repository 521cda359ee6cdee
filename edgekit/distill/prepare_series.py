"""Preparation for labelled time-series problems (`--dataset plaid|acsf1|japanesevowels`): split by series (20% of the
official TRAIN file for validation, stratified; the TEST file for test), each series resampled to one
window of the dataset's length, scaled by one global factor fitted on the training series."""

from __future__ import annotations

import numpy as np

from edgekit.data import Normalizer, SensorTable
from edgekit.data.labels import keep_labels, resolve_normal
from edgekit.data.series import TS_DATASETS, load_series_splits, resample_series
from edgekit.data.windows import STD_FLOOR
from edgekit.distill.config import DATASET_DEFAULTS, DistillConfig
from edgekit.distill.prepare import Prepared, check_labelled
from edgekit.errors import DataError

# share of the official TRAIN series held out (fully labelled) for validation
VAL_FRACTION = 0.2


def is_series_dataset(name: str | None) -> bool:
    return name in TS_DATASETS


def prepare_series(cfg: DistillConfig) -> Prepared:
    """One window per series; `max_rows` caps the series taken from each official file; `label_fraction`
    keeps the labels of a seeded, class-stratified share of the training series (>= 1 per class)."""
    assert cfg.dataset is not None
    if cfg.teacher_outputs:
        raise DataError(f"--teacher-outputs is for --csv data; {cfg.dataset} ships its labels")
    if cfg.mode == "unsupervised":
        raise DataError(f"{cfg.dataset} is a classification problem: --mode unsupervised does not apply")
    defaults = DATASET_DEFAULTS[cfg.dataset]
    window = cfg.window or defaults["window"]
    # a device scores one resampled series per window; the hop only tells it how often
    hop = cfg.hop or window
    splits = load_series_splits(cfg.dataset, VAL_FRACTION, cfg.seed, cfg.max_rows)
    train_x, train_y = splits.train
    if cfg.label_fraction < 1.0:
        train_y = keep_labels(train_y, cfg.label_fraction, cfg.seed)
    ws = [resample_series(train_x, train_y, window), resample_series(*splits.val, window)]
    ws.append(resample_series(*splits.test, window))
    values = ws[0].x.reshape(-1, ws[0].x.shape[2])
    channels = [f"dim{i}" for i in range(values.shape[1])]
    table = SensorTable(splits.problem, values, channels, classes=list(splits.classes))
    # one scale for all channels and no centring: the amplitude channel keeps each series' level (an
    # appliance's standby draw is part of its signature); the model adds a per-series z-normalised copy
    scale = max(float(values.std()), STD_FLOOR)
    norm = Normalizer(np.zeros(len(channels), np.float32), np.full(len(channels), scale, np.float32))
    for w in ws:
        w.x = norm(w.x)
    # --label-fraction keeps >= 1 series per class by design (ACSF1 at 10%: exactly one each), and the
    # rocket teacher's regularised linear head learns from that
    check_labelled(table, ws[0], blackbox=False, warn_only=cfg.label_fraction < 1.0)
    normal = resolve_normal(table.classes, cfg.normal_class, table.name)
    return Prepared(
        table,
        "supervised",
        window,
        hop,
        norm,
        *ws,
        list(table.classes),
        normal,
        series_problem=splits.problem,
    )
