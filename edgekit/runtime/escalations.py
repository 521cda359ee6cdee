"""Remote cascade over MQTT: the teacher service that answers escalated windows, and the daemon's relay that
turns its answers into the device's reports.

Flow: a daemon publishes an escalated window (its raw readings or text, and the student's answer) on
`edgekit/<device>/escalations` and reports with the student meanwhile. `edgekit escalations serve` (one
process for many devices, `edgekit/+/escalations`) scores it with the teacher bundle and answers on
`edgekit/<device>/escalations/answers`. The daemon, subscribed to its answers topic, republishes each
answer on its own report topic (anomalies, scores, classifications), so a consumer sees the teacher's report
with `answered_by: "teacher"` and the same `id` as the student's provisional one. The daemon, not the
service, publishes the device's reports: the device keeps its topic layout and QoS, and counts what it gets.

This module is the device's side (DeviceCascade, AnswerRelay); runtime.teacher_service is the service.
Malformed escalations and answers are counted and logged (rate-limited), never raised. Device side: numpy,
onnxruntime and paho-mqtt only.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from edgekit.profiles import TargetProfile
from edgekit.runtime.cascade import (
    CascadeCounters,
    CascadeRunner,
    SensorCascade,
    cascade_mode,
    cascade_state,
    load_teacher,
)
from edgekit.runtime.engine import Engine
from edgekit.runtime.text import TextEngine
from edgekit.runtime.text_cascade import TextCascade

log = logging.getLogger(__name__)

ANSWERS = "/answers"  # the answers topic of a device: its escalations topic + this
_ENCODER = json.JSONEncoder()


class Refused(ValueError):
    """An escalation or answer that cannot be used; `kind` names its counter."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


def parse_object(payload: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise Refused("malformed", f"{what} is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise Refused("malformed", f"{what} must be a JSON object")
    return body


def need(body: dict, key: str, types: type | tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    # bool is an int to isinstance; only a field that wants a bool takes one
    if not isinstance(value, types) or (isinstance(value, bool) and types is not bool):
        raise Refused("malformed", f"{what}: {key!r} missing or of the wrong type")
    if isinstance(value, float) and not math.isfinite(value):
        raise Refused("malformed", f"{what}: {key!r} is not finite")
    return value


# -- the daemon side: teacher answers in, the device's reports out ------------------------------------------


def check_answer(payload: bytes, device: str) -> dict[str, Any]:
    """A teacher answer for `device`, validated; raises Refused."""
    body = parse_object(payload, "answer")
    if body.get("device") != device:
        raise Refused("malformed", f"answer for device {body.get('device')!r}, not {device!r}")
    if body.get("answered_by") != "teacher":
        raise Refused("malformed", 'answer without answered_by "teacher"')
    for key in ("stream", "id", "label"):
        need(body, key, str, "answer")
    if "probs" not in body:  # sensor answers carry the score and the verdict
        need(body, "score", (int, float), "answer")
        need(body, "anomaly", bool, "answer")
    student = body.get("student")
    if student is not None and not isinstance(student, dict):
        raise Refused("malformed", "answer: 'student' must be an object")
    return body


class AnswerRelay:
    """The daemon's subscriber to its answers topic (network thread): each valid answer is republished as
    the device's report; invalid ones are counted as `bad_answer`."""

    def __init__(
        self,
        topics: Any,  # runtime.mqtt.Topics of the device
        escalations: str,
        device: str,
        publish: Callable[[str, str, int], object],
        qos: int,
        error: Callable[..., None],
        publish_scores: Callable[[], bool],
        counters: Any,  # runtime.cascade.CascadeCounters
    ) -> None:
        self.topics, self.topic, self.device = topics, escalations + ANSWERS, device
        self.publish, self.qos, self.error = publish, qos, error
        self.publish_scores, self.counters = publish_scores, counters

    def on_message(self, msg: mqtt.MQTTMessage) -> None:
        try:
            body = check_answer(msg.payload, self.device)
        except Refused as exc:
            self.error("bad_answer", exc.detail)
            return
        self.counters.teacher_answers += 1
        payload = _ENCODER.encode(body)
        if "probs" in body:
            self.publish(self.topics.classifications, payload, self.qos)
            return
        if self.publish_scores():
            self.publish(self.topics.scores, payload, 0)
        student = body.get("student") or {}
        # the student's provisional anomaly report is corrected even when the teacher says normal
        if body["anomaly"] or student.get("anomaly") is True:
            self.publish(self.topics.anomalies, payload, self.qos)


class DeviceCascade:
    """The daemon's cascade wiring: the setting, counters and escalations topic, the teacher loaded with each
    bundle, the runner the scorer calls, and the relay of the service's answers."""

    def __init__(
        self,
        setting: str,
        profile: TargetProfile,
        device: str,
        topics: Any,  # runtime.mqtt.Topics of the device
        publish: Callable[[str, str, int], object],
        error: Callable[..., None],
        publish_scores: Callable[[], bool],
    ) -> None:
        self.setting, self.profile, self.device = setting, profile, device
        self.counters = CascadeCounters()
        self.topic = profile.mqtt.escalations.format(device=device)
        self.publish, self.qos = publish, profile.daemon.qos
        relay = AnswerRelay(
            topics, self.topic, device, publish, self.qos, error, publish_scores, self.counters
        )
        self.subscription = (relay.topic, 1, relay.on_message)  # for runtime.link.Link(extra=...)

    def teacher(self, engine: Engine | TextEngine) -> Engine | TextEngine | None:
        """The bundle's teacher when the cascade runs locally (loaded and self-tested), else None."""
        return load_teacher(engine, self.setting, self.profile)

    def runner(
        self, engine: Engine | TextEngine, teacher: Engine | TextEngine | None
    ) -> CascadeRunner | None:
        """What the scorer calls on each flush for this bundle (None: cascade off or no rule)."""
        mode = cascade_mode(self.setting, engine.manifest)
        if mode == "off":
            return None
        kind = TextCascade if isinstance(engine, TextEngine) else SensorCascade
        return kind(
            engine,  # type: ignore[arg-type]
            mode,
            teacher if mode == "local" else None,
            budget_ms=self.profile.latency.budget_ms,
            device=self.device,
            escalate=lambda body: self.publish(self.topic, body, self.qos),
            counters=self.counters,
        )

    def state(self, runner: CascadeRunner | None, windows: int) -> dict:
        return cascade_state(runner, self.counters, windows)
