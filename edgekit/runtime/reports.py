"""Publishing the scorer's reports: one MQTT message per report, or (`reports: batch`) one per flush.

Batch mode writes the reports of one flush (one model call) as a JSON array of the same report objects,
so a consumer pays one MQTT message per flush instead of one per window, and the daemon one paho publish.
Reports go out at `daemon.report_qos` (default: `daemon.qos`): QoS 0 spares the PUBACK round trip and
paho's in-flight bookkeeping per report, at the price of losing reports while the connection drops.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

from edgekit.profiles import Daemon as DaemonSettings
from edgekit.runtime.link import ErrorSink
from edgekit.runtime.mqtt import Topics
from edgekit.runtime.stats import Counters


def report_qos(flag: int | None, daemon: DaemonSettings) -> int:
    """--report-qos, else the profile's daemon.report_qos, else daemon.qos."""
    return next((q for q in (flag, daemon.report_qos) if q is not None), daemon.qos)


class ReportPublisher:
    """The daemon's sink for sensor reports (called from the scoring thread only)."""

    def __init__(
        self, client: mqtt.Client, topics: Topics, qos: int, mode: str, counters: Counters, error: ErrorSink
    ) -> None:
        if mode not in ("each", "batch"):
            raise ValueError(f"reports must be each or batch, not {mode!r}")
        self.client, self.anomalies, self.scores = client, topics.anomalies, topics.scores
        self.qos, self.mode, self.counters, self._error = qos, mode, counters, error
        self.publish_scores = False
        # batch mode: this flush's payloads, per topic (anomalies, scores), and the stream of the last one
        self._hits: list[bytes] = []
        self._all: list[bytes] = []
        self._stream = ""

    def _lost(self, stream: str, n: int) -> None:
        self._error("report_lost", "outgoing queue full while disconnected", stream, n)

    def report(self, payload: bytes, anomaly: bool, stream: str) -> None:
        if self.mode == "batch":
            if self.publish_scores:
                self._all.append(payload)
            if anomaly:
                self._hits.append(payload)
                self._stream = stream
            return
        publish = self.client.publish
        if self.publish_scores:
            publish(self.scores, payload, qos=0)
        if anomaly:
            if publish(self.anomalies, payload, qos=self.qos).rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self._lost(stream, 1)
            else:
                self.counters.reports += 1

    def flushed(self) -> None:
        """End of one flush: in batch mode, publish its reports as one message per topic."""
        if self._all:
            self.client.publish(self.scores, b"[" + b",".join(self._all) + b"]", qos=0)
            self._all.clear()
        if self._hits:
            n = len(self._hits)
            info = self.client.publish(self.anomalies, b"[" + b",".join(self._hits) + b"]", qos=self.qos)
            self._hits.clear()
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self._lost(self._stream, n)
            else:
                self.counters.reports += n
