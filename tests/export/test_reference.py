"""Reference statistics for drift monitoring: the exported manifest carries them, and they are the training
data's own deciles, fractions, range and moments (raw units), and the bundle's score deciles on validation."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle.manifest import Manifest
from edgekit.export.reference import histogram
from edgekit.export.sensor import batched_scores
from edgekit.profiles import load_profile
from edgekit.run import load_windows
from edgekit.runtime.engine import Engine


def expected_bins(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Deciles above the minimum, distinct, and the fraction of `values` in each half-open interval."""
    v = np.asarray(values, np.float64).ravel()
    edges = sorted({float(q) for q in np.quantile(v, np.linspace(0.1, 0.9, 9)) if q > v.min()})
    bounds = [-np.inf, *edges, np.inf]
    fractions = [float(np.mean((v >= lo) & (v < hi))) for lo, hi in itertools.pairwise(bounds)]
    return edges, fractions


def check_channels(manifest: Manifest, train_x: np.ndarray) -> None:
    ref = manifest.reference
    assert ref is not None and manifest.window is not None
    assert [c.name for c in ref.channels] == manifest.window.channels
    readings = train_x.reshape(-1, train_x.shape[-1]).astype(np.float64)
    assert ref.readings == len(readings)
    for i, ch in enumerate(ref.channels):
        col = readings[:, i]
        edges, fractions = expected_bins(col)
        assert ch.bins.edges == pytest.approx(edges)
        assert ch.bins.fractions == pytest.approx(fractions)
        assert (ch.min, ch.max) == (col.min(), col.max())
        assert ch.mean == pytest.approx(col.mean()) and ch.std == pytest.approx(col.std())


def test_sensor_bundle_carries_the_training_deciles(sensor_run, sensor_bundle):
    m = Manifest.load(sensor_bundle)
    w = load_windows(sensor_run)
    check_channels(m, w.calib_x)
    # the normalisation (all training rows) and the reference (its random 2,048-window sample) agree
    ref = m.reference
    for c, mean, std in zip(ref.channels, m.normalization.mean, m.normalization.std, strict=True):
        assert abs(c.mean - mean) < 0.2 * std and 0.8 < c.std / std < 1.25
    # Shuttle's channels are integers with heavy ties: some merge deciles, and their bins are uneven
    assert any(len(c.bins.edges) < 9 for c in ref.channels)
    assert any(max(c.bins.fractions) > 0.3 for c in ref.channels)
    # the score: deciles of the bundle's own scores on the validation windows
    engine = Engine(sensor_bundle, load_profile("x86-gateway"), m)
    scores = batched_scores(engine, w.val_x)
    edges, fractions = expected_bins(scores)
    assert ref.score is not None and ref.windows == len(w.val_x)
    assert ref.score.edges == pytest.approx(edges, rel=1e-5)
    assert ref.score.fractions == pytest.approx(fractions, abs=2 / len(scores))


def test_windowed_bundle_reference_counts_every_reading(windowed_bundle):
    """Window 32 / hop 8 (MIT-BIH ECG): the reference is over the readings of the training windows."""
    m = Manifest.load(windowed_bundle)
    run = Path(m.provenance["run_dir"])
    w = load_windows(run)
    assert w.calib_x.shape[1] == 32
    check_channels(m, w.calib_x)


def test_histogram_with_ties_keeps_real_fractions():
    """Synthetic: a value held by 60 % of readings merges six deciles into one bin of 0.6."""
    v = np.r_[np.zeros(60), np.arange(1, 41)]
    h = histogram(v)
    edges, fractions = expected_bins(v)
    assert h.edges == pytest.approx(edges) and h.fractions == pytest.approx(fractions)
    assert len(h.edges) == 4 and h.fractions[0] == pytest.approx(0.6)
    assert sum(h.fractions) == pytest.approx(1.0) and min(h.fractions) > 0
    const = histogram(np.full(10, 3.0))
    assert (const.edges, const.fractions) == ([], [1.0])
