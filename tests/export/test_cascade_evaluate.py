"""`edgekit evaluate --cascade`: cascade.json (student, teacher, chosen point, curve over thresholds) and
the plot, from a real run, both models exported to ONNX and timed with onnxruntime."""

from __future__ import annotations

import itertools
import json

import pytest


@pytest.fixture(scope="module")
def kclass_run(kclass_bundle):
    return kclass_bundle.parent / "run"


def test_evaluate_cascade_writes_the_curve_and_plot(kclass_run, tmp_path, capsys):
    from edgekit.cli import main

    out = tmp_path / "eval"
    assert main(["evaluate", "--cascade", str(kclass_run), "--out", str(out), "--latency-windows", "60"]) == 0
    printed = capsys.readouterr().out
    assert "chosen" in printed and "cascade.json" in printed
    r = json.loads((out / "cascade.json").read_text())
    assert r["schema"] == 1 and r["metric"] == "macro_f1" and r["latency_windows"] == 60
    curve = r["curve"]
    assert len(curve) >= 5
    thresholds = [p["threshold"] for p in curve]
    rates = [p["escalation_rate"] for p in curve]
    assert thresholds == sorted(thresholds)
    assert all(a <= b for a, b in itertools.pairwise(rates))  # monotone in the threshold
    assert rates[0] < 0.05 and rates[-1] == 1.0
    s, t = r["student"], r["teacher"]
    assert (s["escalation_rate"], t["escalation_rate"]) == (0.0, 1.0)
    assert s["quality"] is not None and t["quality"] is not None and s["anomaly_recall"] is not None
    # every window escalated: the teacher's answers, at the student's time plus the teacher's
    assert curve[-1]["quality"] == pytest.approx(t["quality"])
    assert curve[-1]["latency_mean_ms"] == pytest.approx(s["latency_mean_ms"] + t["latency_mean_ms"])
    assert curve[0]["latency_mean_ms"] >= s["latency_mean_ms"]
    # the chosen point is the run's rule (distill's default target: 10% of validation windows)
    assert r["rule"]["validation"]["target"] == {"rate": 0.1, "quality": None}
    assert r["chosen"]["threshold"] == r["rule"]["threshold"] in thresholds
    assert (out / "cascade.png").stat().st_size > 10_000


def test_evaluate_cascade_refuses_a_text_run(synthetic_text_run, tmp_path):
    from edgekit.bench.cascade import evaluate_cascade
    from edgekit.errors import ConfigError

    with pytest.raises(ConfigError, match="text runs are not supported"):
        evaluate_cascade(synthetic_text_run, tmp_path / "x")
