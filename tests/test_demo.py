"""The main job, end to end on a small slice of real data: `edgekit demo --quick` as a user runs it."""

import os
import re
import subprocess
import sys
from pathlib import Path


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
    # 3. serve: the daemon scored the replayed test split, reported anomalies, counted the bad payload
    assert "anomaly reports on edgekit/demo-gw/anomalies" in out
    assert "malformed 1" in out and "exit code after SIGTERM 0" in out
    assert "ms vs the 100 ms budget of profile x86-gateway" in out
    # 4. bench: interleaved variants incl. teacher vs student, e2e through the broker, reports with plots
    for variant in ("x86-gateway", "raspberry-pi-4", "torch-student", "torch-teacher"):
        assert f"\n{variant} " in out
    assert "daemon e2e at 100 readings/s" in out and "saturation point" in out
    for report in ("model", "e2e"):
        assert (tmp_path / "bench" / report / "report.json").is_file()
        assert (tmp_path / "bench" / report / "report.md").is_file()
    # every runs/demo/... path README.md tells a user to use exists after the demo (e.g. arm_check's bundle)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    paths = set(re.findall(r"runs/demo/([A-Za-z0-9_.\-/]*[A-Za-z0-9_.\-])", readme))
    assert "bundles/raspberry-pi-4" in paths
    for rel in paths:
        assert (tmp_path / rel).exists(), f"README names runs/demo/{rel}, which the demo does not write"
    for script in set(re.findall(r"\bscripts/[A-Za-z0-9_.\-]+", readme)):
        assert os.access(Path(__file__).resolve().parents[1] / script, os.X_OK), script
