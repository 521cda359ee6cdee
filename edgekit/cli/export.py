"""`edgekit export | keygen | verify | install | rollback`: build, sign, check and install bundles.

export imports torch/onnx inside its handler; the other four are device-side and never do.
"""

from __future__ import annotations

import argparse

from edgekit.cli import csv_list, options_from_args
from edgekit.runtime.unpack import MIB, UnpackLimits  # stdlib only: cheap to import for --help

UNPACK_DEFAULT_MB = UnpackLimits().max_bytes // MIB


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a RUN_DIR for a target profile: ONNX, quantize, gate, signed bundle"
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="what `edgekit distill --out` wrote")
    p.add_argument(
        "--profile", required=True, help="profile name (see `edgekit profiles`) or path to a YAML file"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="BUNDLE_DIR",
        help="bundle folder to write (BUNDLE_DIR.tar.gz beside it)",
    )
    p.add_argument(
        "--key",
        metavar="PRIVATE_KEY_FILE",
        help="Ed25519 key to sign with (without it the bundle is unsigned)",
    )
    p.add_argument("--model", default="student", help="which model of the run to export (default: student)")
    p.add_argument("--model-id", help="bundle model id (default: <dataset>-<model>)")
    p.add_argument(
        "--version",
        default="1.0.0",
        dest="model_version",
        help="semantic version of this release (default 1.0.0)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing BUNDLE_DIR")
    p.add_argument(
        "--variants",
        type=csv_list,
        metavar="MODE[,MODE...]",
        help="quantization modes the bundle carries, e.g. fp32,int8-dynamic (default: the profile's variants); "
        "the device measures which to run",
    )
    p.add_argument(
        "--latency-runs",
        type=int,
        default=500,
        help="interleaved batch-1 timing runs per model (default 500)",
    )
    casc = p.add_argument_group("cascade (student first, teacher for the windows it is unsure of)")
    casc.add_argument(
        "--cascade",
        nargs="?",
        const="local",
        choices=["local", "remote"],
        help="local (the default with no value): the teacher, quantized like the student, rides in the bundle; "
        "remote: only the escalation rule, escalated windows go to a teacher service",
    )
    casc.add_argument(
        "--escalate-rate",
        type=float,
        help="override the run's rule target: escalate this share of validation windows",
    )
    casc.add_argument(
        "--escalate-for-quality",
        type=float,
        metavar="FRACTION",
        help="override the run's rule target: fewest escalations reaching this share of the teacher's quality",
    )
    casc.add_argument(
        "--severe-class",
        action="append",
        dest="severe_classes",
        metavar="NAME",
        help="override the run's severe classes (repeatable): they always escalate, and the release gate checks "
        "the student's recall on them (gate.max_severe_recall_drop)",
    )
    p.set_defaults(handler=run_export)

    p = sub.add_parser("keygen", help="create an Ed25519 key pair for signing bundles")
    p.add_argument(
        "--out",
        default="edgekit.key",
        metavar="PRIVATE_KEY_FILE",
        help="private key path (public key: .pub beside it)",
    )
    p.add_argument(
        "--pub", metavar="PUBLIC_KEY_FILE", help="public key path (default: PRIVATE_KEY_FILE with .pub)"
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(handler=run_keygen)

    p = sub.add_parser("verify", help="check a bundle's signature, file hashes and golden self-test")
    p.add_argument("bundle", metavar="BUNDLE_DIR")
    p.add_argument("--pubkey", required=True, metavar="PUBLIC_KEY_FILE")
    p.add_argument("--profile", help="run the self-test with this profile's providers and threads")
    p.set_defaults(handler=run_verify)

    p = sub.add_parser(
        "install", help="verify a bundle (folder or .tar.gz) and make it ROOT/current atomically"
    )
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--root", required=True, metavar="DIR")
    p.add_argument("--pubkey", required=True, metavar="PUBLIC_KEY_FILE")
    p.add_argument("--profile", help="run the self-test with this profile's providers and threads")
    p.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="install an older version of the model that is current (refused by default: replayed releases)",
    )
    p.add_argument(
        "--variant",
        metavar="NAME",
        help="run this variant of a multi-variant bundle instead of the one the device measures fastest",
    )
    p.add_argument(
        "--max-unpacked-mb",
        type=int,
        default=UNPACK_DEFAULT_MB,
        help=f"refuse a tarball whose headers add up to more than this (default {UNPACK_DEFAULT_MB})",
    )
    p.set_defaults(handler=run_install)

    p = sub.add_parser("rollback", help="make ROOT/previous current again")
    p.add_argument("--root", required=True, metavar="DIR")
    p.set_defaults(handler=run_rollback)


