"""What the daemon says about itself: the retained status body and the heartbeat snapshot (also the
source of the Prometheus endpoint), and when the next heartbeat is due."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass

from edgekit.config import to_dict
from edgekit.runtime.engine import Engine
from edgekit.runtime.stats import Counters, LatencyHistogram


def status_body(state: str, reason: str, device: str, engine: Engine, verified: bool) -> str:
    """The retained status message (`online`/`offline`, also the last will)."""
    m = engine.manifest
    body = {"state": state, "reason": reason, "device": device, "model_id": m.model_id}
    body.update(model_version=m.model_version, verified=verified, pid=os.getpid(), ts=time.time())
    return json.dumps(body)


@dataclass
class LinkState:
    connected: bool
    unacked: int  # QoS 1 publishes not yet acknowledged by the broker


@dataclass
class QueueState:
    depth: int
    nbytes: int
    streams: int


def snapshot(
    *,
    device: str,
    started: float,
    engine: Engine,
    threshold: float,
    counters: Counters,
    latency: LatencyHistogram,
    link: LinkState,
    queue: QueueState,
    verified: bool,
    last_reload_error: str | None,
    cascade: dict | None = None,
    drift: dict | None = None,
) -> dict:
    """Heartbeat body: counters, latency since start, model, queue and connection state (and the drift
    monitor's current PSI values, when it runs)."""
    m = engine.manifest
    lat = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in latency.summary().items()}
    body = {
        "device": device,
        "ts": time.time(),
        "uptime_s": round(time.monotonic() - started, 3),
        "model_id": m.model_id,
        "model_version": m.model_version,
        "variant": engine.variant,
        "provider": engine.providers[0],
        "bundle": str(engine.bundle_dir),
        "verified": verified,  # False: started without --pubkey, bundles are not signature-checked
        "threshold": threshold,
        "connected": link.connected,
        "counters": to_dict(counters),
        "latency_ms": lat,
        "queue_depth": queue.depth,
        "queue_bytes": queue.nbytes,
        "streams": queue.streams,
        "unacked": link.unacked,
        "last_reload_error": last_reload_error,
        # runtime.cascade.cascade_state: mode, escalations, fallbacks, escalation rate, teacher latency
        "cascade": cascade,
    }
    if drift is not None:
        body["drift"] = drift
    return body


class HeartbeatClock:
    """Due every `period_s` seconds, or at once after request() (the heartbeat command)."""

    def __init__(self, period_s: float, now: float) -> None:
        self.period_s = period_s
        self._next = now + period_s

    def request(self) -> None:
        self._next = 0.0

    def due(self, now: float) -> bool:
        if now < self._next:
            return False
        self._next = now + self.period_s
        return True
