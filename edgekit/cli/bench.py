"""`edgekit bench`: latency of a bundle on this machine, per stage, with a PASS/FAIL verdict against the budget."""

from __future__ import annotations

import argparse
from typing import TypeVar

from edgekit.cli import options_from_args

T = TypeVar("T")

EPILOG = """exit status: 0 PASS, 4 FAIL (latency budget missed at the chosen percentile), 2 error.
variants for --compare: another bundle directory, torch:RUN_DIR[#MODEL] (eager torch; needs torch),
variant:NAME (another variant BUNDLE carries) or variant:all (all of them).
--e2e: publisher -> broker -> `edgekit serve` -> report -> subscriber at each --rates value, then the
same through a bare relay; verdict at the highest rate <= --verdict-rate."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark a bundle on this machine: per-stage latency percentiles, budget verdict, report with plots",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bundle", metavar="BUNDLE", help="bundle directory or .tar.gz")
    p.add_argument(
        "--profile",
        help="target profile name or YAML path (default: the profile the bundle was exported for)",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--runs", type=int, help="timed calls per variant (default 1000)")
    how.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="time for S seconds instead of a number of runs (--e2e: seconds per rate, default 3)",
    )
    p.add_argument("--warmup", type=int, default=50, help="untimed calls per variant first (default 50)")
    p.add_argument(
        "--batch", type=int, default=1, help="windows per call (default 1; --e2e: readings per message)"
    )
    p.add_argument("--percentile", help="verdict percentile, e.g. p99 or p99.9 (default: the profile's)")
    p.add_argument("--budget-ms", type=float, help="latency budget in ms (default: the profile's)")
    p.add_argument(
        "--data",
        help="npz of RAW windows [N, W, C] (FILE.npz or FILE.npz:KEY; default: the bundle's golden inputs)",
    )
    p.add_argument(
        "--compare",
        nargs="+",
        default=[],
        metavar="VARIANT",
        help="also time these, interleaved in one process",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the per-round random order and of the order held-out inputs are drawn in (model-only;"
        " --e2e replays texts in seed 0's order)",
    )
    e2e = p.add_argument_group("end to end through a broker (--e2e)")
    e2e.add_argument("--e2e", action="store_true", help="time the daemon through a real MQTT broker")
    e2e.add_argument("--broker", help="mqtt://HOST:PORT (default: a private mosquitto on a free port)")
    e2e.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[100.0, 1000.0, 10000.0],
        metavar="R",
        help="readings/s to sweep (default 100 1000 10000)",
    )
    e2e.add_argument("--streams", type=int, default=4, help="sensor streams the readings go to (default 4)")
    e2e.add_argument(
        "--verdict-rate", type=float, default=1000.0, help="judge the budget at this rate (default 1000)"
    )
    e2e.add_argument("--no-relay", action="store_true", help="skip the bare-relay baseline")
    p.add_argument("--out", help="report folder (default runs/bench/<bundle>-<time>)")
    p.add_argument("--no-plots", action="store_true", help="skip PNG plots")
    p.set_defaults(handler=run)


def _default_out(bundle: str, tag: str = "") -> str:
    """runs/bench/<bundle name><tag>-<time> (a tarball's name without .tar.gz)."""
    import time
    from pathlib import Path

    name = Path(bundle).resolve().name.removesuffix(".gz").removesuffix(".tgz").removesuffix(".tar")
    return str(Path("runs/bench") / f"{name}{tag}-{time.strftime('%Y%m%d-%H%M%S')}")


def _finish(report: dict, out: str) -> int:
    from edgekit.bench import EXIT_BUDGET_FAIL, format_table

    print(format_table(report))
    print(f"report: {out}/report.md, report.json")
    return 0 if report["verdict"]["passed"] else EXIT_BUDGET_FAIL


def run(args: argparse.Namespace) -> int:
    from edgekit.bench import BenchConfig, run_bench

    if args.e2e:
        return run_e2e_cli(args)
    out = args.out or _default_out(args.bundle)
    cfg = options_from_args(BenchConfig, args, duration_s=args.duration, out=out, plots=not args.no_plots)
    return _finish(run_bench(cfg, echo=print), out)


def run_e2e_cli(args: argparse.Namespace) -> int:
    from edgekit.bench import E2EConfig, run_e2e
    from edgekit.errors import ConfigError

    if args.compare or args.runs:
        raise ConfigError("--compare and --runs are for model-only runs; leave them out with --e2e")
    out = args.out or _default_out(args.bundle, "-e2e")
    cfg = options_from_args(
        E2EConfig,
        args,
        duration_s=args.duration or 3.0,
        relay=not args.no_relay,
        out=out,
        plots=not args.no_plots,
    )
    return _finish(run_e2e(cfg, echo=print), out)
