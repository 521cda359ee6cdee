"""Time-series classification problems in the sktime/aeon `.ts` text format (PLAID, ACSF1, ...), read
straight from the files those packages ship, and the published accuracies aeon ships beside them.

Format (sktime's `load_from_tsfile` documents it): `#` comments, `@key value` header lines, then `@data`
followed by one series per line: dimensions separated by `:`, values by `,`, the class label last. Series
may have different lengths (`@equalLength false`); `?` marks a missing value.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.data.datasets import package_file
from edgekit.errors import DataError

# aeon's result files: one row per problem, one column per resample (0..29), values are test accuracy.
AEON_RESULTS = "testing/example_results_files/classification/accuracy/{classifier}_accuracy.csv"
AEON_CLASSIFIERS = ("HC2", "InceptionTime", "WEASEL-2.0", "FreshPRINCE")


@dataclass
class TSProblem:
    """Labelled series: `series[i]` is float32 [length_i, channels]; `labels[i]` a class name."""

    name: str
    series: list[np.ndarray]
    labels: list[str]
    class_names: list[str]

    @property
    def channels(self) -> int:
        return int(self.series[0].shape[1]) if self.series else 0


def read_ts(path: str | Path) -> TSProblem:
    """Parse one `.ts` file; errors name the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    header: dict[str, str] = {}
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{path}:{lineno}: expected a @header line before @data")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                if header.get("timestamps", "false").lower() == "true":
                    raise DataError(f"{path}: series with explicit timestamps are not supported")
                if header.get("classlabel", "false").split()[0].lower() != "true":
                    raise DataError(
                        f"{path}: no class labels (@classLabel false); a labelled problem is needed"
                    )
            else:
                header[key] = value.strip()
            continue
        *dims, label = line.split(":")
        if not dims:
            raise DataError(f"{path}:{lineno}: a series needs values and a class label")
        try:
            cols = [
                np.array([np.nan if v == "?" else float(v) for v in d.split(",")], dtype=np.float32)
                for d in dims
            ]
        except ValueError:
            raise DataError(f"{path}:{lineno}: non-numeric value in a series") from None
        if len({len(c) for c in cols}) != 1:
            raise DataError(f"{path}:{lineno}: dimensions of one series differ in length")
        series.append(np.stack(cols, axis=1))
        labels.append(label.strip())
    if not series:
        raise DataError(f"{path}: no series after @data")
    if len({s.shape[1] for s in series}) != 1:
        raise DataError(f"{path}: series have different numbers of dimensions")
    declared = header.get("classlabel", "").split()[1:]
    unknown = sorted(set(labels) - set(declared)) if declared else []
    if unknown:
        raise DataError(f"{path}: class label {unknown[0]!r} is not declared in @classLabel")
    class_names = declared or sorted(set(labels))
    return TSProblem(
        name=header.get("problemname", path.stem), series=series, labels=labels, class_names=class_names
    )


def load_ts_problem(package: str, folder: str, problem: str) -> tuple[TSProblem, TSProblem]:
    """The shipped TRAIN and TEST files of `problem`, e.g. ("sktime", "datasets/data/PLAID", "PLAID")."""
    train = read_ts(package_file(package, f"{folder}/{problem}_TRAIN.ts"))
    test = read_ts(package_file(package, f"{folder}/{problem}_TEST.ts"))
    if train.class_names != test.class_names:
        raise DataError(f"{problem}: TRAIN and TEST declare different classes")
    return train, test


def published_accuracies(problem: str) -> dict[str, float]:
    """Mean test accuracy over resamples per classifier that aeon ships a result for (`PLAID` matches
    aeon's `PLAID_eq`, the equal-length version); empty when aeon is not installed or has none."""
    out: dict[str, float] = {}
    for clf in AEON_CLASSIFIERS:
        try:
            path = package_file("aeon", AEON_RESULTS.format(classifier=clf))
        except DataError:
            continue
        with open(path, newline="") as fh:
            for row in csv.reader(fh):
                if row and row[0] in (problem, f"{problem}_eq"):
                    values = [float(v) for v in row[1:] if v.strip()]
                    if values:
                        out[clf] = float(np.mean(values))
                    break
    return out
