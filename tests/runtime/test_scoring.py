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


def _session(engine: Engine, messages: list[tuple[str, bytes]], run_min: int, monkeypatch) -> tuple:
    """Reports (without latency), error counts, counters and per-stream state after `messages`."""
    import edgekit.runtime.scoring as scoring

    monkeypatch.setattr(scoring, "_RUN_MIN", run_min)
    sink, counters = Collect(), Counters()
    scorer = Scorer(engine, sink, counters, LatencyHistogram(), device="d", max_batch=24, publish_scores=True)
    for stream, payload in messages:
        scorer.handle(stream, payload, 0.0)
    scorer.flush()
    reports = [{k: v for k, v in r.items() if k != "latency_ms"} for r in sink.reports]
    state = {
        name: (sw.last_ts, sw.period, sw._np, sw.count, sw.seq, sw.view().tolist())
        for name, sw in scorer.streams.streams.items()
    }
    return reports, sorted(sink.errors), (counters.readings, counters.windows), state


def test_batch_payloads_in_one_go_equal_the_reading_by_reading_path(
    sensor_bundle, windowed_bundle, shuttle_rows, monkeypatch
):
    """Scorer._take_run (a whole batch payload at once) against the per-reading loop: the same windows,
    scores, sequence numbers, refusals and stream state, for window 1 and a window 32 / hop 8 model, over
    regular batches and ones with gaps, repeats, non-finite values and readings out of order (which the
    one-go path must hand back to the loop)."""
    x, _ = shuttle_rows
    rng = np.random.default_rng(3)
    for bundle in (sensor_bundle, windowed_bundle):
        engine = Engine(bundle)
        c = engine.channels
        messages, t = [], {s: T0 for s in ("a", "b")}
        for k in range(120):
            s = "ab"[k % 2]
            n = int(rng.integers(1, 40))
            dts = np.full(n, 0.01)
            kind = rng.random()
            if kind < 0.1:
                dts[rng.integers(n)] = 5.0  # a gap (the period is 0.01 s)
            elif kind < 0.15:
                dts[rng.integers(n)] = -0.02  # out of order
            elif kind < 0.2:
                dts[rng.integers(n)] = 0.0  # a duplicate
            ts = t[s] + np.cumsum(dts)
            t[s] = float(ts.max())
            vals = x[rng.integers(0, len(x), n)][:, :c] if c == x.shape[1] else rng.normal(size=(n, c))
            if rng.random() < 0.05:
                vals = vals.copy()
                vals[rng.integers(n), 0] = np.nan
            messages.append((s, encode_batch(ts, vals)))
        fast = _session(engine, messages, 2, monkeypatch)
        slow = _session(engine, messages, 10**9, monkeypatch)
        assert fast[0] and len(fast[0]) == len(slow[0])
        assert fast == slow


def test_the_report_template_writes_the_bytes_of_the_full_encoding(sensor_bundle, windowed_bundle):
    """_report's usual case splices a per-engine tail (threshold, label, model fields) after the window
    and score: the bytes must be those of encoding the whole report, for either outcome, any threshold
    (-inf in benchmarks), after a swap, and with the stdlib codec (which takes the full encoding)."""
    import math

    from edgekit.runtime import codec
    from edgekit.runtime.windows import WindowMeta

    def full(scorer: Scorer, w: WindowMeta, score: float, hit: bool, lat: float) -> bytes:
        m, e = scorer.engine.manifest, scorer.engine
        body = {
            "device": scorer.device,
            **w.fields(),
            "score": score,
            "threshold": scorer.threshold,
            "label": (m.labels if len(m.labels) > 1 else ("normal", "anomaly"))[hit],
            "anomaly": hit,
            "model_id": m.model_id,
            "model_version": m.model_version,
            "variant": e.variant,
            "latency_ms": lat,
        }
        odd = tuple(k for k in ("score", "threshold") if not math.isfinite(body[k]))
        return codec.dumps_flat(body, odd)

    rng = np.random.default_rng(0)
    for threshold in (None, -math.inf, 0.25):
        scorer = Scorer(
            Engine(sensor_bundle),
            Collect(),
            Counters(),
            LatencyHistogram(),
            device='d"1',
            threshold=threshold,
        )
        for i in range(300):
            if i == 150:
                scorer.swap(Engine(windowed_bundle))
            w = WindowMeta(f"s{i % 3}", i, T0 + rng.random(), T0 + 10 * rng.random(), 0.0)
            score = [float(rng.random()), 1e-30, math.nan][i % 3]
            hit, lat = bool(i % 2), float(rng.random() * 3)
            assert scorer._report(w, score, hit, lat) == full(scorer, w, score, hit, lat)
    was = codec.name
    try:
        codec.use("stdlib")
        assert scorer._report(w, 0.5, True, 1.0) == full(scorer, w, 0.5, True, 1.0)
    finally:
        codec.use(was)
