"""Peak RSS of one daemon when it is driven past what the rig sustains (issue 15's RSS bound).

The daemon alone (no relay) at 5,000, 10,000 and 15,000 single readings/s over 4 streams, every window
reported at QoS 1, through a private mosquitto pinned like e2e_latency.py's runs: at the two higher rates
the core shared by broker, publisher and subscriber is full, so the daemon's reports wait for PUBACKs and
its memory shows what waiting reports cost. Prints each rate's row and the daemon's VmRSS / VmHWM.
`--daemon-pythonpath TREE` runs the daemon from another edgekit tree (a baseline) for an A/B.
First it prints what one waiting QoS 1 report holds (tracemalloc, reports queued on a client that is not
connected) in paho's own client and in the daemon's, and what of it is paho's threading.Condition.

    .venv/bin/python benchmarks/overload_rss.py [--bundle B --rows-from RUN] [--daemon-pythonpath TREE]
"""

from __future__ import annotations

import argparse
import sys
import threading
import tracemalloc
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_latency import REPO, e2e, prepare

from edgekit.runtime.client import WatchedClient


def traced_bytes(make: object, n: int) -> float:
    """Bytes still allocated per call after n calls of make(i) whose results are kept."""
    kept = []
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept.extend(make(i) for i in range(n))  # type: ignore[operator]
        return (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()


def queued_report_cost(n: int = 20000) -> None:
    payload = b"r" * 300
    for cls in (mqtt.Client, WatchedClient):
        c = cls(mqtt.CallbackAPIVersion.VERSION2, client_id="cost", protocol=mqtt.MQTTv5)
        c.max_queued_messages_set(0)
        per = traced_bytes(lambda i, c=c: c.publish("edgekit/dev/anomalies", payload + b"%d" % i, qos=1), n)
        print(f"{cls.__module__}.{cls.__name__}: {per:,.0f} bytes per queued QoS 1 report of ~304 bytes")
    print(f"threading.Condition(): {traced_bytes(lambda _i: threading.Condition(), n):,.0f} bytes each")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="sensor bundle (default: build a quick real Shuttle one)")
    ap.add_argument("--rows-from", help="RUN_DIR whose windows.npz test rows are replayed (with --bundle)")
    ap.add_argument("--rates", nargs="+", type=float, default=[5000.0, 10000.0, 15000.0])
    ap.add_argument("--daemon-pythonpath", help="run the daemon from this edgekit tree (a baseline)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-overload-rss")
    args = ap.parse_args()
    queued_report_cost()
    bundle, data = prepare(args)
    env = {"PYTHONPATH": args.daemon_pythonpath, "PYTHONSAFEPATH": "1"} if args.daemon_pythonpath else None
    e2e(
        bundle,
        data,
        args.out,
        env,
        rates=args.rates,
        duration_s=3.0,
        warmup_s=1.0,
        nodelay=True,
        relay=False,
        keep_going=True,
    )
