"""Timing loops: each call timed in three stages; several variants interleaved in one process.

Method (recorded in every report): real input windows, in a seeded random order, cycled in prebuilt
batches (building a batch is not timed); a warm-up per variant; then rounds in which every variant makes one call, in a fresh
random order per round, so drift of the machine (thermal throttling, frequency scaling, background
load) is shared by all variants instead of biasing whichever ran last. Stages are timed with
perf_counter_ns around Engine.preprocess / infer / postprocess; the end-to-end latency of a window
is the latency of the call that carried it (pre + infer + post).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgekit.bench.variants import Variant
from edgekit.errors import ConfigError
from edgekit.metrics import percentiles

STAGES = ("preprocess", "infer", "postprocess", "total")
DEFAULT_QS = (50, 90, 95, 99, 99.9)
# Prebuilt batches are capped in memory; beyond that the cycle simply repeats sooner.
MAX_BATCH_BYTES = 64 << 20


@dataclass
class Samples:
    """Per-call stage times (ms) of one variant, and each call's start time (s since measuring began)."""

    name: str
    batch: int
    preprocess: list[float] = field(default_factory=list)
    infer: list[float] = field(default_factory=list)
    postprocess: list[float] = field(default_factory=list)
    start_s: list[float] = field(default_factory=list)

    @property
    def total(self) -> np.ndarray:
        return np.asarray(self.preprocess) + np.asarray(self.infer) + np.asarray(self.postprocess)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "preprocess_ms": np.asarray(self.preprocess),
            "infer_ms": np.asarray(self.infer),
            "postprocess_ms": np.asarray(self.postprocess),
            "total_ms": self.total,
            "start_s": np.asarray(self.start_s),
        }


def parse_percentile(text: str) -> float:
    """'p99', '99' or 'p99.9' -> 99.0 / 99.9."""
    try:
        q = float(str(text).lower().removeprefix("p"))
    except ValueError:
        raise ConfigError(f"percentile {text!r} is not like p99 or p99.9") from None
    if not 0 < q <= 100:
        raise ConfigError(f"percentile {text!r} must be in (0, 100]")
    return q


def percentile_key(q: float) -> str:
    return f"p{q:g}"


