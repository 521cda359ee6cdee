"""Defects found by attacking the daemon (issue 9), each against a real mosquitto and, where the defect is
about the process, a real `edgekit serve`: far-future timestamps, stream table exhaustion, byte-bounded
queue, hostile commands, an unreachable broker, a dying network thread, unverified bundles, downgrades."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from edgekit.bench.rig import DaemonProcess
from edgekit.broker import Broker, free_port
from edgekit.profiles import TargetProfile
from edgekit.runtime.daemon import EXIT_THREAD_DIED, DaemonConfig
from edgekit.runtime.inbox import Inbox
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.payloads import encode_reading
from edgekit.runtime.windows import GAP, OUT_OF_ORDER, RESYNC_AFTER, StreamWindow

GOOD = [1.0] * 9


def _profile(**daemon: object) -> TargetProfile:
    p = TargetProfile(name="test")
    for k, v in daemon.items():
        setattr(p.daemon, k, v)
    return p


def _self_signed(folder: Path, host: str) -> tuple[Path, Path, Path]:
    """A self-signed certificate for `host` (it is its own CA): (ca file, cert file, key file)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = x509.IPAddress(ipaddress.ip_address(host)) if host[0].isdigit() else x509.DNSName(host)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for f in folder.iterdir():
        f.chmod(0o644)  # mosquitto may drop to another user
    folder.chmod(0o755)
    return folder / "cert.pem", folder / "cert.pem", folder / "key.pem"


def _serve(bundle: Path, url: str, *extra: str) -> DaemonProcess:
    """A real `edgekit serve` process, started without waiting for `online` (some never get there)."""
    return DaemonProcess(bundle, url, "dev1", extra, wait_online=False)


def _cfg(bundle: Path, url: str, **kw: object) -> DaemonConfig:
    base: dict = {"device": "dev1", "threshold": -math.inf, "error_interval_s": 0}
    return DaemonConfig(bundle=str(bundle), client=ClientOptions(url), **{**base, **kw})


