"""The edgekit-bundle update module driven by the real Mender client (standalone), with a real daemon."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from edgekit.errors import BundleError
from edgekit.flash.deploy import read_record
from edgekit.flash.mender import build_artifact
from edgekit.runtime.health import Health, wait_healthy


def _artifact(bundle: Path, tmp_path: Path, device_type: str = "edgekit-test-gw") -> Path:
    out = tmp_path / f"{bundle.name}-{device_type}.mender"
    build_artifact(bundle.with_name(bundle.name + ".tar.gz"), [device_type], out)
    return out


def _serving(device) -> Health:
    h = Health.load(device.root / "health.json")
    assert h is not None
    return h


def test_artifact_carries_bundle_version_arch_and_device_types(releases, tmp_path):
    if subprocess.run(["which", "mender-artifact"], capture_output=True).returncode != 0:
        pytest.skip("mender-artifact not installed")
    out = tmp_path / "a.mender"
    info = build_artifact(releases["v2"], ["gw-a", "gw-b"], out)  # a folder is packed first
    read = subprocess.run(
        ["mender-artifact", "read", str(out)], capture_output=True, text=True, check=True
    ).stdout
    mid = info.name.rsplit("-", 1)[0]
    assert f"edgekit-bundle.{mid}.version: 1.0.1" in read
    assert f"edgekit-bundle.{mid}.arch: x86_64" in read
    assert "gw-a" in read and "gw-b" in read and "Type:   edgekit-bundle" in read


def test_artifact_of_unsigned_bundle_is_refused(releases, tmp_path):
    (releases["v2"] / "manifest.sig").unlink()
    with pytest.raises(BundleError, match="unsigned bundle"):
        build_artifact(releases["v2"], ["gw-a"], tmp_path / "a.mender")
    assert not (tmp_path / "a.mender").exists()


def test_good_artifact_installs_daemon_reloads_commit(device, mender, releases, broker, tmp_path):
    daemon = device.start_daemon(broker.url)
    v1 = device.current
    r = mender("install", str(_artifact(releases["v2"], tmp_path)))
    assert r.returncode == 0, r.stderr
    assert device.current == v1  # staged only: the daemon keeps serving v1 until commit
    assert _serving(device).model_version == "1.0.0"
    r = mender("commit")
    assert r.returncode == 0, r.stderr
    assert device.current != v1
    h = _serving(device)
    assert (h.ok, h.model_version, h.pid) == (True, "1.0.1", daemon.pid)
    assert daemon.wait_for("now scoring with")
    record = read_record(device.root / "current")
    assert record["health"] == "ok" and "passed its golden self-test" in record["health_detail"]
    assert (device.root / "previous").resolve().name == v1
    provides = mender("show-provides").stdout
    assert "edgekit-bundle." in provides and ".version=1.0.1" in provides


def test_wrong_device_type_is_refused(device, mender, releases, tmp_path):
    before = sorted(p.name for p in (device.root / "releases").iterdir())
    r = mender("install", str(_artifact(releases["v2"], tmp_path, device_type="another-board")))
    assert r.returncode != 0
    assert "not compatible with device" in r.stderr
    assert sorted(p.name for p in (device.root / "releases").iterdir()) == before
    assert Path(device.root / "current").resolve().name == before[0]


def test_tampered_bundle_is_refused_and_current_untouched(device, mender, releases, broker, tmp_path):
    device.start_daemon(broker.url)
    v1 = device.current
    bad = releases["v2"]
    model = bad / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    release_tar = bad.with_name(bad.name + ".tar.gz")
    release_tar.unlink()
    subprocess.run(["tar", "czf", str(release_tar), "-C", str(bad.parent), bad.name], check=True)
    r = mender("install", str(_artifact(bad, tmp_path)))
    assert r.returncode != 0
    assert "model.onnx" in r.stderr  # the module's one line, naming the file whose hash is wrong
    assert device.current == v1 and not (device.root / ".mender-staged").exists()
    assert mender("commit").returncode == 2  # nothing in progress
    assert _serving(device).model_version == "1.0.0"


def test_bundle_for_another_arch_is_refused(device, mender, releases, keypair, make_release, tmp_path):
    arm = make_release(
        releases["v1"], tmp_path / "rel" / "arm", keypair[0], model_version="1.0.2", profile="raspberry-pi-4"
    )
    r = mender("install", str(_artifact(arm, tmp_path)))
    assert r.returncode != 0
    assert "is built for aarch64 (profile raspberry-pi-4), this device is x86_64" in r.stderr
    assert device.current.endswith(tuple("0123456789abcdef")) and "1.0.0" in device.current


def test_failing_health_check_rolls_back_and_old_model_keeps_serving(
    device, mender, releases, keypair, other_key, make_release, broker, tmp_path
):
    # Key rotation done on the update module but not on the daemon: the daemon refuses the new release.
    v2 = make_release(releases["v1"], tmp_path / "rel" / "v2-other", other_key[0], model_version="1.0.1")
    mender.bind(Path(other_key[1]))
    daemon = device.start_daemon(broker.url, pubkey=Path(keypair[1]))
    v1 = device.current
    assert mender("install", str(_artifact(v2, tmp_path))).returncode == 0
    since = time.time()
    r = mender("commit")
    assert r.returncode != 0
    assert "rolled back to the previous release: the daemon refused the new model" in r.stderr
    assert device.current == v1
    # the daemon kept v1 and, told to reload current again, reports it healthy
    wait_healthy(device.root / "health.json", device.root / "current", since, 20)
    assert _serving(device).pid == daemon.pid
    failed = [p for p in (device.root / "releases").iterdir() if read_record(p).get("health") == "failed"]
    assert len(failed) == 1


def test_health_timeout_rolls_back(device, mender, releases, broker, tmp_path):
    mender.bind(device.pubkey, health_timeout=3)
    daemon = device.start_daemon(broker.url)
    v1 = device.current
    assert mender("install", str(_artifact(releases["v2"], tmp_path))).returncode == 0
    daemon.send_signal(signal.SIGSTOP)  # a hung daemon: alive, silent
    try:
        r = mender("commit")
    finally:
        daemon.send_signal(signal.SIGCONT)
    assert r.returncode != 0
    assert "health timeout" in r.stderr
    assert device.current == v1
    since = time.time() - 60  # SIGCONT'd daemon answers the queued SIGHUPs: it ends on v1 again
    h = wait_healthy(device.root / "health.json", device.root / "current", since, 20)
    assert h.model_version == "1.0.0"


def test_mender_rollback_drops_the_staged_release(device, mender, releases, tmp_path):
    v1 = device.current
    assert mender("install", str(_artifact(releases["v2"], tmp_path))).returncode == 0
    staged = (device.root / ".mender-staged").read_text().strip()
    assert (device.root / "releases" / staged).is_dir()
    r = mender("rollback")
    assert r.returncode == 0, r.stderr
    assert device.current == v1
    assert not (device.root / "releases" / staged).exists()


def test_module_answers_supports_rollback(device, mender):
    out = subprocess.run(
        [str(mender.module), "SupportsRollback", "/nonexistent"], capture_output=True, text=True
    )
    assert (out.returncode, out.stdout) == (0, "Yes\n")


def test_artifact_signed_with_sign_key_validates(releases, tmp_path):
    if subprocess.run(["which", "mender-artifact"], capture_output=True).returncode != 0:
        pytest.skip("mender-artifact not installed")
    key, pub = tmp_path / "mender.key", tmp_path / "mender.pub"
    # mender-artifact reads PKCS#1 ("traditional") RSA keys
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True, capture_output=True
    )
    subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True
    )
    out = build_artifact(releases["v2"], ["gw-a"], tmp_path / "signed.mender", sign_key=key).path
    ok = subprocess.run(
        ["mender-artifact", "validate", "-k", str(pub), str(out)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    unsigned = build_artifact(releases["v2"], ["gw-a"], tmp_path / "plain.mender").path
    bad = subprocess.run(
        ["mender-artifact", "validate", "-k", str(pub), str(unsigned)], capture_output=True, text=True
    )
    assert bad.returncode != 0
