"""Who scores a received message: paho's network thread itself, right after it read the message, unless a
burst outgrows one batch or the scoring thread is busy; then the scoring thread, through the bounded Inbox.

Handing every message to a second thread costs a wake-up and a GIL hand-over each way per message: under
a steady 5,000 readings/s that ping-pong, not the model, was most of the daemon's CPU. So the network
thread runs to completion: it queues each message it reads (nobody is woken), and after each read
(`after_read`) it scores what is queued in one batch, unless more bytes are already waiting on the
socket, in which case it reads those first so that they join the same batch (one model call, one
flush). Nothing ever waits for data that has not arrived yet.

Under overload the scoring thread takes over: when a burst fills a whole batch with still more on the
socket, or when the scoring thread holds the scorer (a reload, housekeeping), the network thread wakes it
and goes on reading, so the socket is drained into the Inbox and its overload policy (drop the oldest)
decides what is lost, as before. With `inline=False` every message is queued for the scoring thread.

Order is kept per stream because items leave the inbox only under one lock, held by whichever thread is
scoring, and the inbox is first in, first out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from edgekit.runtime.inbox import Inbox
from edgekit.runtime.stats import Counters

T = TypeVar("T")


class Handoff(Generic[T]):
    """The hand-over point between paho's network thread (offer, after_read) and the scoring thread
    (serve_once).

    `score` handles a list of items in order (parse, stage, one model call, reports); it must not raise.
    `backlog` says whether more input is already waiting behind the current message. `batch` is the most
    messages the network thread gathers and scores in one go."""

    def __init__(
        self,
        inbox: Inbox[T],
        score: Callable[[list[T]], None],
        backlog: Callable[[], bool],
        counters: Counters,
        *,
        inline: bool = True,
        batch: int = 64,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self.inbox = inbox
        self.score = score
        self.backlog = backlog
        self.counters = counters  # counters.inline: messages scored on the network thread
        self.inline = inline
        self.batch = batch
        self.lock = threading.Lock()  # held by whoever is using the scorer

    def offer(self, item: T, nbytes: int) -> int:
        """Network thread: queue `item`; returns how many items the inbox dropped to make room. Only the
        queue-only mode wakes the scoring thread: otherwise after_read scores it in a moment."""
        return self.inbox.offer(item, nbytes, notify=not self.inline)

    def after_read(self) -> bool:
        """Network thread, after each read from the socket: score what is queued, unless more is already
        on the socket and fits the batch (read it first). True when it scored something."""
        if not self.inline or not len(self.inbox):
            return False
        if self.backlog():
            if len(self.inbox) < self.batch:
                return False  # paho's loop reads the waiting packet next; it joins this batch
            self.inbox.wake()  # a burst beyond one batch: the scoring thread scores, this one reads on
            return False
        if not self.lock.acquire(blocking=False):
            self.inbox.wake()  # the scoring thread holds the scorer: it takes these when it is done
            return False
        try:
            if not self.inline:  # drained for shutdown while this thread waited for the lock
                return False
            items = self.inbox.get_many(self.batch, 0)
            if items:
                self.score(items)
                self.counters.inline += len(items)
        finally:
            self.lock.release()
        if len(self.inbox):  # more than a batch was waiting
            self.inbox.wake()
        return bool(items)

    def serve_once(self, timeout: float, limit: int, after: Callable[[], None]) -> None:
        """Scoring thread: wait up to `timeout` for queued items, then score up to `limit` of them and run
        `after` (housekeeping that may swap the scorer), all under the lock."""
        self.inbox.wait(timeout)  # without the lock: the network thread may score meanwhile
        with self.lock:
            if items := self.inbox.get_many(limit, 0):
                self.score(items)
            after()

    def drain(self) -> None:
        """Score everything still queued (shutdown). Nothing is scored inline afterwards: reports must not
        follow the daemon's `offline` status while the network thread winds down."""
        with self.lock:
            self.inline = False
            if items := self.inbox.get_many(len(self.inbox), 0):
                self.score(items)
