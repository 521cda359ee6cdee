"""Peak RSS of one daemon when it is driven past what the rig sustains (issue 15's RSS bound).

The daemon alone (no relay) at 5,000, 10,000 and 15,000 single readings/s over 4 streams, every window
reported at QoS 1, through a private mosquitto pinned like e2e_latency.py's runs: at the two higher rates
the core shared by broker, publisher and subscriber is full, so the daemon's reports wait for PUBACKs and
its memory shows what waiting reports cost. Prints each rate's row and the daemon's VmRSS / VmHWM.
`--daemon-pythonpath TREE` runs the daemon from another edgekit tree (a baseline) for an A/B.

    .venv/bin/python benchmarks/overload_rss.py [--bundle B --rows-from RUN] [--daemon-pythonpath TREE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_latency import REPO, e2e, prepare

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="sensor bundle (default: build a quick real Shuttle one)")
    ap.add_argument("--rows-from", help="RUN_DIR whose windows.npz test rows are replayed (with --bundle)")
    ap.add_argument("--rates", nargs="+", type=float, default=[5000.0, 10000.0, 15000.0])
    ap.add_argument("--daemon-pythonpath", help="run the daemon from this edgekit tree (a baseline)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-overload-rss")
    args = ap.parse_args()
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
        relay_all_rates=True,
        keep_going=True,
    )
