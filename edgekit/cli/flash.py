"""`edgekit flash BUNDLE ssh://user@host[:port]/ROOT`: install on one device over ssh, health-checked."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flash", help="copy a bundle to a device over ssh, install it there, wait for health")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("url", metavar="ssh://[USER@]HOST[:PORT]/ROOT")
    p.add_argument("--pubkey", default="/etc/edgekit/edgekit.pub", help="the public key's path ON THE DEVICE")
    p.add_argument("--identity", help="ssh private key (ssh -i)")
    p.add_argument("--edgekit", default="edgekit", help="remote command that runs edgekit")
    p.add_argument("--service", help="systemd unit on the device to `systemctl reload`")
    p.add_argument("--health-timeout", type=float, default=60.0)
    p.add_argument(
        "--ssh-option", action="append", default=[], metavar="OPT", help="extra `ssh -o OPT` (repeatable)"
    )
    p.set_defaults(handler=run_flash)


def run_flash(args: argparse.Namespace) -> int:
    from edgekit.flash.ssh import flash

    options = [x for opt in args.ssh_option for x in ("-o", opt)]
    for line in flash(
        args.bundle,
        args.url,
        args.pubkey,
        identity=args.identity,
        edgekit=args.edgekit,
        service=args.service,
        health_timeout=args.health_timeout,
        ssh_options=options,
    ):
        print(line)
    return 0
