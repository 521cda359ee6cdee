"""`edgekit bench` on a real exported bundle: report files, verdict exit codes, interleaved compare."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.bench import EXIT_BUDGET_FAIL, BenchConfig, run_bench
from edgekit.bench.report import NO_MATPLOTLIB
from edgekit.cli import main

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


def test_report_files_and_pass(sensor_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "rep"
    rc = main(
        [
            "bench",
            str(sensor_bundle),
            "--profile",
            "x86-gateway",
            "--runs",
            "200",
            "--warmup",
            "5",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0
    assert "PASS" in printed and "e2e p99" in printed
    report = json.loads((out / "report.json").read_text())
    for key in ("schema", "machine", "method", "profile", "variants", "verdict", "files"):
        assert key in report
    v = report["variants"][0]
    assert v["calls"] == 200 and v["batch"] == 1
    for stage in ("preprocess", "infer", "postprocess", "total"):
        assert set(v[stage]) >= {"p50", "p90", "p95", "p99", "p99.9", "max", "mean"}
        assert 0 < v[stage]["p50"] <= v[stage]["p99"] <= v[stage]["max"]
    assert v["total"]["p50"] >= v["infer"]["p50"]
    assert report["verdict"] == {
        **report["verdict"],
        "result": "PASS",
        "percentile": "p99",
        "budget_ms": 100.0,
    }
    assert report["machine"]["providers_used"] == ["CPUExecutionProvider"]
    assert report["method"]["inputs"].endswith("golden.npz:inputs")
    md = (out / "report.md").read_text()
    assert "PASS" in md and "## Machine" in md
    with np.load(out / "samples.npz") as s:
        assert len(s[f"{v['name']}/total_ms"]) == 200
    if HAVE_MPL:
        for png in ("latency_cdf.png", "latency_over_time.png", "stages.png"):
            assert (out / png).stat().st_size > 5000
            assert f"({png})" in md


def test_verdict_fails_with_exit_code(
    sensor_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["bench", str(sensor_bundle), "--runs", "30", "--warmup", "2", "--no-plots", "--percentile", "p50"]
    rc = main([*args, "--budget-ms", "0.000001", "--out", str(tmp_path / "fail")])
    assert rc == EXIT_BUDGET_FAIL == 4
    assert "FAIL" in capsys.readouterr().out
    report = json.loads((tmp_path / "fail" / "report.json").read_text())
    assert report["verdict"]["result"] == "FAIL" and report["verdict"]["percentile"] == "p50"
    assert report["profile"]["budget_from"] == "flag"
    assert main([*args, "--budget-ms", "10000", "--out", str(tmp_path / "pass")]) == 0


def test_compare_interleaved_with_torch(sensor_bundle: Path, sensor_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    cfg = BenchConfig(
        bundle=str(sensor_bundle),
        runs=40,
        warmup=2,
        batch=4,
        compare=[str(sensor_bundle), f"torch:{sensor_run}"],
        out=str(tmp_path),
        plots=False,
    )
    report = run_bench(cfg)
    names = [v["name"] for v in report["variants"]]
    assert len(names) == 3 and len(set(names)) == 3
    assert [v["kind"] for v in report["variants"]] == ["bundle", "bundle", "torch"]
    assert report["method"]["interleaved"] and report["method"]["batch"] == 4
    assert report["ratios"][0]["p50_ratio"] == 1.0 and all(r["p50_ratio"] > 0 for r in report["ratios"])
    assert all(v["calls"] == 40 and v["windows"] == 160 for v in report["variants"])


def test_data_file_and_bad_shapes(
    sensor_bundle: Path, sensor_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # windows.npz of the run holds RAW test windows under test_x
    report = run_bench(
        BenchConfig(bundle=str(sensor_bundle), runs=20, warmup=0, data=str(sensor_run / "windows.npz"))
    )
    assert report["method"]["inputs"].endswith("windows.npz:test_x")
    bad = tmp_path / "bad.npz"
    np.savez(bad, inputs=np.zeros((4, 3, 2), np.float32))
    assert (
        main(["bench", str(sensor_bundle), "--runs", "5", "--data", str(bad), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "windows must be" in capsys.readouterr().err


def test_without_matplotlib_plots_are_skipped_with_a_note(
    sensor_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` sees on a bare device
    report = run_bench(BenchConfig(bundle=str(sensor_bundle), runs=10, warmup=0, out=str(tmp_path)))
    assert NO_MATPLOTLIB in report["notes"]
    assert not list(tmp_path.glob("*.png"))
    assert NO_MATPLOTLIB in (tmp_path / "report.md").read_text()


def test_bench_runs_without_training_libraries(sensor_bundle: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from edgekit.cli import main; "
        f"rc = main(['bench', {str(sensor_bundle)!r}, '--runs', '10', '--warmup', '0', '--no-plots', '--out', {str(tmp_path)!r}]); "
        "bad = sorted({'torch', 'onnx', 'transformers', 'optimum'} & set(sys.modules)); "
        "print('LOADED', bad); sys.exit(rc or (1 if bad else 0))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LOADED []" in proc.stdout