def make_batches(windows: np.ndarray, batch: int, seed: int | None = None) -> list[np.ndarray]:
    """Contiguous batches that cycle through `windows` (window k of batch j is windows[(j*B + k) % N]).

    With `seed`, they cycle through a seeded permutation of `windows` instead, so the first batches are a
    fair sample of the whole set: a run shorter than one cycle then times a held-out file that is grouped
    (all of one movie's plot summaries first, the long log lines of one machine together) like the file
    as a whole, not like its head. Windows of one shape cost the same in any order; texts do not."""
    if batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    n = len(windows)
    if seed is not None:
        windows = windows[np.random.default_rng(seed).permutation(n)]
    if windows.dtype.kind == "U":  # texts: batches of str objects, sized by the texts, not the widest one
        windows = windows.astype(object)
        item = 4 * sum(len(t) for t in windows) // n + 64
    else:
        item = windows.itemsize * math.prod(windows.shape[1:])
    distinct = n // math.gcd(n, batch)  # after this many batches the cycle repeats exactly
    cap = max(1, MAX_BATCH_BYTES // max(1, batch * item))
    return [
        np.ascontiguousarray(windows[(j * batch + np.arange(batch)) % n]) for j in range(min(distinct, cap))
    ]


def _call(v: Variant, x_raw: np.ndarray, s: Samples | None, t_origin: int) -> None:
    t0 = time.perf_counter_ns()
    x = v.preprocess(x_raw)
    t1 = time.perf_counter_ns()
    out = v.infer(x)
    t2 = time.perf_counter_ns()
    v.postprocess(out)
    t3 = time.perf_counter_ns()
    if s is not None:
        s.preprocess.append((t1 - t0) / 1e6)
        s.infer.append((t2 - t1) / 1e6)
        s.postprocess.append((t3 - t2) / 1e6)
        s.start_s.append((t0 - t_origin) / 1e9)


def measure(
    variants: Sequence[Variant],
    batches: list[np.ndarray],
    runs: int | None = None,
    duration_s: float | None = None,
    warmup: int = 20,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    block: int = 1,
) -> list[Samples]:
    """Time every variant: `runs` calls each, or rounds until `duration_s` has passed; interleaved when several.

    `block` > 1 interleaves by blocks: each round calls every variant `block` times in a row (order
    shuffled per round), after one unrecorded call of the same input. A device runs one model, so a small
    model timed right after a large one (whose weights evicted its caches) would be charged a cold start
    it never pays there; blocks keep the variants' samples spread over the same minutes."""
    if (runs is None) == (duration_s is None):
        raise ConfigError("give exactly one of runs or duration")
    if runs is not None and runs < 1:
        raise ConfigError(f"--runs must be >= 1, got {runs}")
    if duration_s is not None and duration_s <= 0:
        raise ConfigError(f"--duration must be > 0, got {duration_s}")
    if warmup < 0:
        raise ConfigError(f"--warmup must be >= 0, got {warmup}")
    if block < 1:
        raise ConfigError(f"block must be >= 1, got {block}")
    rng = np.random.default_rng(seed)
    order = np.arange(len(variants))
    samples = [Samples(v.name, len(batches[0])) for v in variants]
    for r in range(warmup):
        rng.shuffle(order)
        for i in order:
            _call(variants[i], batches[r % len(batches)], None, 0)
    origin = time.perf_counter_ns()
    deadline = origin + int(duration_s * 1e9) if duration_s is not None else None
    r = 0
    while (runs is not None and r < runs) or (deadline is not None and time.perf_counter_ns() < deadline):
        rng.shuffle(order)
        n = block if runs is None else min(block, runs - r)
        for i in order:
            if block > 1:  # the block's first call pays the switch from the other variants: not recorded
                _call(variants[i], batches[r % len(batches)], None, 0)
            for j in range(n):
                _call(variants[i], batches[(r + j) % len(batches)], samples[i], origin)
        r += n
        if progress is not None and r % 100 < n:
            progress(r)
    return samples


def stage_stats(ms: np.ndarray, qs: Sequence[float] = DEFAULT_QS) -> dict[str, float]:
    """Percentiles (edgekit.metrics.percentiles) plus min, max, mean and std, in ms."""
    stats = percentiles(ms, tuple(qs))
    stats.update(
        min=float(ms.min()),
        max=float(ms.max()),
        mean=float(ms.mean()),
        std=float(ms.std()),
    )
    return stats


def summarize(s: Samples, qs: Sequence[float] = DEFAULT_QS) -> dict:
    """Stage statistics and throughput of one variant (throughput counts only this variant's own time)."""
    arr = s.arrays()
    total_s = float(arr["total_ms"].sum()) / 1e3
    return {
        "name": s.name,
        "batch": s.batch,
        "calls": len(s.infer),
        "windows": len(s.infer) * s.batch,
        **{stage: stage_stats(arr[f"{stage}_ms"], qs) for stage in STAGES},
        "throughput_windows_per_s": len(s.infer) * s.batch / total_s if total_s > 0 else float("inf"),
        "span_s": float(arr["start_s"][-1] - arr["start_s"][0]) if len(s.start_s) > 1 else 0.0,
    }


def ratios(summaries: list[dict], key: str) -> list[dict]:
    """Each variant's end-to-end p50 and `key` percentile, and throughput, relative to the first variant."""
    base = summaries[0]
    out = []
    for s in summaries:
        out.append(
            {
                "name": s["name"],
                "p50_ratio": s["total"]["p50"] / base["total"]["p50"],
                f"{key}_ratio": s["total"][key] / base["total"][key],
                "throughput_ratio": s["throughput_windows_per_s"] / base["throughput_windows_per_s"],
            }
        )
    return out


def verdict(summary: dict, budget_ms: float, q: float) -> dict:
    """PASS when the end-to-end (pre + infer + post) latency at percentile q is within the budget."""
    key = percentile_key(q)
    value = summary["total"][key]
    return {
        "variant": summary["name"],
        "percentile": key,
        "value_ms": value,
        "budget_ms": budget_ms,
        "headroom_ms": budget_ms - value,
        "passed": bool(value <= budget_ms),
        "result": "PASS" if value <= budget_ms else "FAIL",
        "measured": "model only, per window: preprocess + infer + postprocess of the call that carried it",
    }