def _profile(name: str | None):
    from edgekit.profiles import load_profile

    return load_profile(name) if name else None


def run_export(args: argparse.Namespace) -> int:
    import json

    from edgekit.bundle.manifest import Manifest
    from edgekit.escalation import EscalationTarget, rule_line
    from edgekit.export.package import tarball_path
    from edgekit.export.pipeline import ExportOptions, export_run

    escalation = EscalationTarget.from_flags(
        args.escalate_rate, args.escalate_for_quality, args.severe_classes
    )
    opts = options_from_args(ExportOptions, args, renames={"version": "model_version"}, escalation=escalation)
    out = export_run(args.run_dir, args.profile, args.out, key=args.key, options=opts)
    m = Manifest.load(out)
    gate, test = m.metrics["gate"], m.metrics["test"]
    quality = f"macro-F1 {test['macro_f1']:.4f}" if "macro_f1" in test else f"F1 {test.get('f1')}"
    print(
        f"wrote {out} and {tarball_path(out)} ({m.model_id} {m.model_version}, profile {m.profile}, {m.quantization['mode']})"
    )
    print(
        f"  threshold {m.threshold:.6g}; test {quality}; quality gate: {gate['quality_gate']}; latency gate: {gate['latency_gate']}"
    )
    print(f"  batch-1 latency on this host (ms): {json.dumps(gate['latency_ms'])}")
    for v in m.variants[1:]:
        vt, vg = v.metrics["test"], v.metrics["gate"]
        vq = f"macro-F1 {vt['macro_f1']:.4f}" if "macro_f1" in vt else f"F1 {vt.get('f1')}"
        print(
            f"  variant {v.name} ({v.model_file}): test {vq}; quality gate: {vg['quality_gate']}; "
            f"latency gate: {vg['latency_gate']}"
        )
    if m.cascade is not None:
        where = f"teacher {m.cascade.teacher.model_file} in the bundle" if m.cascade.teacher else "rule only"
        print(f"  cascade {m.cascade.mode} ({where}): {rule_line(m.cascade, m.metrics['cascade']['test'])}")
    if "severe_recall_gate" in m.metrics:
        g = m.metrics["severe_recall_gate"]
        figs = ", ".join(
            f"{c} student {v['student_recall']:.3f} / teacher {v['teacher_recall']:.3f}"
            for c, v in g["classes"].items()
        )
        print(f"  severe-class recall gate: {g['status']} ({figs})")
    for w in m.metrics["opcheck"]["warnings"]:
        print(f"  warning: {w}")
    if not args.key:
        print(
            "  warning: the bundle is UNSIGNED (no --key); `edgekit verify --pubkey` and `edgekit install` will refuse it"
        )
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    from edgekit.bundle.signing import keygen

    priv, pub = keygen(args.out, args.pub, overwrite=args.overwrite)
    print(f"wrote private key {priv} (keep it secret) and public key {pub} (copy it to devices)")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from edgekit.bundle.signing import verify_bundle
    from edgekit.runtime.engine import self_test

    m = verify_bundle(args.bundle, args.pubkey)
    profile = _profile(args.profile)
    for name in m.variant_names():
        self_test(args.bundle, m.for_variant(name), profile)
    tests = f"golden self-tests of {len(m.variants)} variants" if m.variants else "golden self-test"
    if m.cascade is not None and m.cascade.teacher is not None:
        self_test(args.bundle, m.for_cascade_teacher(), profile)
        tests += " (and the cascade teacher's)"
    print(
        f"OK {args.bundle}: {m.model_id} {m.model_version} ({m.kind}, profile {m.profile}); signature, {len(m.files)} file hashes and {tests} pass"
    )
    return 0


def run_install(args: argparse.Namespace) -> int:
    from edgekit.cli.device_tune import format_selection
    from edgekit.errors import ConfigError
    from edgekit.runtime.install import install_bundle
    from edgekit.runtime.selection import read_selection

    if args.max_unpacked_mb < 1:
        raise ConfigError(f"--max-unpacked-mb must be at least 1, got {args.max_unpacked_mb}")
    release = install_bundle(
        args.bundle,
        args.root,
        args.pubkey,
        _profile(args.profile),
        allow_downgrade=args.allow_downgrade,
        limits=UnpackLimits(max_bytes=args.max_unpacked_mb * MIB),
        variant=args.variant,
    )
    print(f"installed {release}; {args.root}/current -> {release.name}")
    print(format_selection(read_selection(release)))
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from edgekit.runtime.install import rollback

    release = rollback(args.root)
    print(f"rolled back; {args.root}/current -> {release.name}")
    return 0
