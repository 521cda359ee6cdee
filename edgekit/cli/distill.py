"""`edgekit distill`: train a teacher (or read a black-box teacher's outputs) and distil a student.

Sensor datasets and CSVs go to edgekit.distill.pipeline; text datasets to edgekit.distill.text.
Settings come from, highest first: flags given on the command line, the `--config` file, defaults.
"""

from __future__ import annotations

import argparse

from edgekit.distill.config import (
    AUGMENTED_STEPS,
    GENERAL_DEFAULTS,
    SENSOR_DATASETS,
    SERIES_RECIPE,
    TEACHERS,
    TEXT_DATASETS,
    TEXT_MAX_LENGTH,
    TEXT_STUDENT_EPOCHS,
    TEXT_TEACHER_EPOCHS,
    DistillConfig,
)

# Flag destinations that only one kind uses; giving one to the other kind is an error.
SENSOR_ONLY = (
    "csv",
    "label_column",
    "timestamp_column",
    "channels",
    "window",
    "hop",
    "mode",
    "teacher_outputs",
    "normal_class",
    "label_fraction",
    "escalate_rate",
    "escalate_for_quality",
    "severe_classes",
    "teacher",
    "augment",
    "augment_views",
    "perturbed_copies",
    "student_steps",
    "tune",
    "teacher_self_train",
)
TEXT_ONLY = ("max_length", "min_class_size", "student_init")
TEXT_RENAMES = {"max_statements": "max_rows"}


def register(sub: argparse._SubParsersAction) -> None:
    from edgekit.cli import csv_list
    from edgekit.data.text import MIN_CLASS_SIZE

    d = DistillConfig(out="")  # defaults quoted in the help
    p = sub.add_parser(
        "distill",
        help="train teacher and distilled student on sensor or text data; write RUN_DIR with report",
        description="Precedence: flags given on the command line override the --config file, which "
        "overrides the defaults. Every run writes its effective config to RUN_DIR/config.yaml; "
        "`edgekit distill --config RUN_DIR/config.yaml --out NEW_DIR` repeats it.",
    )
    p.add_argument(
        "--config",
        metavar="RUN.yaml",
        help="settings file: any field of DistillConfig (sensor) or TextDistillConfig (text), e.g. an "
        "earlier run's RUN_DIR/config.yaml; flags given here override its values",
    )
    src = p.add_argument_group("data (one of --dataset / --csv)")
    src.add_argument(
        "--dataset",
        choices=[*SENSOR_DATASETS, *TEXT_DATASETS],
        help="a real dataset shipped in a package (chatterbot, rotten_tomatoes: text)",
    )
    src.add_argument(
        "--csv",
        help="your own CSV: one column per channel, optional timestamp and 0/1 label columns; without "
        "--channels, a column that looks like a time or a label must be named with the flags below",
    )
    src.add_argument(
        "--label-column",
        help="the class label column (never a model input): 0/1, integers or names; blank cells are "
        "unlabelled rows (the student learns them from the teacher)",
    )
    src.add_argument(
        "--normal-class",
        help="the class that is not an anomaly (default: a class named 'normal', else the first of two); "
        "K-class reports add anomaly recall and false alarms against it",
    )
    src.add_argument(
        "--label-fraction",
        type=float,
        help="keep the labels of this seeded random share of training rows and hide the rest "
        "(label-scarce experiments; validation and test keep theirs; default 1)",
    )
    src.add_argument("--timestamp-column", help="unix seconds or ISO 8601 times; rows are sorted by it")
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
        "--teacher-outputs",
        help="black-box KD: JSONL/CSV of a teacher's class probabilities or labels per row "
        '({"row": 17, "probs": [p0, ..., pK-1]} or CSV row,p0,...,pK-1)',
    )
    series = "plaid, acsf1, japanesevowels"
    p.add_argument(
        "--temperature",
        type=float,
        help=f"KD temperature T (default {SERIES_RECIPE['temperature']:g} for {series}, "
        f"else {GENERAL_DEFAULTS['temperature']:g})",
    )
    p.add_argument(
        "--alpha",
        type=float,
        help=f"weight of the hard-label loss (default {SERIES_RECIPE['alpha']:g} for {series}, "
        f"else {GENERAL_DEFAULTS['alpha']:g})",
    )
    p.add_argument(
        "--teacher",
        choices=TEACHERS,
        help="white-box teacher: tcn (trained by gradient) or rocket (random convolutions + linear head, "
        f"strong with few labels; needs windows >= 9; default rocket for {series}, else tcn)",
    )
    p.add_argument(
        "--augment",
        choices=["none", "default"],
        help="add augmented views of every training window to the student's transfer set, the teacher "
        "queried on each view (jitter, scaling, mixup; windows > 1 also time shift, crop, magnitude warp); "
        f"not with --teacher-outputs (default: default for {series}, else none)",
    )
    p.add_argument(
        "--augment-views", type=int, help=f"augmented views per training window (default {d.augment_views})"
    )
    p.add_argument(
        "--perturbed-copies",
        type=int,
        help="--mode unsupervised: perturbed copies of each normal window the teacher scores for the "
        f"student (spikes, level shifts, noise, dropped/stuck channels, time warps; default {d.perturbed_copies})",
    )
    p.add_argument(
        "--student-steps",
        type=int,
        help=f"train each student for this many optimizer steps instead of epochs (default {AUGMENTED_STEPS} "
        "with --augment, else epochs with early stopping)",
    )
    p.add_argument(
        "--tune",
        action="store_true",
        default=None,
        help="choose temperature and alpha on validation from a small grid (T 1/2/4 x alpha 0.1/0.3/0.5, a "
        "short schedule per point); report.json records the grid and the choice",
    )
    p.add_argument(
        "--teacher-self-train",
        type=float,
        help="rocket teacher: refit its head once with unlabelled windows it predicts at least this "
        "confidently (pseudo-labels; default off)",
    )
    p.add_argument(
        "--false-alarm-rate",
        type=float,
        help=f"label-free threshold target on validation (default {d.false_alarm_rate:g})",
    )
    p.add_argument(
        "--teacher-epochs",
        type=int,
        help=f"default {d.teacher_epochs} (sensor), {TEXT_TEACHER_EPOCHS} (text)",
    )
    p.add_argument(
        "--student-epochs",
        type=int,
        help=f"default {d.student_epochs} (sensor), {TEXT_STUDENT_EPOCHS} (text)",
    )
    esc = p.add_argument_group(
        "cascade rule (sensor runs; chosen on validation, recorded in run.json, used by `export --cascade`)"
    )
    esc.add_argument(
        "--escalate-rate",
        type=float,
        help="escalate this share of windows to the teacher (default 0.1 unless --escalate-for-quality)",
    )
    esc.add_argument(
        "--escalate-for-quality",
        type=float,
        metavar="FRACTION",
        help="escalate the fewest windows that reach this share of the teacher's quality, e.g. 0.99",
    )
    esc.add_argument(
        "--severe-class",
        action="append",
        dest="severe_classes",
        metavar="NAME",
        help="windows the student assigns to (or finds close to) this class always escalate (repeatable)",
    )
    txt = p.add_argument_group("text datasets")
    txt.add_argument(
        "--max-length",
        type=int,
        help=f"tokens per statement, truncated/padded (default {TEXT_MAX_LENGTH})",
    )
    txt.add_argument(
        "--min-class-size",
        type=int,
        help=f"categories with fewer distinct statements merge into 'other' (default {MIN_CLASS_SIZE})",
    )
    txt.add_argument(
        "--student-init",
        choices=["teacher", "random"],
        help="student embeddings: projected from the teacher's (default), or random",
    )
    p.add_argument("--seed", type=int, help=f"default {d.seed}")
    p.add_argument("--out", help="RUN_DIR to write (required unless the --config file sets 'out')")
    p.set_defaults(handler=run)


