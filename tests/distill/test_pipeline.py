"""Short real distillations: small slices of the shipped datasets, few epochs (CI has 2 cores)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgekit.data import load_dataset
from edgekit.distill.pipeline import DistillConfig, distill
from edgekit.models.registry import ModelSpec, build_model, load_weights

QUICK = {"max_rows": 4000, "teacher_epochs": 4, "student_epochs": 8}


@pytest.fixture(scope="module")
def shuttle_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shuttle")
    return out, distill(DistillConfig(out=str(out), dataset="shuttle", **QUICK))


def test_student_learns_better_than_chance_and_constant(shuttle_run):
    _, report = shuttle_run
    rate = report["test_anomaly_rate"]
    constant_f1 = 2 * rate / (1 + rate)  # always predicting "anomaly"
    for name in ("teacher", "student", "student_no_kd"):
        assert report[name]["roc_auc"] > 0.9, name
        assert report[name]["f1"] > max(0.5, constant_f1), name
    assert report["student"]["recall"] > 0.5


def test_report_schema_and_files(shuttle_run):
    out, _report = shuttle_run
    saved = json.loads((out / "report.json").read_text())
    for name in ("teacher", "student", "student_no_kd"):
        assert {"f1", "precision", "recall", "roc_auc", "params", "bytes"} <= set(saved[name])
    assert saved["retention"] == pytest.approx(saved["student"]["f1"] / saved["teacher"]["f1"])
    assert 0.0 <= saved["agreement"] <= 1.0
    assert saved["teacher"]["params"] >= 20 * saved["student"]["params"]
    assert saved["teacher"]["params"] >= 100_000
    for f in ("teacher.pt", "student.pt", "student_no_kd.pt", "run.json", "windows.npz", "report.md"):
        assert (out / f).is_file(), f
    assert "| student |" in (out / "report.md").read_text()


def test_checkpoints_reload_with_weights_only(shuttle_run):
    out, _ = shuttle_run
    run = json.loads((out / "run.json").read_text())
    model = load_weights(build_model(ModelSpec.from_dict(run["models"]["student"])), str(out / "student.pt"))
    with np.load(out / "windows.npz") as w:
        x = (w["test_x"][:4] - np.array(run["normalization"]["mean"], np.float32)) / np.array(
            run["normalization"]["std"], np.float32
        )
    assert model(torch.from_numpy(x.astype(np.float32))).shape == (4, 2)


def test_training_is_deterministic(tmp_path):
    cfg = {"dataset": "shuttle", "max_rows": 1500, "teacher_epochs": 2, "student_epochs": 2}
    a = distill(DistillConfig(out=str(tmp_path / "a"), **cfg))
    b = distill(DistillConfig(out=str(tmp_path / "b"), **cfg))
    assert a["student"]["f1"] == b["student"]["f1"] and a["teacher"]["threshold"] == b["teacher"]["threshold"]


def test_blackbox_distillation_from_teacher_file_without_labels(shuttle_run, tmp_path):
    """Only an API teacher's probabilities are available, and the CSV has no label column."""
    out, _ = shuttle_run
    run = json.loads((out / "run.json").read_text())
    table = load_dataset("shuttle").take(slice(0, 3000))
    teacher = load_weights(
        build_model(ModelSpec.from_dict(run["models"]["teacher"])), str(out / "teacher.pt")
    )
    x = (table.values - np.array(run["normalization"]["mean"], np.float32)) / np.array(
        run["normalization"]["std"], np.float32
    )
    with torch.no_grad():
        probs = torch.softmax(teacher(torch.from_numpy(x[:, None, :].astype(np.float32))), 1)[:, 1].numpy()
    csv = tmp_path / "readings.csv"
    csv.write_text(
        ",".join(table.channels) + "\n" + "\n".join(",".join(f"{v:g}" for v in row) for row in table.values)
    )
    outputs = tmp_path / "teacher.jsonl"
    outputs.write_text("\n".join(json.dumps({"row": i, "prob": float(p)}) for i, p in enumerate(probs)))
    report = distill(
        DistillConfig(
            out=str(tmp_path / "bb"),
            csv=str(csv),
            teacher_outputs=str(outputs),
            window=1,
            hop=1,
            student_epochs=8,
        )
    )
    assert report["mode"] == "supervised" and report["blackbox"]
    assert (
        report["student"]["f1"] is None and report["teacher"]["params"] is None
    )  # no test labels, unknown teacher
    assert report["agreement"] > 0.9  # the student reproduces the API teacher's decisions


def test_blackbox_hard_labels_csv(tmp_path):
    table = load_dataset("shuttle").take(slice(0, 2000))
    outputs = tmp_path / "labels.csv"
    outputs.write_text("label\n" + "\n".join(str(int(v)) for v in table.labels))
    csv = tmp_path / "readings.csv"
    csv.write_text(
        ",".join(table.channels) + "\n" + "\n".join(",".join(f"{v:g}" for v in row) for row in table.values)
    )
    report = distill(
        DistillConfig(
            out=str(tmp_path / "bb"),
            csv=str(csv),
            teacher_outputs=str(outputs),
            window=1,
            hop=1,
            student_epochs=6,
        )
    )
    assert report["agreement"] > 0.9


def test_label_free_mode_on_mitdb(tmp_path):
    report = distill(
        DistillConfig(out=str(tmp_path / "m"), dataset="mitdb", teacher_epochs=4, student_epochs=4)
    )
    assert report["mode"] == "unsupervised"
    assert report["teacher"]["roc_auc"] is not None and report["teacher"]["roc_auc"] > 0.5
    run = json.loads((tmp_path / "m" / "run.json").read_text())
    assert run["score"] == "identity" and run["false_alarm_rate"] == 0.01


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "mitdb", "--mode", "supervised"], "no anomalies to learn from"),
        (["--csv", "/nonexistent.csv"], "no such file"),
        (["--dataset", "shuttle", "--window", "8"], "windows must have length 1"),
        (["--dataset", "shuttle", "--alpha", "2"], "--alpha must be in [0, 1]"),
    ],
)
def test_cli_expected_failures_are_one_line(tmp_path, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", "distill", *args, "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
