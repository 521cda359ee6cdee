"""Black-box distillation input: a file of a teacher's per-window outputs (probabilities or labels).

Accepted forms, one record per window or per data row:
- JSONL: `{"row": 17, "prob": 0.93}` (binary), `{"row": 17, "probs": [p0, ..., pK-1]}` or
  `{"row": 17, "label": 1}` (a class index, or a class name when the data's labels are names)
- CSV with a header: `row,prob`, `row,p0,...,pK-1` or `row,label`
`row` is the 0-based data row that ends the window (for window length 1, simply the row). Without a
`row` field, records are taken in file order and there must be exactly one per data row.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgekit.errors import DataError

LABEL_SMOOTHING = 1e-3
_P_COLUMN = re.compile(r"p(\d+)$")


def _read_records(path: Path) -> list[dict]:
    records: list[dict] = []
    if path.suffix in (".jsonl", ".json"):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {i} is not JSON ({exc.msg})") from None
    else:
        with path.open(newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
    if not records:
        raise DataError(f"{path}: no teacher outputs")
    return records


def _record_probs(rec: dict, where: str, classes: Sequence[str] | None) -> tuple[list[float], bool]:
    """Class probabilities from one record, and whether they came from a hard label."""
    try:
        if "prob" in rec and rec["prob"] not in (None, ""):
            p = float(rec["prob"])
            return [1.0 - p, p], False
        if "probs" in rec:
            return [float(v) for v in rec["probs"]], False
        cols = sorted((int(m.group(1)), k) for k in rec if (m := _P_COLUMN.match(str(k))))
        if cols:
            if [i for i, _ in cols] != list(range(len(cols))):
                raise ValueError
            if len(cols) == 1:  # `p1` alone: the anomaly probability
                return [1.0 - float(rec[cols[0][1]]), float(rec[cols[0][1]])], False
            return [float(rec[k]) for _, k in cols], False
        if "label" in rec:
            return _label_probs(rec["label"], classes), True
    except (TypeError, ValueError, IndexError):
        raise DataError(f"{where}: cannot read class probabilities or a class label from {rec!r}") from None
    raise DataError(f"{where}: record has none of 'prob', 'probs', 'p0..pK-1', 'label': {rec!r}")


def _label_probs(label: object, classes: Sequence[str] | None) -> list[float]:
    k = len(classes) if classes else 2
    text = str(label).strip()
    if classes and text in classes:
        idx = list(classes).index(text)
    elif classes and all(c.lstrip("-").isdigit() for c in classes):
        raise ValueError  # integer-named classes are matched by value, never by position
    else:
        v = float(text)
        if not v.is_integer() or not 0 <= v < k:
            raise ValueError
        idx = int(v)
    return [1.0 if i == idx else 0.0 for i in range(k)]


def load_teacher_outputs(
    path: str | Path, n_rows: int, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, bool]:
    """Class probabilities [rows, K] per data row (NaN where the teacher gave none) and whether all were
    hard labels. `classes` are the data's class names (None without labels: K comes from the file)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such teacher-outputs file")
    records = _read_records(path)
    keyed = "row" in records[0]
    if not keyed and len(records) != n_rows:
        raise DataError(
            f"{path}: {len(records)} records without a 'row' field, but the data has {n_rows} rows"
        )
    probs: np.ndarray | None = None
    hard = True
    for i, rec in enumerate(records):
        where = f"{path}: record {i + 1}"
        p, is_label = _record_probs(rec, where, classes)
        if probs is None:
            if classes is not None and len(p) != len(classes):
                raise DataError(
                    f"{path}: the teacher outputs have {len(p)} classes, the labels have {len(classes)} "
                    f"({', '.join(classes)})"
                )
            probs = np.full((n_rows, len(p)), np.nan, dtype=np.float64)
        elif len(p) != probs.shape[1]:
            raise DataError(f"{where}: {len(p)} class probabilities, earlier records have {probs.shape[1]}")
        if not all(0.0 <= v <= 1.0 for v in p):
            raise DataError(f"{where}: probability outside [0, 1] in {p}")
        hard &= is_label
        try:
            row = int(rec["row"]) if keyed else i
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: missing or non-integer 'row'") from None
        if not 0 <= row < n_rows:
            raise DataError(f"{where}: row {row} is outside the data (0..{n_rows - 1})")
        probs[row] = p
    assert probs is not None
    return probs, hard


def smooth_probs(p: np.ndarray, hard: bool) -> np.ndarray:
    """[N, K] class probabilities as float32; hard labels are smoothed so log() is finite."""
    if hard:
        p = np.clip(p, LABEL_SMOOTHING, 1 - LABEL_SMOOTHING)
        p = p / p.sum(axis=1, keepdims=True)
    return np.asarray(p, dtype=np.float32)
