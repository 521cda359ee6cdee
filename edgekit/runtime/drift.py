"""Drift monitoring on the device: are the readings still like the training data? (numpy only)

The bundle's `reference` (edgekit.bundle.manifest.Reference) holds, per channel, decile bins with the
fraction of training readings in each, the training min/max, and the distribution of the model's score on
validation windows. Per stream, `DriftMonitor` counts readings into those bins over a sliding window kept as
a ring of `window / evaluate_every` blocks of counts (so the window slides without storing readings), and
at every slide computes the population stability index (PSI) of each channel. The score is watched the
same way for the device as a whole (windows of every stream, fed from the scorer's flush).

Flags, published as JSON alerts `{"kind", "stream", "channel", "value", "threshold", "ts"}`, at most one per
`alert_interval_s` per (kind, stream, channel):
- drift: PSI > psi_threshold at `consecutive` evaluations in a row (value: the PSI);
- stuck: a channel held one value for the last `window_readings` readings (zero variance) while the training distribution
  makes such a window implausible (value: the stuck value);
- out_of_range: a reading beyond the training min/max by `range_margin` x the training range, checked
  on every reading (value: the most extreme reading of those taken in together, threshold: the bound it
  crossed).

Readings are taken in by the block: `observe` only keeps a message's readings until the stream has enough
to complete its current block (then they are binned, range-checked and, at the block's end, evaluated, at
the same reading as one by one), and `flush()` takes in the rest (the daemon calls it between messages,
at most 50 ms apart). A single reading costs a list append on the hot path; a block costs one broadcast
comparison against the padded edge table and one bincount, where one reading at a time cost a Python loop
per reading. PSI only every `evaluate_every` readings. Memory: at most `max_streams` + 1 rings (streams
beyond the cap share one pooled per-device ring named "*") and less than one block of readings per stream.
"""

from __future__ import annotations

import json
import logging
import math
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable

import numpy as np

from edgekit.bundle.manifest import Histogram, Manifest, Reference
from edgekit.profiles import Drift

log = logging.getLogger(__name__)

EPS = 1e-4  # the customary floor for an empty bin's fraction: PSI stays finite
POOLED = "*"  # the stream name of the pooled per-device histograms (and of the device's score)
SCORE = "score"  # the channel name of the score's PSI
KINDS = ("drift", "stuck", "out_of_range")
# a constant window is flagged only when the training data make it less likely than this (a channel that is
# nearly always 0 in training may legitimately sit at 0 for a whole window)
STUCK_PLAUSIBILITY = 1e-9


