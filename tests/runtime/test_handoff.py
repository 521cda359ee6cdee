"""runtime.handoff: the network thread scores what it read, in batches, unless a burst outgrows a batch or
the scoring thread is busy; the order of messages survives any interleaving of the two threads."""

from __future__ import annotations

import math
import socket
import sys
import threading
import time

import numpy as np
import pytest

from edgekit.data import load_dataset, make_windows
from edgekit.runtime.client import socket_backlog
from edgekit.runtime.daemon import DaemonConfig
from edgekit.runtime.engine import Engine
from edgekit.runtime.handoff import Handoff
from edgekit.runtime.inbox import Inbox
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.payloads import encode_reading
from edgekit.runtime.stats import Counters

T0 = 1_700_000_000.0


class Recorder:
    """The scorer side: records which thread scored which items, in order, and the batches."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.threads: list[str] = []
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> None:
        self.items += items
        self.threads += [threading.current_thread().name] * len(items)
        self.batches.append(list(items))


class SlowTakeInbox(Inbox[int]):
    """An inbox that pauses after handing out items: the other thread gets to run right there, where an
    item taken outside the hand-off lock could be overtaken by a newer one scored inline."""

    def get_many(self, limit: int, timeout: float) -> list[int]:
        items = super().get_many(limit, timeout)
        if items:
            time.sleep(0.0002)
        return items


class Backlog:
    """What the socket holds behind the current message: set by the test."""

    def __init__(self) -> None:
        self.waiting = False

    def __call__(self) -> bool:
        return self.waiting


def make(
    inline: bool = True, inbox: Inbox[int] | None = None, batch: int = 64
) -> tuple[Handoff[int], Recorder, Counters, Backlog]:
    rec, counters, backlog = Recorder(), Counters(), Backlog()
    box = Inbox(10**6) if inbox is None else inbox
    return Handoff(box, rec, backlog, counters, inline=inline, batch=batch), rec, counters, backlog


def test_what_was_read_is_scored_on_the_reading_thread_after_the_read() -> None:
    h, rec, counters, _ = make()
    assert h.offer(1, 10) == 0
    assert rec.items == [] and len(h.inbox) == 1  # offer only queues (and wakes nobody)
    assert h.after_read() is True
    assert rec.items == [1] and rec.threads == [threading.current_thread().name]
    assert counters.inline == 1 and len(h.inbox) == 0
    assert h.after_read() is False  # nothing left: nothing to publish


def test_packets_already_on_the_socket_join_the_batch() -> None:
    h, rec, counters, backlog = make()
    backlog.waiting = True
    for i in range(3):
        h.offer(i, 10)
        assert h.after_read() is False  # more is waiting: read it first
    backlog.waiting = False
    h.offer(3, 10)
    assert h.after_read() is True
    assert rec.batches == [[0, 1, 2, 3]] and counters.inline == 4  # one batch, one model call


def test_a_burst_beyond_one_batch_goes_to_the_scoring_thread() -> None:
    """The network thread keeps reading (the inbox's overload policy decides what is lost) while the
    scoring thread scores: it must not stop reading to score a flood itself."""
    h, rec, counters, backlog = make(batch=4)
    backlog.waiting = True
    for i in range(6):
        h.offer(i, 10)
        h.after_read()
    assert rec.items == [] and len(h.inbox) == 6
    assert h.inbox.wait(0)  # woken (the scoring thread's wait returns at once)
    h.serve_once(0, 100, lambda: None)
    assert rec.items == list(range(6)) and counters.inline == 0


def test_messages_wait_for_a_busy_scoring_thread_and_keep_their_order() -> None:
    h, rec, counters, _ = make()
    with h.lock:  # the scoring thread is scoring (or reloading)
        h.offer(1, 10)
        assert h.after_read() is False
    assert rec.items == [] and len(h.inbox) == 1
    h.offer(2, 10)  # the scorer is free again: 1 and 2 go together, in order
    assert h.after_read() is True
    assert rec.items == [1, 2] and counters.inline == 2

    h, rec, counters, _ = make(inline=False)  # inline_scoring: false
    h.offer(1, 10)
    assert h.after_read() is False and rec.items == [] and len(h.inbox) == 1
    assert h.inbox.wait(0)  # queue-only mode wakes the scoring thread on every message


def test_order_survives_two_threads_racing() -> None:
    """A producer offers 0..N-1 (reading a burst now and then) while a consumer serves; every item is
    scored once, in order. Taking items from the inbox outside the lock would break it."""
    h, rec, _, backlog = make(inbox=SlowTakeInbox(10**6), batch=8)
    n, stop = 20000, threading.Event()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: every interleaving gets a chance

    def consume() -> None:
        while not stop.is_set():
            h.serve_once(0.001, 1000, lambda: None)

    t = threading.Thread(target=consume, name="scoring")
    t.start()
    try:
        for i in range(n):
            backlog.waiting = i % 50 < 20  # bursts that outgrow a batch, then a trickle
            h.offer(i, 1)
            h.after_read()
        backlog.waiting = False
        h.after_read()
        while len(h.inbox):
            pass
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(switch)
    h.drain()
    assert rec.items == list(range(n))
    assert "scoring" in rec.threads and threading.current_thread().name in rec.threads  # both paths ran


def test_socket_backlog_sees_waiting_bytes() -> None:
    a, b = socket.socketpair()
    try:
        assert not socket_backlog(a)
        b.sendall(b"x")
        assert socket_backlog(a)
        a.recv(1)
        assert not socket_backlog(a)
        assert not socket_backlog(None)
    finally:
        a.close()
        b.close()
    assert not socket_backlog(a)  # closed during a reconnect: no backlog known, no exception


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "queue-only"])
def test_windowed_streams_score_like_offline_windowing_on_either_path(
    rt, broker, mqtt_io, windowed_bundle, inline
):
    """One reading per message, two streams interleaved, a burst then a trickle: messages are scored on
    the network thread and through the queue in turn, and every window is still the offline one (a
    reading scored out of order would change a window, its score and its end timestamp)."""
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/scores"])
    engine = Engine(windowed_bundle)
    table = load_dataset("mitdb").take(slice(0, 400))
    ws = make_windows(table, engine.window, engine.hop)
    ts = T0 + np.arange(len(table)) / 360.0
    ends = ts[engine.window - 1 :: engine.hop][: len(ws)]
    expected = {s: engine.score(ws.x) for s in ("a", "b")}
    cfg = DaemonConfig(
        bundle=str(windowed_bundle),
        client=ClientOptions(broker.url),
        device="dev1",
        threshold=-math.inf,
        publish_scores=True,
        gap_factor=0,
        inline_scoring=inline,
    )
    with rt.running(cfg) as d:
        pub = publish()
        for i in range(len(table)):
            for s in ("a", "b"):
                pub.send(f"edgekit/dev1/sensors/{s}", encode_reading(ts[i], table.values[i]))
            if i >= 200:  # the trickle: the daemon is idle between messages
                time.sleep(0.002)
        assert rt.wait_until(lambda: len(out.on("scores")) >= 2 * len(ws), 20)
        counted = d.counters.inline
    reports = out.json("scores")
    for s in ("a", "b"):
        mine = [r for r in reports if r["stream"] == s]
        assert [r["end_ts"] for r in mine] == ends.tolist()  # every window, once, in order
        np.testing.assert_allclose([r["score"] for r in mine], expected[s], rtol=1e-4, atol=1e-5)
    assert (counted > 0) if inline else (counted == 0)


def test_nothing_is_scored_inline_after_the_shutdown_drain() -> None:
    """After drain() (shutdown), a late message must not be scored and reported after `offline`."""
    h, rec, _, _ = make()
    h.offer(1, 10)
    h.drain()
    assert rec.items == [1]
    h.offer(2, 10)
    assert h.after_read() is False
    assert rec.items == [1] and len(h.inbox) == 1
