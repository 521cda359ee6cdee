"""The bounded queue between the MQTT network thread and the scoring thread, with an overload policy."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Policy = Literal["drop-oldest", "drop-newest"]


class Inbox(Generic[T]):
    """FIFO of at most `maxsize` items and `max_bytes` payload bytes. When full, a new item makes room by
    dropping the oldest queued items (fresh data wins, the default for monitoring) or is dropped itself;
    either way the caller is told how many went. Memory never grows past the bounds: a count bound alone
    let a flood of 240 KB payloads hold gigabytes."""

    def __init__(self, maxsize: int, policy: Policy = "drop-oldest", max_bytes: int | None = None) -> None:
        if maxsize < 1:
            raise ValueError("queue size must be >= 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("queue bytes must be >= 1")
        if policy not in ("drop-oldest", "drop-newest"):
            raise ValueError(f"unknown overload policy {policy!r}")
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.policy = policy
        self.nbytes = 0  # payload bytes queued now
        self._items: deque[tuple[T, int]] = deque()
        self._cv = threading.Condition(threading.Lock())

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Queue `item`; False when an item (old or this one) was dropped to make room."""
        return self.offer(item, 0) == 0

    def offer(self, item: T, nbytes: int, notify: bool = True) -> int:
        """Queue `item` weighing `nbytes`; returns how many items (old ones or this one) were dropped.
        `notify=False` wakes nobody (the caller takes the item itself, or wakes a consumer later)."""
        with self._cv:
            limit = self.max_bytes
            if limit is not None and nbytes > limit:
                return 1  # could never fit, even alone
            full = len(self._items) >= self.maxsize or (limit is not None and self.nbytes + nbytes > limit)
            if full and self.policy == "drop-newest":
                return 1
            dropped = 0
            while full:
                self.nbytes -= self._items.popleft()[1]
                dropped += 1
                full = len(self._items) >= self.maxsize or (
                    limit is not None and self.nbytes + nbytes > limit
                )
            self._items.append((item, nbytes))
            self.nbytes += nbytes
            if notify:
                self._cv.notify()
            return dropped

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for an item without taking it; True when one is queued."""
        with self._cv:
            if not self._items:
                self._cv.wait(timeout)
            return bool(self._items)

    def get_many(self, limit: int, timeout: float) -> list[T]:
        """Up to `limit` items, waiting up to `timeout` seconds for the first one."""
        with self._cv:
            if not self._items:
                self._cv.wait(timeout)
            n = min(limit, len(self._items))
            out = []
            for _ in range(n):
                item, size = self._items.popleft()
                self.nbytes -= size
                out.append(item)
            return out

    def wake(self) -> None:
        """Interrupt a waiting get_many (not from a signal handler: it takes the lock)."""
        with self._cv:
            self._cv.notify_all()
