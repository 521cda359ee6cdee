"""scripts/arm_selftest.py with the host python (the ARM check runs the same script under qemu)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


def test_text_bundle_passes_and_a_wrong_tokenizer_fails(text_bundle: Path, tmp_path: Path) -> None:
    """Text bundles were skipped (exit 3); now golden ids, tokenizer.json and padding are all checked."""
    rc, results = selftest(text_bundle, tmp=tmp_path)
    assert rc == 0
    r = results[0]
    assert r["status"] == "PASS" and r["kind"] == "text" and r["tokenizer"] == "PASS"
    assert r["max_abs_diff"] <= r["atol"]

    bad = tmp_path / "bad-tokenizer"
    shutil.copytree(text_bundle, bad)
    spec = json.loads((bad / "tokenizer.json").read_text())
    spec["normalizer"] = None  # no lowercasing: cased golden texts get other ids
    (bad / "tokenizer.json").write_text(json.dumps(spec))
    m = Manifest.load(bad)
    m.files = hash_files(bad)
    m.save(bad)
    rc, results = selftest(bad, tmp=tmp_path)
    assert rc == 1 and results[0]["status"] == "FAIL" and "token ids" in results[0]["reason"]


ARM_CACHE = Path(os.environ.get("EDGEKIT_ARM_CACHE", SCRIPT.parents[1] / ".arm"))


@pytest.mark.skipif(
    shutil.which("qemu-aarch64-static") is None or not (ARM_CACHE / "root-py3.11" / "usr" / "bin").is_dir(),
    reason="emulated aarch64 environment not set up (run scripts/arm_check.sh once; it needs apt)",
)
def test_text_bundle_passes_the_arm_check_under_qemu(text_bundle: Path) -> None:
    """The real thing once set up (seconds): aarch64 CPython, onnxruntime and tokenizers under qemu-user."""
    proc = subprocess.run(
        [str(SCRIPT.parent / "arm_check.sh"), str(text_bundle)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads((ARM_CACHE / "last_results.jsonl").read_text().splitlines()[0])
    assert r["machine"] == "aarch64" and r["kind"] == "text" and r["status"] == "PASS"
    assert r["tokenizer"] == "PASS"