def _refuse(args: argparse.Namespace, dests: tuple[str, ...], why: str) -> None:
    from edgekit.errors import ConfigError

    given = [f"--{k.replace('_', '-')}" for k in dests if getattr(args, k) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}: {why}")


def run(args: argparse.Namespace) -> int:
    from edgekit.cli import given_fields
    from edgekit.distill.config import build_config, is_text, read_config_file

    data = read_config_file(args.config)
    where = args.config or "flags"
    dataset = args.dataset or data.get("dataset")
    if is_text(dataset):
        _refuse(args, SENSOR_ONLY, f"not used with the text dataset {dataset}")
        from edgekit.distill.text import TextDistillConfig, distill_text

        cfg = build_config(
            TextDistillConfig, data, where, given_fields(TextDistillConfig, args, TEXT_RENAMES)
        )
        report = distill_text(cfg)
        print(report["table"])
        print(
            f"\nwrote {cfg.out}/run.json, config.yaml, report.json, report.md, text_eval.jsonl, "
            "teacher_hf/ and student_hf/"
        )
        return 0
    _refuse(
        args,
        TEXT_ONLY,
        f"only used with the text dataset{'s' * (len(TEXT_DATASETS) > 1)} {', '.join(TEXT_DATASETS)}",
    )
    cfg = build_config(DistillConfig, data, where, given_fields(DistillConfig, args))
    from edgekit.distill.pipeline import distill

    report = distill(cfg)
    print(report["table"])
    print(f"\nwrote {cfg.out}/report.json, report.md, config.yaml and checkpoints")
    return 0
