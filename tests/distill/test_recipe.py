"""The label-scarce recipe inside edgekit: `--dataset plaid` resolves to the rocket teacher, the augmented
transfer set and T 2 / alpha 0.3; the student trains on the unlabelled series and their views, and both
models read raw windows (--tune, --augment on CSV windows and the refusals: test_multiclass.py)."""

import json

import numpy as np
import pytest

from edgekit.distill.config import DistillConfig, resolve
from edgekit.distill.pipeline import distill


def test_plain_plaid_config_resolves_to_the_recipe():
    cfg = resolve(DistillConfig(out="x", dataset="plaid", label_fraction=0.1, seed=3))
    assert (cfg.teacher, cfg.augment, cfg.temperature, cfg.alpha) == ("rocket", "default", 2.0, 0.3)
    assert cfg.augment_views == 10 and cfg.student_steps == 2000
    csv = resolve(DistillConfig(out="x", csv="f.csv"))
    assert (csv.teacher, csv.augment, csv.temperature, csv.alpha, csv.student_steps) == (
        "tcn",
        "none",
        4.0,
        0.5,
        None,
    )
    # a value given explicitly wins over the dataset's recipe
    assert (
        resolve(DistillConfig(out="x", dataset="plaid", temperature=1.0, augment="none")).student_steps
        is None
    )


@pytest.fixture(scope="module")
def plaid_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("plaid") / "run"
    report = distill(
        DistillConfig(
            out=str(out), dataset="plaid", max_rows=80, label_fraction=0.3, augment_views=2, student_steps=300
        )
    )
    return out, report


def test_plaid_slice_recipe_beats_chance_on_unlabelled_series_and_views(plaid_run):
    out, _report = plaid_run
    saved = json.loads((out / "report.json").read_text())
    # 80 TRAIN series: about 20% (stratified by class) validation, the rest train, one resampled window
    # each; 80 TEST series
    n = saved["windows"]["train"]
    assert n + saved["windows"]["val"] == 80 and 14 <= saved["windows"]["val"] <= 20
    assert saved["windows"]["test"] == 80
    assert saved["window"] == 256 and saved["teacher_kind"] == "rocket"
    assert saved["augment"] == {"mode": "default", "views": 2}
    # every training series (labelled or not) and 2 views of each are in the transfer set
    assert saved["transfer_rows"] == 3 * n > saved["labelled_rows"]
    assert saved["labelled_rows"] >= round(0.3 * n)  # >= 1 per class can add a few
    assert saved["labelled_fraction"] == pytest.approx(saved["labelled_rows"] / n)
    # the baseline sees only the labelled series and their views
    assert saved["no_kd_rows"] == 3 * saved["labelled_rows"]
    majority = max(saved["student"]["per_class"][c]["support"] for c in saved["classes"]) / 80
    for name in ("teacher", "student"):
        assert saved[name]["class_accuracy"] > max(1 / 11, majority), name
    assert saved["kd"]["temperature"] == 2.0 and saved["kd"]["alpha"] == 0.3
    # the 6.4k-parameter student is >= 20x smaller than the rocket teacher (equivalent count)
    assert saved["student"]["params"] < 7000 and saved["compression"] > 20
    run = json.loads((out / "run.json").read_text())
    assert run["models"]["teacher"]["arch"] == "rocket" and run["models"]["student"]["arch"] == "cnn-small"
    assert run["window"] == 256 and run["channels"] == ["dim0"]  # a device feeds raw one-channel windows


def test_plaid_run_exports_teacher_and_student_with_raw_windows(plaid_run, tmp_path):
    """The run's models read the bundle's window of raw readings: the two-channel transform is in the graph."""
    import onnxruntime as ort
    import torch

    from edgekit.export.onnx import export_torch
    from edgekit.models.registry import ModelSpec, build_model, load_weights
    from edgekit.run import load_run

    out, _ = plaid_run
    run = load_run(out)
    w = run.windows()
    x = (
        (w.test_x[:8] - np.asarray(run.info.normalization.mean)) / np.asarray(run.info.normalization.std)
    ).astype(np.float32)
    for name in ("teacher", "student"):
        arch = run.info.models[name]
        m = load_weights(build_model(ModelSpec(arch.arch, dict(arch.kwargs))), str(run.checkpoint(name)))
        path = export_torch(m, torch.from_numpy(x[:2]), tmp_path / f"{name}.onnx", opset=17)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert sess.get_inputs()[0].shape[1:] == [256, 1]
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        with torch.no_grad():
            want = m(torch.from_numpy(x)).numpy()
        assert (got.argmax(1) == want.argmax(1)).all(), name
        assert np.abs(got - want).max() < 1e-4, name  # the export gate's parity tolerance
