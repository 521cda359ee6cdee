"""`edgekit demo`: the end-to-end demonstration on real data."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the whole pipeline on real data (starts its own mosquitto unless --broker)"
    )
    p.add_argument(
        "--out", default="runs/demo", help="where runs, bundles and reports go (default runs/demo)"
    )
    p.add_argument(
        "--broker",
        help="mqtt://HOST:PORT of an existing broker (default: a private mosquitto on a free port)",
    )
    p.add_argument("--quick", action="store_true", help="small data slice and few epochs (smoke test)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out=args.out, broker=args.broker, quick=args.quick))
    return 0
