"""The daemon's scorer for the bundle it serves: built at start for a sensor or a text bundle, and adopting
each reloaded bundle later. The cascade runner and the drift monitor belong to a bundle (its rule, its
teacher, its reference statistics), so they are made again whenever the engine changes, here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgekit.profiles import TargetProfile
from edgekit.runtime.drift import DriftMonitor, monitor_for
from edgekit.runtime.engine import Engine
from edgekit.runtime.escalations import DeviceCascade
from edgekit.runtime.scoring import Scorer
from edgekit.runtime.sink import DaemonSink
from edgekit.runtime.stats import Counters, LatencyHistogram
from edgekit.runtime.text import TextEngine
from edgekit.runtime.text_scoring import TextScorer


@dataclass
class ScorerFactory:
    """What every scorer of one daemon is built with: the profile's settings and the daemon's overrides."""

    profile: TargetProfile
    sink: DaemonSink  # the Sink of both scorers
    counters: Counters
    latency: LatencyHistogram
    cascade: DeviceCascade
    alerts: Callable[[str], None]  # publishes one drift alert
    device: str
    gap_factor: float
    max_streams: int
    threshold: float | None  # overrides the bundle's
    publish_scores: bool | None  # overrides profile.daemon.publish_scores

    def build(self, engine: Engine | TextEngine, teacher: Engine | TextEngine | None) -> Scorer | TextScorer:
        """The scorer of `engine`, with the cascade runner of `teacher` (None: no local teacher)."""
        d = self.profile.daemon
        scorer: Scorer | TextScorer
        if isinstance(engine, TextEngine):  # text bundle: classifications out
            scorer = TextScorer(engine, self.sink, self.counters, self.latency, max_batch=d.max_batch)
        else:
            scorer = Scorer(
                engine,
                self.sink,
                self.counters,
                self.latency,
                device=self.device,
                max_batch=d.max_batch,
                gap_factor=self.gap_factor,
                max_streams=self.max_streams,
                threshold=self.threshold,
                publish_scores=d.publish_scores if self.publish_scores is None else self.publish_scores,
                max_clock_skew_s=d.max_clock_skew_s,
                stream_idle_s=d.stream_idle_s,
                drift=self.drift(engine),
            )
        scorer.cascade = self.cascade.runner(engine, teacher)
        return scorer

    def adopt(
        self, scorer: Scorer | TextScorer, engine: Engine | TextEngine, teacher: Engine | TextEngine | None
    ) -> bool:
        """Swap a reloaded `engine` (of the scorer's kind: the reload policy checked) into `scorer`, with
        its cascade and drift monitor. True when stream buffers were reset (window or channels differ)."""
        reset = scorer.swap(engine)  # type: ignore[arg-type]  # the same kind: ReloadPolicy.check refused others
        scorer.cascade = self.cascade.runner(engine, teacher)
        if isinstance(scorer, Scorer) and isinstance(engine, Engine):  # the new reference, if any
            scorer.tick()  # the old monitor takes in what it deferred (its alerts still go out)
            scorer.drift = self.drift(engine)
        return reset

    def drift(self, engine: Engine) -> DriftMonitor | None:
        """The bundle's drift monitor (None: profile drift.enabled off, or no reference statistics); its
        alerts are rate-limited by the monitor itself."""
        return monitor_for(engine.manifest, self.profile.drift, self.alerts)
