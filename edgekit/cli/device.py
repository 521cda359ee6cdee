"""`edgekit device status|install|rollback ROOT`: one device root, as the device sees it.

Each action is one subparser under `device` (add another with its own `_register_*` function).
"""

from __future__ import annotations

import argparse

from edgekit.cli.device_tune import register_tune


def _target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service", help="systemd unit to `systemctl reload` (default: SIGHUP the daemon's pid)")


def _register_status(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status", help="current/previous release, install record, variant choice, daemon health"
    )
    p.add_argument("root", metavar="ROOT")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run_status)


def _register_install(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install", help="verify, stage, activate and wait for the daemon's health; undo if unhealthy"
    )
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("root", metavar="ROOT")
    p.add_argument("--pubkey", required=True, help="Ed25519 public key the bundle must be signed with")
    p.add_argument(
        "--health-timeout", type=float, default=60.0, help="seconds the daemon has to report healthy"
    )
    p.add_argument("--keep", type=int, default=3, help="releases kept besides current and previous")
    _target_flags(p)
    p.set_defaults(handler=run_install)


def _register_rollback(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollback", help="make the previous release current again; the daemon reloads")
    p.add_argument("root", metavar="ROOT")
    p.add_argument("--health-timeout", type=float, default=60.0, help="seconds the daemon has to follow")
    _target_flags(p)
    p.set_defaults(handler=run_rollback)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("device", help="inspect, install onto or roll back one device root")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for reg in (_register_status, _register_install, _register_rollback, register_tune):
        reg(actions)


def run_status(args: argparse.Namespace) -> int:
    import json

    from edgekit.flash.status import device_status, format_status

    status = device_status(args.root)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def run_install(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgekit.flash.deploy import Target, install_checked

    target = Target(Path(args.root), Path(args.pubkey), args.service, args.health_timeout, args.keep)
    release, detail = install_checked(args.bundle, target, how="edgekit device install")
    print(f"installed {release.name}: current -> releases/{release.name}")
    print(f"health: {detail}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgekit.flash.deploy import Target, rollback_device

    target = Target(Path(args.root), Path(), args.service, args.health_timeout)
    release, detail = rollback_device(target)
    print(f"rolled back: current -> releases/{release.name}")
    print(f"health: {detail}")
    return 0
