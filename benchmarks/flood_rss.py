"""Peak memory of a real `edgekit serve` flooded with ~240 KB payloads through a real mosquitto.

    .venv/bin/python benchmarks/flood_rss.py [--bundle DIR] [--seconds 20] [--payload-kb 240]

A publisher sends valid single readings padded to `--payload-kb` KB with a list of zeros (under the default
daemon.max_payload_bytes of 256 KiB, so each one is accepted and queued) as fast as the broker takes
them (QoS 1, at most 256 in flight), for `--seconds` seconds. The daemon's peak resident memory is its
kernel high-water mark (VmHWM in /proc/PID/status) read at the end, and its counters come from its
heartbeat. Two daemons are measured, one after the other: the default profile (input queue bounded by
daemon.queue_bytes as well as queue_size), and one whose queue_bytes is queue_size x max_payload_bytes,
which is what the count bound alone allowed before the byte bound existed.
Writes the "flood-rss" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paho.mqtt.client as mqtt
from _results import write_section

from edgekit.bench.rig import DaemonProcess, mqtt_client
from edgekit.broker import Broker
from edgekit.profiles import TargetProfile

DEVICE = "flood"
INFLIGHT = 256


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def client(port: int) -> mqtt.Client:
    c = mqtt_client("127.0.0.1", port, max_inflight=INFLIGHT)
    c.loop_start()
    return c


def flood(bundle: Path, profile_yaml: str | None, seconds: float, payload_kb: int) -> dict:
    """One daemon under one flood; returns its memory and counters."""
    with Broker() as broker, tempfile.TemporaryDirectory(prefix="edgekit-flood-") as work:
        args = ["--heartbeat-s", "0.5"]
        if profile_yaml is not None:
            prof = Path(work) / "flood.yaml"
            prof.write_text(profile_yaml)
            args += ["--profile", str(prof)]
        beats: list[dict] = []
        watch = client(broker.port)
        watch.on_message = lambda _c, _u, m: beats.append(json.loads(m.payload))
        watch.subscribe(f"edgekit/{DEVICE}/heartbeat", 0)
        daemon = DaemonProcess(bundle, broker.url, DEVICE, args).start()  # returns once it is online
        try:
            deadline = time.monotonic() + 60
            while not beats and time.monotonic() < deadline:
                time.sleep(0.1)
            if not beats:
                raise SystemExit("the daemon sent no heartbeat: " + daemon.log[-2000:])
            idle = proc_status(daemon.pid)
            # The pad is a long list of small numbers: valid JSON the daemon must fully decode (slower to
            # parse than a string of the same size, so the flood outruns the scoring thread).
            pad = b",".join([b"0"] * (payload_kb * 500))
            tail = b', "values": [1,1,1,1,1,1,1,1,1], "pad": [' + pad + b"]}"
            pub = client(broker.port)
            sent, t_end, t = 0, time.monotonic() + seconds, time.time()
            infos = []
            while time.monotonic() < t_end:
                t += 0.001
                body = b'{"ts": ' + repr(t).encode() + tail  # a fresh timestamp, no re-encoding of the pad
                infos.append(pub.publish(f"edgekit/{DEVICE}/sensors/s{sent % 4}", body, qos=1))
                sent += 1
                if len(infos) >= INFLIGHT:  # backpressure: the broker has taken the previous batch
                    for info in infos:
                        info.wait_for_publish(30)
                    infos.clear()
            for info in infos:
                info.wait_for_publish(30)
            deadline = time.monotonic() + 60  # until the daemon has taken in and drained everything
            while time.monotonic() < deadline and not (
                beats[-1]["counters"]["messages"] >= sent and beats[-1]["queue_depth"] == 0
            ):
                time.sleep(0.2)
            mem = proc_status(daemon.pid)
            pub.disconnect()
            pub.loop_stop()
        finally:
            daemon.stop(30)
            watch.disconnect()
            watch.loop_stop()
        last = beats[-1]
        return {
            "sent": sent,
            "received": last["counters"]["messages"],
            "scored": last["counters"]["readings"],
            "dropped": last["counters"]["errors"]["dropped"],
            "idle_rss_mb": idle["VmRSS"] / 1024,
            "peak_hwm_mb": mem["VmHWM"] / 1024,
            "mb_sent": sent * payload_kb / 1000,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", help="a sensor bundle (default: build a quick real Shuttle bundle)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--payload-kb", type=int, default=240)
    args = ap.parse_args()
    if args.bundle:
        bundle = Path(args.bundle)
    else:
        from e2e_latency import prepare

        bundle, _ = prepare(argparse.Namespace(bundle=None))
    d = TargetProfile(name="x").daemon
    count_only = d.queue_size * d.max_payload_bytes
    rows = []
    for label, yaml in (
        (f"default: queue_size {d.queue_size}, queue_bytes {d.queue_bytes:,}", None),
        (
            f"count bound only: queue_size {d.queue_size}, queue_bytes {count_only:,}",
            f"name: count-only\ndaemon:\n  queue_bytes: {count_only}\n",
        ),
    ):
        print(f"flooding ({label}) for {args.seconds:g} s ...", flush=True)
        r = flood(bundle, yaml, args.seconds, args.payload_kb)
        print(json.dumps(r), flush=True)
        rows.append((label, r))
    lines = [
        f"{args.payload_kb} KB payloads, QoS 1, {args.seconds:g} s of flood per daemon.",
        "",
        "| daemon input queue | sent | received | scored | dropped | MB sent | RSS idle MB | peak VmHWM MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['sent']} | {r['received']} | {r['scored']} | {r['dropped']} | {r['mb_sent']:.0f} "
            f"| {r['idle_rss_mb']:.0f} | {r['peak_hwm_mb']:.0f} |"
        )
    body = "\n".join(lines)
    print(body)
    write_section(
        "flood-rss", "Daemon memory under a flood of large payloads (`benchmarks/flood_rss.py`)", body
    )


if __name__ == "__main__":
    main()
