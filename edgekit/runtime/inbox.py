"""The bounded queue between the MQTT network thread and the scoring thread, with an overload policy."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Policy = Literal["drop-oldest", "drop-newest"]


class Inbox(Generic[T]):
    """FIFO of at most `maxsize` items. When full, `put` drops the oldest queued item (fresh data wins,
    the default for monitoring) or the new one, and says so; memory never grows past `maxsize`."""

    def __init__(self, maxsize: int, policy: Policy = "drop-oldest") -> None:
        if maxsize < 1:
            raise ValueError("queue size must be >= 1")
        if policy not in ("drop-oldest", "drop-newest"):
            raise ValueError(f"unknown overload policy {policy!r}")
        self.maxsize = maxsize
        self.policy = policy
        self._items: deque[T] = deque()
        self._cv = threading.Condition(threading.Lock())

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Queue `item`; False when an item (old or this one) was dropped to make room."""
        with self._cv:
            dropped = False
            if len(self._items) >= self.maxsize:
                if self.policy == "drop-newest":
                    return False
                self._items.popleft()
                dropped = True
            self._items.append(item)
            self._cv.notify()
            return not dropped

    def get_many(self, limit: int, timeout: float) -> list[T]:
        """Up to `limit` items, waiting up to `timeout` seconds for the first one."""
        with self._cv:
            if not self._items:
                self._cv.wait(timeout)
            n = min(limit, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def wake(self) -> None:
        """Interrupt a waiting get_many (not from a signal handler: it takes the lock)."""
        with self._cv:
            self._cv.notify_all()
