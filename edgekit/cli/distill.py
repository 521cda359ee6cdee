"""`edgekit distill`: train a teacher (or read a black-box teacher's outputs) and distil a student.

Sensor datasets and CSVs go to edgekit.distill.pipeline; text datasets to edgekit.distill.text."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from edgekit.cli import csv_list

    p = sub.add_parser(
        "distill",
        help="train teacher and distilled student on sensor or text data; write RUN_DIR with report",
    )
    src = p.add_argument_group("data (one of --dataset / --csv)")
    src.add_argument(
        "--dataset",
        choices=["shuttle", "mitdb", "daphnet", *TEXT_DATASETS],
        help="a real dataset shipped in a package (chatterbot: text)",
    )
    src.add_argument(
        "--csv", help="your own CSV: one column per channel, optional timestamp and 0/1 label columns"
    )
    src.add_argument("--label-column")
    src.add_argument("--timestamp-column")
    src.add_argument(
        "--channels", type=csv_list, help="comma-separated channel columns (default: all others)"
    )
    src.add_argument(
        "--max-rows", type=int, help="use a subset of rows (text: about this many statements) for quick runs"
    )
    p.add_argument("--window", type=int, help="window length in readings (default per dataset)")
    p.add_argument("--hop", type=int, help="readings between scored windows")
    p.add_argument(
        "--mode", choices=["supervised", "unsupervised"], help="default: supervised when labels exist"
    )
    p.add_argument(
        "--teacher-outputs", help="black-box KD: JSONL/CSV of a teacher's probabilities or labels per row"
    )
    p.add_argument("--temperature", type=float, default=4.0, help="KD temperature T (default 4)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the hard-label loss (default 0.5)")
    p.add_argument(
        "--false-alarm-rate", type=float, default=0.01, help="label-free threshold target on validation"
    )
    p.add_argument("--teacher-epochs", type=int, help="default 40 (sensor), 6 (text)")
    p.add_argument("--student-epochs", type=int, help="default 60 (sensor), 40 (text)")
    txt = p.add_argument_group("text datasets")
    txt.add_argument(
        "--max-length", type=int, default=32, help="tokens per statement, truncated/padded (default 32)"
    )
    txt.add_argument(
        "--min-class-size",
        type=int,
        help="categories with fewer distinct statements merge into 'other' (default 150)",
    )
    txt.add_argument(
        "--student-init",
        choices=["teacher", "random"],
        default="teacher",
        help="student embeddings: projected from the teacher's, or random",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="RUN_DIR to write")
    p.set_defaults(handler=run)


# Text datasets; kept here (not imported from edgekit.distill.text) so parsing flags imports no torch.
TEXT_DATASETS = ("chatterbot",)
SENSOR_ONLY = (
    "csv",
    "label_column",
    "timestamp_column",
    "channels",
    "window",
    "hop",
    "mode",
    "teacher_outputs",
)


def run(args: argparse.Namespace) -> int:
    from edgekit.errors import ConfigError

    if not 0.0 <= args.alpha <= 1.0:
        raise ConfigError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.temperature <= 0:
        raise ConfigError(f"--temperature must be > 0, got {args.temperature}")
    if args.dataset in TEXT_DATASETS:
        return run_text(args)
    from edgekit.distill.pipeline import DistillConfig, distill

    epochs = {
        k: v
        for k, v in (("teacher_epochs", args.teacher_epochs), ("student_epochs", args.student_epochs))
        if v is not None
    }
    cfg = DistillConfig(
        out=args.out,
        dataset=args.dataset,
        csv=args.csv,
        label_column=args.label_column,
        timestamp_column=args.timestamp_column,
        channels=args.channels,
        window=args.window,
        hop=args.hop,
        mode=args.mode,
        teacher_outputs=args.teacher_outputs,
        temperature=args.temperature,
        alpha=args.alpha,
        false_alarm_rate=args.false_alarm_rate,
        seed=args.seed,
        max_rows=args.max_rows,
        **epochs,
    )
    report = distill(cfg)
    print(report["table"])
    print(f"\nwrote {args.out}/report.json, report.md and checkpoints")
    return 0


def run_text(args: argparse.Namespace) -> int:
    from edgekit.distill.text import TextDistillConfig, distill_text
    from edgekit.errors import ConfigError

    given = [f"--{k.replace('_', '-')}" for k in SENSOR_ONLY if getattr(args, k) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}: not used with the text dataset {args.dataset}")
    opts = {
        "teacher_epochs": args.teacher_epochs,
        "student_epochs": args.student_epochs,
        "min_class_size": args.min_class_size,
        "max_statements": args.max_rows,
    }
    cfg = TextDistillConfig(
        out=args.out,
        dataset=args.dataset,
        max_length=args.max_length,
        temperature=args.temperature,
        alpha=args.alpha,
        student_init=args.student_init,
        seed=args.seed,
        **{k: v for k, v in opts.items() if v is not None},
    )
    report = distill_text(cfg)
    print(report["table"])
    print(
        f"\nwrote {args.out}/run.json, report.json, report.md, text_eval.jsonl, teacher_hf/ and student_hf/"
    )
    return 0
