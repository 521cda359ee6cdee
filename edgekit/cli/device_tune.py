"""`edgekit device tune ROOT [--variant NAME]`: measure which variant and provider the installed release runs.

Registered by `register_tune(device_subparsers)` from the `edgekit device` command group.
"""

from __future__ import annotations

import argparse

from edgekit.runtime.selection import Selection


def register_tune(device_sub: argparse._SubParsersAction) -> None:
    p = device_sub.add_parser(
        "tune",
        help="self-test and time every variant on every execution provider of this device; run the fastest",
    )
    p.add_argument("root", metavar="ROOT", help="install root (ROOT/current is tuned)")
    p.add_argument(
        "--profile", help="target profile (providers, threads, daemon.max_batch); default: the bundle's"
    )
    p.add_argument(
        "--variant", metavar="NAME", help="force this variant (its fastest provider is still measured)"
    )
    p.add_argument(
        "--batch-sizes",
        metavar="N[,N...]",
        help="batch sizes to time (default: 1 and the profile's daemon.max_batch)",
    )
    p.add_argument("--budget-ms", type=float, default=300.0, help="timing budget in ms (default 300)")
    p.set_defaults(handler=run_tune)


def format_selection(sel: Selection | None) -> str:
    """The choice and its measurements, one line per (variant, provider) pair."""
    if sel is None:
        return "no variant selection recorded"
    how = "forced" if sel.forced else "fastest correct"
    lines = [f"running variant {sel.variant} on {sel.provider} ({how}; tuned {sel.tuned_at})"]
    for m in sel.measurements:
        if m.self_test != "passed":
            lines.append(f"  {m.variant:<16} {m.provider:<28} self-test {m.self_test}")
            continue
        times = ", ".join(f"batch {b}: {ms:.4f} ms" for b, ms in m.median_ms.items())
        lines.append(f"  {m.variant:<16} {m.provider:<28} {times}; score {m.score:.3f}")
    return "\n".join(lines)


def run_tune(args: argparse.Namespace) -> int:
    from edgekit.bundle.manifest import Manifest
    from edgekit.bundle.signing import verify_bundle
    from edgekit.cli import csv_list
    from edgekit.errors import BundleError, ConfigError
    from edgekit.profiles import load_profile
    from edgekit.runtime.install import current_release
    from edgekit.runtime.tune import tune_release

    release = current_release(args.root)
    if release is None:
        raise BundleError(f"{args.root}: nothing installed (no current release)")
    try:
        sizes = [int(b) for b in csv_list(args.batch_sizes)] if args.batch_sizes else None
    except ValueError:
        raise ConfigError(f"--batch-sizes must be integers, got {args.batch_sizes!r}") from None
    manifest: Manifest = verify_bundle(release, None)  # hashes: the release is what install verified
    profile = load_profile(args.profile or manifest.profile)
    sel = tune_release(
        release, profile, sizes, variant=args.variant, budget_s=args.budget_ms / 1000, manifest=manifest
    )
    print(f"{release.name}:")
    print(format_selection(sel))
    return 0
