"""Who scores a received message: the network thread itself when nothing else is waiting, otherwise the
scoring thread through the bounded Inbox.

Handing every message to the scoring thread costs a thread wake-up and a GIL hand-over per message
(about 0.2 ms here, most of the daemon's extra latency over a bare relay at moderate rates). So when the
scoring thread is idle, the inbox is empty and no further packet is already waiting on the socket, paho's
network thread scores the message on the spot. Under load (a backlog on the socket or in the inbox, or the
scoring thread busy) messages queue as before, so micro-batching and the overload policy still apply.

Order is kept per stream because both paths run under one lock and the inbox is only emptied while that
lock is held: the network thread scores inline only when the inbox is empty, that is, when everything
received before was already handed to the scorer.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from edgekit.runtime.inbox import Inbox
from edgekit.runtime.stats import Counters

T = TypeVar("T")


def socket_backlog(sock: socket.socket | None) -> bool:
    """True when more bytes are already waiting on `sock` (paho reads packets unbuffered, so this means
    another packet, or part of one, is queued behind the current message)."""
    if sock is None:
        return False
    pending = getattr(sock, "pending", None)  # TLS: bytes decrypted into the SSL object's buffer
    if pending is not None and pending() > 0:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError, TypeError):  # closed or replaced during a reconnect: no backlog known
        return False


class Handoff(Generic[T]):
    """The hand-over point between paho's network thread (offer) and the scoring thread (serve_once).

    `score` handles a list of items in order (parse, stage, one model call, reports); it must not raise.
    `backlog` says whether more input is already waiting behind the current message."""

    def __init__(
        self,
        inbox: Inbox[T],
        score: Callable[[list[T]], None],
        backlog: Callable[[], bool],
        counters: Counters,
        *,
        inline: bool = True,
    ) -> None:
        self.inbox = inbox
        self.score = score
        self.backlog = backlog
        self.counters = counters  # counters.inline: messages scored on the network thread
        self.inline = inline
        self.lock = threading.Lock()  # held by whoever is using the scorer

    def offer(self, item: T, nbytes: int) -> int:
        """Network thread: score `item` now if nothing else is waiting, else queue it; returns how many
        items the inbox dropped to make room (0 when scored inline)."""
        if self.inline and self.lock.acquire(blocking=False):
            try:
                if not len(self.inbox) and not self.backlog():
                    self.score([item])
                    self.counters.inline += 1
                    return 0
            finally:
                self.lock.release()
        return self.inbox.offer(item, nbytes)

    def serve_once(self, timeout: float, limit: int, after: Callable[[], None]) -> None:
        """Scoring thread: wait up to `timeout` for queued items, then score up to `limit` of them and run
        `after` (housekeeping that may swap the scorer), all under the lock."""
        self.inbox.wait(timeout)  # without the lock: the network thread may score inline meanwhile
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
