"""The cascade for text bundles: the same rule (runtime.cascade) over each classified micro-batch of messages;
escalated messages are answered by the bundle's local teacher within the budget, or published with the
student's answer on the escalations topic for `edgekit escalations serve`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgekit.errors import BundleError
from edgekit.runtime.cascade import CascadeRunner
from edgekit.runtime.text import TextEngine


class TextMessage(Protocol):
    """A staged message of the text scorer (runtime.text_scoring.TextMessage)."""

    stream: str
    id: str
    text: str
    ts: float | None
    recv: float


_ENCODER = json.JSONEncoder()


@dataclass
class TextDecision:
    probs: np.ndarray  # [B, K]: the teacher's rows for the messages it answered
    answered_by: list[str]
    confidence: list[float]


class TextCascade(CascadeRunner):
    """`decide` runs in the text scorer's flush, after the student classified the batch."""

    engine: TextEngine
    teacher: TextEngine | None

    def __init__(self, engine: TextEngine, *args: object, **kw: object) -> None:
        super().__init__(engine, *args, **kw)  # type: ignore[arg-type]
        if self.rule.rule.measure == "score_distance":
            raise BundleError("a text bundle's cascade needs a classifier measure, not score_distance")

    def decide(self, batch: Sequence[TextMessage], probs: np.ndarray) -> TextDecision:
        esc, conf = self.rule.apply(probs, probs.max(axis=1), 0.5)
        by = ["student"] * len(batch)
        if not esc.any():
            return TextDecision(probs, by, conf.tolist())
        idx = np.flatnonzero(esc)
        self.counters.escalated += len(idx)
        oldest = min(batch[i].recv for i in idx.tolist())
        teacher, t_probs = self.teacher, None
        if teacher is not None and self.fits(oldest, len(idx)):
            t_probs = self.timed(len(idx), lambda: teacher.classify([batch[i].text for i in idx.tolist()]))
        if t_probs is None:
            self._publish(batch, idx, probs, conf)
            return TextDecision(probs, by, conf.tolist())
        probs = probs.copy()
        probs[idx] = t_probs
        for i in idx.tolist():
            by[i] = "teacher"
        return TextDecision(probs, by, conf.tolist())

    def _publish(
        self, batch: Sequence[TextMessage], idx: np.ndarray, probs: np.ndarray, conf: np.ndarray
    ) -> None:
        labels, m = self.engine.labels, self.engine.manifest
        for i in idx.tolist():
            msg, row = batch[i], probs[i].tolist()
            body = {
                "kind": "text",
                "device": self.device,
                "stream": msg.stream,
                "id": msg.id,
                "text": msg.text,
                "ts": time.time(),
                "model_id": m.model_id,
                "model_version": m.model_version,
                "student": {
                    "label": labels[int(np.argmax(row))],
                    "probs": dict(zip(labels, row, strict=True)),
                    "confidence": float(conf[i]),
                },
            }
            if msg.ts is not None:
                body["msg_ts"] = msg.ts
            self.escalate(_ENCODER.encode(body))
        self.counters.remote_escalations += len(idx)
