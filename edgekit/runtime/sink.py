"""What leaves the daemon besides its status: the scorers' Sink (sensor reports, text classifications) and
the error reports of every part of the daemon.

The scoring thread calls report(), flushed() and classification(); error() is called from both threads
(paho's network thread triages messages) and by the link, the command queue and the cascade. Every error
is counted; its log line and its message on the errors topic are rate-limited per kind, so a publisher that
floods bad input costs one line per interval, not one per message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from edgekit.runtime.mqtt import Topics
from edgekit.runtime.reports import ReportPublisher
from edgekit.runtime.stats import Counters, RateLimiter

log = logging.getLogger(__name__)


class DaemonSink:
    """runtime.scoring.Sink, runtime.text_scoring.TextSink and runtime.link.ErrorSink of one daemon.

    The daemon builds it before its MQTT client (the scorer and the link need it); attach() hands it the
    client once the link has made one. Nothing is published before that: the link is not started yet.
    """

    def __init__(
        self,
        topics: Topics,
        counters: Counters,
        limiter: RateLimiter,
        qos: int,
        publish_scores: Callable[[], bool],  # the scorer's current setting (a reload may change it)
    ) -> None:
        self.topics, self.counters, self.limiter, self.qos = topics, counters, limiter, qos
        self._publish_scores = publish_scores
        self.client: mqtt.Client  # both set by attach()
        self.reports: ReportPublisher

    def attach(self, client: mqtt.Client, report_qos: int, mode: str) -> ReportPublisher:
        """Publish through `client` from now on; sensor reports at `report_qos`, `mode` each or batch."""
        self.client = client
        self.reports = ReportPublisher(client, self.topics, report_qos, mode, self.counters, self.error)
        return self.reports

    # -- Sink of the scorer (scoring thread) --------------------------------------------------------
    def report(self, payload: bytes, anomaly: bool, stream: str) -> None:
        self.reports.publish_scores = self._publish_scores()
        self.reports.report(payload, anomaly, stream)

    def flushed(self) -> None:
        self.reports.flushed()

    def classification(self, payload: str, stream: str) -> None:
        """Sink of the text scorer: every classified message is reported."""
        info = self.client.publish(self.topics.classifications, payload, qos=self.qos)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.error("report_lost", "outgoing queue full while disconnected", stream)
        else:
            self.counters.reports += 1

    # -- both threads -----------------------------------------------------------------------------
    def error(
        self, kind: str, detail: str, stream: str | None = None, n: int = 1, publish: bool = True
    ) -> None:
        """Count, log (rate-limited) and, with `publish`, report on the errors topic."""
        # Each kind is counted from one thread (internal_error: rarely both), so += loses nothing.
        errs = self.counters.errors
        errs[kind] = errs.get(kind, 0) + n
        ok, suppressed = self.limiter.allow(kind)
        if not ok:
            return
        more = f" (+{suppressed} similar suppressed)" if suppressed else ""
        log.warning("%s%s: %s%s", kind, f" [{stream}]" if stream else "", detail, more)
        if not publish:
            return
        body = {
            "kind": kind,
            "stream": stream,
            "detail": detail,
            "count": errs[kind],
            "suppressed": suppressed,
        }
        body["ts"] = time.time()
        self.client.publish(self.topics.errors, json.dumps(body), qos=1)
