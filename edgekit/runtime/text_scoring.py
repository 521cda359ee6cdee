"""Text messages in, classification reports out: decoding, micro-batching, one model call per batch.

A payload is UTF-8 text, or a JSON object `{"text": "...", "id": "...", "ts": 1.7e9}` when its first
non-blank character is `{` (`id` and `ts` optional; `ts`, the sender's unix time, is echoed in the report
so a consumer can time the round trip). Empty, non-UTF-8 and malformed messages are counted and reported
through the sink, never raised. MQTT-free like runtime.scoring; only the daemon's scoring thread calls it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Protocol

from edgekit.runtime.stats import Counters, LatencyHistogram
from edgekit.runtime.text import TextEngine, is_unicode
from edgekit.runtime.text_cascade import TextCascade

_ENCODER = json.JSONEncoder()


class TextSink(Protocol):
    def classification(self, payload: str, stream: str) -> None:
        """Publish one message's report."""

    def error(self, kind: str, detail: str, stream: str | None = None, n: int = 1) -> None:
        """Count, rate-limit and report a refused input."""


class TextRefused(ValueError):
    """A message that holds no usable text; `kind` names the error counter."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


@dataclass
class TextMessage:
    stream: str
    id: str
    text: str
    ts: float | None
    recv: float  # perf_counter() at arrival


def parse_text(payload: bytes) -> tuple[str, str | None, float | None]:
    """(text, id or None, ts or None) of one payload; raises TextRefused."""
    try:
        body = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextRefused("not_utf8", f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not body.lstrip().startswith("{"):
        if not body.strip():
            raise TextRefused("empty", "empty text")
        return body, None, None
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise TextRefused("malformed", f"payload starts with '{{' but is not JSON ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise TextRefused("malformed", 'JSON payload needs a string "text" field')
    text, mid, ts = obj["text"], obj.get("id"), obj.get("ts")
    if not text.strip():
        raise TextRefused("empty", 'empty "text"')
    if mid is not None and not isinstance(mid, str | int):
        raise TextRefused("malformed", '"id" must be a string or an integer')
    for field, value in (("text", text), ("id", mid)):
        if isinstance(value, str) and not is_unicode(value):  # JSON's "\ud800": fails its whole batch later
            raise TextRefused("malformed", f'"{field}" holds a lone UTF-16 surrogate (not a character)')
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts)):
        raise TextRefused("malformed", '"ts" must be a finite number of unix seconds')
    return text, None if mid is None else str(mid), None if ts is None else float(ts)


class TextScorer:
    def __init__(
        self,
        engine: TextEngine,
        sink: TextSink,
        counters: Counters,
        latency: LatencyHistogram,
        *,
        max_batch: int = 64,
    ) -> None:
        self.engine, self.sink, self.counters, self.latency = engine, sink, counters, latency
        self.max_batch = max_batch
        self.pending: list[TextMessage] = []
        self.seq = 0  # message number, the id of messages without one (no per-stream state to grow)
        self.publish_scores = False  # sensor-only option; kept so the daemon treats both scorers alike
        self.cascade: TextCascade | None = None  # set by the daemon for a bundle with a cascade rule

    @property
    def threshold(self) -> float:
        return self.engine.threshold

    @property
    def open_streams(self) -> int:
        return 0  # text streams hold no state between messages

    def handle(self, stream: str, payload: bytes, recv: float) -> None:
        """One MQTT message of `stream`, received at perf_counter() time `recv`."""
        try:
            text, mid, ts = parse_text(payload)
        except TextRefused as exc:
            self.sink.error(exc.kind, exc.detail, stream)
            return
        self.seq += 1
        self.pending.append(
            TextMessage(stream, mid if mid is not None else f"{stream}#{self.seq}", text, ts, recv)
        )
        self.counters.readings += 1
        if len(self.pending) >= self.max_batch:
            self.flush()

    def flush(self) -> None:
        """Classify every pending message in one model call (padded to the longest) and report each."""
        batch, self.pending = self.pending, []
        if not batch:
            return
        try:
            probs = self.engine.classify([m.text for m in batch])
        except Exception as exc:  # a model failing on odd input must not stop the streams
            self.sink.error("inference_failed", f"{type(exc).__name__}: {exc}")
            return
        casc = self.cascade.decide(batch, probs) if self.cascade is not None else None
        if casc is not None:  # escalated messages: the teacher's rows (local) or published (remote)
            probs = casc.probs
        labels, m = self.engine.labels, self.engine.manifest
        best = probs.argmax(axis=1).tolist()
        rows = probs.tolist()
        clock = time.perf_counter
        for i, (msg, k, row) in enumerate(zip(batch, best, rows, strict=True)):
            lat = (clock() - msg.recv) * 1000.0
            report = {
                "stream": msg.stream,
                "id": msg.id,
                "label": labels[k],
                "probs": dict(zip(labels, row, strict=True)),
                "model_version": m.model_version,
                "latency_ms": lat,
                "answered_by": "student" if casc is None else casc.answered_by[i],
            }
            if casc is not None:
                report["confidence"] = casc.confidence[i]
            if msg.ts is not None:
                report["ts"] = msg.ts
            self.sink.classification(_ENCODER.encode(report), msg.stream)
            self.latency.add(lat)
        self.counters.windows += len(batch)

    def swap(self, engine: TextEngine) -> bool:
        """Classify pending messages with the old model, then adopt `engine` (no buffers to reset)."""
        self.flush()
        self.engine = engine
        return False

    def tick(self, max_age_s: float = 0.0) -> None:
        """Between messages: nothing is deferred for text."""

    def clear(self) -> None:
        self.pending.clear()