# -- 1. timestamps far ahead of the daemon's clock ----------------------------------------------------
def test_far_future_timestamps_are_refused_and_never_block_a_stream(rt, broker, mqtt_io, sensor_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/anomalies"])
    with rt.running(_cfg(sensor_bundle, broker.url), _profile(max_clock_skew_s=600.0)) as d:
        pub = publish()
        now = time.time()
        pub.send("edgekit/dev1/sensors/s", b'{"ts": 1e300, "values": [1,1,1,1,1,1,1,1,1]}')
        pub.send("edgekit/dev1/sensors/s", encode_reading(now * 1000.0, GOOD))  # a clock in milliseconds
        for i in range(5):
            pub.send("edgekit/dev1/sensors/s", encode_reading(now + i * 0.01, GOOD))
        last = now + 0.04
        assert rt.wait_until(lambda: any(r["end_ts"] == last for r in out.json("anomalies"))), d.counters
        assert d.counters.errors["clock_skew"] == 2 and d.counters.errors["out_of_order"] == 0

        # A reading ahead by less than the bound is accepted; when the publisher's clock then steps back,
        # the stream adopts the new timeline after RESYNC_AFTER refusals instead of for the next 5 min.
        pub.send("edgekit/dev1/sensors/t", encode_reading(now + 300.0, GOOD))
        ts = [now + 1 + i * 0.01 for i in range(RESYNC_AFTER + 5)]
        for t in ts:
            pub.send("edgekit/dev1/sensors/t", encode_reading(t, GOOD))
        assert rt.wait_until(lambda: any(r["end_ts"] == ts[-1] for r in out.json("anomalies"))), d.counters
        reported = {r["end_ts"] for r in out.json("anomalies") if r["stream"] == "t"}
        assert reported == {now + 300.0, *ts[RESYNC_AFTER - 1 :]}
        assert d.counters.errors["out_of_order"] == RESYNC_AFTER - 1 and d.counters.errors["gap"] == 1


def test_stream_resyncs_only_when_its_last_timestamp_is_ahead_of_the_clock():
    sw = StreamWindow("s", 1, 1, 1)
    assert sw.admit(2000.0, now=1000.0) == ""
    states = [sw.admit(1000.0 + i, now=1000.0) for i in range(RESYNC_AFTER)]
    assert states == [OUT_OF_ORDER] * (RESYNC_AFTER - 1) + [GAP]
    assert sw.admit(1000.0 + RESYNC_AFTER, now=1000.0) == ""
    past = StreamWindow("p", 1, 1, 1)  # a replay of old data: its order is kept, however long
    assert past.admit(500.0, now=1000.0) == ""
    assert {past.admit(400.0 + i, now=1000.0) for i in range(3 * RESYNC_AFTER)} == {OUT_OF_ORDER}


# -- 2. stream table exhaustion ---------------------------------------------------------------------
def test_idle_streams_make_room_for_new_ones(rt, broker, mqtt_io, sensor_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/anomalies", "edgekit/dev1/errors"])
    t0 = time.time()
    with rt.running(_cfg(sensor_bundle, broker.url, max_streams=2), _profile(stream_idle_s=1.0)) as d:
        pub = publish()
        for i, s in enumerate(("dead-0", "dead-1", "new-0")):  # new-0: both others are still active
            pub.send(f"edgekit/dev1/sensors/{s}", encode_reading(t0 + i, GOOD))
        assert rt.wait_until(lambda: d.counters.errors["stream_limit"] == 1)
        time.sleep(1.2)
        pub.send("edgekit/dev1/sensors/dead-1", encode_reading(t0 + 10, GOOD))  # keeps dead-1 fresh
        for i in range(3):
            pub.send("edgekit/dev1/sensors/new-1", encode_reading(t0 + 20 + i, GOOD))
        assert rt.wait_until(lambda: len([r for r in out.json("anomalies") if r["stream"] == "new-1"]) == 3)
        assert set(d.scorer.streams.streams) == {"dead-1", "new-1"}  # the least recently used went
        snap = d.snapshot()
        assert snap["counters"]["errors"]["stream_evicted"] == 1 and snap["streams"] == 2
        assert any(e["kind"] == "stream_evicted" and e["stream"] == "dead-0" for e in out.json("errors"))


# -- 3. input queue bounded in bytes ----------------------------------------------------------------
def test_inbox_is_bounded_in_bytes_as_well_as_messages():
    box: Inbox[str] = Inbox(100, "drop-oldest", max_bytes=1000)
    assert [box.offer(f"m{i}", 400) for i in range(4)] == [0, 0, 1, 1]
    assert len(box) == 2 and box.nbytes == 800
    assert box.offer("huge", 1001) == 1 and box.get_many(10, 0) == ["m2", "m3"] and box.nbytes == 0
    newest: Inbox[str] = Inbox(100, "drop-newest", max_bytes=1000)
    assert [newest.offer(f"m{i}", 400) for i in range(3)] == [0, 0, 1]
    assert newest.get_many(10, 0) == ["m0", "m1"]


def test_a_flood_of_large_payloads_is_dropped_at_the_byte_bound(rt, broker, mqtt_io, sensor_bundle):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/errors"])
    big = encode_reading(time.time(), GOOD) + b" " * 200_000  # valid JSON, 200 KB
    profile = _profile(queue_bytes=1_000_000, max_batch=1)
    with rt.running(_cfg(sensor_bundle, broker.url), profile) as d:
        # A device CPU slower than the flood, for sure: since orjson and faster MQTT properties, this host's
        # scoring thread kept up with 60 x 200 KB and the bound was never reached (the test saw no drop).
        handle = d.scorer.handle

        def handle_slowly(*item: object) -> None:
            time.sleep(0.02)
            handle(*item)

        d.scorer.handle = handle_slowly
        pub = publish()
        peak = [0]
        for _ in range(60):
            pub.send("edgekit/dev1/sensors/s", big, qos=0)
            peak[0] = max(peak[0], d.inbox.nbytes)
        pub.flush()
        assert rt.wait_until(lambda: d.counters.messages == 60, 30)
        assert d.counters.errors["dropped"] > 0 and peak[0] <= 1_000_000
        assert any(e["kind"] == "dropped" and "bytes" in e["detail"] for e in out.json("errors"))


def test_payloads_far_over_the_limit_never_reach_the_daemon(rt, broker, mqtt_io, sensor_bundle):
    """MQTT 5 Maximum Packet Size: the broker drops a 3 MB message for us; the next reading is scored."""
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/anomalies"])
    with rt.running(_cfg(sensor_bundle, broker.url), _profile(max_payload_bytes=4096)) as d:
        pub = publish()
        pub.send("edgekit/dev1/sensors/s", encode_reading(1.0, GOOD) + b" " * 3_000_000)
        pub.send("edgekit/dev1/sensors/s", encode_reading(2.0, GOOD) + b" " * 5000)  # counted: oversized
        pub.send("edgekit/dev1/sensors/s", encode_reading(3.0, GOOD))
        assert rt.wait_until(lambda: any(r["end_ts"] == 3.0 for r in out.json("anomalies")))
        assert d.counters.messages == 2 and d.counters.errors["oversized"] == 1


# -- 4. hostile commands ------------------------------------------------------------------------------
def test_every_refused_command_is_counted_and_none_gives_a_traceback(rt, broker, mqtt_io, sensor_bundle):
    listen, publish = mqtt_io
    beats = listen(["edgekit/dev1/heartbeat"])
    with _serve(sensor_bundle, broker.url, "--heartbeat-s", "0.3") as srv:
        assert rt.wait_until(lambda: bool(beats.on("heartbeat")), 20), srv.log
        pub = publish()
        nested = [b"[" * 3000 + b"]" * 3000, b'{"a":' * 1500 + b"1" + b"}" * 1500, b"[" * 2000 + b"]" * 2000]
        for payload in nested:
            pub.send("edgekit/dev1/cmd", payload)
        for _ in range(400):  # a burst: far more than the scoring thread takes between two drains
            pub.send("edgekit/dev1/cmd", b'{"cmd": "heartbeat"}')
        pub.flush()

        def errors() -> dict:
            return beats.json("heartbeat")[-1]["counters"]["errors"]

        assert rt.wait_until(lambda: errors()["bad_command"] == len(nested), 15), srv.log
        assert rt.wait_until(lambda: errors()["command_dropped"] > 0, 5), errors()
        assert errors()["internal_error"] == 0
        assert srv.stop() == 0
    assert "Traceback" not in srv.log and "command_dropped" in srv.log


# -- 5. broker unreachable ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, reason",
    [
        (f"mqtt://127.0.0.1:{free_port()}", "Connection refused"),
        ("mqtt://no-such-broker.invalid:1883", "gaierror"),
    ],
)
def test_an_unreachable_broker_is_named_with_the_reason(rt, sensor_bundle, url, reason):
    with _serve(sensor_bundle, url) as srv:
        assert srv.wait_for("connect_failed", 15), srv.log
        line = next(ln for ln in srv.log.splitlines() if "connect_failed" in ln)
        assert url in line and reason in line, line
        start = time.monotonic()
        assert srv.stop() == 0
        assert time.monotonic() - start < 5  # nothing to deliver: no waiting for acknowledgements


def test_connection_failures_are_counted_in_the_heartbeat(rt, sensor_bundle):
    cfg = _cfg(sensor_bundle, f"mqtt://127.0.0.1:{free_port()}", drain_timeout_s=0.2)
    with rt.running(cfg, wait=False) as d:
        assert rt.wait_until(lambda: d.snapshot()["counters"]["errors"]["connect_failed"] >= 2, 10)
        assert d.snapshot()["connected"] is False
        assert d.pending_publishes() == 0  # nothing piles up in the outgoing queue while unreachable


def test_tls_verification_failure_is_reported(rt, sensor_bundle, caplog):
    """A TLS listener whose certificate the daemon's CA did not sign: verification fails, and says so."""
    tmp_path = Path(
        tempfile.mkdtemp(prefix="edgekit-tls-")
    )  # pytest's tmp is 0700: mosquitto may not read it
    tmp_path.chmod(0o755)
    ca, cert, key = _self_signed(tmp_path / "server", "127.0.0.1")
    other_ca = _self_signed(tmp_path / "other", "someone-else")[0]
    port = free_port()
    conf = f"listener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
    with Broker(extra_conf=conf):
        opts = ClientOptions(f"mqtts://127.0.0.1:{port}", ca=str(other_ca))
        cfg = DaemonConfig(bundle=str(sensor_bundle), client=opts, device="dev1", drain_timeout_s=0.2)
        with rt.running(cfg, wait=False) as d:
            assert rt.wait_until(lambda: d.counters.errors["connect_failed"] >= 1, 10)
            assert not d.connected.is_set()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text and f"mqtts://127.0.0.1:{port}" in caplog.text
    shutil.rmtree(tmp_path, ignore_errors=True)


# -- 6. a daemon thread that dies takes the process down (so systemd restarts it) ----------------------
def test_the_process_exits_non_zero_when_the_mqtt_thread_dies(rt, broker, sensor_bundle, tmp_path):
    # A real fault: paho cannot encode a password over 65,535 bytes and raises struct.error in its
    # network thread at the first connection attempt, which ends that thread.
    pw = tmp_path / "password"
    pw.write_text("p" * 70_000)
    with _serve(sensor_bundle, broker.url, "--username", "u", "--password-file", str(pw)) as srv:
        try:
            code = srv.wait(20)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running with a dead MQTT thread; log:\n{srv.log}") from None
        srv.stop()
    assert code == EXIT_THREAD_DIED, srv.log
    assert "MQTT network thread died" in srv.log and "struct.error" in srv.log


# -- 7. unverified bundles are announced, and a profile can forbid them --------------------------------
def test_a_daemon_without_pubkey_says_bundles_are_unverified(rt, broker, mqtt_io, sensor_bundle, tmp_path):
    listen, _ = mqtt_io
    status = listen(["edgekit/dev1/status", "edgekit/dev1/heartbeat"])
    args = ("--heartbeat-s", "0.3")
    with _serve(sensor_bundle, broker.url, *args) as srv:
        assert rt.wait_until(lambda: bool(status.json("heartbeat")), 20), srv.log
        assert srv.stop() == 0
    assert "NOT signature-checked" in srv.log
    assert status.json("heartbeat")[-1]["verified"] is False
    assert all(s["verified"] is False for s in status.json("status"))

    profile = tmp_path / "strict.yaml"
    profile.write_text("name: strict\ndaemon:\n  require_pubkey: true\n")
    with _serve(sensor_bundle, broker.url, *args, "--profile", str(profile)) as strict:
        assert strict.wait(20) == 2
        strict.stop()
    assert "require_pubkey" in strict.log and "Traceback" not in strict.log


def test_a_daemon_with_pubkey_reports_verified(rt, broker, sensor_bundle, keypair):
    with rt.running(_cfg(sensor_bundle, broker.url, pubkey=str(keypair[1]))) as d:
        assert d.snapshot()["verified"] is True and json.loads(d._status("online"))["verified"] is True


# -- 8. hot reload refuses an older version of the same model --------------------------------------
@pytest.mark.parametrize("allow", [False, True])
def test_hot_reload_refuses_a_downgrade_unless_allowed(
    rt, broker, mqtt_io, sensor_bundle, keypair, tmp_path, allow
):
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/errors", "edgekit/dev1/status"])
    v2 = rt.bundle_version(sensor_bundle, tmp_path / "v2", "2.0.0", keypair[0])
    old = rt.bundle_version(sensor_bundle, tmp_path / "v1-5", "1.5.0", keypair[0])
    cfg = _cfg(v2, broker.url, pubkey=str(keypair[1]), allow_downgrade=allow)
    with rt.running(cfg) as d:
        publish().send("edgekit/dev1/cmd", json.dumps({"cmd": "reload", "bundle": str(old)}))
        if allow:
            assert rt.wait_until(lambda: any(s["model_version"] == "1.5.0" for s in out.json("status")), 15)
            assert d.counters.reloads == 1
            return
        assert rt.wait_until(lambda: d.counters.errors["reload_failed"] == 1, 15)
    err = next(e for e in out.json("errors") if e["kind"] == "reload_failed")
    assert "downgrade" in err["detail"] and "1.5.0" in err["detail"] and "2.0.0" in err["detail"]
    assert d.snapshot()["model_version"] == "2.0.0" and d.counters.reloads == 0
