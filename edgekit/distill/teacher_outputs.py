"""Black-box distillation input: a file of a teacher's per-window outputs (probabilities or labels).

Accepted forms, one record per window or per data row:
- JSONL: `{"row": 17, "prob": 0.93}`, `{"row": 17, "probs": [0.07, 0.93]}` or `{"row": 17, "label": 1}`
- CSV with a header: `row,prob`, `row,p0,p1` or `row,label`
`row` is the 0-based data row that ends the window (for window length 1, simply the row). Without a
`row` field, records are taken in file order and there must be exactly one per data row.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from edgekit.errors import DataError

LABEL_SMOOTHING = 1e-3


def _record_probs(rec: dict, where: str) -> tuple[float, bool]:
    """Anomaly probability from one record, and whether it came from a hard label."""
    try:
        if "prob" in rec and rec["prob"] not in (None, ""):
            return float(rec["prob"]), False
        if "probs" in rec:
            return float(rec["probs"][1]), False
        if "p1" in rec:
            return float(rec["p1"]), False
        if "label" in rec:
            lab = float(rec["label"])
            if lab not in (0.0, 1.0):
                raise ValueError
            return lab, True
    except (TypeError, ValueError, IndexError):
        raise DataError(f"{where}: cannot read a probability or 0/1 label from {rec!r}") from None
    raise DataError(f"{where}: record has none of 'prob', 'probs', 'p1', 'label': {rec!r}")


def load_teacher_outputs(path: str | Path, n_rows: int) -> tuple[np.ndarray, bool]:
    """Anomaly probability per data row (NaN where the teacher gave none) and whether all were hard labels."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such teacher-outputs file")
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
    probs = np.full(n_rows, np.nan, dtype=np.float64)
    hard = True
    keyed = "row" in records[0]
    if not keyed and len(records) != n_rows:
        raise DataError(
            f"{path}: {len(records)} records without a 'row' field, but the data has {n_rows} rows"
        )
    for i, rec in enumerate(records):
        where = f"{path}: record {i + 1}"
        p, is_label = _record_probs(rec, where)
        if not 0.0 <= p <= 1.0:
            raise DataError(f"{where}: probability {p} is outside [0, 1]")
        hard &= is_label
        try:
            row = int(rec["row"]) if keyed else i
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: missing or non-integer 'row'") from None
        if not 0 <= row < n_rows:
            raise DataError(f"{where}: row {row} is outside the data (0..{n_rows - 1})")
        probs[row] = p
    return probs, hard


def probs_to_two_class(p: np.ndarray, hard: bool) -> np.ndarray:
    """[N] anomaly probability -> [N, 2] class probabilities; hard labels are smoothed so log() is finite."""
    if hard:
        p = np.clip(p, LABEL_SMOOTHING, 1 - LABEL_SMOOTHING)
    return np.stack([1.0 - p, p], axis=1).astype(np.float32)
