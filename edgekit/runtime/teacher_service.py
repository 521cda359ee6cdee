"""`edgekit escalations serve`: the teacher service answering the cascade's remote escalations of many devices.

It subscribes to `edgekit/+/escalations` (or the listed devices), scores each escalated window (or text) with
an ordinary teacher bundle, verified like `serve` verifies, in micro-batches of one teacher call, and answers on
`edgekit/<device>/escalations/answers` with a report carrying `answered_by: "teacher"` and the student's answer
echoed (runtime.escalations: the daemon turns it into its own report). Malformed or mismatched escalations are
counted and logged, rate-limited, never raised.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from edgekit.config import to_dict
from edgekit.errors import ConfigError
from edgekit.profiles import TargetProfile, load_profile
from edgekit.runtime.cascade import label_of
from edgekit.runtime.confidence import confidence
from edgekit.runtime.engine import Engine
from edgekit.runtime.escalations import ANSWERS, Refused, need, parse_object
from edgekit.runtime.mqtt import ClientOptions, StreamTopics, check_topic_level, connect_async, make_client
from edgekit.runtime.reload import load_engine
from edgekit.runtime.stats import RateLimiter
from edgekit.runtime.text import TextEngine, is_unicode

log = logging.getLogger(__name__)
_ENCODER = json.JSONEncoder()


@dataclass
class EscalationServiceConfig:
    bundle: str  # the teacher bundle: an ordinary sensor or text bundle
    client: ClientOptions = field(default_factory=ClientOptions)
    devices: str = "+"  # "+": every device; else a comma-separated list of device ids
    pubkey: str | None = None
    profile: str | None = None  # topic layout and threads (default profile otherwise)
    max_batch: int = 64
    error_interval_s: float = 10.0


@dataclass
class ServiceCounters:
    escalations: int = 0
    answers: int = 0
    malformed: int = 0
    wrong_shape: int = 0  # window length or channels differ from the teacher's
    inference_failed: int = 0
    dropped: int = 0  # the service's inbox was full (it cannot keep up with the devices)


class EscalationService:
    """Subscribe to the escalations of the configured devices, answer each with the teacher."""

    def __init__(self, cfg: EscalationServiceConfig, profile: TargetProfile | None = None) -> None:
        self.cfg = cfg
        self.profile = profile or (
            load_profile(cfg.profile) if cfg.profile else TargetProfile(name="default")
        )
        self.engine = load_engine(cfg.bundle, cfg.pubkey, self.profile)
        template = self.profile.mqtt.escalations
        # the device is the one variable level of the escalations topic, as the stream is of sensor topics
        self.topics = StreamTopics(template.replace("{device}", "{stream}"), "", "escalations")
        devices = (
            ["+"] if cfg.devices.strip() == "+" else [d.strip() for d in cfg.devices.split(",") if d.strip()]
        )
        if not devices:
            raise ConfigError("--devices: give + or a comma-separated list of device ids")
        self.filters = [
            template.replace("{device}", d if d == "+" else check_topic_level(d, "device id"))
            for d in devices
        ]
        self.counters = ServiceCounters()
        self.limiter = RateLimiter(cfg.error_interval_s)
        self.inbox: queue.Queue[tuple[str, bytes, float]] = queue.Queue(maxsize=100_000)
        self.subscribed = threading.Event()
        self._stop = threading.Event()
        # stable by default: a restarted service resumes its broker session and the escalations queued there
        self.opts = replace(cfg.client, client_id=cfg.client.client_id or "edgekit-escalations")
        self.client, self.address = make_client(self.opts)
        self.client.on_connect = lambda c, *_a: c.subscribe([(f, 1) for f in self.filters])
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_subscribe(self, *_a: object) -> None:
        if not self.subscribed.is_set():  # once: a reconnect re-subscribes silently
            log.info("subscribed to %s", ", ".join(self.filters))
        self.subscribed.set()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            self.inbox.put_nowait((msg.topic, msg.payload, time.time()))
        except queue.Full:
            self._refuse(Refused("dropped", "service inbox full; escalation dropped"))

    def _refuse(self, exc: Refused, device: str | None = None) -> None:
        kind = exc.kind if hasattr(self.counters, exc.kind) else "malformed"
        setattr(self.counters, kind, getattr(self.counters, kind) + 1)
        ok, suppressed = self.limiter.allow(kind)
        if ok:
            more = f" (+{suppressed} similar suppressed)" if suppressed else ""
            log.warning("%s%s: %s%s", kind, f" [{device}]" if device else "", exc.detail, more)

    def device_of(self, topic: str) -> str | None:
        return self.topics.stream_of(topic)

    def parse(self, topic: str, payload: bytes) -> dict[str, Any]:
        """One escalation, validated against the teacher (window, channels or text); raises Refused."""
        device = self.device_of(topic)
        body = parse_object(payload, "escalation")
        if device is None or body.get("device") != device:
            raise Refused("malformed", f"escalation on {topic} names device {body.get('device')!r}")
        for key in ("stream", "id"):
            need(body, key, str, "escalation")
        if isinstance(self.engine, TextEngine):
            need(body, "text", str, "escalation")
            if not is_unicode(body["text"]):  # would fail the whole teacher batch it sits in
                raise Refused("malformed", "escalation: 'text' holds a lone UTF-16 surrogate")
            return body
        m = self.engine.manifest
        channels = list(m.window.channels)  # type: ignore[union-attr]
        if body.get("channels") != channels:
            raise Refused("wrong_shape", f"channels {body.get('channels')!r}, the teacher takes {channels}")
        try:
            x = np.asarray(body.get("readings"), dtype=np.float32)
        except (TypeError, ValueError):
            raise Refused("malformed", "escalation: 'readings' must be rows of numbers") from None
        if x.shape != (self.engine.window, len(channels)):
            raise Refused(
                "wrong_shape",
                f"readings of shape {x.shape}, the teacher takes {(self.engine.window, len(channels))}",
            )
        if not np.isfinite(x).all():
            raise Refused("malformed", "escalation: non-finite readings")
        body["_x"] = x
        return body

    def answer(self, batch: list[tuple[str, dict[str, Any], float]]) -> None:
        """Score the parsed escalations of `batch` in one teacher call and publish an answer for each."""
        engine = self.engine
        try:
            if isinstance(engine, TextEngine):
                probs = engine.classify([b["text"] for _, b, _ in batch])
                answers = self._text_answers(batch, probs)
            else:
                out = engine.infer(engine.preprocess(np.stack([b.pop("_x") for _, b, _ in batch])))
                answers = self._sensor_answers(batch, engine, out)
        except Exception as exc:  # a model failing on odd input must not stop the service
            self._refuse(Refused("inference_failed", f"{type(exc).__name__}: {exc}"))
            return
        for (topic, _b, _r), body in zip(batch, answers, strict=True):
            self.client.publish(topic + ANSWERS, _ENCODER.encode(body), qos=1)
            self.counters.answers += 1

    def _common(self, body: dict, recv: float) -> dict[str, Any]:
        m = self.engine.manifest
        ts = body.get("ts")
        since = ts if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts) else recv
        out = {k: body[k] for k in ("device", "stream", "id", "seq", "start_ts", "end_ts") if k in body}
        out.update(model_id=m.model_id, model_version=m.model_version, variant=self.engine.variant)
        out.update(answered_by="teacher", latency_ms=(time.time() - since) * 1000.0)
        if isinstance(body.get("student"), dict):
            out["student"] = body["student"]
        return out

    def _sensor_answers(self, batch: list, engine: Engine, out: np.ndarray) -> list[dict[str, Any]]:
        scores = engine.postprocess(out).tolist()
        m, thr = engine.manifest, engine.threshold
        kclass = engine.softmax and len(m.labels) > 2
        top = engine.top_class(out) if kclass else None
        probs = np.exp(out - out.max(axis=1, keepdims=True)) if engine.softmax else None
        conf = (
            confidence("max_prob", probs=probs / probs.sum(axis=1, keepdims=True))
            if probs is not None
            else confidence("score_distance", score=np.asarray(scores), threshold=thr)
        ).tolist()
        answers = []
        for i, (_t, body, recv) in enumerate(batch):
            hit = scores[i] >= thr
            cls = None if top is None else int(top[0][i])
            a = self._common(body, recv)
            a.update(score=scores[i], threshold=thr, anomaly=hit, label=label_of(list(m.labels), hit, cls))
            if top is not None:
                a.update({"class": m.labels[cls], "probability": float(top[1][i])})  # type: ignore[index]
            a["confidence"] = conf[i]
            answers.append(a)
        return answers

    def _text_answers(self, batch: list, probs: np.ndarray) -> list[dict[str, Any]]:
        labels = self.engine.labels  # type: ignore[union-attr]
        answers = []
        for (_t, body, recv), row in zip(batch, probs.tolist(), strict=True):
            a = self._common(body, recv)
            k = int(np.argmax(row))
            a.update(label=labels[k], probs=dict(zip(labels, row, strict=True)), confidence=max(row))
            if "msg_ts" in body:
                a["ts"] = body["msg_ts"]
            answers.append(a)
        return answers

    def step(self, timeout: float = 0.05) -> None:
        """Drain what has arrived (up to max_batch at a time), answer it."""
        try:
            first = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return
        items = [first]
        while len(items) < self.cfg.max_batch:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        batch = []
        for topic, payload, recv in items:
            self.counters.escalations += 1
            try:
                batch.append((topic, self.parse(topic, payload), recv))
            except Refused as exc:
                self._refuse(exc, self.device_of(topic))
        if batch:
            self.answer(batch)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Serve until stop() (or SIGTERM/SIGINT from the CLI); returns 0."""
        connect_async(self.client, self.address, self.opts)
        self.client.loop_start()
        m = self.engine.manifest
        log.info(
            "answering escalations on %s with %s %s", ", ".join(self.filters), m.model_id, m.model_version
        )
        try:
            while not self._stop.is_set():
                self.step()
        finally:
            while not self.inbox.empty():
                self.step(0)
            self.client.disconnect()
            self.client.loop_stop()
            log.info("stopped: %s", json.dumps(to_dict(self.counters)))
        return 0


def serve_escalations(cfg: EscalationServiceConfig) -> int:
    """Run the teacher service until SIGTERM/SIGINT; the `edgekit escalations serve` command."""
    service = EscalationService(cfg)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: service.stop())
        signal.signal(signal.SIGINT, lambda *_: service.stop())
    return service.run()
