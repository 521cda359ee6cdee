"""`edgekit evaluate --cascade RUN_DIR --out DIR`: the student / teacher cascade curve of a run
(edgekit.bench.cascade.evaluate_cascade), written as cascade.json and cascade.png."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a RUN_DIR on its test split: --cascade gives quality and latency vs escalation rate",
    )
    p.add_argument(
        "--cascade",
        required=True,
        metavar="RUN_DIR",
        help="student alone, teacher alone and the cascade at a range of thresholds (a sensor run)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for cascade.json and cascade.png")
    p.add_argument(
        "--profile",
        default="x86-gateway",
        help="profile whose onnxruntime settings (providers, threads) time the models (default x86-gateway)",
    )
    p.add_argument(
        "--latency-windows",
        type=int,
        default=500,
        help="test windows timed one at a time through both models (default 500)",
    )
    p.add_argument(
        "--escalate-rate",
        type=float,
        help="mark the rule chosen on validation for this escalation rate (default: the run's rule)",
    )
    p.add_argument(
        "--escalate-for-quality",
        type=float,
        metavar="FRACTION",
        help="mark the rule chosen on validation for this share of the teacher's quality",
    )
    p.add_argument(
        "--severe-class", action="append", dest="severe_classes", metavar="NAME", help="with the two above"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.bench.cascade import CASCADE_FILE, evaluate_cascade
    from edgekit.escalation import EscalationTarget

    target = EscalationTarget.from_flags(args.escalate_rate, args.escalate_for_quality, args.severe_classes)
    r = evaluate_cascade(args.cascade, args.out, args.profile, args.latency_windows, target=target)
    metric = "macro-F1" if r.metric == "macro_f1" else "F1"

    def line(name: str, p) -> str:
        q = "-" if p.quality is None else f"{p.quality:.3f}"
        return (
            f"  {name:<9} escalates {p.escalation_rate:6.1%}  {metric} {q}  "
            f"latency mean {p.latency_mean_ms:.3f} ms, p99 {p.latency_p99_ms:.3f} ms"
        )

    print(
        f"cascade on {r.test_windows} test windows ({r.measure}; latency over {r.latency_windows} windows):"
    )
    print(line("student", r.student))
    print(line("teacher", r.teacher))
    print(line("chosen", r.chosen))
    print(f"wrote {args.out}/{CASCADE_FILE} ({len(r.curve)} thresholds) and cascade.png")
    return 0