def psi(observed: np.ndarray, expected: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Population stability index along the last axis, sum((a - e) * ln(a / e)), of fractions `observed`
    and `expected`; both floored at `eps` so that empty bins count as rare, not impossible."""
    a = np.maximum(np.asarray(observed, np.float64), eps)
    e = np.maximum(np.asarray(expected, np.float64), eps)
    return ((a - e) * np.log(a / e)).sum(axis=-1)


class Bins:
    """Reference histograms of several channels as one padded table, so one numpy call bins a message.

    Channel c's bin b is flat index c * nbins + b; padded edges are +inf, so no finite reading lands in a
    padded bin, whose expected fraction is 0 (and so contributes nothing to PSI).
    """

    def __init__(self, hists: Iterable[Histogram]) -> None:
        hs = list(hists)
        k = max((len(h.edges) for h in hs), default=0)
        self.channels, self.nbins = len(hs), k + 1
        self.edges = np.full((len(hs), k), np.inf)
        self.expected = np.zeros((len(hs), k + 1))
        for c, h in enumerate(hs):
            self.edges[c, : len(h.edges)] = h.edges
            self.expected[c, : len(h.fractions)] = h.fractions
        # (edges, 1, channels): index() reduces over the outer axis, several times faster than the inner one
        self._edges_t = np.ascontiguousarray(self.edges.T[:, None, :])
        self.offsets = np.arange(len(hs)) * self.nbins
        self.size = len(hs) * self.nbins
        # unpadded edges as plain lists, for one value at a time (bisect_right == searchsorted "right")
        self.edge_lists = [[float(e) for e in h.edges] for h in hs]

    def index(self, vals: np.ndarray) -> np.ndarray:
        """Flat bin indices (n, channels) of readings (n, channels): what searchsorted(side="right") gives."""
        return (vals >= self._edges_t).sum(axis=0) + self.offsets


class Window:
    """Bin counts of the last `blocks` x `block` readings in a ring of blocks, and how long each channel has
    held its latest value (for the stuck check)."""

    def __init__(self, bins: Bins, blocks: int, block: int) -> None:
        self.bins, self.blocks, self.block = bins, blocks, block
        self.counts = np.zeros((blocks, bins.size), np.int64)
        self.last = [math.nan] * bins.channels  # each channel's latest value
        self.since = [0] * bins.channels  # readings seen before that value began
        self.seen = 0
        self.slot = 0
        self.in_slot = 0
        self.filled = 0  # completed blocks, up to `blocks`
        self.consecutive = np.zeros(bins.channels, np.int64)
        self.psi = np.full(bins.channels, np.nan)  # at the last evaluation
        # (kind, stream, channel) -> monotonic time of its last alert; kept here so it goes with the window
        self.alerted: dict[tuple[str, str, str], float] = {}

    @property
    def full(self) -> bool:
        return self.filled == self.blocks

    @property
    def room(self) -> int:
        """Readings still needed to complete the current block."""
        return self.block - self.in_slot

    def add_many(self, vals: np.ndarray) -> bool:
        """Readings (n, channels), at most `room` of them; True when they completed the current block
        (time to evaluate and slide)."""
        n = len(vals)
        self.counts[self.slot] += np.bincount(self.bins.index(vals).ravel(), minlength=self.bins.size)
        changed = np.vstack([vals[:1] != np.asarray(self.last), vals[1:] != vals[:-1]])
        began = n - 1 - changed[::-1].argmax(axis=0)  # the row where each channel's last value began
        self.since = np.where(changed.any(axis=0), self.seen + began, self.since).tolist()
        self.last = vals[-1].tolist()
        self.seen += n
        self.in_slot += n
        if self.in_slot < self.block:
            return False
        self.filled = min(self.filled + 1, self.blocks)
        return True

    def total(self) -> np.ndarray:
        """Flat counts of every reading the window holds now (the current block's included)."""
        return self.counts.sum(axis=0)

    def fractions(self) -> np.ndarray:
        """(channels, nbins) fraction of the window's readings in each bin."""
        counts = self.counts.sum(axis=0).reshape(self.bins.channels, self.bins.nbins)
        return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)

    def held(self, readings: int) -> list[int]:
        """Channels that kept one value over (at least) the last `readings` readings."""
        return [c for c, since in enumerate(self.since) if self.seen - since >= readings]

    def slide(self) -> None:
        """Start the next block, forgetting the oldest one."""
        self.slot = (self.slot + 1) % self.blocks
        self.counts[self.slot] = 0
        self.in_slot = 0


class DriftMonitor:
    """Per-stream drift, stuck and range checks of raw readings, and the device's score drift."""

    def __init__(
        self,
        reference: Reference,
        settings: Drift,
        publish: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ref, self.cfg, self.publish, self.clock = reference, settings, publish, clock
        self.names = [c.name for c in reference.channels]
        self.bins = Bins(c.bins for c in reference.channels)
        margin = np.array([settings.range_margin * (c.max - c.min) for c in reference.channels])
        self.low = np.array([c.min for c in reference.channels]) - margin
        self.high = np.array([c.max for c in reference.channels]) + margin
        self.bounds = list(zip(self.low.tolist(), self.high.tolist(), strict=True))
        self.blocks = settings.window_readings // settings.evaluate_every
        self.score_bins = Bins([reference.score]) if reference.score is not None else None
        self.score = self._window(self.score_bins) if self.score_bins is not None else None
        self.windows: dict[str, Window] = {}  # the streams with their own histograms (and POOLED)
        # every stream seen -> (the name its alerts carry, its window): its own, or the pooled one
        self.route: dict[str, tuple[str, Window]] = {}
        self.alerts = dict.fromkeys(KINDS, 0)
        self.suppressed = 0
        self.evaluations = 0
        # readings (and scores) observed but not taken in yet: [chunks, count, monotonic time of the
        # first], less than a block each
        self._pending: dict[str, list] = {}
        self._scores: list[np.ndarray] = []
        self._scores_n = 0
        self._scores_since = 0.0

    def _window(self, bins: Bins) -> Window:
        return Window(bins, self.blocks, self.cfg.evaluate_every)

    def _route(self, stream: str) -> tuple[str, Window]:
        own = len(self.windows) - (POOLED in self.windows)
        if own < self.cfg.max_streams:
            self.windows[stream] = self._window(self.bins)
            name = stream
        else:  # the one extra ring: streams beyond the cap, per device
            name = POOLED
            if POOLED not in self.windows:
                self.windows[POOLED] = self._window(self.bins)
        self.route[stream] = (name, self.windows[name])
        return self.route[stream]

    def observe(self, stream: str, vals: np.ndarray) -> None:
        """Readings (n, channels) of one message of `stream`, raw and finite (not copied: the caller
        leaves them alone). Taken in once they complete the stream's block, or at flush()."""
        entry = self._pending.get(stream)
        if entry is None:
            entry = self._pending[stream] = [[], 0, time.monotonic()]
        entry[0].append(vals)
        entry[1] += len(vals)
        w = self.route.get(stream)
        if entry[1] >= (w[1].room if w is not None else self.cfg.evaluate_every):
            del self._pending[stream]
            self._take(stream, entry[0])

    def observe_scores(self, scores: np.ndarray) -> None:
        """The scores of one scored batch (every stream's windows); taken in like readings."""
        if self.score is None or len(scores) == 0:
            return
        if not self._scores:
            self._scores_since = time.monotonic()
        self._scores.append(scores)
        self._scores_n += len(scores)
        if self._scores_n >= self.score.room:
            self._take_scores()

    def flush(self, max_age_s: float = 0.0) -> None:
        """Take in the readings and scores observed so far, of the streams whose oldest one waits for
        `max_age_s` or longer (0: all). A busy stream completes its blocks long before: the daemon's
        housekeeping passes 1 s, so that only slow streams wait for it (taking in every stream every 50 ms
        held the scorer, and the interpreter, for ~1 ms at a time: the messages arriving then waited)."""
        cutoff = time.monotonic() - max_age_s
        for stream in [s for s, e in self._pending.items() if e[2] <= cutoff]:
            self._take(stream, self._pending.pop(stream)[0])
        if self._scores and self._scores_since <= cutoff:
            self._take_scores()

    def _take(self, stream: str, chunks: list[np.ndarray]) -> None:
        name, w = self.route.get(stream) or self._route(stream)
        vals = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        bad = (vals.min(axis=0) < self.low) | (vals.max(axis=0) > self.high)
        if bad.any():
            self._out_of_range(w, stream, vals, np.flatnonzero(bad).tolist())
        while len(vals):  # block by block, so that every evaluation sees exactly its readings
            k = w.room
            if w.add_many(vals[:k]):
                if w.full:
                    self._evaluate(name, w)
                w.slide()
            vals = vals[k:]

    def _take_scores(self) -> None:
        w = self.score
        assert w is not None
        s = np.concatenate(self._scores).astype(np.float64, copy=False)
        self._scores.clear()
        self._scores_n = 0
        s = s[np.isfinite(s)].reshape(-1, 1)
        while len(s):
            k = w.room
            if w.add_many(s[:k]):
                if w.full:
                    self._drift(POOLED, w, psi(w.fractions(), w.bins.expected), [SCORE])
                w.slide()
            s = s[k:]

    def forget(self, stream: str) -> None:
        """Drop a stream the scorer evicted (its own ring frees a slot for a new stream)."""
        self._pending.pop(stream, None)
        name, w = self.route.pop(stream, (None, None))
        if name == stream:
            del self.windows[stream]
        elif w is not None:  # pooled: only its alert times go
            w.alerted = {k: t for k, t in w.alerted.items() if k[1] != stream}

    # -- evaluation (every evaluate_every readings of a stream) -------------------------------------
    def _evaluate(self, stream: str, w: Window) -> None:
        self.evaluations += 1
        self._drift(stream, w, psi(w.fractions(), self.bins.expected), self.names)
        for c in w.held(self.cfg.window_readings):
            value = float(w.last[c])
            b = bisect_right(self.bins.edge_lists[c], value)
            # the training fraction of the value's bin bounds the chance of a constant window of it
            if self.bins.expected[c, b] ** self.cfg.window_readings < STUCK_PLAUSIBILITY:
                self._alert(w, "stuck", stream, self.names[c], value, 0.0)

    def _drift(self, stream: str, w: Window, values: np.ndarray, names: list[str]) -> None:
        w.psi = values
        over = values > self.cfg.psi_threshold
        w.consecutive = np.where(over, w.consecutive + 1, 0)
        for c in np.flatnonzero(w.consecutive >= self.cfg.consecutive):
            self._alert(w, "drift", stream, names[c], float(values[c]), self.cfg.psi_threshold)

    def _out_of_range(self, w: Window, stream: str, vals: np.ndarray, channels: list[int]) -> None:
        for c in channels:
            col = vals[:, c]
            low, high = float(self.low[c]), float(self.high[c])
            value, bound = (float(col.min()), low) if col.min() < low else (float(col.max()), high)
            n = int(((col < low) | (col > high)).sum())  # each reading out of range is one alert's worth
            self._alert(w, "out_of_range", stream, self.names[c], value, bound, n)

    def _alert(
        self, w: Window, kind: str, stream: str, channel: str, value: float, threshold: float, n: int = 1
    ) -> None:
        """Publish one alert (unless one went within alert_interval_s); the other `n - 1` of `n` readings
        or evaluations that called for it count as suppressed."""
        now, key = time.monotonic(), (kind, stream, channel)
        if now - w.alerted.get(key, -math.inf) < self.cfg.alert_interval_s:
            self.suppressed += n
            return
        self.suppressed += n - 1
        w.alerted[key] = now
        self.alerts[kind] += 1
        body = {"kind": kind, "stream": stream, "channel": channel, "value": value, "threshold": threshold}
        body["ts"] = self.clock()
        log.warning("%s alert [%s] %s: %g (threshold %g)", kind, stream, channel, value, threshold)
        self.publish(json.dumps(body))

    # -- what the heartbeat and Prometheus carry --------------------------------------------------------
    def summary(self) -> dict:
        """Current PSI per channel (the worst stream's, with its name) and the score's; alert counts."""
        windows = list(self.windows.items())  # one C-level copy: the metrics thread may call this
        psi_by: dict[str, float | None] = {}
        worst: dict[str, str | None] = {}
        for c, name in enumerate(self.names):
            vals = [(float(w.psi[c]), s) for s, w in windows if not math.isnan(w.psi[c])]
            best = max(vals, default=(None, None))
            psi_by[name], worst[name] = best
        score = None
        if self.score is not None and not math.isnan(self.score.psi[0]):
            score = float(self.score.psi[0])
        return {
            "psi": psi_by,
            "worst_stream": worst,
            "score_psi": score,
            "psi_threshold": self.cfg.psi_threshold,
            "window_readings": self.cfg.window_readings,
            "streams": sum(1 for s, _ in windows if s != POOLED),
            "pooled": POOLED in dict(windows),
            "evaluations": self.evaluations,
            "alerts": dict(self.alerts),
            "suppressed": self.suppressed,
        }


def monitor_for(manifest: Manifest, settings: Drift, publish: Callable[[str], None]) -> DriftMonitor | None:
    """The drift monitor of a bundle, or None: monitoring off, or a bundle without reference statistics."""
    if not settings.enabled or manifest.reference is None or not manifest.reference.channels:
        return None
    return DriftMonitor(manifest.reference, settings, publish)
