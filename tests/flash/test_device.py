"""`edgekit device install|status|rollback`: health-gated install, retention, refusals, status with a variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.flash.deploy import Target, install_checked, read_record
from edgekit.runtime.selection import Measurement, Selection


def _names(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "releases").iterdir())


def test_install_with_daemon_health_then_status_and_rollback(device, releases, broker, capsys):
    daemon = device.start_daemon(broker.url, None, "--allow-downgrade")
    v1 = device.current
    rc = main(["device", "install", str(releases["v2"]), str(device.root), "--pubkey", str(device.pubkey)])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"daemon pid {daemon.pid} reloaded" in out and "1.0.1" in out
    assert main(["device", "status", str(device.root), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["current"]["model_version"] == "1.0.1" and status["current"]["health"] == "ok"
    assert status["previous"]["release"] == v1
    assert status["daemon"]["running"] and status["daemon"]["model_version"] == "1.0.1"
    assert main(["device", "rollback", str(device.root)]) == 0
    assert device.current == v1
    assert "reloaded shuttle-student 1.0.0" in capsys.readouterr().out
    assert daemon.wait_for("now scoring with shuttle-student 1.0.0")


def test_rollback_says_when_the_daemon_refuses_to_follow(device, releases, broker, capsys):
    device.start_daemon(broker.url)  # refuses older versions on reload (no --allow-downgrade)
    v1 = device.current
    assert (
        main(["device", "install", str(releases["v2"]), str(device.root), "--pubkey", str(device.pubkey)])
        == 0
    )
    capsys.readouterr()
    rc = main(["device", "rollback", str(device.root), "--health-timeout", "20"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1
    assert "but the running daemon did not follow" in err[0] and "refusing downgrade" in err[0]
    assert device.current == v1


def test_status_shows_the_variant_choice_when_recorded(device, capsys):
    cpu = "CPUExecutionProvider"
    selection = Selection(
        variant="int8-dynamic",
        provider=cpu,
        measurements=[
            Measurement("fp32", cpu, "passed", {"1": 0.05}, 5, 1.25),
            Measurement("int8-dynamic", cpu, "passed", {"1": 0.04}, 5, 1.0),
        ],
        tuned_at="2026-11-25T00:00:00+00:00",
        forced=False,
    )
    # the variant choice is written by `edgekit device tune` beside the release; status only reads it
    selection.save(device.root / "current")
    assert main(["device", "status", str(device.root)]) == 0
    out = capsys.readouterr().out
    assert "variant int8-dynamic on CPUExecutionProvider" in out and '"median_ms": {"1": 0.04}' in out
    (device.root / "current" / "selection.json").write_text("{not json")  # read defensively
    assert main(["device", "status", str(device.root)]) == 0


def test_only_the_last_n_releases_are_kept(device, releases, keypair, make_release, tmp_path):
    target = Target(device.root, device.pubkey, keep=2)
    for patch in range(1, 5):
        rel = make_release(
            releases["v1"], tmp_path / "r" / f"p{patch}", keypair[0], model_version=f"1.0.{patch}"
        )
        install_checked(rel, target, how="test")
    names = _names(device.root)
    assert len(names) == 2 and any("1.0.4" in n for n in names) and any("1.0.3" in n for n in names)
    assert sorted(p.stem for p in (device.root / "records").glob("*.json")) == names
    assert read_record(device.root / "current")["health"] == "ok"


@pytest.mark.parametrize("defect", ["unsigned", "tampered", "other-arch", "other-key"])
def test_bad_bundles_give_one_line_and_leave_current(
    device, releases, keypair, other_key, make_release, defect, tmp_path, capsys
):
    bad = releases["v2"]
    if defect == "unsigned":
        (bad / "manifest.sig").unlink()
    elif defect == "tampered":
        (bad / "golden.npz").write_bytes((bad / "golden.npz").read_bytes() + b"x")
    elif defect == "other-arch":
        bad = make_release(
            releases["v1"], tmp_path / "arm", keypair[0], model_version="1.0.2", profile="raspberry-pi-4"
        )
    else:
        bad = make_release(releases["v1"], tmp_path / "k", other_key[0], model_version="1.0.2")
    before, v1 = _names(device.root), device.current
    rc = main(["device", "install", str(bad), str(device.root), "--pubkey", str(device.pubkey)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and err[0].startswith("edgekit device: error: ")
    assert device.current == v1 and _names(device.root) == before


def test_health_timeout_of_a_hung_daemon_restores_current(device, releases, broker, capsys):
    import signal

    daemon = device.start_daemon(broker.url)
    v1 = device.current
    daemon.send_signal(signal.SIGSTOP)
    try:
        rc = main(
            [
                "device",
                "install",
                str(releases["v2"]),
                str(device.root),
                "--pubkey",
                str(device.pubkey),
                "--health-timeout",
                "2",
            ]
        )
    finally:
        daemon.send_signal(signal.SIGCONT)
    err = capsys.readouterr().err
    assert rc != 0 and "health timeout" in err and "rolled back to the previous release" in err
    assert device.current == v1
    assert (device.root / "previous").is_symlink() is False  # restored exactly: there was no previous


def test_service_unit_passes_the_health_file_to_the_daemon(capsys):
    args = ["service", "print", "--bundle", "/var/lib/edgekit/current", "--broker", "mqtt://127.0.0.1:1883"]
    args += ["--device", "pump-1", "--health-file", "/var/lib/edgekit/health.json"]
    assert main(args) == 0
    unit = capsys.readouterr().out
    exec_start = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    assert exec_start.endswith("--health-file /var/lib/edgekit/health.json")
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit  # what `--service UNIT` deploys trigger
