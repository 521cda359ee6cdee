"""Labelled time-series problems (PLAID, ACSF1, JapaneseVowels from the `.ts` files sktime ships) for distillation: one
class per series, splits by series so that no series spans two splits (the official TRAIN file gives
train and validation, TEST is test), and each series either resampled to one window (`resample_series`,
what `--dataset plaid|acsf1|japanesevowels` trains on) or cut into windows (`series_windows`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.data.ts_format import TSProblem, load_ts_problem
from edgekit.data.windows import WindowSet
from edgekit.errors import DataError

# name -> (package, folder, problem) of the shipped .ts files
TS_DATASETS = {
    "plaid": ("sktime", "datasets/data/PLAID", "PLAID"),
    "acsf1": ("sktime", "datasets/data/ACSF1", "ACSF1"),
    # 9 speakers' utterances of a vowel: 12 LPC cepstrum coefficients per frame, 7 to 29 frames
    "japanesevowels": ("sktime", "datasets/data/JapaneseVowels", "JapaneseVowels"),
}


@dataclass
class SeriesSplits:
    """Series (float32 [length, channels]) and class indices per split; `problem` names aeon's results."""

    problem: str
    classes: list[str]
    train: tuple[list[np.ndarray], np.ndarray]
    val: tuple[list[np.ndarray], np.ndarray]
    test: tuple[list[np.ndarray], np.ndarray]


def _subset(p: TSProblem, classes: list[str], limit: int | None, rng: np.random.Generator) -> tuple:
    idx = np.arange(len(p.series))
    if limit and limit < len(idx):
        idx = np.sort(rng.choice(idx, limit, replace=False))
    return [_fill(p.series[i]) for i in idx], np.array([classes.index(p.labels[i]) for i in idx], np.int64)


def _fill(s: np.ndarray) -> np.ndarray:
    """'?' (NaN) cells take the channel's mean: the .ts format marks missing values, models cannot."""
    if np.isnan(s).any():
        s = np.where(np.isnan(s), np.nanmean(s, axis=0, keepdims=True), s)
    return np.nan_to_num(s).astype(np.float32)


def load_series_splits(
    name: str, val_fraction: float, seed: int, max_series: int | None = None
) -> SeriesSplits:
    """The official TRAIN file split into train/validation by series (stratified by class, seeded),
    and the official TEST file; `max_series` takes a seeded subset of each file for quick runs."""
    if name not in TS_DATASETS:
        raise DataError(f"unknown time-series dataset {name!r} (known: {', '.join(TS_DATASETS)})")
    train, test = load_ts_problem(*TS_DATASETS[name])
    classes = list(train.class_names)
    rng = np.random.default_rng(seed)
    tr_x, tr_y = _subset(train, classes, max_series, rng)
    te = _subset(test, classes, max_series, rng)
    val_idx = []
    for c in np.unique(tr_y):
        members = rng.permutation(np.flatnonzero(tr_y == c))
        val_idx += members[: round(len(members) * val_fraction)].tolist()
    is_val = np.zeros(len(tr_y), bool)
    is_val[val_idx] = True
    if is_val.all() or not is_val.any():
        raise DataError(f"{name}: {len(tr_y)} training series are too few to hold out validation series")
    pick = lambda m: ([tr_x[i] for i in np.flatnonzero(m)], tr_y[m])  # noqa: E731
    return SeriesSplits(TS_DATASETS[name][2], classes, pick(~is_val), pick(is_val), te)


def series_windows(series: list[np.ndarray], labels: np.ndarray, window: int, hop: int) -> WindowSet:
    """Windows of `window` readings every `hop` from each series, labelled with its class; a series
    shorter than one window is left-padded with its first reading. `end_row` holds the series index."""
    xs, ys, ids = [], [], []
    for i, (s, y) in enumerate(zip(series, labels, strict=True)):
        if len(s) < window:
            s = np.concatenate([np.repeat(s[:1], window - len(s), axis=0), s])
        view = np.lib.stride_tricks.sliding_window_view(s, window, axis=0)[::hop]  # [M, C, W]
        xs.append(view.transpose(0, 2, 1))
        ys.append(np.full(len(view), y, np.int64))
        ids.append(np.full(len(view), i, np.int64))
    return WindowSet(np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys), np.concatenate(ids))


def resample(series: np.ndarray, length: int) -> np.ndarray:
    """[L, C] -> [length, C]: mean over equal-width bins when longer (adaptive average pooling: keeps
    the energy of short spikes), linear interpolation when shorter."""
    n = len(series)
    if n >= length:
        # bin i covers [floor(i n / length), ceil((i + 1) n / length)), as torch's adaptive_avg_pool1d
        starts = (np.arange(length) * n) // length
        ends = -((-(np.arange(1, length + 1) * n)) // length)
        csum = np.concatenate([np.zeros((1, series.shape[1])), np.cumsum(series, axis=0, dtype=np.float64)])
        out = (csum[ends] - csum[starts]) / (ends - starts)[:, None]
    else:
        # align_corners: the first and last readings stay where they are
        pos = np.linspace(0, n - 1, length)
        out = np.stack([np.interp(pos, np.arange(n), series[:, c]) for c in range(series.shape[1])], axis=1)
    return out.astype(np.float32)


def resample_series(series: list[np.ndarray], labels: np.ndarray, length: int) -> WindowSet:
    """One window per series, resampled to `length` readings; `end_row` holds the series index."""
    x = np.stack([resample(s, length) for s in series]) if series else np.zeros((0, length, 1), np.float32)
    return WindowSet(x, np.asarray(labels, np.int64), np.arange(len(series), dtype=np.int64))
