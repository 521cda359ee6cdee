"""Seeded perturbations of normal windows for label-free distillation.

A label-free transfer set holds only normal windows, so a student distilled on it never sees what a
high anomaly score looks like and ranks real anomalies badly. These perturbations (spikes, level
shifts, noise bursts, dropped or stuck channels, time warps) at graded strengths give the teacher
windows whose scores span the range from "normal" to "clearly broken"; the student learns the teacher's
score on them. Windows are normalized [N, W, C] float32; every function keeps shapes and is
deterministic under its seed. No labels are involved: a perturbed window is only teacher input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Perturbation = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

# Strength is in units of the normalized signal (one training standard deviation) for additive kinds,
# and a share of the window for kinds that replace a segment; the grade runs from barely visible to
# gross, so the teacher's scores of the perturbed set span its whole range.
STRENGTHS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _segment(w: int, share: float, rng: np.random.Generator) -> slice:
    """A random segment covering about `share` of a window of length `w` (at least one step)."""
    n = int(np.clip(round(share * w), 1, w))
    start = int(rng.integers(0, w - n + 1))
    return slice(start, start + n)


def _channel(c: int, rng: np.random.Generator) -> int:
    return int(rng.integers(0, c))


def spike(x: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """1-3 single-step spikes of amplitude 3·strength (either sign) on one channel."""
    out = x.copy()
    w, c = x.shape
    for _ in range(int(rng.integers(1, 4))):
        out[int(rng.integers(0, w)), _channel(c, rng)] += rng.choice((-1.0, 1.0)) * 3.0 * strength
    return out


def level_shift(x: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """An offset of ±strength from a random step to the end of the window, on one channel."""
    out = x.copy()
    w, c = x.shape
    out[int(rng.integers(0, w)) :, _channel(c, rng)] += rng.choice((-1.0, 1.0)) * strength
    return out


def noise_burst(x: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of standard deviation `strength` over a random quarter of the window, all channels."""
    out = x.copy()
    seg = _segment(x.shape[0], 0.25, rng)
    out[seg] += rng.normal(0.0, strength, out[seg].shape).astype(x.dtype)
    return out


def dropout(x: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """One channel reads zero (its training mean: a dead sensor) over strength/4 of the window."""
    out = x.copy()
    out[_segment(x.shape[0], min(1.0, strength / 4.0), rng), _channel(x.shape[1], rng)] = 0.0
    return out


def stuck(x: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """One channel holds its value (a frozen reading) over strength/4 of the window."""
    out = x.copy()
    seg, ch = _segment(x.shape[0], min(1.0, strength / 4.0), rng), _channel(x.shape[1], rng)
    out[seg, ch] = out[seg.start, ch]
    return out


def time_warp(x: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth change of speed: time runs up to ±strength/8 faster or slower (a sine warp of the clock),
    read back by linear interpolation; a window of one step is returned unchanged."""
    w = x.shape[0]
    if w < 2:
        return x.copy()
    t = np.linspace(0.0, 1.0, w)
    amp = rng.choice((-1.0, 1.0)) * strength / 8.0
    warped = t + amp * np.sin(np.pi * t) / np.pi  # endpoints fixed; rate 1 ± amp
    warped = np.clip(warped, 0.0, 1.0) * (w - 1)
    grid = np.arange(w)
    return np.stack([np.interp(warped, grid, x[:, ch]) for ch in range(x.shape[1])], axis=1).astype(x.dtype)


PERTURBATIONS: dict[str, Perturbation] = {
    "spike": spike,
    "level_shift": level_shift,
    "noise_burst": noise_burst,
    "dropout": dropout,
    "stuck": stuck,
    "time_warp": time_warp,
}


@dataclass
class PerturbedSet:
    """Perturbed copies of windows: `x` [M, W, C], and per copy its source row, kind and strength."""

    x: np.ndarray
    source: np.ndarray
    kind: np.ndarray  # index into `kinds`
    strength: np.ndarray
    kinds: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.x)


def perturb_windows(
    x: np.ndarray,
    copies: int,
    seed: int,
    kinds: tuple[str, ...] = tuple(PERTURBATIONS),
    strengths: tuple[float, ...] = STRENGTHS,
) -> PerturbedSet:
    """`copies` perturbed versions of every window in `x` [N, W, C]; each copy draws its kind and strength
    uniformly from `kinds` x `strengths` (seeded), so each (kind, strength) cell gets about N·copies/|grid|."""
    if x.ndim != 3:
        raise ValueError(f"windows must be [N, W, C], got shape {x.shape}")
    unknown = [k for k in kinds if k not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbation(s) {unknown}; known: {', '.join(PERTURBATIONS)}")
    rng = np.random.default_rng(seed)
    n = len(x)
    source = np.tile(np.arange(n), copies)
    kind = rng.integers(0, len(kinds), len(source))
    strength = np.asarray(strengths, np.float32)[rng.integers(0, len(strengths), len(source))]
    out = np.empty((len(source), *x.shape[1:]), np.float32)
    funcs = [PERTURBATIONS[k] for k in kinds]
    for i, (src, k, s) in enumerate(zip(source, kind, strength, strict=True)):
        out[i] = funcs[k](x[src], float(s), rng)
    return PerturbedSet(out, source, kind, strength, tuple(kinds))
