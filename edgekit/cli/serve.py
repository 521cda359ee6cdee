"""`edgekit serve` (the on-device MQTT daemon) and `edgekit service install|print` (its systemd unit)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgekit.cli import options_from_args


def _add_connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bundle", required=True, help="bundle directory, or a file holding its path (re-read on SIGHUP)"
    )
    p.add_argument("--broker", required=True, help="mqtt://HOST:PORT (mqtts:// for TLS; user:pass@ accepted)")
    p.add_argument(
        "--device",
        required=True,
        help="device id used in topics: edgekit/<ID>/sensors/<stream> (sensor bundles), "
        "edgekit/<ID>/text/<stream> (text bundles)",
    )
    p.add_argument("--profile", help="target profile name or YAML path (topics, queue, batch, QoS, threads)")
    p.add_argument("--pubkey", help="Ed25519 public key (PEM): refuse bundles not signed with it")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--share-group", help="MQTT v5 shared subscription group (window-1/hop-1 models only)")
    scale.add_argument(
        "--partition", help="K/N: serve only streams with crc32(stream) %% N == K (any window)"
    )
    p.add_argument(
        "--username", help="MQTT username (password via --password-file or $EDGEKIT_MQTT_PASSWORD)"
    )
    p.add_argument("--ca", help="CA certificate file for TLS")
    p.add_argument("--cert", help="client certificate file for TLS")
    p.add_argument("--key-file", help="client private key file for TLS")
    p.add_argument(
        "--health-file",
        help="write the loaded model and each reload's outcome here (ROOT/health.json: deploy tools wait on it)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="N > 1: N daemon processes under one supervisor, sharing the streams through the broker "
        "(shared subscription for window-1 models, crc32 partitions otherwise); a dead one is restarted",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus text on this port (127.0.0.1 unless --metrics-host)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the on-device daemon: MQTT readings in, anomaly reports out")
    _add_connection_flags(p)
    p.add_argument("--password", help="MQTT password (visible in ps; prefer --password-file)")
    p.add_argument("--password-file", help="file holding the MQTT password")
    p.add_argument(
        "--client-id",
        help="MQTT client id (default edgekit-<device>, edgekit-<device>-p<K>of<N> with --partition, "
        "unique per process with --share-group)",
    )
    p.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="let a hot reload load an older version of the running model id (refused by default)",
    )
    p.add_argument("--mqtt-version", choices=["5", "3.1.1"], default="5")
    p.add_argument(
        "--tcp-nodelay",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="disable Nagle (default on)",
    )
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument(
        "--threshold",
        type=float,
        help="override the bundle's threshold; -inf reports every window (benchmarks)",
    )
    p.add_argument(
        "--publish-scores",
        action="store_true",
        default=None,
        help="also publish every score on the scores topic",
    )
    p.add_argument(
        "--gap-factor",
        type=float,
        default=10.0,
        help="reset a stream after a gap > F x median period (0: off)",
    )
    p.add_argument("--max-streams", type=int, default=1024)
    p.add_argument("--heartbeat-s", type=float, help="override the profile's heartbeat period")
    p.add_argument(
        "--cascade",
        choices=["bundle", "off", "local", "remote"],
        help="student/teacher cascade: as the bundle says (default, or the profile's daemon.cascade), off, "
        "local (the bundle's teacher on this device) or remote (escalations to `edgekit escalations serve`)",
    )
    p.add_argument(
        "--report-qos",
        type=int,
        choices=[0, 1, 2],
        help="QoS of reports (default: the profile's daemon.report_qos)",
    )
    p.add_argument(
        "--reports",
        choices=["each", "batch"],
        help="one message per report, or one per flush holding a JSON array of its reports",
    )
    p.add_argument(
        "--inline-scoring",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score messages on the MQTT network thread right after it read them, in batches (default: the "
        "profile's daemon.inline_scoring, on); --no-inline-scoring queues every message for the scoring thread",
    )
    p.set_defaults(handler=run_serve)

    s = sub.add_parser("service", help="write a hardened systemd unit that runs `edgekit serve`")
    s.add_argument("action", choices=["install", "print"])
    _add_connection_flags(s)
    s.add_argument("--user", default="edgekit", help="unprivileged user the daemon runs as")
    s.add_argument("--unit-dir", default="/etc/systemd/system")
    s.add_argument("--state-dir", default="/var/lib/edgekit", help="the only writable path (ReadWritePaths)")
    s.add_argument("--watchdog-s", type=int, default=30, help="WatchdogSec; the daemon pings at half of it")
    s.set_defaults(handler=run_service)


def run_serve(args: argparse.Namespace) -> int:
    from edgekit.errors import ConfigError
    from edgekit.runtime.daemon import DaemonConfig, serve
    from edgekit.runtime.mqtt import ClientOptions
    from edgekit.runtime.profiling import profile_threads

    password = args.password
    if args.password_file:
        try:
            password = Path(args.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--password-file {args.password_file}: {exc.strerror or exc}") from None
    client = options_from_args(
        ClientOptions,
        args,
        renames={"url": "broker", "nodelay": "tcp_nodelay"},
        password=password,
        protocol=5 if args.mqtt_version == "5" else 311,
    )
    cfg = options_from_args(DaemonConfig, args, client=client)
    if (args.workers or 1) > 1:
        from edgekit.runtime.workers import serve_workers

        return serve_workers(cfg, args.workers)
    with profile_threads():  # no-op unless $EDGEKIT_PROFILE_OUT names a file
        return serve(cfg)


def run_service(args: argparse.Namespace) -> int:
    from edgekit.runtime.service import UnitSpec, install_unit, render_unit, unit_name, unit_path

    extra: list[str] = []
    for flag in (
        "share_group",
        "partition",
        "username",
        "ca",
        "cert",
        "key_file",
        "metrics_port",
        "health_file",
        "workers",
    ):
        if (value := getattr(args, flag)) is not None:
            extra += ["--" + flag.replace("_", "-"), str(value)]
    absolute = [
        unit_path(p) if p else None
        for p in (
            args.bundle,
            args.pubkey,
            args.profile if args.profile and Path(args.profile).suffix else None,
        )
    ]
    spec = UnitSpec(
        bundle=absolute[0] or args.bundle,
        device=args.device,
        broker=args.broker,
        profile=absolute[2] or args.profile,
        pubkey=absolute[1],
        user=args.user,
        state_dir=args.state_dir,
        watchdog_s=args.watchdog_s,
        extra_args=extra,
    )
    if args.action == "print":
        print(render_unit(spec), end="")
        return 0
    path = install_unit(spec, args.unit_dir)
    print(f"wrote {path}")
    print(
        f"next: useradd --system --no-create-home {args.user}; systemctl daemon-reload; systemctl enable --now {unit_name(args.device)}"
    )
    return 0
