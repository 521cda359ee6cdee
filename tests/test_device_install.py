"""A device installs `edgekit[runtime]` exactly as README.md says: a wheel built with `python -m build`,
installed into a fresh virtual environment with no torch, can verify and benchmark a real bundle, and a
training command there says in one line that it needs `edgekit[train]` instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory) -> Path:
    """README's device path: `python -m build --wheel`, then `pip install "edgekit-*.whl[runtime]"`."""
    work = tmp_path_factory.mktemp("device")
    built = _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(REPO)])
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (work / "dist").glob("edgekit-*.whl")
    venv = work / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    pip = _run([str(venv / "bin/python"), "-m", "pip", "install", "-q", f"{wheel}[runtime]"])
    assert pip.returncode == 0, pip.stderr[-2000:]
    return venv


def test_device_install_has_no_training_stack(device_venv: Path) -> None:
    probe = "import importlib.util as u; print([m for m in ('torch','transformers','optimum','onnx') if u.find_spec(m)])"
    out = _run([str(device_venv / "bin/python"), "-c", probe])
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
    profiles = _run([str(device_venv / "bin/edgekit"), "profiles"])
    assert profiles.returncode == 0 and "raspberry-pi-4" in profiles.stdout, profiles.stderr


def test_device_install_verifies_and_benches_a_bundle(
    device_venv: Path, sensor_bundle, keypair, tmp_path
) -> None:
    edgekit = str(device_venv / "bin/edgekit")
    verify = _run([edgekit, "verify", str(sensor_bundle), "--pubkey", str(keypair[1])])
    assert verify.returncode == 0, verify.stderr
    bench = _run(
        [edgekit, "bench", str(sensor_bundle), "--runs", "50", "--warmup", "5", "--out", str(tmp_path / "b")]
    )
    assert bench.returncode == 0, bench.stderr[-2000:]
    assert "PASS" in bench.stdout


@pytest.mark.parametrize("argv", [["distill", "--dataset", "shuttle", "--out", "r"], ["demo", "--quick"]])
def test_training_command_on_device_says_what_to_install(
    device_venv: Path, argv: list[str], tmp_path
) -> None:
    out = _run([str(device_venv / "bin/edgekit"), *argv], cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "edgekit[train]" in lines[0], out.stderr
