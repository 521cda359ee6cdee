"""systemd unit rendering/installation and sd_notify over a real AF_UNIX datagram socket."""

from __future__ import annotations

import socket
import sys
import uuid

import pytest

from edgekit.cli import main
from edgekit.errors import ConfigError
from edgekit.runtime.service import Notifier, UnitSpec, parse_unit, render_unit


def test_cli_installs_a_hardened_unit(tmp_path, capsys):
    bundle, key = tmp_path / "bundle", tmp_path / "pub.pem"
    rc = main(
        [
            "service",
            "install",
            "--bundle",
            str(bundle),
            "--device",
            "pump-1",
            "--broker",
            "mqtt://127.0.0.1:1883",
            "--profile",
            "raspberry-pi-4",
            "--pubkey",
            str(key),
            "--partition",
            "0/2",
            "--unit-dir",
            str(tmp_path / "units"),
        ]
    )
    assert rc == 0
    path = tmp_path / "units" / "edgekit-pump-1.service"
    assert str(path) in capsys.readouterr().out
    unit = parse_unit(path.read_text())
    svc = unit["Service"]
    assert svc["Type"] == ["notify"] and svc["Restart"] == ["always"] and svc["WatchdogSec"] == ["30"]
    assert (
        svc["User"] == ["edgekit"]
        and svc["NoNewPrivileges"] == ["yes"]
        and svc["ProtectSystem"] == ["strict"]
    )
    assert svc["ReadWritePaths"] == ["/var/lib/edgekit"]
    exec_start = svc["ExecStart"][0].split()
    assert exec_start[:4] == [sys.executable, "-m", "edgekit", "serve"]
    for flag, value in (
        ("--bundle", str(bundle)),
        ("--device", "pump-1"),
        ("--profile", "raspberry-pi-4"),
        ("--pubkey", str(key)),
        ("--partition", "0/2"),
    ):
        assert exec_start[exec_start.index(flag) + 1] == value
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_unit_quotes_paths_with_spaces_and_percent():
    text = render_unit(UnitSpec(bundle="/opt/my bundles/50%", device="d", broker="mqtt://h"))
    assert '"/opt/my bundles/50%%"' in parse_unit(text)["Service"]["ExecStart"][0]


def test_unit_refuses_relative_paths():
    with pytest.raises(ConfigError):
        render_unit(UnitSpec(bundle="relative/bundle", device="d", broker="mqtt://h"))


def test_parse_unit_rejects_garbage():
    with pytest.raises(ConfigError):
        parse_unit("[Service]\nthis is not a key value line\n")


@pytest.mark.parametrize("abstract", [False, True])
def test_sd_notify_datagrams(tmp_path, abstract):
    name = f"@edgekit-test-{uuid.uuid4().hex}" if abstract else str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name[1:] if abstract else name)
    server.settimeout(2)
    try:
        n = Notifier({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "4000000"})
        assert n.enabled and n.watchdog_interval_s == 2.0
        assert n.ready("scoring")
        assert server.recv(256) == b"READY=1\nSTATUS=scoring"
        assert n.watchdog(now=100.0)
        assert server.recv(256) == b"WATCHDOG=1"
        assert not n.watchdog(now=101.0)  # not due yet: half the watchdog period
        assert n.watchdog(now=102.5)
        assert server.recv(256) == b"WATCHDOG=1"
        assert n.stopping()
        assert server.recv(256) == b"STOPPING=1"
    finally:
        server.close()


def test_notifier_is_a_no_op_outside_systemd():
    n = Notifier({})
    assert not n.enabled and not n.ready() and not n.watchdog()
    assert (
        Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_interval_s
        is None
    )


def test_unit_keeps_the_current_symlink_as_given(tmp_path, monkeypatch, capsys):
    """`--bundle ROOT/current` must not be resolved to today's release, or a restart after install/rollback
    would still serve the old model."""
    root = tmp_path / "device"
    (root / "releases" / "m-1.0.0-abcd").mkdir(parents=True)
    (root / "current").symlink_to("releases/m-1.0.0-abcd")
    monkeypatch.chdir(tmp_path)
    for given, expected in ((str(root / "current"), root / "current"), ("device/current", root / "current")):
        args = ["service", "print", "--bundle", given, "--device", "d", "--broker", "mqtt://h"]
        assert main(args) == 0
        exec_start = parse_unit(capsys.readouterr().out)["Service"]["ExecStart"][0].split()
        assert exec_start[exec_start.index("--bundle") + 1] == str(expected)
