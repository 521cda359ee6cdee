"""Payloads in, scored windows out: parsing, per-stream ring buffers, micro-batched inference, reports.

MQTT-free (the daemon plugs in a Sink that publishes), so the whole hot path is testable and
benchmarkable on its own. Single-threaded: only the daemon's scoring thread calls it.
"""

from __future__ import annotations

import math
import time
from math import isfinite
from typing import Protocol

import numpy as np

from edgekit.runtime import codec
from edgekit.runtime.cascade import Decision, SensorCascade
from edgekit.runtime.drift import DriftMonitor
from edgekit.runtime.engine import Engine
from edgekit.runtime.payloads import PayloadError, Schema, parse_payload
from edgekit.runtime.stats import Counters, LatencyHistogram
from edgekit.runtime.windows import GAP, StreamTable, StreamWindow, WindowBatch, WindowMeta

_BINARY = ("normal", "anomaly")  # labels of a one-label bundle's reports
_FLOATS = ("score", "threshold", "probability")  # report fields that may hold NaN or inf
# Batches above this size take the vectorized path in flush(); below it a plain loop is cheaper.
_VECTOR_MIN = 16
# Messages with at least this many readings try the one-go path of handle() (Scorer._take_run).
_RUN_MIN = 4


class Sink(Protocol):
    def report(self, payload: bytes, anomaly: bool, stream: str) -> None:
        """Publish one window's report (anomalies always; every window when scores are published)."""

    def error(self, kind: str, detail: str, stream: str | None = None, n: int = 1) -> None:
        """Count, rate-limit and report a refused input."""


