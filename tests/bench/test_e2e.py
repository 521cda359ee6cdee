"""`edgekit bench --e2e` against a real mosquitto: a real `edgekit serve` process and a bare relay."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from edgekit.bench import EXIT_BUDGET_FAIL, E2EConfig, run_e2e
from edgekit.bench.sweep import expected_windows, summarize_e2e
from edgekit.cli import main

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


def test_expected_windows():
    assert expected_windows(31, 32, 8) == 0
    assert expected_windows(32, 32, 8) == 1
    assert expected_windows(39, 32, 8) == 1
    assert expected_windows(40, 32, 8) == 2
    assert expected_windows(7, 1, 1) == 7


def _row(path: str, rate: float, p99: float, complete: bool = True) -> dict:
    lat = {"p50": p99 / 3, "p95": p99 / 2, "p99": p99, "max": p99 * 2}
    return {"path": path, "rate": rate, "latency_ms": lat, "complete": complete, "sustained": complete}


def test_verdict_saturation_and_ratio_from_rows():
    rows = [_row("daemon", 100, 2.0), _row("daemon", 1000, 4.0), _row("daemon", 10000, 300.0, complete=False)]
    rows += [_row("relay", 100, 1.0), _row("relay", 1000, 1.0)]
    e = summarize_e2e(rows, 99.0, 5.0, verdict_rate=1000)
    assert e["verdict"]["result"] == "PASS" and e["verdict"]["value_ms"] == 4.0
    assert e["verdict"]["variant"] == "daemon e2e at 1000 readings/s"
    assert e["saturation_per_s"] == 1000 and e["first_unsustained_per_s"] == 10000
    assert rows[0]["relay_p50_ratio"] == pytest.approx(2.0)
    # The same measurements judged against a tighter budget, or at a rate where reports were lost, fail.
    assert summarize_e2e(rows, 99.0, 3.0, 1000)["verdict"]["result"] == "FAIL"
    assert summarize_e2e(rows, 99.0, 1000.0, 20000)["verdict"]["result"] == "FAIL"  # incomplete at 10k
    # Below the lowest swept rate the lowest rate is judged.
    assert summarize_e2e(rows, 99.0, 5.0, 10)["verdict"]["value_ms"] == 2.0


def test_e2e_cli_through_a_real_broker(sensor_bundle: Path, broker, tmp_path: Path, capsys):
    out = tmp_path / "e2e"
    args = ["bench", str(sensor_bundle), "--e2e", "--broker", broker.url, "--profile", "x86-gateway"]
    args += ["--rates", "50", "200", "--duration", "0.6", "--streams", "2", "--out", str(out)]
    rc = main(args)
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "PASS: daemon e2e at 200 readings/s" in printed and "saturation point" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "e2e" and report["verdict"]["passed"]
    rows = report["e2e"]["rows"]
    assert [(r["path"], r["rate"]) for r in rows] == [
        ("daemon", 50),
        ("daemon", 200),
        ("relay", 50),
        ("relay", 200),
    ]
    for r in rows:
        # Shuttle is window 1 / hop 1: one report per reading, every one accounted for.
        assert r["received"] == r["expected_reports"] == r["readings"] > 0, r
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]
        assert r["sustained"]
    for r in rows[:2]:
        assert r["scored"] == r["readings"] and r["dropped"] == 0 and r["relay_p50_ratio"] > 0
    assert report["e2e"]["saturation_per_s"] == 200
    assert report["e2e"]["daemon_exit_code"] == 0  # SIGTERM: clean exit
    assert report["machine"]["cpu_model"]
    md = (out / "report.md").read_text()
    assert "End to end through the broker" in md and "PASS" in md
    if HAVE_MPL:
        for png in ("rate_sweep.png", "e2e_latency_cdf.png", "e2e_latency_over_time.png"):
            assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"]({png})" in md


def test_e2e_budget_miss_exits_non_zero(sensor_bundle: Path, broker, tmp_path: Path, capsys):
    args = [
        "bench",
        str(sensor_bundle),
        "--e2e",
        "--broker",
        broker.url,
        "--rates",
        "100",
        "--duration",
        "0.3",
    ]
    args += ["--no-relay", "--budget-ms", "0.001", "--no-plots", "--out", str(tmp_path / "r")]
    assert main(args) == EXIT_BUDGET_FAIL
    assert "FAIL: daemon e2e at 100 readings/s" in capsys.readouterr().out


def test_windowed_model_through_a_private_broker(windowed_bundle: Path, tmp_path: Path):
    """No --broker: a private mosquitto is started and stopped; window 32 / hop 8 windows are counted exactly."""
    cfg = E2EConfig(
        bundle=str(windowed_bundle),
        profile="x86-gateway",
        rates=[400],
        duration_s=0.5,
        streams=2,
        relay=False,
        plots=False,
        out=str(tmp_path / "w"),
    )
    report = run_e2e(cfg)
    (row,) = report["e2e"]["rows"]
    assert report["method"]["window"] == 32 and report["method"]["hop"] == 8
    per_stream = row["readings"] // 2
    assert row["expected_windows"] == 2 * expected_windows(per_stream, 32, 8) > 0
    assert row["received"] == row["scored"] == row["expected_windows"]
    assert report["method"]["broker"].startswith("private mosquitto")
