"""Class labels read from a CSV column: integers or strings (never a mix), blanks mean "unlabelled".

Codes are class indices into `classes`; -1 marks an unlabelled row. Integer labels 0/1 keep the names
"normal"/"anomaly" that binary runs have always had; other integers are named by their value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgekit.errors import DataError

UNLABELLED = -1
BINARY_CLASSES = ["normal", "anomaly"]


def _as_int(cell: str) -> int | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return int(v) if v.is_integer() else None


def encode_labels(cells: Sequence[str], where: str) -> tuple[np.ndarray, list[str]]:
    """Class index per cell (-1 for a blank cell) and the class names, sorted by value."""
    cells = [c.strip() for c in cells]
    filled = [c for c in cells if c]
    if not filled:
        return np.full(len(cells), UNLABELLED, dtype=np.int64), list(BINARY_CLASSES)
    ints = [_as_int(c) for c in filled]
    if all(v is not None for v in ints):
        values = sorted(set(ints))  # type: ignore[type-var]
        names = list(BINARY_CLASSES) if set(values) <= {0, 1} else [str(v) for v in values]
        index = {v: i for i, v in enumerate([0, 1] if set(values) <= {0, 1} else values)}
        key = lambda c: index[_as_int(c)]  # noqa: E731
    else:
        numeric = next((c for c, v in zip(filled, ints, strict=True) if v is not None), None)
        text = next((c for c, v in zip(filled, ints, strict=True) if v is None), None)
        if numeric is not None or _is_number(text or ""):
            example = numeric if numeric is not None else text
            other = text if numeric is not None else "an integer"
            raise DataError(
                f"{where}: labels must be all integers or all strings, found {example!r} and {other!r}"
            )
        names = sorted(set(filled))
        index = {n: i for i, n in enumerate(names)}
        key = index.__getitem__
    codes = np.array([key(c) if c else UNLABELLED for c in cells], dtype=np.int64)
    return codes, names


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def resolve_normal(classes: Sequence[str], normal: str | None, where: str) -> int | None:
    """Index of the normal class: the one named, else a class called "normal", else the first of two;
    None for K > 2 classes without one (no anomaly view)."""
    if normal is not None:
        if normal not in classes:
            raise DataError(
                f"{where}: --normal-class {normal!r} is not a class (classes: {', '.join(classes)})"
            )
        return list(classes).index(normal)
    if "normal" in classes:
        return list(classes).index("normal")
    return 0 if len(classes) == 2 else None


def keep_labels(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A copy of training `labels` keeping a seeded, class-stratified `fraction` of the labelled ones (at
    least one per class present, largest remainders first) and hiding the rest (-1)."""
    out = np.full_like(labels, UNLABELLED)
    known = labels != UNLABELLED
    if not known.any():
        return out
    k = int(labels[known].max()) + 1
    counts = np.bincount(labels[known], minlength=k)
    present = counts > 0
    n_keep = max(round(int(known.sum()) * fraction), int(present.sum()))
    share = counts / counts.sum() * n_keep
    quota = np.where(present, np.maximum(1, np.floor(share)), 0).astype(int)
    quota = np.minimum(quota, counts)
    for c in np.argsort(-(share - np.floor(share)), kind="stable"):
        if quota.sum() >= n_keep:
            break
        if quota[c] < counts[c]:
            quota[c] += 1
    rng = np.random.default_rng(seed)
    for c in np.flatnonzero(present):
        idx = rng.permutation(np.flatnonzero(labels == c))[: quota[c]]
        out[idx] = c
    return out
