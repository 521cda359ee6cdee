"""`edgekit mender artifact|module|state`: Mender artifacts for fleets, and the update module on devices."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mender", help="build Mender artifacts and install the edgekit-bundle update module")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = actions.add_parser("artifact", help="wrap a signed bundle into a Mender artifact (mender-artifact)")
    a.add_argument("bundle", metavar="BUNDLE", help="signed bundle folder or .tar.gz")
    a.add_argument(
        "--device-type", action="append", required=True, help="compatible device type (repeatable)"
    )
    a.add_argument("--out", required=True, help="FILE.mender")
    a.add_argument(
        "--sign-key", help="private key mender-artifact signs the artifact with (Mender's own signature)"
    )
    a.set_defaults(handler=run_artifact)

    m = actions.add_parser("module", help="write the edgekit-bundle update module bound to a device root")
    _target_flags(m)
    m.add_argument("--install", action="store_true", required=True, help="write it (into --modules-dir)")
    m.add_argument("--modules-dir", default="/usr/share/mender/modules/v3")
    m.add_argument(
        "--edgekit", help="command the module runs edgekit with (default: this Python's -m edgekit)"
    )
    m.set_defaults(handler=run_module)

    s = actions.add_parser("state", help="(called by the update module) run one Mender module state")
    s.add_argument("state")
    s.add_argument("files_dir", metavar="FILES_DIR")
    _target_flags(s)
    s.set_defaults(handler=run_state)


def _target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="device root (ROOT/current, ROOT/releases/)")
    p.add_argument("--pubkey", required=True, help="Ed25519 public key bundles must be signed with")
    p.add_argument("--service", help="systemd unit to `systemctl reload` (default: SIGHUP the daemon's pid)")
    p.add_argument(
        "--health-timeout", type=float, default=60.0, help="seconds the daemon has to report healthy"
    )
    p.add_argument("--keep", type=int, default=3, help="releases kept besides current and previous")


def _target(args: argparse.Namespace):
    from edgekit.flash.deploy import Target

    return Target(Path(args.root), Path(args.pubkey), args.service, args.health_timeout, args.keep)


def run_artifact(args: argparse.Namespace) -> int:
    from edgekit.flash.mender import build_artifact

    info = build_artifact(args.bundle, args.device_type, args.out, args.sign_key)
    provides = ", ".join(f"{k}={v}" for k, v in info.provides.items())
    print(f"wrote {info.path}: artifact {info.name} for {', '.join(info.device_types)}; provides {provides}")
    return 0


def run_module(args: argparse.Namespace) -> int:
    from edgekit.flash.mender import install_module

    path = install_module(_target(args), args.modules_dir, args.edgekit)
    print(f"wrote {path} (root {Path(args.root).resolve()})")
    return 0


def run_state(args: argparse.Namespace) -> int:
    from edgekit.flash.update_module import run_state as state

    answer = state(args.state, args.files_dir, _target(args))
    if answer is not None:
        sys.stdout.write(answer + "\n")
    return 0
