"""Per-stream ring buffers that emit a window every `hop` readings, and the staging batch they fill.

Memory is fixed at creation: each stream holds a [2W, C] float32 ring written twice per reading, so the
latest W readings are always one contiguous slice (no copy until the window is staged for scoring), and
the number of streams is capped; when the table is full, the least recently used stream that has been
idle long enough makes room for a new one, so a new real sensor is never locked out by dead names.
"""

from __future__ import annotations

import math
import statistics
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# admit() results; the names double as counter kinds.
OK = ""
OUT_OF_ORDER = "out_of_order"
DUPLICATE = "duplicate"
GAP = "gap"

_PERIODS = 32  # recent inter-reading periods kept for the median
_MIN_PERIODS = 8  # periods needed before gaps are judged
# Consecutive refused readings after which a stream whose newest timestamp is still ahead of the daemon's
# clock adopts the publisher's new timeline: one accepted reading from a clock that later stepped back
# (or a bad far-future value within the skew bound) must not block the stream until that time comes.
RESYNC_AFTER = 8


class StreamWindow:
    """Readings of one stream: ordering and gap checks, ring buffer, window-ready decision."""

    __slots__ = (
        "_np",
        "_periods",
        "_stale",
        "buf",
        "count",
        "gap_factor",
        "hop",
        "last_seen",
        "last_ts",
        "name",
        "period",
        "pos",
        "seq",
        "ts",
        "window",
    )

    def __init__(self, name: str, window: int, hop: int, channels: int, gap_factor: float = 0.0) -> None:
        if window < 1 or hop < 1:
            raise ValueError(f"window ({window}) and hop ({hop}) must be >= 1")
        self.name = name
        self.window = window
        self.hop = hop
        self.gap_factor = gap_factor
        self.buf = np.zeros((2 * window, channels), np.float32)
        self.ts = np.zeros(2 * window, np.float64)
        self.pos = 0
        self.count = 0  # readings since the last reset
        self.seq = 0  # windows emitted since start (ids survive resets)
        self.last_ts = -math.inf
        self.last_seen = 0.0  # monotonic time of the last message (least-recently-used eviction)
        self._stale = 0  # consecutive readings refused as out of order
        self._periods = [0.0] * _PERIODS
        self._np = 0
        self.period = 0.0  # median period; 0 until known

    def reset(self) -> None:
        """Forget buffered readings (after a gap or a model change); ordering and period are kept."""
        self.count = 0
        self.pos = 0

    def admit(self, ts: float, now: float = math.inf) -> str:
        """Check a reading's timestamp before push(): OK, OUT_OF_ORDER/DUPLICATE (drop it), or GAP (buffer
        was reset; push it as the first reading of a new run). `now` is the daemon's clock (unix s)."""
        dt = ts - self.last_ts
        if dt <= 0.0:
            self._stale += 1
            if self._stale < RESYNC_AFTER or self.last_ts <= now:
                return DUPLICATE if dt == 0.0 else OUT_OF_ORDER
            # The stream's last timestamp is in the daemon's future and the publisher keeps sending
            # earlier ones: its clock stepped back. Start a new run on its timeline.
            self.last_ts = ts
            self._stale = 0
            self.reset()
            return GAP
        self._stale = 0
        self.last_ts = ts
        if self.period > 0.0 and self.gap_factor > 0.0 and dt > self.gap_factor * self.period:
            self.reset()
            return GAP
        if dt != math.inf:
            self._periods[self._np % _PERIODS] = dt
            self._np += 1
            # The median is refreshed every 16 periods: cheap, and robust to single odd intervals.
            if self._np >= _MIN_PERIODS and (self._np % 16 == 0 or self._np == _MIN_PERIODS):
                self.period = statistics.median(self._periods[: min(self._np, _PERIODS)])
        return OK

    def admit_run(self, ts: list[float]) -> bool:
        """Admit consecutive readings at once when admit() would say OK to every one (no refusal, no gap),
        leaving the same state; False, with nothing changed, as soon as one would not be (the caller then
        admits them one by one). The batch payloads' fast path: one call instead of one per reading."""
        last, period, gf, n = self.last_ts, self.period, self.gap_factor, self._np
        periods = self._periods[:]
        for t in ts:
            dt = t - last
            if dt <= 0.0 or (period > 0.0 and gf > 0.0 and dt > gf * period):
                return False
            last = t
            if dt != math.inf:
                periods[n % _PERIODS] = dt
                n += 1
                if n >= _MIN_PERIODS and (n % 16 == 0 or n == _MIN_PERIODS):
                    period = statistics.median(periods[: min(n, _PERIODS)])
        self.last_ts, self.period, self._periods, self._np, self._stale = last, period, periods, n, 0
        return True

    def push_run(self, ts: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """push() of admitted readings `rows` [n, C] stamped `ts` [n] at once; returns what the windows
        they complete need, oldest first: (index in `rows` of each window's last reading, `ending` with
        ending[j] the [W, C] window whose last reading is rows[j], their start timestamps). `ending` is a
        view: the caller copies max_batch windows at a time, so memory stays bounded whatever the
        payload's size (a hop-1 window-256 model would otherwise copy 256x the payload at once)."""
        w, n = self.window, len(rows)
        counts = self.count + 1 + np.arange(n)
        ends = np.flatnonzero((counts >= w) & ((counts - w) % self.hop == 0))
        if w == 1:  # every reading is its own window
            ending, starts = rows[:, None, :], ts[ends]
        else:
            # the previous W readings, then these: the window ending at rows[j] is rows_hist[j + 1 : j + 1 + W]
            rows_hist = np.concatenate([self.view(), rows.astype(np.float32, copy=False)])
            ts_hist = np.concatenate([self.ts[self.pos : self.pos + w], ts])
            ending = np.lib.stride_tricks.sliding_window_view(rows_hist, w, axis=0)[1:].transpose(0, 2, 1)
            starts = ts_hist[ends + 1]
        m = min(n, w)  # only the last W readings stay in the ring
        slots = (self.pos + n - m + np.arange(m)) % w
        self.buf[slots] = self.buf[slots + w] = rows[n - m :]
        self.ts[slots] = self.ts[slots + w] = ts[n - m :]
        self.pos = (self.pos + n) % w
        self.count += n
        return ends, ending, starts

    def push(self, ts: float, row: np.ndarray) -> bool:
        """Store an admitted reading; True when a window ends here (first at W readings, then every hop)."""
        p, w = self.pos, self.window
        self.buf[p] = row
        self.buf[p + w] = row
        self.ts[p] = ts
        self.ts[p + w] = ts
        self.pos = p + 1 if p + 1 < w else 0
        self.count += 1
        c = self.count - w
        return c >= 0 and c % self.hop == 0

    def view(self) -> np.ndarray:
        """The latest W readings, oldest first (a view into the ring; valid until the next push)."""
        return self.buf[self.pos : self.pos + self.window]

    @property
    def start_ts(self) -> float:
        return float(self.ts[self.pos])


class StreamTable:
    """All streams of one daemon, created on first reading, at most `max_streams` of them. When full, the
    least recently used stream is evicted for a new one if it has been idle for `idle_s` seconds."""

    def __init__(
        self,
        window: int,
        hop: int,
        channels: int,
        gap_factor: float,
        max_streams: int,
        idle_s: float = math.inf,
        on_evict: Callable[[StreamWindow], None] | None = None,
    ) -> None:
        self.window, self.hop, self.channels = window, hop, channels
        self.gap_factor = gap_factor
        self.max_streams = max_streams
        self.idle_s = idle_s
        self.on_evict = on_evict
        self.evictions = 0
        # Ordered by last use (least recent first): eviction looks at the first entry only.
        self.streams: OrderedDict[str, StreamWindow] = OrderedDict()

    def get(self, name: str, now: float = 0.0) -> StreamWindow | None:
        """The stream's buffer, or None when the table is full of streams active within idle_s (caller
        counts the refusal). `now` is a monotonic clock in seconds."""
        streams = self.streams
        sw = streams.get(name)
        if sw is not None:
            sw.last_seen = now
            streams.move_to_end(name)
            return sw
        if len(streams) >= self.max_streams:
            lru = next(iter(streams.values()))
            if now - lru.last_seen < self.idle_s:
                return None
            del streams[lru.name]
            self.evictions += 1
            if self.on_evict is not None:
                self.on_evict(lru)
        sw = streams[name] = StreamWindow(name, self.window, self.hop, self.channels, self.gap_factor)
        sw.last_seen = now
        return sw

    def reshape(self, window: int, hop: int, channels: int, force: bool = False) -> bool:
        """Adopt a new model's window spec. Returns True when buffers had to be reset (incompatible)."""
        if (window, channels) == (self.window, self.channels) and not force:
            for sw in self.streams.values():
                sw.hop = hop
            self.hop = hop
            return False
        self.window, self.hop, self.channels = window, hop, channels
        old = self.streams
        self.streams = OrderedDict()
        for name, sw in old.items():  # same order: least recently used first
            new = self.streams[name] = StreamWindow(name, window, hop, channels, self.gap_factor)
            new.last_ts, new.seq, new.period, new.last_seen = sw.last_ts, sw.seq, sw.period, sw.last_seen
        return True


@dataclass(slots=True)
class WindowMeta:
    stream: str
    seq: int
    start_ts: float
    end_ts: float
    recv: float  # perf_counter() at receipt of the window's last reading

    def fields(self) -> dict:
        """The window's fields in every message about it (report, escalation), in their order."""
        return {
            "stream": self.stream,
            "id": f"{self.stream}@{self.end_ts!r}",
            "seq": self.seq,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
        }


class WindowBatch:
    """Preallocated [max_batch, W, C] staging area: ready windows wait here for one batched model call.
    Each window's identity is kept in plain columns; window(i) builds its WindowMeta only when a report
    needs it (most windows of a big batch are quiet)."""

    def __init__(self, max_batch: int, window: int, channels: int) -> None:
        self.x = np.zeros((max_batch, window, channels), np.float32)
        self.recv = np.zeros(max_batch, np.float64)
        self.streams: list[str] = []
        self.seqs: list[int] = []
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.capacity = max_batch

    def __len__(self) -> int:
        return len(self.streams)

    @property
    def full(self) -> bool:
        return len(self.streams) >= self.capacity

    def window(self, i: int) -> WindowMeta:
        return WindowMeta(self.streams[i], self.seqs[i], self.starts[i], self.ends[i], float(self.recv[i]))

    def add(self, sw: StreamWindow, end_ts: float, recv: float) -> None:
        i = len(self.streams)
        self.x[i] = sw.view()
        self.recv[i] = recv
        self.streams.append(sw.name)
        self.seqs.append(sw.seq)
        self.starts.append(sw.start_ts)
        self.ends.append(end_ts)
        sw.seq += 1

    def add_run(
        self, sw: StreamWindow, windows: np.ndarray, starts: list[float], ends: list[float], recv: float
    ) -> None:
        """Stage windows of one stream at once (push_run's, with their start and end timestamps); the
        caller keeps within the capacity."""
        i, k = len(self.streams), len(windows)
        self.x[i : i + k] = windows
        self.recv[i : i + k] = recv
        self.streams += [sw.name] * k
        self.seqs += range(sw.seq, sw.seq + k)
        self.starts += starts
        self.ends += ends
        sw.seq += k

    def clear(self) -> None:
        self.streams.clear()
        self.seqs.clear()
        self.starts.clear()
        self.ends.clear()
