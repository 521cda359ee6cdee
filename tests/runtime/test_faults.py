"""Faults and operations against real mosquitto processes: broker down at start, broker restart mid-stream,
SIGTERM/SIGHUP on a real `edgekit serve` process, hot reload (and refusal of tampered bundles), two
daemons splitting streams, and username/password auth."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest

from edgekit.bench.rig import DaemonProcess
from edgekit.broker import Broker, free_port
from edgekit.data import load_dataset, make_windows
from edgekit.errors import ConfigError
from edgekit.runtime.daemon import Daemon, DaemonConfig
from edgekit.runtime.engine import Engine
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.payloads import encode_batch, encode_reading

T0 = 1_700_000_000.0
GOOD = [1.0] * 9


def world_dir() -> str:
    """A scratch folder mosquitto can use even after dropping root privileges (pytest's tmp is 0700)."""
    d = tempfile.mkdtemp(prefix="edgekit-test-")
    os.chmod(d, 0o777)
    return d


def test_broker_down_at_start_then_up(rt, sensor_bundle):
    b = Broker()  # port chosen, mosquitto not started yet
    try:
        cfg = DaemonConfig(
            bundle=str(sensor_bundle), client=ClientOptions(b.url), device="dev1", threshold=-math.inf
        )
        with rt.running(cfg, wait=False) as d:
            time.sleep(1.0)  # a few refused connection attempts (backoff 0.5 s, doubling)
            assert not d.connected.is_set()
            b.start()
            assert d.subscribed.wait(10), "daemon did not connect once the broker came up"
            out = rt.Listener(b.port, ["edgekit/dev1/anomalies"])
            pub = rt.Publisher(b.port)
            pub.send("edgekit/dev1/sensors/s", encode_reading(T0, GOOD))
            assert rt.wait_until(lambda: len(out.on("anomalies")) == 1)
            out.close()
            pub.close()
    finally:
        b.__exit__()


def test_broker_restart_mid_stream_loses_no_report(rt, sensor_bundle):
    """At-least-once: reports made while the broker is down wait in the client's queue and are sent after
    the reconnect; the listener dedupes by report id (a resent report may arrive twice). Readings
    redelivered by the publisher are dropped by timestamp, so each reading is scored at most once."""
    store = world_dir()
    with Broker(extra_conf=f"persistence true\npersistence_location {store}/\n") as b:
        cfg = DaemonConfig(
            bundle=str(sensor_bundle), client=ClientOptions(b.url), device="dev1", threshold=-math.inf
        )
        with rt.running(cfg) as d:
            out = rt.Listener(
                b.port, ["edgekit/dev1/anomalies"], client_id="restart-listener", persistent=True
            )
            pub = rt.Publisher(b.port)
            n, expected = 400, set()

            def feed() -> None:
                for i in range(n):
                    t = T0 + i * 0.01
                    pub.send(f"edgekit/dev1/sensors/p{i % 2}", encode_reading(t, GOOD))
                    expected.add(f"p{i % 2}@{t!r}")
                    time.sleep(0.002)

            feeder = threading.Thread(target=feed)
            feeder.start()
            time.sleep(0.3)
            b.stop()
            assert rt.wait_until(lambda: not d.connected.is_set(), 5)
            # Readings the daemon had already taken in when the link died: scored while disconnected.
            for i in range(50):
                t = T0 + i
                d.inbox.put(("offline", encode_reading(t, GOOD), time.perf_counter()))
                expected.add(f"offline@{t!r}")
            assert rt.wait_until(
                lambda: d.counters.errors["report_lost"] == 0 and d.pending_publishes() >= 50, 5
            )
            time.sleep(0.5)
            b.start()
            feeder.join(30)
            c = d.counters
            # Every message the daemon took in is either scored or counted: a publisher's queued messages
            # can overtake each other across its reconnect; the late ones are dropped as out_of_order.
            pub.flush(30)  # the broker has every reading (the publisher resends what it could not send)
            assert rt.wait_until(lambda: c.messages >= 400, 30), (
                f"daemon received {c.messages} of 400 readings"
            )
            accounted = lambda: c.readings + c.errors["out_of_order"] + c.errors["duplicate"]  # noqa: E731
            assert rt.wait_until(lambda: accounted() == c.messages + 50, 30)
            assert rt.wait_until(
                lambda: c.windows == c.readings == c.reports
            )  # window 1: a report per reading
            assert c.reconnects >= 1
            # None lost: every report the daemon produced (one per window, ids unique) reaches the listener.
            got = lambda: [r["id"] for r in out.json("anomalies")]  # noqa: E731
            assert rt.wait_until(lambda: len(set(got())) >= c.reports, 30), (
                f"{len(set(got()))} of {c.reports} reports"
            )
            assert len(set(got())) == c.reports and set(got()) <= expected
            assert {i for i in expected if i.startswith("offline@")} <= set(got())
            out.close()
            pub.close()
    shutil.rmtree(store, ignore_errors=True)


def test_sigterm_and_sighup_on_a_real_process(rt, broker, mqtt_io, sensor_bundle, keypair, tmp_path):
    listen, publish = mqtt_io
    v2 = rt.bundle_version(sensor_bundle, tmp_path / "v2", "2.0.0", keypair[0])
    pointer = tmp_path / "current"
    pointer.write_text(str(sensor_bundle))
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(20)
    metrics_port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"}
    status = listen(["edgekit/dev1/status"])
    args = ["--pubkey", str(keypair[1]), "--metrics-port", str(metrics_port), "--threshold=-inf"]
    daemon = DaemonProcess(pointer, broker.url, "dev1", args, env=env)
    try:
        daemon.start()  # returns once the daemon said `online` on edgekit/dev1/status
        assert notify.recv(256).startswith(b"READY=1")
        assert rt.wait_until(lambda: any(s["state"] == "online" for s in status.json("status")), 15)
        out = listen(["edgekit/dev1/anomalies"])
        pub = publish()
        for i in range(20):
            pub.send("edgekit/dev1/sensors/s", encode_reading(T0 + i, GOOD))
        assert rt.wait_until(lambda: len(out.on("anomalies")) == 20)
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert 'edgekit_readings_total{device="dev1"} 20' in text

        pointer.write_text(str(v2))
        daemon.send_signal(signal.SIGHUP)
        assert rt.wait_until(lambda: any(s["model_version"] == "2.0.0" for s in status.json("status")), 15)
        pub.send("edgekit/dev1/sensors/s", encode_reading(T0 + 100, GOOD))
        assert rt.wait_until(lambda: any(r["model_version"] == "2.0.0" for r in out.json("anomalies")))

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
    finally:
        daemon.stop()  # SIGKILL if it is still running; keeps its output
        log = daemon.output
    datagrams = []
    notify.settimeout(0.1)
    while True:
        try:
            datagrams.append(notify.recv(256))
        except OSError:
            break
    notify.close()
    assert b"WATCHDOG=1" in datagrams and b"STOPPING=1" in datagrams, log
    late = listen(["edgekit/dev1/status"])  # a new subscriber sees the retained status
    assert rt.wait_until(lambda: bool(late.json("status")))
    assert late.json("status")[-1]["state"] == "offline" and late.json("status")[-1]["reason"] == "stopped"


def test_hot_reload_by_command_and_refusal_of_tampered_bundles(
    rt, broker, mqtt_io, sensor_bundle, keypair, tmp_path
):
    listen, publish = mqtt_io
    v2 = rt.bundle_version(sensor_bundle, tmp_path / "v2", "2.0.0", keypair[0])
    unsigned = rt.bundle_version(
        sensor_bundle, tmp_path / "bad-sig", "6.6.6", None
    )  # manifest changed, not re-signed
    bad_model = rt.bundle_version(sensor_bundle, tmp_path / "bad-hash", "7.7.7", keypair[0])
    with open(bad_model / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    out = listen(["edgekit/dev1/anomalies", "edgekit/dev1/errors", "edgekit/dev1/status"])
    cfg = DaemonConfig(
        bundle=str(sensor_bundle),
        client=ClientOptions(broker.url),
        device="dev1",
        pubkey=str(keypair[1]),
        threshold=-math.inf,
        error_interval_s=0,
    )
    with rt.running(cfg) as d:
        pub = publish()
        t = [T0]

        def reading_scored_with(version: str) -> bool:
            t[0] += 1
            pub.send("edgekit/dev1/sensors/s", encode_reading(t[0], GOOD))
            return rt.wait_until(
                lambda: any(
                    r["end_ts"] == t[0] and r["model_version"] == version for r in out.json("anomalies")
                )
            )

        assert reading_scored_with("1.0.0")
        pub.send("edgekit/dev1/cmd", json.dumps({"cmd": "reload", "bundle": str(v2)}))
        assert rt.wait_until(
            lambda: any(
                s["model_version"] == "2.0.0" and s["reason"] == "reloaded" for s in out.json("status")
            )
        )
        assert reading_scored_with("2.0.0")
        for bad, why in ((unsigned, "signature"), (bad_model, "sha256")):
            pub.send("edgekit/dev1/cmd", json.dumps({"cmd": "reload", "bundle": str(bad)}))
            assert rt.wait_until(lambda b=bad: any(str(b) in e["detail"] for e in out.json("errors")), 15)
            err = next(e for e in out.json("errors") if str(bad) in e["detail"])
            assert err["kind"] == "reload_failed" and why in err["detail"]
            assert reading_scored_with("2.0.0")  # the old model keeps scoring
        assert d.snapshot()["model_version"] == "2.0.0" and "sha256" in d.snapshot()["last_reload_error"]
        assert d.counters.reloads == 1 and d.counters.errors["reload_failed"] == 2


def test_share_group_splits_readings_exactly_once(rt, broker, mqtt_io, sensor_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/anomalies"])
    cfg = {
        "bundle": str(sensor_bundle),
        "client": ClientOptions(broker.url),
        "device": "dev1",
        "threshold": -math.inf,
        "share_group": "g",
    }
    with rt.running(DaemonConfig(**cfg)) as d1, rt.running(DaemonConfig(**cfg)) as d2:
        pub = publish()
        expected = set()
        for i in range(400):
            t = T0 + i * 0.01
            pub.send(f"edgekit/dev1/sensors/s{i % 4}", encode_reading(t, GOOD))
            expected.add(f"s{i % 4}@{t!r}")
        assert rt.wait_until(lambda: len(out.on("anomalies")) >= 400, 20)
    ids = [r["id"] for r in out.json("anomalies")]
    assert sorted(ids) == sorted(expected)  # every reading scored once, by one of the two
    assert d1.counters.windows > 0 and d2.counters.windows > 0
    assert d1.counters.windows + d2.counters.windows == 400


def test_share_group_refuses_windowed_models(windowed_bundle):
    with pytest.raises(ConfigError, match="--partition"):
        Daemon(
            DaemonConfig(
                bundle=str(windowed_bundle), client=ClientOptions("mqtt://127.0.0.1:1"), share_group="g"
            )
        )


def test_partition_keeps_each_stream_and_its_windows_on_one_daemon(rt, broker, mqtt_io, windowed_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/anomalies"])
    engine = Engine(windowed_bundle)
    table = load_dataset("mitdb").take(slice(0, 400))
    ws = make_windows(table, engine.window, engine.hop)
    ts = T0 + np.arange(len(table)) / 360.0
    end_ts = ts[engine.window - 1 :: engine.hop][: len(ws)]
    streams = [f"ecg{k}" for k in range(6)]
    expected = {f"{s}@{t!r}" for s in streams for t in end_ts.tolist()}
    cfg = {
        "bundle": str(windowed_bundle),
        "client": ClientOptions(broker.url),
        "device": "dev1",
        "threshold": -math.inf,
    }
    with (
        rt.running(DaemonConfig(**cfg, partition="0/2")) as d0,
        rt.running(DaemonConfig(**cfg, partition="1/2")) as d1,
    ):
        pub = publish()
        for k in range(0, len(table), 50):
            for s in streams:
                pub.send(f"edgekit/dev1/sensors/{s}", encode_batch(ts[k : k + 50], table.values[k : k + 50]))
        assert rt.wait_until(lambda: len(out.on("anomalies")) >= len(expected), 20)
    ids = [r["id"] for r in out.json("anomalies")]
    assert sorted(ids) == sorted(expected)  # all windows, each once
    owned0, owned1 = set(d0.scorer.streams.streams), set(d1.scorer.streams.streams)
    assert owned0 and owned1 and owned0.isdisjoint(owned1) and owned0 | owned1 == set(streams)
    assert (
        d0.counters.foreign + d1.counters.foreign
        == d0.counters.messages + d1.counters.messages - len(streams) * 8
    )


def test_username_password_auth(rt, sensor_bundle):
    store = world_dir()
    pw = Path(store) / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(pw), "dev1", "s3cret"], check=True, capture_output=True
    )
    pw.chmod(0o644)
    with Broker(extra_conf=f"password_file {pw}\nallow_anonymous false\n") as b:
        base = {"bundle": str(sensor_bundle), "device": "dev1", "threshold": -math.inf}
        wrong = DaemonConfig(
            **base, client=ClientOptions(b.url, username="dev1", password="wrong"), drain_timeout_s=0.2
        )
        with rt.running(wrong, wait=False) as bad:
            assert rt.wait_until(lambda: bad.counters.errors["connect_refused"] >= 1, 10)
            assert not bad.subscribed.is_set()
        user = uuid.uuid4().hex[:6]
        url = f"mqtt://dev1:s3cret@127.0.0.1:{b.port}"  # credentials in the URL work too
        with rt.running(DaemonConfig(**base, client=ClientOptions(url, client_id=f"ok-{user}"))) as d:
            assert d.subscribed.is_set() and d.counters.errors["connect_refused"] == 0
    shutil.rmtree(store, ignore_errors=True)
