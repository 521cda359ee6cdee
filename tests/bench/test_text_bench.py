"""`edgekit bench` on a real text bundle through the CLI: tokenize, infer and postprocess timed separately
at batch 1 and 32 on the golden (held-out) texts or a --data file, and end to end through a real broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgekit.cli import main

STAGES = ("preprocess", "infer", "postprocess", "total")


@pytest.mark.parametrize("batch", [1, 32])
def test_text_bundle_stages_are_timed_on_the_golden_texts(text_bundle, tmp_path, capsys, batch):
    out = tmp_path / "rep"
    args = ["bench", str(text_bundle), "--runs", "60", "--warmup", "5", "--batch", str(batch)]
    assert main([*args, "--out", str(out), "--no-plots"]) == 0
    assert "e2e p99" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    v = report["variants"][0]
    assert v["calls"] == 60 and v["batch"] == batch and v["windows"] == 60 * batch
    assert v["input"] == "text" and v["max_length"] == 16
    for stage in STAGES:
        assert 0 < v[stage]["p50"] <= v[stage]["p99"] <= v[stage]["max"]
    assert report["method"]["inputs"].endswith("golden.npz:texts")
    assert report["method"]["stages"].startswith("preprocess (tokenize")


def test_text_bench_takes_a_file_of_texts(text_bundle, tmp_path):
    data = tmp_path / "notes.jsonl"
    lines = ["pump 3 vibrates", "operator note: replaced filter", "what is the meaning of life?"]
    data.write_text("\n".join(json.dumps({"text": t}) for t in lines) + "\n")
    out = tmp_path / "rep"
    args = ["bench", str(text_bundle), "--runs", "20", "--warmup", "2", "--data", str(data)]
    assert main([*args, "--out", str(out), "--no-plots"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["method"]["inputs"] == str(data) and report["method"]["input_windows"] == 3


def test_text_bench_refuses_a_file_without_texts(text_bundle, tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"label": 1}\n')
    assert main(["bench", str(text_bundle), "--runs", "5", "--data", str(data)]) == 2
    assert "text field" in capsys.readouterr().err


def test_text_bundle_e2e_through_a_real_broker(text_bundle, tmp_path: Path):
    out = tmp_path / "e2e"
    args = ["bench", str(text_bundle), "--e2e", "--rates", "50", "--duration", "1", "--streams", "2"]
    assert main([*args, "--out", str(out), "--no-plots"]) == 0
    report = json.loads((out / "report.json").read_text())
    daemon = [r for r in report["e2e"]["rows"] if r["path"] == "daemon"]
    relay = [r for r in report["e2e"]["rows"] if r["path"] == "relay"]
    assert daemon and relay
    row = daemon[0]
    assert row["received"] == row["expected_reports"] == row["messages"] == row["scored"] == 50
    assert row["dropped"] == 0 and row["errors"] == {} and row["latency_ms"]["p50"] > 0
    assert report["method"]["input"].startswith("text messages")
    assert report["e2e"]["daemon_exit_code"] == 0


def test_e2e_replays_texts_in_a_seeded_order_and_readings_in_theirs():
    import numpy as np

    from edgekit.bench.e2e import replay_rows

    texts = np.array([f"long plot summary {i} " * 20 for i in range(50)] + [f"short {i}" for i in range(450)])
    rows = replay_rows(texts, text=True)
    assert sorted(rows.tolist()) == sorted(texts.tolist())  # every text, once
    assert 1 <= sum(t.startswith("long") for t in rows[:50]) <= 15  # the head samples the file, not its head
    assert replay_rows(texts, text=True).tolist() == rows.tolist()  # seeded
    windows = np.arange(24, dtype=np.float32).reshape(4, 3, 2)  # readings stay in order: they form streams
    assert replay_rows(windows, text=False).tolist() == np.arange(24).reshape(12, 2).tolist()
