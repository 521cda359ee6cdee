"""K-class sensor distillation on small synthetic CSVs: class names, blank labels, label scarcity,
black-box K-class outputs and the one-line refusals (few epochs, small models: CI has 2 cores)."""

import json
import logging

import numpy as np
import pytest

from edgekit.distill.pipeline import DistillConfig, distill
from edgekit.distill.prepare import prepare
from edgekit.errors import ConfigError, DataError

CLASSES = ["bearing", "ok", "rotor"]
FAST = {
    "teacher_epochs": 6,
    "student_epochs": 8,
    "teacher_hidden": 32,
    "batch_size": 32,
    "window": 1,
    "hop": 1,
}


def _csv(path, n=1500, seed=0, blank=0.0, names=CLASSES, share=(0.22, 0.7, 0.08)):
    """Readings whose 3 channels sit around a per-class centre; a `blank` share of label cells empty."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(names), n, p=share)
    centres = np.array([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 2.5, -1.0]])
    x = centres[y] + rng.normal(0, 0.6, (n, 3))
    hide = rng.random(n) < blank
    lines = ["a,b,c,fault"] + [
        f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{'' if h else names[k]}"
        for r, k, h in zip(x, y, hide, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cfg(tmp_path, csv, **kw):
    return DistillConfig(out=str(tmp_path / "run"), csv=str(csv), label_column="fault", **(FAST | kw))


@pytest.fixture(scope="module")
def kclass_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kclass")
    csv = _csv(tmp / "faults.csv", blank=0.5)
    return tmp / "run", distill(_cfg(tmp, csv, normal_class="ok"))


def test_k_class_report_names_classes_and_keeps_the_anomaly_view(kclass_run):
    out, _report = kclass_run
    saved = json.loads((out / "report.json").read_text())
    assert saved["classes"] == CLASSES and saved["normal_class"] == "ok"
    for name in ("teacher", "student", "student_no_kd"):
        row = saved[name]
        assert set(row["per_class"]) == set(CLASSES)
        assert {"precision", "recall", "support"} <= set(row["per_class"]["rotor"])
        assert np.array(row["confusion"]).shape == (3, 3)
        assert sum(map(sum, row["confusion"])) == saved["windows"]["test"]
        # the anomaly view (anomaly = not "ok") is still there, beside today's keys
        assert {"f1", "recall", "false_alarm_rate", "roc_auc", "threshold"} <= set(row)
        assert row["macro_f1"] > 0.6, name  # chance is ~0.33 for 3 classes
    assert saved["retention"] == pytest.approx(saved["student"]["macro_f1"] / saved["teacher"]["macro_f1"])
    assert saved["kd_gain"] == pytest.approx(
        saved["student"]["macro_f1"] - saved["student_no_kd"]["macro_f1"]
    )
    assert saved["rare_classes"] == ["rotor"]
    assert "rare class 'rotor'" in (out / "report.md").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["labels"] == CLASSES and run["normal_class"] == "ok"


def test_blank_labels_are_unlabelled_transfer_rows(kclass_run):
    _out, report = kclass_run
    # about half the training windows have no label, yet all of them are in the student's transfer set
    assert report["transfer_rows"] == report["windows"]["train"]
    assert 0.4 < report["labelled_fraction"] < 0.6
    assert report["labelled_rows"] == round(report["labelled_fraction"] * report["transfer_rows"])
    # validation and test keep only labelled windows (they pick thresholds and measure quality)
    assert report["windows"]["test"] == report["student"]["per_class"]["ok"]["support"] + sum(
        report["student"]["per_class"][c]["support"] for c in ("bearing", "rotor")
    )


def test_label_fraction_hides_training_labels_only_and_is_seeded(tmp_path):
    csv = _csv(tmp_path / "f.csv")
    full = prepare(_cfg(tmp_path, csv))
    a = prepare(_cfg(tmp_path, csv, label_fraction=0.1))
    b = prepare(_cfg(tmp_path, csv, label_fraction=0.1))
    c = prepare(_cfg(tmp_path, csv, label_fraction=0.1, seed=1))
    for split in ("val", "test"):
        assert np.array_equal(getattr(full, split).y, getattr(a, split).y)
        assert np.array_equal(getattr(full, split).x, getattr(a, split).x)
    assert (full.train.y >= 0).all() and a.labelled_train.sum() == round(0.1 * len(full.train))
    assert np.array_equal(a.train.y, b.train.y)  # seeded
    kept = a.labelled_train
    assert np.array_equal(a.train.y[kept], full.train.y[kept])  # kept labels are the true ones
    assert not np.array_equal(a.labelled_train, c.labelled_train)  # another seed, another subset


def test_blackbox_k_class_probabilities_and_class_count_mismatch(tmp_path):
    csv = _csv(tmp_path / "f.csv", n=900)
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), 900)
    good = tmp_path / "t.jsonl"
    good.write_text("".join(json.dumps({"row": i, "probs": p.tolist()}) + "\n" for i, p in enumerate(probs)))
    report = distill(_cfg(tmp_path, csv, teacher_outputs=str(good), student_epochs=2))
    assert report["blackbox"] and report["teacher"]["params"] is None
    assert set(report["teacher"]["per_class"]) == set(CLASSES)
    bad = tmp_path / "t4.csv"
    bad.write_text("row,p0,p1,p2,p3\n" + "".join(f"{i},0.25,0.25,0.25,0.25\n" for i in range(900)))
    with pytest.raises(
        DataError, match=r"teacher outputs have 4 classes, the labels have 3 \(bearing, ok, rotor\)"
    ):
        prepare(_cfg(tmp_path, csv, teacher_outputs=str(bad)))


def test_no_labelled_rows_and_no_teacher_is_refused(tmp_path):
    csv = _csv(tmp_path / "f.csv", n=300, blank=1.0)
    with pytest.raises(DataError, match="no labelled training rows and no --teacher-outputs"):
        prepare(_cfg(tmp_path, csv))


def test_class_with_fewer_than_two_labels_is_named(tmp_path, caplog):
    csv = _csv(tmp_path / "f.csv", n=400, share=(0.5, 0.5, 0.0))
    text = csv.read_text().splitlines()
    text[5] = text[5].rsplit(",", 1)[0] + ",rotor"  # one 'rotor' row, in the training part
    csv.write_text("\n".join(text) + "\n")
    with caplog.at_level(logging.WARNING):
        p = prepare(_cfg(tmp_path, csv))
    assert p.classes == CLASSES and "class 'rotor' (1) has fewer than 2" in caplog.text
    two = _csv(tmp_path / "g.csv", n=400, share=(0.0, 1.0, 0.0))
    text = two.read_text().splitlines()
    text[5] = text[5].rsplit(",", 1)[0] + ",rotor"
    text[9] = text[9].rsplit(",", 1)[0] + ",bearing"
    two.write_text("\n".join(text) + "\n")
    # only 'ok' has enough: refused, naming the scarce classes
    with pytest.raises(DataError, match=r"class 'bearing' \(1\), 'rotor' \(1\) has fewer than 2 labelled"):
        prepare(_cfg(tmp_path, two))


def test_plaid_slice_student_beats_chance_and_uses_unlabelled_series(tmp_path):
    from edgekit.distill.prepare_series import prepare_series

    cfg = DistillConfig(
        out=str(tmp_path / "plaid"),
        dataset="plaid",
        max_rows=100,
        hop=50,
        teacher_epochs=15,
        student_epochs=15,
        teacher_hidden=32,
        batch_size=32,
        label_fraction=0.5,
        augment="none",  # the un-augmented path: the transfer set is the training series themselves
    )
    p = prepare_series(cfg)
    # labels hidden by whole training series: a series' windows are all labelled or all not
    for s in np.unique(p.train.end_row):
        labelled = p.labelled_train[p.train.end_row == s]
        assert labelled.all() or not labelled.any()
    assert (p.val.y >= 0).all() and (p.test.y >= 0).all()
    report = distill(cfg)
    assert report["classes"] == [str(i) for i in range(11)]
    assert 0 < report["labelled_rows"] < report["transfer_rows"] == report["windows"]["train"]
    # uniform chance over 11 classes; the published figure (per series, full data) is printed beside
    assert report["student"]["series_accuracy"] > 1 / 11
    assert report["published_accuracy"]["WEASEL-2.0"] > 0.8
    assert "published (aeon, official split): WEASEL-2.0" in report["table"]


def test_tune_chooses_on_validation_only(tmp_path, monkeypatch):
    import edgekit.distill.supervised as sup

    seen = []
    real = sup.choose_kd

    def recording(train, x_val, y_val, k, *a, **kw):
        seen.append((x_val.numpy().copy(), np.asarray(y_val).copy()))
        return real(train, x_val, y_val, k, *a, **kw)

    monkeypatch.setattr(sup, "choose_kd", recording)
    csv = _csv(tmp_path / "f.csv", n=900)
    cfg = _cfg(tmp_path, csv, tune=True, augment="default", augment_views=2, student_steps=120)
    report = distill(cfg)
    tune = report["tune"]
    assert len(tune["grid"]) == 9 and tune["metric"] == "validation macro-F1"
    assert {(g["temperature"], g["alpha"]) for g in tune["grid"]} == {
        (t, a) for t in (1.0, 2.0, 4.0) for a in (0.1, 0.3, 0.5)
    }
    best = max(tune["grid"], key=lambda g: g["val_macro_f1"])
    assert (tune["temperature"], tune["alpha"]) == (best["temperature"], best["alpha"])
    assert (report["kd"]["temperature"], report["kd"]["alpha"]) == (best["temperature"], best["alpha"])
    # the chooser got exactly the validation windows, never the test ones
    from edgekit.distill.prepare import prepare

    p = prepare(cfg)
    ((x_val, y_val),) = seen
    assert np.array_equal(x_val, p.val.x) and np.array_equal(y_val, p.val.y)
    assert len(x_val) != len(p.test.x) or not np.array_equal(x_val, p.test.x)
    assert json.loads((tmp_path / "run" / "report.json").read_text())["tune"] == tune


def test_csv_window_one_with_augmentation_counts_views(tmp_path):
    csv = _csv(tmp_path / "f.csv", n=900, blank=0.5)
    report = distill(
        _cfg(tmp_path, csv, augment="default", augment_views=3, student_steps=200, normal_class="ok")
    )
    n = report["windows"]["train"]
    assert report["transfer_rows"] == 4 * n and report["labelled_rows"] < n
    assert report["augment"] == {"mode": "default", "views": 3}
    assert report["student"]["macro_f1"] > 0.6  # chance is ~0.33 for 3 classes
    assert report["student"]["params"] == report["student_no_kd"]["params"]


def test_augment_with_teacher_outputs_is_refused_in_one_line(tmp_path):
    csv = _csv(tmp_path / "f.csv", n=300)
    outputs = tmp_path / "t.csv"
    outputs.write_text("row,p0,p1,p2\n" + "".join(f"{i},0.2,0.5,0.3\n" for i in range(300)))
    with pytest.raises(ConfigError, match="--teacher-outputs holds outputs for the real rows only") as err:
        distill(_cfg(tmp_path, csv, teacher_outputs=str(outputs), augment="default"))
    assert "\n" not in str(err.value)


def test_cli_takes_the_recipe_flags(tmp_path, capsys):
    from edgekit.cli import main

    csv = _csv(tmp_path / "f.csv", n=600)
    rc = main(
        ["distill", "--csv", str(csv), "--label-column", "fault", "--window", "1", "--augment", "default",
         "--augment-views", "2", "--student-steps", "60", "--teacher-epochs", "3", "--tune",
         "--out", str(tmp_path / "cli")]
    )  # fmt: skip
    assert rc == 0
    saved = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert saved["augment"]["views"] == 2 and saved["tune"] is not None and saved["student_steps"] == 60
