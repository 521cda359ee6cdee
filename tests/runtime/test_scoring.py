"""The scorer without MQTT: micro-batched scores equal Engine.score, and model swaps between windows."""

from __future__ import annotations

import json

import numpy as np

from edgekit.runtime.engine import Engine
from edgekit.runtime.payloads import encode_batch, encode_reading
from edgekit.runtime.scoring import Scorer
from edgekit.runtime.stats import Counters, LatencyHistogram

T0 = 1_700_000_000.0


class Collect:
    def __init__(self) -> None:
        self.reports: list[dict] = []
        self.errors: list[tuple[str, int]] = []

    def report(self, payload: str, anomaly: bool, stream: str) -> None:
        self.reports.append(json.loads(payload))

    def error(self, kind: str, detail: str, stream: str | None = None, n: int = 1) -> None:
        self.errors.append((kind, n))


def test_micro_batched_scores_equal_engine_scores(sensor_bundle, shuttle_rows):
    x, _ = shuttle_rows
    engine = Engine(sensor_bundle)
    sink, counters = Collect(), Counters()
    scorer = Scorer(engine, sink, counters, LatencyHistogram(), device="d", max_batch=16, publish_scores=True)
    ts = T0 + np.arange(len(x)) * 0.01
    for s in range(3):  # several streams interleaved: windows of different streams share model calls
        scorer.handle(f"s{s}", encode_batch(ts[:100], x[:100]), 0.0)
    for i in range(100, len(x)):
        scorer.handle("s0", encode_reading(ts[i], x[i]), 0.0)
    scorer.flush()
    got = {r["id"]: r["score"] for r in sink.reports}
    want = engine.score(x[:, None, :])
    assert counters.windows == len(got) == len(x) + 200
    np.testing.assert_allclose([got[f"s0@{t!r}"] for t in ts.tolist()], want, rtol=1e-5, atol=1e-6)
    assert sum(r["anomaly"] for r in sink.reports if r["stream"] == "s0") == int(
        (want >= engine.threshold).sum()
    )


def test_swap_to_an_incompatible_model_resets_buffers_and_keeps_going(sensor_bundle, windowed_bundle):
    sink, counters = Collect(), Counters()
    scorer = Scorer(Engine(sensor_bundle), sink, counters, LatencyHistogram(), device="d", threshold=-np.inf)
    scorer.handle("s", encode_reading(T0, [1.0] * 9), 0.0)
    new = Engine(windowed_bundle)
    assert scorer.swap(new) is True and counters.windows == 1  # the staged window was scored by the old model
    ecg = np.linspace(-1, 1, new.window + new.hop, dtype=np.float32)[:, None]
    scorer.handle("s", encode_batch(T0 + 1 + np.arange(len(ecg)) / 360, ecg), 0.0)
    scorer.flush()
    assert counters.windows == 1 + 2 and sink.errors == []
    assert {r["model_id"] for r in sink.reports[1:]} == {new.manifest.model_id}
