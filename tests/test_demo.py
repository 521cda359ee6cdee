"""The main job, end to end on a small slice of real data: `edgekit demo --quick` as a user runs it."""

import subprocess
import sys


def test_demo_quick_runs_every_stage(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", "demo", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "started a private mosquitto" in out
    assert "| student |" in out and "| teacher |" in out
    for target in ("raspberry-pi-4", "jetson-orin-nano", "x86-gateway"):
        assert (tmp_path / "bundles" / target / "manifest.sig").is_file()
    assert (tmp_path / "device" / "current").is_symlink()
