"""The daemon's scoring path without MQTT: what one message costs the Scorer (parse, stream ring, model
call, report), for 100-reading batch payloads through the one-go path (Scorer._take_run) against the
per-reading loop, and for single readings with every window reported.

    .venv/bin/python benchmarks/scoring_inprocess.py --bundle BUNDLE [--rounds 7]

Both batch variants run in one process on the same payloads, alternating, median over rounds (this
shared machine is noisy: read the ratio). Payloads are synthetic readings (normal noise around 40) with
regular timestamps per stream, 4 streams, as `edgekit bench --e2e` sends them; max_batch 128 like the
x86-gateway profile. Prints only; README quotes the figures with this command.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import edgekit.runtime.scoring as scoring
from edgekit.runtime.engine import Engine
from edgekit.runtime.payloads import encode_batch, encode_reading
from edgekit.runtime.scoring import Scorer
from edgekit.runtime.stats import Counters, LatencyHistogram


class NullSink:
    def report(self, payload: bytes, anomaly: bool, stream: str) -> None:
        pass

    def error(self, kind: str, detail: str, stream: str | None = None, n: int = 1) -> None:
        pass


def per_message_us(engine: Engine, messages: list[tuple[str, bytes]], threshold: float | None) -> float:
    sc = Scorer(
        engine, NullSink(), Counters(), LatencyHistogram(), device="d", max_batch=128, threshold=threshold
    )
    t = time.perf_counter()
    for stream, payload in messages:
        sc.handle(stream, payload, time.perf_counter())
        sc.flush()
    return (time.perf_counter() - t) / len(messages) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True, help="a sensor bundle (window 1: the e2e benchmark's)")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    engine = Engine(args.bundle)
    rng = np.random.default_rng(0)
    c, t0 = engine.channels, time.time() - 1000
    batches = [
        (
            f"s{k % 4}",
            encode_batch(t0 + ((k // 4) * 100 + np.arange(100)) * 0.001, rng.normal(40, 10, (100, c))),
        )
        for k in range(400)
    ]
    singles = [
        (f"s{k % 4}", encode_reading(t0 + 1000 + k * 0.001, rng.normal(40, 10, c).tolist()))
        for k in range(20000)
    ]
    run_min = scoring._RUN_MIN
    res: dict[str, list[float]] = {"one go": [], "reading by reading": [], "single, every window": []}
    for _ in range(args.rounds):
        scoring._RUN_MIN = run_min
        res["one go"].append(per_message_us(engine, batches, None))
        scoring._RUN_MIN = 10**9  # the per-reading loop for every message
        res["reading by reading"].append(per_message_us(engine, batches, None))
        scoring._RUN_MIN = run_min
        res["single, every window"].append(per_message_us(engine, singles, -math.inf))
    med = {k: float(np.median(v)) for k, v in res.items()}
    print(f"100-reading batch payloads, µs per message (median of {args.rounds} rounds):")
    print(
        f"  one go {med['one go']:.0f}, reading by reading {med['reading by reading']:.0f}: "
        f"{med['reading by reading'] / med['one go']:.2f}x"
    )
    print(f"single readings, every window reported: {med['single, every window']:.1f} µs per message")


if __name__ == "__main__":
    main()
