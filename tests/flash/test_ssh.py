"""`edgekit flash BUNDLE ssh://...`: against a real sshd on a loopback port with throw-away keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.broker import free_port
from edgekit.cli import main

REPO = Path(__file__).resolve().parents[2]
EDGEKIT = f"env PYTHONPATH={REPO} {sys.executable} -m edgekit"
SSH_OPTS = ["--ssh-option", "StrictHostKeyChecking=no", "--ssh-option", "UserKnownHostsFile=/dev/null"]


@pytest.fixture
def sshd(tmp_path):
    """A private sshd (root login by key only) on a free loopback port; yields (port, user key)."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists() or shutil.which("ssh") is None:
        pytest.skip("openssh-server/openssh-client not installed")
    if os.geteuid() != 0:
        pytest.skip("sshd for a login as this user needs root here")
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copy(d / "user.pub", d / "authorized_keys")
    port = free_port()
    conf = d / "sshd_config"
    conf.write_text(
        f"HostKey {d / 'host'}\nListenAddress 127.0.0.1\nUsePAM no\nPermitRootLogin prohibit-password\n"
        f"PasswordAuthentication no\nAuthorizedKeysFile {d / 'authorized_keys'}\nStrictModes no\n"
        f"PidFile {d / 'sshd.pid'}\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(conf), "-p", str(port)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"sshd cannot start: {proc.stderr.read().decode(errors='replace').strip()[-300:]}")
        try:
            import socket

            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port, d / "user"
    proc.terminate()
    proc.wait(10)


def _flash(bundle: Path, port: int, root: Path, key: Path, pubkey: Path, *extra: str) -> int:
    url = f"ssh://root@127.0.0.1:{port}{root}"
    args = ["flash", str(bundle), url, "--pubkey", str(pubkey), "--identity", str(key), "--edgekit", EDGEKIT]
    return main([*args, *SSH_OPTS, *extra])


def test_flash_over_ssh_installs_and_the_daemon_reloads(sshd, device, releases, broker, capsys):
    port, key = sshd
    daemon = device.start_daemon(broker.url)
    tarball = releases["v2"].with_name("v2.tar.gz")
    assert _flash(tarball, port, device.root, key, device.pubkey) == 0
    out = capsys.readouterr().out
    assert "copied v2.tar.gz to root@127.0.0.1" in out
    assert f"daemon pid {daemon.pid} reloaded shuttle-student 1.0.1" in out
    assert "1.0.1" in device.current
    assert not list(Path("/tmp").glob("edgekit-flash.*/v2.tar.gz"))  # the remote copy is removed


def test_flash_of_a_tampered_bundle_is_refused_remotely(sshd, device, releases, capsys):
    port, key = sshd
    bad = releases["v2"]
    (bad / "model.onnx").write_bytes((bad / "model.onnx").read_bytes()[:-1] + b"\0")
    v1 = device.current
    assert _flash(bad, port, device.root, key, device.pubkey) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "edgekit device install failed on root@127.0.0.1" in err[0]
        and "model.onnx" in err[0]
    )
    assert device.current == v1


def test_flash_to_an_unreachable_host_is_one_line(device, releases, tmp_path, capsys):
    port = free_port()  # nobody listens there
    v1 = device.current
    rc = main(
        [
            "flash",
            str(releases["v2"]),
            f"ssh://root@127.0.0.1:{port}{device.root}",
            "--pubkey",
            str(device.pubkey),
            *SSH_OPTS,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1
    assert err[0].startswith(f"edgekit flash: error: cannot reach root@127.0.0.1:{port}: ")
    assert "Connection refused" in err[0]
    assert device.current == v1
