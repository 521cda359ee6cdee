"""Opt-in cProfile of every thread of the daemon (the scoring thread and paho's network thread).

`EDGEKIT_PROFILE_OUT=FILE edgekit serve ...` writes the merged pstats of all threads to FILE when the daemon
stops; the e2e benchmark uses it to print the top entries before and after a change. cProfile rather than
a sampling profiler because py-spy needs ptrace rights that containers and CI runners often lack.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENV = "EDGEKIT_PROFILE_OUT"


@contextmanager
def profile_threads(out: str | None = None) -> Iterator[None]:
    """Profile this thread and every thread started inside the block; dump merged stats to `out`."""
    out = out or os.environ.get(ENV)
    if not out:
        yield
        return
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def first_event(*_a: Any) -> None:
        # threading calls this in each new thread before its target runs: swap in a real profiler there.
        sys.setprofile(None)
        prof = cProfile.Profile()
        with lock:
            profiles.append(prof)
        prof.enable()

    main = cProfile.Profile()
    profiles.append(main)
    threading.setprofile(first_event)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        with lock:
            stats = pstats.Stats(*profiles)  # other threads' profilers are read as they stand
        stats.dump_stats(out)


def top_entries(path: str, n: int = 15, sort: str = "tottime") -> list[dict[str, Any]]:
    """The `n` functions with the most own time in a pstats file: name, calls, own and cumulative s."""
    st = pstats.Stats(path)
    total = st.total_tt or 1.0
    rows = []
    for (file, line, func), (_cc, calls, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{os.path.basename(file)}:{line}({func})",
                "calls": calls,
                "tottime_s": tt,
                "cumtime_s": ct,
                "share": tt / total,
            }
        )
    key = "tottime_s" if sort == "tottime" else "cumtime_s"
    return sorted(rows, key=lambda r: r[key], reverse=True)[:n]
