"""The device measures which variant to run: every (variant, execution provider) pair it really has is
self-tested on the variant's golden pairs, the passing ones are timed at the daemon's batch sizes, and the
fastest correct pair is recorded in the release's selection.json, which Engine.load honours.

Why on the device: the export host cannot know. A tiny student was measured 10x slower on an H100's CUDA
provider than on its CPU at batch 1 and faster only past ~256 windows per call; dynamic INT8 is slower than
FP32 on x86; on a Cortex-A nobody knows until it is measured on the board.

Rule: pairs are timed interleaved (one call each per round, order alternating), median per batch size; a
pair's score is the geometric mean over batch sizes of its median over the fastest pair's median, and the
lowest score wins (ties: the manifest's variant order, then the profile's provider order). So the device
never runs a variant slower, across its batch sizes, than another correct one it carries.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.bundle.manifest import Manifest
from edgekit.errors import BundleError
from edgekit.profiles import TargetProfile
from edgekit.runtime.engine import (
    Engine,
    create_session,
    device_providers,
    load_golden,
    on_provider,
    self_test,
)
from edgekit.runtime.selection import Measurement, Selection

__all__ = ["RULE", "expected_batch_sizes", "tune_release"]

log = logging.getLogger(__name__)

RULE = "lowest geometric mean over batch sizes of median latency / fastest median; self-test must pass"
WARMUP = 2  # untimed calls per pair and batch size (session warm-up, allocator)
MIN_ROUNDS = 3
MAX_ROUNDS = 200


def expected_batch_sizes(profile: TargetProfile | None) -> list[int]:
    """What the daemon runs: one window per call when idle, up to daemon.max_batch under load."""
    top = profile.daemon.max_batch if profile is not None else TargetProfile(name="device").daemon.max_batch
    return sorted({1, top})


@dataclass
class _Pair:
    variant: str
    provider: str
    run: Callable[[int], object]  # runs one call at a batch size


def _runner(
    release: Path, view: Manifest, profile: TargetProfile | None, provider: str
) -> Callable[[int], object]:
    """Self-test `view` (one variant) on one provider; return a call at a given batch size, golden inputs tiled."""
    golden = load_golden(release, view)
    if view.kind == "sensor":
        engine = Engine(release, profile, view)
        used = engine.providers[0]
        self_test(release, view, profile, engine=engine)
        raw = golden["inputs"]
        batches: dict[int, np.ndarray] = {}

        def run(b: int) -> object:
            x = batches.get(b)
            if x is None:
                x = batches[b] = np.resize(raw, (b, *raw.shape[1:])).astype(raw.dtype)
            return engine.score(x)

    else:
        sess = create_session(release / view.model_file, profile)
        used = sess.get_providers()[0]
        self_test(release, view, profile)
        names = [i.name for i in sess.get_inputs()]
        feeds_at: dict[int, dict[str, np.ndarray]] = {}

        def run(b: int) -> object:
            feeds = feeds_at.get(b)
            if feeds is None:
                feeds = feeds_at[b] = {n: np.resize(golden[n], (b, *golden[n].shape[1:])) for n in names}
            return sess.run([view.output.name], feeds)

    if used != provider:  # onnxruntime fell back silently: this pair would not run where it claims
        raise BundleError(f"onnxruntime put the session on {used}, not {provider}")
    return run


def _time(
    pairs: list[_Pair], batch_sizes: Sequence[int], budget_s: float
) -> tuple[dict[int, list[float]], int]:
    """Interleaved timing: per batch size, rounds of one call per pair (order alternating) within the budget.
    Returns each pair's median ms per batch size (index-aligned with `pairs`) and the rounds made."""
    medians: dict[int, list[float]] = {}
    rounds_made = MAX_ROUNDS
    per_batch = budget_s / max(len(batch_sizes), 1)
    for b in batch_sizes:
        for p in pairs:
            for _ in range(WARMUP):
                p.run(b)
        samples: list[list[float]] = [[] for _ in pairs]
        order = list(range(len(pairs)))
        start = time.perf_counter()
        rounds = 0
        while rounds < MAX_ROUNDS:
            for i in order if rounds % 2 == 0 else order[::-1]:
                t0 = time.perf_counter_ns()
                pairs[i].run(b)
                samples[i].append((time.perf_counter_ns() - t0) / 1e6)
            rounds += 1
            # one pair has nothing to be compared with: a few rounds record its figure
            enough = len(pairs) == 1 or time.perf_counter() - start >= per_batch
            if rounds >= MIN_ROUNDS and enough:
                break
        rounds_made = min(rounds_made, rounds)
        medians[b] = [float(np.median(s)) for s in samples]
    return medians, rounds_made


def tune_release(
    release_dir: str | Path,
    profile: TargetProfile | None = None,
    batch_sizes: Sequence[int] | None = None,
    variant: str | None = None,
    budget_s: float = 0.3,
    manifest: Manifest | None = None,
) -> Selection:
    """Self-test every variant on every provider this device has, time the passing pairs, write and return the
    selection (release_dir/selection.json). `variant` forces one variant (its fastest provider is still
    measured). BundleError when no pair passes, or the forced variant fails or does not exist."""
    release = Path(release_dir)
    manifest = manifest or Manifest.load(release)
    batch_sizes = sorted(set(batch_sizes or expected_batch_sizes(profile)))
    if not batch_sizes or batch_sizes[0] < 1:
        raise BundleError(f"batch sizes must be positive, got {batch_sizes}")
    names = manifest.variant_names()
    if variant is not None:
        manifest.for_variant(variant)  # BundleError naming the variants the bundle has
        names = [variant]
    measurements: list[Measurement] = []
    pairs: list[_Pair] = []
    for name in names:
        view = manifest.for_variant(name)
        for provider in device_providers(profile):
            try:
                run = _runner(release, view, on_provider(profile, provider), provider)
            except BundleError as exc:
                log.warning("variant %s on %s is not usable here: %s", name, provider, exc)
                measurements.append(Measurement(name, provider, f"failed: {exc}"))
                continue
            measurements.append(Measurement(name, provider, "passed"))
            pairs.append(_Pair(name, provider, run))
    if not pairs:
        why = "; ".join(f"{m.variant} on {m.provider}: {m.self_test}" for m in measurements)
        raise BundleError(f"{release}: no variant passes its golden self-test on this device ({why})")

    medians, rounds = _time(pairs, batch_sizes, budget_s)
    passed = [m for m in measurements if m.self_test == "passed"]
    for i, m in enumerate(passed):
        m.median_ms = {str(b): round(medians[b][i], 6) for b in batch_sizes}
        m.rounds = rounds
        ratios = [medians[b][i] / min(medians[b]) for b in batch_sizes]
        m.score = round(math.exp(sum(math.log(r) for r in ratios) / len(ratios)), 6)
    best = min(passed, key=lambda m: m.score)  # min() keeps the first of equals: manifest, then profile order
    selection = Selection(
        variant=best.variant,
        provider=best.provider,
        measurements=measurements,
        tuned_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        forced=variant is not None,
        batch_sizes=list(batch_sizes),
        rule=RULE,
    )
    selection.save(release)
    log.info(
        "tuned %s %s: running variant %s on %s (%d pairs measured%s)",
        manifest.model_id,
        manifest.model_version,
        best.variant,
        best.provider,
        len(measurements),
        ", forced" if variant else "",
    )
    return selection
