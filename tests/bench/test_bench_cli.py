"""`edgekit bench` on a real exported bundle: report files, verdict exit codes, interleaved compare."""

from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.bench import EXIT_BUDGET_FAIL, BenchConfig, run_bench
from edgekit.bench.format import format_table
from edgekit.bench.report import NO_MATPLOTLIB, load_report
from edgekit.cli import main
from edgekit.errors import DataError

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


def _cli(*args: str) -> subprocess.CompletedProcess:
    """`edgekit ARGS` as a user runs it: a fresh process."""
    cmd = [sys.executable, "-m", "edgekit", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_bench_accepts_a_bundle_tarball_and_refuses_a_bad_one_in_one_line(
    sensor_bundle: Path, tmp_path: Path
) -> None:
    tar_path = tmp_path / "shuttle-x86.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(sensor_bundle, arcname=sensor_bundle.name)  # as bundles are shipped: one top folder
    out = tmp_path / "model"
    proc = _cli("bench", str(tar_path), "--runs", "20", "--warmup", "0", "--no-plots", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "Traceback" not in proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["bundle"] == str(tar_path) and report["variants"][0]["calls"] == 20
    assert report["method"]["inputs"].endswith("golden.npz:inputs")

    # --e2e: the daemon under test is served from the unpacked bundle
    out = tmp_path / "e2e"
    args = ["bench", str(tar_path), "--e2e", "--rates", "100", "--duration", "0.3", "--streams", "1"]
    proc = _cli(*args, "--no-relay", "--no-plots", "--profile", "x86-gateway", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = json.loads((out / "report.json").read_text())["e2e"]["rows"][0]
    assert row["received"] == row["expected_reports"] > 0

    bad = tmp_path / "broken.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 this is not a gzip stream")
    proc = _cli("bench", str(bad), "--runs", "5", "--out", str(tmp_path / "bad"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(bad) in lines[0] and "not a readable bundle tarball" in lines[0]


def test_bench_of_a_foreign_arch_bundle_says_the_host_is_not_the_target(
    foreign_bundle: Path, tmp_path: Path
) -> None:
    target = json.loads((foreign_bundle / "manifest.json").read_text())["profile"]
    out = tmp_path / "foreign"
    proc = _cli(
        "bench", str(foreign_bundle), "--runs", "20", "--warmup", "0", "--no-plots", "--out", str(out)
    )
    assert proc.returncode in (0, EXIT_BUDGET_FAIL), proc.stdout + proc.stderr
    host = "x86_64" if target == "raspberry-pi-4" else "aarch64"
    arch = "aarch64" if target == "raspberry-pi-4" else "x86_64"
    verdict = next(line for line in proc.stdout.splitlines() if line.startswith(("PASS:", "FAIL:")))
    assert "NOT ON THE TARGET" in verdict and f"host is {host}, target is {arch}" in verdict, verdict
    assert "run `edgekit bench` on the device" in verdict
    report = json.loads((out / "report.json").read_text())
    assert report["target"] == {"arch": arch, "host_arch": host, "host_is_target": False}
    assert f"target is {arch}" in report["verdict"]["host_warning"]
    assert any(n.startswith("not the target") and f"({arch})" in n for n in report["notes"])
    assert "NOT ON THE TARGET" in (out / "report.md").read_text()


def test_bench_on_the_target_arch_has_no_host_warning(sensor_bundle: Path, tmp_path: Path) -> None:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the session bundle targets x86_64")
    report = run_bench(
        BenchConfig(bundle=str(sensor_bundle), runs=10, warmup=0, out=str(tmp_path), plots=False)
    )
    assert report["target"]["host_is_target"] and "host_warning" not in report["verdict"]
    assert "NOT ON THE TARGET" not in (tmp_path / "report.md").read_text()


def test_tables_come_from_the_saved_json_alone(sensor_bundle: Path, tmp_path: Path) -> None:
    report = run_bench(
        BenchConfig(bundle=str(sensor_bundle), runs=10, warmup=0, out=str(tmp_path), plots=False)
    )
    saved = load_report(tmp_path)
    assert saved["schema"] == report["schema"] == 1
    assert format_table(saved) == format_table(report)
    (tmp_path / "future.json").write_text(json.dumps({**saved, "schema": 99}))
    with pytest.raises(DataError, match="schema 99"):
        load_report(tmp_path / "future.json")
