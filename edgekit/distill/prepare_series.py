"""Preparation for labelled time-series problems (`--dataset plaid|acsf1`): series split by series,
normalization fitted on training series, windows cut from each series labelled with its class."""

from __future__ import annotations

import numpy as np

from edgekit.data import Normalizer, SensorTable
from edgekit.data.labels import resolve_normal
from edgekit.data.series import TS_DATASETS, load_series_splits, series_windows
from edgekit.distill.config import DATASET_DEFAULTS, DistillConfig
from edgekit.distill.prepare import Prepared, check_labelled, hide_labels
from edgekit.errors import DataError


def is_series_dataset(name: str | None) -> bool:
    return name in TS_DATASETS


def prepare_series(cfg: DistillConfig) -> Prepared:
    """Windows of each split; `max_rows` caps the series taken from each official file; `label_fraction`
    hides the labels of whole training series (a series is labelled or not)."""
    assert cfg.dataset is not None
    if cfg.teacher_outputs:
        raise DataError(f"--teacher-outputs is for --csv data; {cfg.dataset} ships its labels")
    if cfg.mode == "unsupervised":
        raise DataError(f"{cfg.dataset} is a classification problem: --mode unsupervised does not apply")
    defaults = DATASET_DEFAULTS[cfg.dataset]
    window = cfg.window or defaults["window"]
    hop = cfg.hop or defaults["hop"]
    splits = load_series_splits(
        cfg.dataset, cfg.fractions[1] / (cfg.fractions[0] + cfg.fractions[1]), cfg.seed, cfg.max_rows
    )
    train_x, train_y = splits.train
    if cfg.label_fraction < 1.0:
        train_y = hide_labels(train_y, cfg.label_fraction, cfg.seed)
    values = np.concatenate(train_x)
    channels = [f"dim{i}" for i in range(values.shape[1])]
    table = SensorTable(splits.problem, values, channels, classes=list(splits.classes))
    norm = Normalizer.fit(values)
    ws = [series_windows(train_x, train_y, window, hop), series_windows(*splits.val, window, hop)]
    ws.append(series_windows(*splits.test, window, hop))
    for w in ws:
        w.x = norm(w.x)
    check_labelled(table, ws[0], blackbox=False)
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