class Scorer:
    def __init__(
        self,
        engine: Engine,
        sink: Sink,
        counters: Counters,
        latency: LatencyHistogram,
        *,
        device: str,
        max_batch: int = 64,
        gap_factor: float = 10.0,
        max_streams: int = 1024,
        threshold: float | None = None,
        publish_scores: bool = False,
        max_clock_skew_s: float = math.inf,
        stream_idle_s: float = math.inf,
        drift: DriftMonitor | None = None,
    ) -> None:
        self.sink, self.counters, self.latency = sink, counters, latency
        self.device = device
        self.max_batch = max_batch
        self.threshold_override = threshold
        self.publish_scores = publish_scores
        self.max_clock_skew_s = max_clock_skew_s
        self.engine = engine
        self.schema = Schema(list(engine.manifest.window.channels))  # type: ignore[union-attr]
        self.streams = StreamTable(
            engine.window, engine.hop, engine.channels, gap_factor, max_streams, stream_idle_s, self._evicted
        )
        self.batch = WindowBatch(max_batch, engine.window, engine.channels)
        self.cascade: SensorCascade | None = None  # set by the daemon for a bundle with a cascade rule
        self._tail_key: tuple | None = None  # _tails' cache
        self._tail_bytes: tuple[bytes, bytes] | None = None
        self.drift = drift  # replaced by the daemon when a reload brings other reference statistics

    @property
    def threshold(self) -> float:
        return self.engine.threshold if self.threshold_override is None else self.threshold_override

    @property
    def open_streams(self) -> int:
        return len(self.streams.streams)

    def clear(self) -> None:
        """Drop the staged windows (after a failed flush)."""
        self.batch.clear()

    def tick(self, max_age_s: float = 0.0) -> None:
        """Between messages (the daemon's housekeeping): the drift monitor takes in what it deferred for
        `max_age_s` or longer (0: everything)."""
        if self.drift is not None:
            self.drift.flush(max_age_s)

    def handle(self, stream: str, payload: bytes, recv: float) -> None:
        """One MQTT message of `stream`, received at perf_counter() time `recv`."""
        now = time.time()
        try:
            rows = parse_payload(payload, self.schema, now)
        except PayloadError as exc:
            self.sink.error(exc.kind, exc.detail, stream)
            return
        sw = self.streams.get(stream, recv)
        if sw is None:
            self.sink.error(
                "stream_limit",
                f"{self.streams.max_streams} streams, all active within {self.streams.idle_s:g} s; ignored",
                stream,
            )
            return
        ts, vals = rows.ts.tolist(), rows.values
        latest = now + self.max_clock_skew_s
        if len(ts) >= _RUN_MIN and self._take_run(sw, ts, rows.ts, vals, latest, recv):
            return
        if len(ts) == 1:  # single reading: scalar checks are cheaper than numpy's
            finite = [math.isfinite(ts[0]) and all(map(math.isfinite, vals[0].tolist()))]
        else:
            finite = (np.isfinite(vals).all(axis=1) & np.isfinite(rows.ts)).tolist()
        # Only the future side is bounded: a far-future timestamp would make every later reading of the
        # stream out of order, while old ones (replays, uploads buffered while offline) harm nothing.
        bad: dict[str, int] = {}
        accepted = 0
        batch = self.batch
        for i, t in enumerate(ts):
            if not finite[i]:
                bad["non_finite"] = bad.get("non_finite", 0) + 1
                continue
            if t > latest:
                bad["clock_skew"] = bad.get("clock_skew", 0) + 1
                continue
            st = sw.admit(t, now)
            if st:
                bad[st] = bad.get(st, 0) + 1
                if st is not GAP:
                    continue
            accepted += 1
            if sw.push(t, vals[i]):
                batch.add(sw, t, recv)
                if batch.full:
                    self.flush()
        self.counters.readings += accepted
        if self.drift is not None and accepted:  # every finite reading, once per message (vectorised)
            self.drift.observe(stream, vals if accepted == len(ts) else vals[np.isfinite(vals).all(axis=1)])
        for kind, n in bad.items():
            self.sink.error(kind, f"{n} reading(s) of one message", stream, n)

    def _take_run(
        self,
        sw: StreamWindow,
        ts: list[float],
        ts_arr: np.ndarray,
        vals: np.ndarray,
        latest: float,
        recv: float,
    ) -> bool:
        """A multi-reading message in one go when every reading would be accepted as it stands (finite, not
        ahead of `latest`, in order, no gap): the same windows, state and counts as the loop in handle(),
        at a fraction of its per-reading cost. False, with nothing changed, when the loop must decide."""
        if not (ts[-1] <= latest and np.isfinite(vals).all() and np.isfinite(ts_arr).all()):
            return False
        if not sw.admit_run(ts):
            return False
        ends, ending, starts = sw.push_run(ts_arr, vals)
        batch, done, k = self.batch, 0, len(ends)
        end_ts, start_ts = ts_arr[ends].tolist(), starts.tolist()
        while done < k:  # at most one batch of windows copied at a time
            take = min(k - done, batch.capacity - len(batch))
            chunk = slice(done, done + take)
            batch.add_run(sw, ending[ends[chunk]], start_ts[chunk], end_ts[chunk], recv)
            done += take
            if batch.full:
                self.flush()
        self.counters.readings += len(ts)
        if self.drift is not None:
            self.drift.observe(sw.name, vals)
        return True

    def _evicted(self, sw: StreamWindow) -> None:
        # An event, not a refusal; counted with the error kinds so heartbeat and metrics carry it.
        idle = self.streams.idle_s
        if self.drift is not None:
            self.drift.forget(sw.name)
        self.sink.error("stream_evicted", f"idle > {idle:g} s, made room for a new stream", sw.name)

    def flush(self) -> None:
        """Score every staged window in one model call and report them."""
        n = len(self.batch)
        if n == 0:
            return
        engine = self.engine
        try:
            out = engine.infer(engine.preprocess(self.batch.x[:n]))
            scores = engine.postprocess(out)
            # K-class bundles report the class by name with its probability
            top = engine.top_class(out) if engine.softmax and len(engine.manifest.labels) > 2 else None
        except Exception as exc:  # a model failing on odd input must not stop the streams
            self.sink.error("inference_failed", f"{type(exc).__name__}: {exc}")
            self.batch.clear()
            return
        thr, hist, clock = self.threshold, self.latency, time.perf_counter
        casc: Decision | None = None
        if self.cascade is not None:  # escalated windows: the teacher's answer (local) or published (remote)
            casc = self.cascade.decide(self.batch, n, out, scores, thr, self.threshold_override is not None)
            scores, top = casc.scores, casc.top
        done = clock()
        if n > _VECTOR_MIN and not self.publish_scores:
            # Big batches (bursts, batch payloads): numpy for the quiet majority, a loop for the hits.
            hit_mask = scores >= thr if casc is None else casc.hits
            quiet = ~hit_mask
            hist.add_many((done - self.batch.recv[:n][quiet]) * 1000.0)
            todo = np.flatnonzero(hit_mask).tolist()
        else:
            todo = range(n)
        score_list = scores.tolist()
        hits = 0
        for i in todo:
            w, score = self.batch.window(i), score_list[i]
            hit = score >= thr if casc is None else bool(casc.hits[i])
            hits += hit
            if hit or self.publish_scores:
                lat = (clock() - w.recv) * 1000.0
                cls = None if top is None else (int(top[0][i]), float(top[1][i]))
                self.sink.report(self._report(w, score, hit, lat, cls, casc and casc.by(i)), hit, w.stream)
            else:
                lat = (done - w.recv) * 1000.0
            hist.add(lat)
        self.counters.windows += n
        self.counters.anomalies += hits
        self.batch.clear()
        if (done_flush := getattr(self.sink, "flushed", None)) is not None:
            done_flush()  # the sink may publish this flush's reports as one message (reports: batch)
        if self.drift is not None:  # after the reports: score drift delays no report
            self.drift.observe_scores(scores)

    def _report(
        self,
        w: WindowMeta,
        score: float,
        hit: bool,
        latency_ms: float,
        cls: tuple[int, float] | None = None,
        cascade: dict | None = None,  # answered_by, confidence (and the teacher's threshold) with a cascade
    ) -> bytes:
        thr = self.threshold
        if cls is None and cascade is None and isfinite(score) and isfinite(latency_ms):
            tails = self._tails(thr)
            if tails is not None:  # the usual report: only its window, score and latency vary
                head = codec.dumps({"device": self.device, **w.fields(), "score": score})
                return head[:-1] + tails[hit] + codec.dumps(latency_ms) + b"}"
        m = self.engine.manifest
        extra = {} if cls is None else {"class": m.labels[cls[0]], "probability": cls[1]}
        body = {
            "device": self.device,
            **w.fields(),
            "score": score,
            "threshold": thr,
            "label": extra["class"] if extra else (m.labels if len(m.labels) > 1 else _BINARY)[hit],
            "anomaly": hit,
            "model_id": m.model_id,
            "model_version": m.model_version,
            "variant": self.engine.variant,
            "latency_ms": latency_ms,
            **extra,
            **(cascade or {}),
        }
        # orjson when installed (runtime.codec), NaN/-Infinity (threshold -inf in benchmarks) written as before
        odd = tuple(k for k in _FLOATS if k in body and not isfinite(body[k]))
        return codec.dumps_flat(body, odd)

    def _tails(self, thr: float) -> tuple[bytes, bytes] | None:
        """The encoded end of a report after its score, up to `"latency_ms":`, for a quiet and an anomalous
        window: what _report writes for them, cut from its own output (orjson only: the stdlib spaces its
        separators). Rebuilt when the engine, threshold or codec changes."""
        key = (self.engine, thr, codec.name)
        if self._tail_key != key:
            self._tail_key, self._tail_bytes = key, None
            if codec.name == "orjson":
                cut = b',"threshold":'
                ends = []
                for hit in (False, True):
                    full = self._report(WindowMeta("", 0, 0.0, 0.0, 0.0), math.nan, hit, math.nan)
                    ends.append(full[full.index(cut) : full.rindex(b'"latency_ms":') + len(b'"latency_ms":')])
                self._tail_bytes = (ends[0], ends[1])
        return self._tail_bytes

    def swap(self, engine: Engine) -> bool:
        """Score staged windows with the old model, then adopt `engine`. True when buffers were reset."""
        self.flush()
        self.engine = engine
        old = self.schema.channels
        self.schema = Schema(list(engine.manifest.window.channels))  # type: ignore[union-attr]
        reset = self.streams.reshape(
            engine.window, engine.hop, engine.channels, force=old != self.schema.channels
        )
        if reset:
            self.batch = WindowBatch(self.max_batch, engine.window, engine.channels)
        return reset
