"""Timing-loop math: percentiles through the bench path, batch cycling, interleaving, the verdict."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from edgekit.bench import latency
from edgekit.bench.latency import Samples
from edgekit.bench.variants import Variant
from edgekit.errors import ConfigError
from edgekit.metrics import percentiles


def known_samples() -> Samples:
    # Totals 1..100 ms split over the three stages; numpy's linear rule gives p50 = 50.5, p99 = 99.01.
    total = np.arange(1.0, 101.0)
    rng = np.random.default_rng(0)
    rng.shuffle(total)
    return Samples(
        "v",
        1,
        preprocess=list(total * 0.25),
        infer=list(total * 0.5),
        postprocess=list(total * 0.25),
        start_s=list(np.arange(100) * 0.01),
    )


def test_summary_percentiles_on_known_samples() -> None:
    s = latency.summarize(known_samples())
    t = s["total"]
    assert t["p50"] == pytest.approx(50.5)
    assert t["p90"] == pytest.approx(90.1)
    assert t["p99"] == pytest.approx(99.01)
    assert t["p99.9"] == pytest.approx(99.901)
    assert (t["min"], t["max"], t["mean"]) == (pytest.approx(1.0), pytest.approx(100.0), pytest.approx(50.5))
    assert s["infer"]["p50"] == pytest.approx(25.25)
    assert s["calls"] == 100
    # 100 windows in 5050 ms of own time
    assert s["throughput_windows_per_s"] == pytest.approx(100 / 5.05)
    # one implementation: the bench path agrees with edgekit.metrics.percentiles
    assert {k: t[k] for k in ("p50", "p90", "p95", "p99", "p99.9")} == pytest.approx(
        percentiles(known_samples().total)
    )


def test_extra_percentile_from_profile_or_flag() -> None:
    s = latency.summarize(known_samples(), qs=(50, 99.99))
    assert s["total"]["p99.99"] == pytest.approx(99.9901)
    assert latency.parse_percentile("p99.9") == 99.9
    assert latency.parse_percentile("95") == 95.0
    for bad in ("px", "p0", "p101"):
        with pytest.raises(ConfigError):
            latency.parse_percentile(bad)


def test_verdict_flips_with_budget() -> None:
    s = latency.summarize(known_samples())
    assert latency.verdict(s, 100.0, 99)["result"] == "PASS"
    assert latency.verdict(s, 99.01, 99)["passed"]
    fail = latency.verdict(s, 99.0, 99)
    assert fail["result"] == "FAIL" and fail["headroom_ms"] < 0
    assert latency.verdict(s, 60.0, 50)["result"] == "PASS"


def test_batches_cycle_through_all_windows() -> None:
    w = np.arange(5, dtype=np.float32).reshape(5, 1, 1)
    batches = latency.make_batches(w, 2)
    assert [b[:, 0, 0].tolist() for b in batches] == [[0, 1], [2, 3], [4, 0], [1, 2], [3, 4]]
    assert all(b.flags["C_CONTIGUOUS"] for b in batches)
    assert len(latency.make_batches(w, 5)) == 1
    with pytest.raises(ConfigError):
        latency.make_batches(w, 0)


def test_seeded_batches_are_a_fair_sample_of_a_grouped_file() -> None:
    # a held-out file grouped by source: 300 long texts first, then 2,700 short ones (as Rotten Tomatoes'
    # test split puts a movie's plot summaries together); a 300-call run must not time only the long ones
    texts = np.array(["long " * 60] * 300 + ["short"] * 2700)
    head = latency.make_batches(texts, 1)[:300]
    assert all(b[0].startswith("long") for b in head)  # unseeded: contiguous, the bias the seed removes
    batches = latency.make_batches(texts, 1, seed=0)
    first = [b[0] for b in batches[:300]]
    assert 10 <= sum(t.startswith("long") for t in first) <= 50  # ~10% of the sample, like the file
    assert sorted(b[0] for b in batches) == sorted(texts.tolist())  # one cycle is every text once
    again = latency.make_batches(texts, 1, seed=0)
    assert [b[0] for b in again] == [b[0] for b in batches]  # seeded: the same order every run
    w = np.arange(6, dtype=np.float32).reshape(6, 1, 1)
    flat = np.concatenate([b[:, 0, 0] for b in latency.make_batches(w, 2, seed=1)])
    assert sorted(flat.tolist()) == [0, 1, 2, 3, 4, 5]


def test_text_batches_are_sized_by_their_texts_not_the_widest_one() -> None:
    # numpy stores texts at the width of the longest: one 200k-character log line must not make the
    # memory cap cut the cycle to a couple of batches (the rest of the texts never timed)
    texts = np.array(["x" * 200_000] + ["short text"] * 2999)
    batches = latency.make_batches(texts, 32, seed=0)
    assert len(batches) == 3000 // math.gcd(3000, 32)  # the whole cycle
    assert batches[0].dtype == object and sum(b.nbytes for b in batches) < 1_000_000


def recording_variant(name: str, calls: list[str]) -> Variant:
    def infer(x: np.ndarray) -> np.ndarray:
        calls.append(name)
        return x

    return Variant(
        name, "test", preprocess=np.asarray, infer=infer, postprocess=np.asarray, window=1, channels=1
    )


def test_interleaved_rounds_in_random_order() -> None:
    calls: list[str] = []
    variants = [recording_variant(n, calls) for n in "abc"]
    batches = latency.make_batches(np.zeros((4, 1, 1), np.float32), 1)
    samples = latency.measure(variants, batches, runs=60, warmup=3, seed=1)
    assert [len(s.infer) for s in samples] == [60, 60, 60]
    timed = calls[9:]  # after 3 warm-up rounds
    rounds = [tuple(timed[i : i + 3]) for i in range(0, len(timed), 3)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)  # each round: one call per variant
    assert len(set(rounds)) > 1  # and the order changes between rounds
    assert all(np.all(np.diff(s.start_s) >= 0) for s in samples)


def test_block_interleaving_runs_each_variant_in_blocks() -> None:
    calls: list[str] = []
    variants = [recording_variant(n, calls) for n in "ab"]
    batches = latency.make_batches(np.zeros((4, 1, 1), np.float32), 1)
    samples = latency.measure(variants, batches, runs=23, warmup=0, seed=1, block=10)
    assert [len(s.infer) for s in samples] == [23, 23]  # the last round is cut to what `runs` leaves
    # rounds of 10, 10, 3 recorded calls per variant, each block after one unrecorded switching call
    assert calls.count("a") == calls.count("b") == 23 + 3
    runs_of = [len(list(g)) for _, g in itertools.groupby(calls)]
    assert min(runs_of) >= 4  # blocks never split (two of one variant may meet across rounds)
    with pytest.raises(ConfigError):
        latency.measure(variants, batches, runs=10, block=0)


def test_duration_mode_and_argument_checks() -> None:
    v = [recording_variant("a", [])]
    batches = latency.make_batches(np.zeros((1, 1, 1), np.float32), 1)
    s = latency.measure(v, batches, duration_s=0.05, warmup=0)[0]
    assert len(s.infer) > 1 and s.start_s[-1] < 0.5
    with pytest.raises(ConfigError):
        latency.measure(v, batches, runs=10, duration_s=1.0)
    with pytest.raises(ConfigError):
        latency.measure(v, batches, runs=0)
