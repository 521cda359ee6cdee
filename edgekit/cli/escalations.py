"""`edgekit escalations serve`: the teacher service that answers the cascade's remote escalations."""

from __future__ import annotations

import argparse

from edgekit.cli import options_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("escalations", help="answer devices' cascade escalations with a teacher bundle")
    p.add_argument("action", choices=["serve"])
    p.add_argument("--bundle", required=True, help="the teacher bundle (an ordinary sensor or text bundle)")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="the devices' broker, mqtt://HOST:PORT")
    p.add_argument(
        "--devices",
        default="+",
        help="+ (every device: edgekit/+/escalations) or a comma-separated list of device ids",
    )
    p.add_argument("--pubkey", help="Ed25519 public key (PEM): refuse a teacher bundle not signed with it")
    p.add_argument("--profile", help="target profile (topic layout, threads) for the teacher")
    p.add_argument("--client-id", help="MQTT client id (default edgekit-escalations: one service per id)")
    p.add_argument("--username", help="MQTT username (password via $EDGEKIT_MQTT_PASSWORD)")
    p.add_argument("--ca", help="CA certificate file for TLS")
    p.add_argument("--max-batch", type=int, default=64, help="escalations scored per teacher call at most")
    p.set_defaults(handler=run_escalations)


def run_escalations(args: argparse.Namespace) -> int:
    from edgekit.runtime.mqtt import ClientOptions
    from edgekit.runtime.teacher_service import EscalationServiceConfig, serve_escalations

    client = options_from_args(ClientOptions, args, renames={"url": "broker"})
    return serve_escalations(options_from_args(EscalationServiceConfig, args, client=client))
