"""Data: real datasets shipped in packages, the user's CSV, windowing, normalization and splits."""

from edgekit.data.csv import load_csv
from edgekit.data.datasets import DATASETS, load_dataset
from edgekit.data.table import SensorTable
from edgekit.data.windows import Normalizer, Splits, WindowSet, make_windows, split_table

__all__ = [
    "DATASETS",
    "Normalizer",
    "SensorTable",
    "Splits",
    "WindowSet",
    "load_csv",
    "load_dataset",
    "make_windows",
    "split_table",
]
