"""Seeded, shape-preserving augmentations of sensor windows [N, W, C] and the augmented transfer set.

A view keeps its window's shape, so the teacher can be queried on exactly the view the student trains on
(Beyer et al., 2022: a "consistent" teacher). Windows longer than one reading also get time shifts,
crop-resizes and smooth magnitude warps; single readings (window 1) only jitter, scaling and mixup.
Mixup returns the partner row and the mixing weight, so hard targets can be mixed the same way.
Numpy only: one `numpy.random.Generator` makes every view reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.data.labels import UNLABELLED

# the recipe's settings (kd_label_scarce research): gentle enough that a view keeps its class
SHIFT = 0.1  # circular time shift, share of the window
CROP_P, CROP_MIN = 0.5, 0.9  # probability of a crop, shortest crop (share of the window)
WARP_SIGMA, WARP_KNOTS = 0.2, 5
SCALE_SIGMA = 0.1
JITTER_SIGMA = 0.03  # share of the view's own spread
MIX_P, MIX_BETA = 0.3, 0.4


def time_shift(x: np.ndarray, rng: np.random.Generator, frac: float = SHIFT) -> np.ndarray:
    """Each window rolled circularly by up to `frac` of its length."""
    w = x.shape[1]
    s = rng.integers(-int(w * frac), int(w * frac) + 1, size=len(x))
    idx = (np.arange(w)[None, :] - s[:, None]) % w
    return np.take_along_axis(x, idx[:, :, None], axis=1)


def crop_resize(
    x: np.ndarray, rng: np.random.Generator, p: float = CROP_P, low: float = CROP_MIN
) -> np.ndarray:
    """With probability `p`, a random crop of `low`..100% of the window stretched back to full length."""
    out = x.copy()
    w = x.shape[1]
    for i in np.flatnonzero(rng.random(len(x)) < p):
        span = int(rng.integers(int(low * w), w + 1))
        start = int(rng.integers(0, w - span + 1))
        pos = np.linspace(start, start + span - 1, w)
        out[i] = np.stack([np.interp(pos, np.arange(w), x[i, :, c]) for c in range(x.shape[2])], axis=1)
    return out


def magnitude_warp(
    x: np.ndarray, rng: np.random.Generator, sigma: float = WARP_SIGMA, knots: int = WARP_KNOTS
) -> np.ndarray:
    """Multiply by a smooth random curve through `knots` points around 1 (one curve per row and channel)."""
    n, w, c = x.shape
    k = rng.normal(1.0, sigma, size=(n, knots, c))
    pos = np.linspace(0, knots - 1, w)
    i0 = np.minimum(pos.astype(int), knots - 2)
    frac = (pos - i0)[None, :, None]
    curve = k[:, i0] * (1 - frac) + k[:, i0 + 1] * frac
    return x * curve


def scale(x: np.ndarray, rng: np.random.Generator, sigma: float = SCALE_SIGMA) -> np.ndarray:
    """Multiply each row's channels by a factor around 1."""
    return x * rng.normal(1.0, sigma, size=(len(x), 1, x.shape[2]))


def jitter(x: np.ndarray, rng: np.random.Generator, sigma: float = JITTER_SIGMA) -> np.ndarray:
    """Add Gaussian noise of `sigma` x the spread: each window's own over time, or (window 1) each
    channel's over the rows."""
    spread = x.std(axis=1, keepdims=True) if x.shape[1] > 1 else x.std(axis=0, keepdims=True)
    return x + rng.normal(0.0, sigma, size=x.shape) * spread


def mixup(
    views: np.ndarray,
    partners: np.ndarray,
    rng: np.random.Generator,
    p: float = MIX_P,
    pool: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """With probability `p` per row, lam * view + (1 - lam) * partners[j] for a random j from `pool` (all
    rows of `partners` by default), lam ~ Beta(0.4, 0.4) folded to >= 0.5 so the view's own class
    dominates. Returns (views, partner index or -1, lam)."""
    out = views.copy()
    partner = np.full(len(views), -1, np.int64)
    lam = np.ones(len(views), np.float32)
    pool = np.arange(len(partners)) if pool is None else pool
    if p <= 0 or len(pool) == 0:
        return out, partner, lam
    mixed = np.flatnonzero(rng.random(len(views)) < p)
    partner[mixed] = rng.choice(pool, size=len(mixed))
    b = rng.beta(MIX_BETA, MIX_BETA, size=len(mixed))
    lam[mixed] = np.maximum(b, 1 - b)
    lm = lam[mixed][:, None, None]
    out[mixed] = lm * views[mixed] + (1 - lm) * partners[partner[mixed]]
    return out, partner, lam


def augment(
    x: np.ndarray, rng: np.random.Generator, p_mix: float = MIX_P, pool: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented view per row of `x` [N, W, C]: (views, mixup partner index or -1, mixup weight)."""
    v = x.astype(np.float64)
    if x.shape[1] > 1:
        v = magnitude_warp(crop_resize(time_shift(v, rng), rng), rng)
    v = jitter(scale(v, rng), rng)
    v, partner, lam = mixup(v, x.astype(np.float64), rng, p_mix, pool)
    return v.astype(np.float32), partner, lam


@dataclass
class TransferSet:
    """Real windows followed by augmented views: each row's source window, mixup partner (-1: none) and
    weight, and (for labels) mixed one-hot targets with a mask of rows whose target is known."""

    x: np.ndarray
    source: np.ndarray
    partner: np.ndarray
    lam: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def targets(self, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """([rows, k] float32 targets, [rows] bool known): a view's target is its source's one-hot mixed
        with its partner's; it is known when the source (and the partner, if any) are labelled."""
        known_src = y != UNLABELLED
        onehot = np.eye(k, dtype=np.float32)[np.where(known_src, y, 0)]
        has_partner = self.partner >= 0
        pj = np.maximum(self.partner, 0)
        lam = self.lam[:, None]
        hard = lam * onehot[self.source] + (1 - lam) * np.where(has_partner[:, None], onehot[pj], 0.0)
        known = known_src[self.source] & np.where(has_partner, known_src[pj], True)
        hard[~known] = 0.0
        return hard.astype(np.float32), known


def transfer_set(
    x: np.ndarray, views: int, rng: np.random.Generator, p_mix: float = MIX_P, pool: np.ndarray | None = None
) -> TransferSet:
    """`x` followed by `views` augmented views of every row (mixup partners drawn from `pool`)."""
    n = len(x)
    xs, parts, lams = [x], [np.full(n, -1, np.int64)], [np.ones(n, np.float32)]
    for _ in range(views):
        v, partner, lam = augment(x, rng, p_mix, pool)
        xs.append(v)
        parts.append(partner)
        lams.append(lam)
    return TransferSet(
        np.concatenate(xs).astype(np.float32),
        np.tile(np.arange(n), views + 1),
        np.concatenate(parts),
        np.concatenate(lams),
    )
