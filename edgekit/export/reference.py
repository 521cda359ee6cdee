"""Reference statistics for drift monitoring, computed at export from the run's training data.

The daemon (edgekit.runtime.drift) compares what its sensors send against these: per channel decile bins
with the fraction of training readings in each, min/max and mean/std, all in raw units (the daemon sees raw
readings), and the distribution of the model's score on the validation windows.
"""

from __future__ import annotations

import numpy as np

from edgekit.bundle.manifest import ChannelReference, Histogram, Reference

DECILES = np.linspace(0.1, 0.9, 9)


def histogram(values: np.ndarray, quantiles: np.ndarray = DECILES) -> Histogram:
    """Quantile bin edges of `values` and the fraction of `values` in each bin.

    Ties merge quantiles (a channel that is 0 half the time has one edge at 0, not five), and an edge at the
    minimum would leave its lower bin empty, so edges are the distinct quantiles above the minimum; each bin
    is [edge, next edge), the binning the daemon uses (np.searchsorted side="right").
    """
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    edges = np.unique(np.quantile(v, quantiles)) if len(v) else np.empty(0)
    edges = edges[edges > v.min()] if len(v) else edges
    counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
    fractions = counts / max(len(v), 1)
    return Histogram([float(e) for e in edges], [float(f) for f in fractions])


def sensor_reference(
    train_x: np.ndarray, channels: list[str], val_scores: np.ndarray | None, source: str
) -> Reference:
    """Reference of raw training windows (n, window, channels), overlapping or not, and validation scores.

    Every reading of every window counts once per window it sits in; with a hop below the window length
    that weights all readings (nearly) alike, so the distribution is unchanged.
    """
    readings = np.asarray(train_x, np.float64).reshape(-1, len(channels))
    chans = []
    for i, name in enumerate(channels):
        col = readings[:, i]
        col = col[np.isfinite(col)]
        chans.append(
            ChannelReference(
                name,
                float(col.min()),
                float(col.max()),
                float(col.mean()),
                float(col.std()),
                histogram(col),
            )
        )
    windows = 0 if val_scores is None else int(np.isfinite(val_scores).sum())
    score = histogram(val_scores) if windows else None
    return Reference(chans, score, len(readings), windows, source)
