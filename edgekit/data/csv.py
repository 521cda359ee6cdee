"""The user's own data: a CSV with a timestamp column, one column per channel and an optional label column
(integers or strings; blank cells are unlabelled rows)."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from edgekit.data.labels import BINARY_CLASSES, encode_labels
from edgekit.data.table import SensorTable
from edgekit.errors import DataError

MIN_ROWS = 32
# Column names that say "this is the answer, not a reading" (matched as whole words of the name).
LABEL_WORDS = frozenset(
    [
        "label",
        "labels",
        "anomaly",
        "anomalies",
        "anomalous",
        "fault",
        "faults",
        "faulty",
        "failure",
        "class",
        "target",
        "outlier",
        "outliers",
    ]
)
LABEL_NAMES = frozenset({"y", "gt", "ground_truth"})  # matched as the whole name only
MAX_LABEL_VALUES = 10
# Unix times between 2000-01-01 and 2100-01-01, in seconds or milliseconds.
UNIX_RANGES = ((946_684_800.0, 4_102_444_800.0), (946_684_800e3, 4_102_444_800e3))


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


def _is_iso_time(text: str) -> bool:
    try:
        float(text)
        return False
    except ValueError:
        pass
    try:
        datetime.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def _label_like_name(name: str) -> bool:
    low = name.strip().lower()
    return low in LABEL_NAMES or bool(LABEL_WORDS & set(re.split(r"[^a-z0-9]+", low)))


def _suspect(name: str, cells: list[str], want_time: bool, want_label: bool) -> str | None:
    """Why a column chosen as a model input looks like a time or a label column, or None."""
    cells = [c.strip() for c in cells if c.strip()]
    if not cells:
        return None
    if want_time and _is_iso_time(cells[0]):
        return f"column '{name}' looks like timestamps (ISO 8601 times)"
    try:
        v = np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        return None
    if not np.isfinite(v).all():
        return None
    if want_time and len(v) > 1:
        d = np.diff(v)
        if (d > 0).all():
            return f"column '{name}' looks like timestamps (strictly increasing)"
        if (d >= 0).all() and any(lo <= v.min() and v.max() <= hi for lo, hi in UNIX_RANGES):
            return f"column '{name}' looks like timestamps (unix times)"
    if want_label and _label_like_name(name) and (v == np.round(v)).all():
        distinct = np.unique(v)
        if len(distinct) <= MAX_LABEL_VALUES:
            values = "/".join(f"{x:g}" for x in distinct)
            return f"column '{name}' looks like a label (values {values})"
    return None


def _refuse_suspects(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    chan_idx: list[int],
    want_time: bool,
    want_label: bool,
) -> None:
    """Refuse a CSV whose default inputs (every other column) include a time or a label column: the
    model would learn from the clock or the answer. One line naming them and the flags to pass."""
    found = []
    for i in chan_idx:
        why = _suspect(header[i], [r[i] if i < len(r) else "" for r in rows], want_time, want_label)
        if why:
            found.append((header[i], why))
    if not found:
        return
    flags = {}  # one flag per kind; further suspects are for --channels to leave out
    for name, why in found:
        flags.setdefault("--timestamp-column" if "timestamps" in why else "--label-column", name)
    raise DataError(
        f"{path}: {'; '.join(why for _n, why in found)}; pass "
        + " ".join(f"{flag} {name}" for flag, name in flags.items())
        + ", "
        "or name the model's input columns with --channels"
    )


def load_csv(
    path: str | Path,
    label_column: str | None = None,
    timestamp_column: str | None = None,
    channels: Sequence[str] | None = None,
    max_nan_run: int = 3,
    min_rows: int = MIN_ROWS,
) -> SensorTable:
    """Read a sensor CSV. Short gaps (<= `max_nan_run` empty/NaN cells) are filled with the last value;
    longer ones are an error, since filling them would invent data. Without `channels`, every other
    column is an input, so a time-like column (when no `timestamp_column` is named) or a label-like
    column (when no `label_column` is named) is refused rather than silently learnt from."""
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

    # which columns to screen for a time or a label slipped in among the inputs
    screen = (timestamp_column is None, label_column is None) if not channels else (False, False)
    values = np.empty((len(rows), len(chan_idx)), dtype=np.float32)
    label_cells: list[str] = []
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
                if screen[0] and _is_iso_time(cell):
                    _refuse_suspects(path, header, rows, chan_idx, *screen)
                raise DataError(
                    f"{path}: row {line}, column '{names[j]}': {cell!r} is not a number"
                ) from None
            if math.isinf(values[r, j]):
                raise DataError(f"{path}: row {line}, column '{names[j]}': infinite value")
        if label_idx is not None:
            label_cells.append(row[label_idx])
        if stamps is not None:
            stamps[r] = _parse_time(row[ts_idx], path, line, timestamp_column)

    if any(screen):
        _refuse_suspects(path, header, rows, chan_idx, *screen)
    _fill_short_gaps(values, names, path, max_nan_run)
    labels, classes = None, list(BINARY_CLASSES)
    if label_idx is not None:
        labels, classes = encode_labels(label_cells, f"{path}: label column '{label_column}'")
    ordered = True
    if stamps is not None:
        order = np.argsort(stamps, kind="stable")
        if not np.array_equal(order, np.arange(len(order))):
            values, stamps = values[order], stamps[order]
            labels = labels[order] if labels is not None else None
    return SensorTable(
        name=path.stem,
        values=values,
        channels=names,
        labels=labels,
        timestamps=stamps,
        ordered=ordered,
        classes=classes,
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
