"""The cascade on the device: the bundle's escalation rule applied to each scored micro-batch, and the local
teacher that answers the escalated windows within the latency budget.

A window escalates when the student's confidence is below the rule's threshold, when its top class is one of
the severe classes, or when the probability of any severe class reaches `severe_min_probability`
(edgekit.bundle.manifest.Cascade). `local`: the teacher runs on the escalated windows in the same flush, one
batched call, when its predicted latency fits the profile's budget; otherwise (and always with `remote`) the
window is published on the escalations topic with the student's answer, and the student's answer stands
until a teacher service replies (runtime.escalations). Numpy and onnxruntime only (device side).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from edgekit.bundle.manifest import Cascade, Manifest
from edgekit.errors import BundleError, ConfigError
from edgekit.profiles import TargetProfile
from edgekit.runtime.confidence import confidence, severe_in_sight, softmax
from edgekit.runtime.engine import Engine
from edgekit.runtime.stats import RateLimiter
from edgekit.runtime.text import TextEngine
from edgekit.runtime.windows import WindowBatch

log = logging.getLogger(__name__)

Mode = Literal["off", "local", "remote"]
SETTINGS = ("bundle", "off", "local", "remote")
_ENCODER = json.JSONEncoder()
# How fast the teacher's latency estimate follows new calls; and the half-life (s) with which an estimate
# inflated by a busy moment relaxes back to the load-time measurement while the teacher is not called (else
# one slow spell would send every later escalation remote for good).
EWMA_ALPHA = 0.2
RELAX_HALF_LIFE_S = 10.0


def cascade_mode(setting: str | None, manifest: Manifest) -> Mode:
    """The mode to run: the flag/profile `setting` (off|local|remote, or bundle/None: the bundle's own mode;
    off when the bundle has no rule). BundleError when a forced mode needs what the bundle lacks."""
    if setting not in (None, *SETTINGS):
        raise ConfigError(f"cascade {setting!r} must be one of {', '.join(SETTINGS)}")
    rule = manifest.cascade
    if setting in (None, "bundle"):
        return "off" if rule is None else rule.mode
    if setting == "off":
        return "off"
    if rule is None:
        raise BundleError(
            f"cascade {setting} asked for, but {manifest.model_id} {manifest.model_version} carries no cascade rule"
        )
    if setting == "local" and rule.teacher is None:
        raise BundleError(
            f"cascade local asked for, but {manifest.model_id} {manifest.model_version} carries no teacher model "
            "(export it with --cascade local, or run cascade remote)"
        )
    return setting  # type: ignore[return-value]


def load_teacher(
    engine: Engine | TextEngine, setting: str | None, profile: TargetProfile | None
) -> Engine | TextEngine | None:
    """The bundle's teacher, loaded and golden-self-tested like the student, when the cascade runs locally.

    The bundle was already verified with the student (its signed manifest hashes the teacher's files)."""
    m = engine.manifest
    if cascade_mode(setting, m) != "local":
        return None
    teacher = type(engine)(engine.bundle_dir, profile, m.for_cascade_teacher())
    teacher.self_test()
    return teacher


class Rule:
    """The bundle's escalation rule over a batch: which windows escalate, and the student's confidence."""

    def __init__(self, rule: Cascade, labels: list[str], softmax_output: bool) -> None:
        self.rule = rule
        self.classifier = rule.measure != "score_distance"
        if self.classifier and not softmax_output:
            raise BundleError(f"cascade measure {rule.measure} needs class probabilities (a softmax output)")
        unknown = [c for c in rule.severe_classes if c not in labels]
        if unknown:
            raise BundleError(f"cascade severe class(es) {unknown} are not labels of the model ({labels})")
        self.severe = np.array([labels.index(c) for c in rule.severe_classes], dtype=np.int64)
        if len(self.severe) and not softmax_output:
            raise BundleError("cascade severe classes need class probabilities (a softmax output)")

    def apply(
        self, probs: np.ndarray | None, scores: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(escalate mask [B], confidence [B]); `probs` [B, K] for classifier measures and severe classes."""
        r = self.rule
        conf = confidence(r.measure, probs=probs, score=scores, threshold=threshold)
        esc = conf < r.threshold
        if len(self.severe):
            esc |= severe_in_sight(probs, self.severe, r.severe_min_probability)  # type: ignore[arg-type]
        return esc, conf


class TeacherClock:
    """The local teacher's predicted latency for k windows: a load-time model (fixed + per-window cost)
    scaled by an EWMA of measured/predicted over the calls since, so it follows the device's current load."""

    def __init__(self, fixed_ms: float, per_window_ms: float, now: float) -> None:
        self.fixed_ms, self.per_window_ms = fixed_ms, per_window_ms
        self.scale = 1.0
        self.last = now
        self.last_ms = math.nan

    def base(self, k: int) -> float:
        return self.fixed_ms + self.per_window_ms * k

    def predict(self, k: int, now: float) -> float:
        idle = now - self.last
        if self.scale > 1.0 and idle > 0:
            self.scale = 1.0 + (self.scale - 1.0) * 0.5 ** (idle / RELAX_HALF_LIFE_S)
        return self.scale * self.base(k)

    def observe(self, k: int, ms: float, now: float) -> None:
        ratio = ms / max(self.base(k), 1e-6)
        self.scale = (1 - EWMA_ALPHA) * self.scale + EWMA_ALPHA * ratio
        self.last, self.last_ms = now, ms


def measure_teacher(teacher: Engine | TextEngine, runs: int = 5) -> TeacherClock:
    """Time the teacher on its golden inputs, one at a time and all at once (best of `runs`)."""
    with np.load(Path(teacher.bundle_dir) / teacher.manifest.golden.file) as g:
        if isinstance(teacher, TextEngine):  # token ids by input name
            feeds = {n: g[n] for n in teacher.input_names}
            n = len(g["outputs"])
            inputs = [{k: v[:1] for k, v in feeds.items()}, feeds]
        else:
            x = np.asarray(g["inputs"], np.float32)
            n = len(x)
            inputs = [teacher.preprocess(x[:1]), teacher.preprocess(x)]
    best = []
    for size, xi in zip((1, n), inputs, strict=True):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            try:
                teacher.infer(xi)  # type: ignore[arg-type]
            except Exception as exc:  # onnxruntime's own types: e.g. a teacher exported with a fixed batch
                raise BundleError(
                    f"{teacher.bundle_dir}: the cascade's teacher cannot run {size} input(s) at once "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            times.append((time.perf_counter() - t0) * 1000.0)
        best.append(min(times))
    per = max(0.0, (best[1] - best[0]) / max(n - 1, 1))
    return TeacherClock(max(best[0] - per, 0.0), per, time.perf_counter())


@dataclass
class CascadeCounters:
    """The cascade's counters (heartbeat, Prometheus). Scoring thread writes all but `teacher_answers`, which the
    MQTT network thread writes (one writer each, like runtime.stats.Counters)."""

    escalated: int = 0  # windows the rule escalated
    teacher_windows: int = 0  # escalated windows the local teacher answered
    remote_escalations: int = 0  # windows published on the escalations topic (fallbacks included)
    cascade_fallback_remote: int = 0  # local teacher too slow for the budget now: escalated remotely
    teacher_failed: int = 0  # the local teacher raised: escalated remotely
    teacher_answers: int = 0  # teacher answers from the escalations service republished as reports


@dataclass
class Decision:
    """What the cascade made of one scored batch: the answer per window and who gave it."""

    scores: np.ndarray
    top: tuple[np.ndarray, np.ndarray] | None
    hits: np.ndarray  # bool [B]: anomaly per the answering model's threshold
    thresholds: list[float]
    answered_by: list[str]
    confidence: list[float]

    def by(self, i: int) -> dict:
        """Window i's cascade fields of its report (the threshold is the answering model's)."""
        return {
            "answered_by": self.answered_by[i],
            "confidence": self.confidence[i],
            "threshold": self.thresholds[i],
        }


def label_of(labels: list[str], hit: bool, cls: int | None) -> str:
    """The report label: the top class's name for K-class bundles, else anomaly/normal (or the two labels)."""
    if cls is not None:
        return labels[cls]
    return (labels if len(labels) > 1 else ["normal", "anomaly"])[hit]


class CascadeRunner:
    """What the sensor and text cascades share: the rule, the local teacher and its budget, the counters."""

    def __init__(
        self,
        engine: Engine | TextEngine,
        mode: Mode,
        teacher: Engine | TextEngine | None,
        *,
        budget_ms: float,
        device: str,
        escalate: Callable[[str], None],
        counters: CascadeCounters,
    ) -> None:
        m = engine.manifest
        assert m.cascade is not None and mode != "off"
        self.engine, self.mode, self.teacher = engine, mode, teacher
        softmax_output = isinstance(engine, TextEngine) or engine.softmax
        self.rule = Rule(m.cascade, list(m.labels), softmax_output)
        self.budget_ms, self.device = budget_ms, device
        self.escalate, self.counters = escalate, counters
        self.clock = measure_teacher(teacher) if teacher is not None else None
        self.limiter = RateLimiter(10.0)

    @property
    def teacher_latency_ms(self) -> float | None:
        """The teacher's last measured call (ms), or its load-time estimate for one window before any call."""
        if self.clock is None:
            return None
        return self.clock.last_ms if not math.isnan(self.clock.last_ms) else self.clock.base(1)

    def fits(self, oldest_recv: float, k: int) -> bool:
        """Whether the local teacher can answer k escalations whose oldest arrived at perf_counter()
        `oldest_recv` within the budget now; when it cannot (or there is none) they go remote."""
        if self.clock is None:
            return False
        now = time.perf_counter()
        if (now - oldest_recv) * 1000.0 + self.clock.predict(k, now) <= self.budget_ms:
            return True
        self.counters.cascade_fallback_remote += k
        return False

    def timed(self, k: int, call: Callable[[], np.ndarray]) -> np.ndarray | None:
        """Run one teacher call for k escalations and feed its time to the budget clock; None when the teacher
        raised (counted, logged rate-limited): the escalations then go remote."""
        assert self.clock is not None
        t0 = time.perf_counter()
        try:
            out = call()
        except Exception as exc:  # a teacher failing on odd input must not drop the student's answers
            self.counters.teacher_failed += k
            if self.limiter.allow("teacher_failed")[0]:
                log.warning(
                    "the cascade's teacher failed on %d escalation(s): %s: %s", k, type(exc).__name__, exc
                )
            return None
        t1 = time.perf_counter()
        self.clock.observe(k, (t1 - t0) * 1000.0, t1)
        self.counters.teacher_windows += k
        return out


class SensorCascade(CascadeRunner):
    """The cascade for one loaded sensor bundle; `decide` runs in the scorer's flush."""

    engine: Engine
    teacher: Engine | None

    def __init__(self, engine: Engine, *args: object, **kw: object) -> None:
        super().__init__(engine, *args, **kw)  # type: ignore[arg-type]
        m = engine.manifest
        self.channels = list(m.window.channels)  # type: ignore[union-attr]
        self.kclass = engine.softmax and len(m.labels) > 2

    def decide(
        self, batch: WindowBatch, n: int, out: np.ndarray, scores: np.ndarray, thr: float, override: bool
    ) -> Decision:
        """Apply the rule to the student's answers of `batch`'s first n windows; answer the escalated ones with
        the local teacher when it fits the budget, else publish them. `override`: the threshold was forced."""
        probs = softmax(out) if self.engine.softmax else None
        esc, conf = self.rule.apply(probs, scores, thr)
        top = self.engine.top_class(out) if self.kclass else None
        hits = scores >= thr
        by = ["student"] * n
        thresholds = [thr] * n
        if not esc.any():  # the common case: nothing more to do
            return Decision(scores, top, hits, thresholds, by, conf.tolist())
        idx = np.flatnonzero(esc)
        self.counters.escalated += len(idx)
        teacher = self.teacher
        t_out = None
        if teacher is not None and self.fits(float(batch.recv[:n][idx].min()), len(idx)):
            t_out = self.timed(len(idx), lambda: teacher.infer(teacher.preprocess(batch.x[idx])))
        if t_out is None:
            self._publish(batch, idx, scores, top, hits, thr, conf)
            return Decision(scores, top, hits, thresholds, by, conf.tolist())
        scores, top, hits = self._teach(t_out, idx, scores, top, hits, thr, override)
        for i in idx.tolist():
            by[i] = "teacher"
            thresholds[i] = thr if override else teacher.threshold  # type: ignore[union-attr]
        return Decision(scores, top, hits, thresholds, by, conf.tolist())

    def _teach(self, t_out, idx, scores, top, hits, thr, override):  # type: ignore[no-untyped-def]
        teacher = self.teacher
        assert teacher is not None
        t_scores = teacher.postprocess(t_out)
        scores = scores.copy()
        scores[idx] = t_scores
        hits = hits.copy()
        hits[idx] = t_scores >= (thr if override else teacher.threshold)
        if top is not None:
            t_top = teacher.top_class(t_out)
            top = (top[0].copy(), top[1].copy())
            top[0][idx], top[1][idx] = t_top
        return scores, top, hits

    def _publish(self, batch, idx, scores, top, hits, thr, conf) -> None:  # type: ignore[no-untyped-def]
        m = self.engine.manifest
        labels = list(m.labels)
        for i in idx.tolist():
            w = batch.window(i)
            cls = None if top is None else int(top[0][i])
            student = {
                "score": float(scores[i]),
                "threshold": thr,
                "anomaly": bool(hits[i]),
                "label": label_of(labels, bool(hits[i]), cls),
                "confidence": float(conf[i]),
            }
            if top is not None:
                student.update({"class": labels[cls], "probability": float(top[1][i])})  # type: ignore[index]
            body = {
                "kind": "sensor",
                "device": self.device,
                **w.fields(),
                "ts": time.time(),
                "channels": self.channels,
                "readings": batch.x[i].tolist(),
                "model_id": m.model_id,
                "model_version": m.model_version,
                "student": student,
            }
            self.escalate(_ENCODER.encode(body))
        self.counters.remote_escalations += len(idx)


def cascade_state(runner: CascadeRunner | None, counters: CascadeCounters, windows: int) -> dict:
    """The heartbeat's `cascade` section: mode, counters, escalation rate and the teacher's latency."""
    state: dict = {"mode": runner.mode if runner is not None else "off", **vars(counters)}
    state["escalation_rate"] = counters.escalated / windows if windows else 0.0
    state["teacher_latency_ms"] = runner.teacher_latency_ms if runner is not None else None
    return state
