"""scripts/arm_selftest.py with the host python (the ARM check runs the same script under qemu)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgekit.bundle.manifest import Manifest, hash_files

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "arm_selftest.py"


def selftest(*bundles: Path, tmp: Path) -> tuple[int, list[dict]]:
    out = tmp / "results.jsonl"
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", str(out), *map(str, bundles)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, [json.loads(line) for line in out.read_text().splitlines()]


def test_real_bundle_passes_and_a_wrong_golden_fails(sensor_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(sensor_bundle, bad)
    with np.load(bad / "golden.npz") as g:
        inputs, outputs = g["inputs"], g["outputs"]
    np.savez(bad / "golden.npz", inputs=inputs, outputs=outputs + 0.5)
    m = Manifest.load(bad)
    m.files = hash_files(bad)  # a consistent but wrong bundle: the hashes pass, the numbers do not
    m.save(bad)

    rc, results = selftest(sensor_bundle, tmp=tmp_path)
    assert rc == 0
    r = results[0]
    assert r["status"] == "PASS" and r["max_abs_diff"] <= r["atol"] and r["n"] == len(inputs)
    assert r["machine"] and r["onnxruntime"]

    rc, results = selftest(sensor_bundle, bad, tmp=tmp_path)
    assert rc == 1
    assert [r["status"] for r in results] == ["PASS", "FAIL"]
    assert results[1]["max_abs_diff"] > 0.4


def test_tampered_model_is_an_error(sensor_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "tampered"
    shutil.copytree(sensor_bundle, bad)
    with open(bad / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    rc, results = selftest(bad, tmp=tmp_path)
    assert rc == 1 and results[0]["status"] == "ERROR" and "sha256" in results[0]["reason"]
