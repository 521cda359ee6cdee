"""The user's own data: a CSV with a timestamp column, one column per channel and an optional 0/1 label."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from edgekit.data.table import SensorTable
from edgekit.errors import DataError

MIN_ROWS = 32


def _parse_time(text: str, path: Path, row: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise DataError(
            f"{path}: row {row}, timestamp column '{column}': {text!r} is neither unix seconds nor an ISO 8601 time"
        ) from None


def load_csv(
    path: str | Path,
    label_column: str | None = None,
    timestamp_column: str | None = None,
    channels: Sequence[str] | None = None,
    max_nan_run: int = 3,
    min_rows: int = MIN_ROWS,
) -> SensorTable:
    """Read a sensor CSV. Short gaps (<= `max_nan_run` empty/NaN cells) are filled with the last value;
    longer ones are an error, since filling them would invent data."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: the file is empty") from None
        rows = list(reader)

    def need(col: str, what: str) -> int:
        if col not in header:
            raise DataError(f"{path}: {what} column '{col}' not found (columns: {', '.join(header)})")
        return header.index(col)

    label_idx = need(label_column, "label") if label_column else None
    ts_idx = need(timestamp_column, "timestamp") if timestamp_column else None
    if channels:
        chan_idx = [need(c, "channel") for c in channels]
    else:
        chan_idx = [i for i in range(len(header)) if i not in (label_idx, ts_idx)]
    if not chan_idx:
        raise DataError(f"{path}: no sensor channel columns left after the label and timestamp columns")
    names = [header[i] for i in chan_idx]

    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < min_rows:
        raise DataError(f"{path}: {len(rows)} data rows; at least {min_rows} are needed")

    values = np.empty((len(rows), len(chan_idx)), dtype=np.float32)
    labels = np.zeros(len(rows), dtype=np.int64) if label_idx is not None else None
    stamps = np.empty(len(rows), dtype=np.float64) if ts_idx is not None else None
    for r, row in enumerate(rows):
        line = r + 2  # 1-based, after the header
        if len(row) < len(header):
            raise DataError(f"{path}: row {line} has {len(row)} cells, the header has {len(header)}")
        for j, ci in enumerate(chan_idx):
            cell = row[ci].strip()
            if cell == "" or cell.lower() in ("nan", "null", "na"):
                values[r, j] = np.nan
                continue
            try:
                values[r, j] = float(cell)
            except ValueError:
                raise DataError(
                    f"{path}: row {line}, column '{names[j]}': {cell!r} is not a number"
                ) from None
            if math.isinf(values[r, j]):
                raise DataError(f"{path}: row {line}, column '{names[j]}': infinite value")
        if labels is not None:
            cell = row[label_idx].strip()
            try:
                lab = float(cell)
            except ValueError:
                lab = -1.0
            if lab not in (0.0, 1.0):
                raise DataError(f"{path}: row {line}, label column '{label_column}': {cell!r} is not 0 or 1")
            labels[r] = int(lab)
        if stamps is not None:
            stamps[r] = _parse_time(row[ts_idx], path, line, timestamp_column)

    _fill_short_gaps(values, names, path, max_nan_run)
    ordered = True
    if stamps is not None:
        order = np.argsort(stamps, kind="stable")
        if not np.array_equal(order, np.arange(len(order))):
            values, stamps = values[order], stamps[order]
            labels = labels[order] if labels is not None else None
    return SensorTable(
        name=path.stem, values=values, channels=names, labels=labels, timestamps=stamps, ordered=ordered
    )


def _fill_short_gaps(values: np.ndarray, names: list[str], path: Path, max_run: int) -> None:
    for j in range(values.shape[1]):
        col = values[:, j]
        nan = np.isnan(col)
        if not nan.any():
            continue
        edges = np.diff(np.r_[0, nan.astype(np.int8), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for s, e in zip(starts, ends, strict=True):
            if e - s > max_run or s == 0:
                why = (
                    "at the start of the file"
                    if s == 0
                    else f"{e - s} missing values in a row (at most {max_run} are filled)"
                )
                raise DataError(f"{path}: column '{names[j]}', rows {s + 2}-{e + 1}: {why}")
            col[s:e] = col[s - 1]
