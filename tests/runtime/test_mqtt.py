"""Broker URLs, topic layout, partitioning, and the client factory against a real mosquitto."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

from edgekit.errors import ConfigError
from edgekit.profiles import MQTTTopics
from edgekit.runtime.mqtt import (
    ClientOptions,
    Topics,
    make_client,
    owns_stream,
    parse_broker_url,
    parse_partition,
)


def test_parse_broker_url():
    a = parse_broker_url("mqtt://127.0.0.1:1884")
    assert (a.host, a.port, a.tls) == ("127.0.0.1", 1884, False)
    b = parse_broker_url("mqtts://dev%40site:p%3Ass@broker.local")
    assert (b.host, b.port, b.tls, b.username, b.password) == ("broker.local", 8883, True, "dev@site", "p:ss")
    assert parse_broker_url("localhost").port == 1883
    for bad in ("http://x", "mqtt://:1883", "mqtt://h:notaport"):
        with pytest.raises(ConfigError):
            parse_broker_url(bad)


def test_topics_default_layout_and_stream_extraction():
    t = Topics(MQTTTopics(), "dev1")
    assert t.sensors_filter == "edgekit/dev1/sensors/#"
    assert (t.anomalies, t.status, t.errors, t.heartbeat, t.cmd, t.scores) == tuple(
        f"edgekit/dev1/{x}" for x in ("anomalies", "status", "errors", "heartbeat", "cmd", "scores")
    )
    assert t.stream_of("edgekit/dev1/sensors/pump-3") == "pump-3"
    assert t.stream_of("edgekit/dev1/sensors/a/b") is None
    assert t.stream_of("edgekit/dev1/sensors/") is None
    assert t.stream_of("edgekit/dev2/sensors/x") is None


def test_topics_custom_template_with_suffix():
    t = Topics(MQTTTopics(sensors="plant/{device}/{stream}/data"), "d")
    assert t.sensors_filter == "plant/d/+/data"
    assert t.stream_of("plant/d/s9/data") == "s9" and t.stream_of("plant/d/s9/other") is None


def test_device_id_must_be_one_topic_level():
    for bad in ("a/b", "a+", "#", ""):
        with pytest.raises(ConfigError):
            Topics(MQTTTopics(), bad)


def test_partition_is_a_stable_split():
    assert parse_partition("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError):
            parse_partition(bad)
    streams = [f"s{i}" for i in range(200)]
    owners = [[owns_stream(s, (k, 3)) for k in range(3)] for s in streams]
    assert all(sum(o) == 1 for o in owners)  # each stream has exactly one owner
    assert all(sum(o[k] for o in owners) > 10 for k in range(3))  # and the split is not degenerate


def test_client_sets_tcp_nodelay_on_its_socket(broker):
    client, addr = make_client(ClientOptions(url=broker.url, client_id="nodelay-test"))
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect(addr.host, addr.port)
    client.loop_start()
    try:
        assert connected.wait(5)
        sock = client.socket()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("device", ["a\nb", "tab\there", "nul\0", "del\x7f", "c1\x85", "x" * 1025])
def test_device_ids_mosquitto_would_refuse_fail_at_start(device):
    """Before: a newline passed and mosquitto then dropped the daemon's connection again and again."""
    with pytest.raises(ConfigError, match="device id"):
        Topics(MQTTTopics(), device)


def test_serve_refuses_a_control_character_device_id_in_one_line(sensor_bundle):
    cmd = [sys.executable, "-m", "edgekit", "serve", "--bundle", str(sensor_bundle), "--device", "pump\n1"]
    proc = subprocess.run(
        [*cmd, "--broker", "mqtt://127.0.0.1:1"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "control characters" in proc.stderr


def test_client_id_help_states_the_real_defaults():
    """README/--help must not contradict the code: the defaults --help names are default_client_id's."""
    from edgekit.cli import build_parser
    from edgekit.runtime.mqtt import default_client_id

    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    help_text = " ".join(next(a.help for a in serve._actions if "--client-id" in a.option_strings).split())
    assert f"default {default_client_id('<device>', None, None)}," in help_text
    assert default_client_id("<device>", (1, 3), None).replace("1of3", "<K>of<N>") in help_text
    assert "unique per process with --share-group" in help_text
