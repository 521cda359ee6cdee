"""The typed run folder: run.json written by one writer, read back and validated by `load_run` with one-line
errors naming the file and the field; windows.npz through `save_windows`/`load_windows`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle.manifest import Normalization
from edgekit.errors import DataError, EdgekitError
from edgekit.run import (
    RUN_SCHEMA,
    ArchSpec,
    RunWindows,
    SensorRun,
    TextRun,
    load_run,
    load_text_eval,
    load_windows,
    save_windows,
    write_run,
    write_text_eval,
)


def sensor_info(**changes) -> SensorRun:
    info = SensorRun(
        dataset="shuttle",
        mode="supervised",
        window=4,
        hop=2,
        channels=["a", "b", "c"],
        normalization=Normalization([0.0, 1.0, 2.0], [1.0, 1.0, 2.0]),
        labels=["normal", "anomaly"],
        score="softmax",
        thresholds={"student": 0.4, "teacher": 0.5},
        models={"student": ArchSpec("tcn", {"channels": 3}), "teacher": ArchSpec("tcn", {"channels": 3})},
        seed=3,
    )
    for k, v in changes.items():
        setattr(info, k, v)
    return info


def write_raw(run_dir: Path, data: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(data))
    return run_dir


def raw_sensor(**changes) -> dict:
    from edgekit.config import to_dict

    return to_dict(sensor_info()) | changes


def test_sensor_run_round_trips(tmp_path):
    info = sensor_info()
    path = write_run(tmp_path, info)
    assert path == tmp_path / "run.json"
    assert json.loads(path.read_text())["schema"] == RUN_SCHEMA
    folder = load_run(tmp_path)
    assert folder.info == info and folder.kind == "sensor" and folder.path == tmp_path
    assert load_run(path).info == info  # the run.json file itself is accepted too
    assert folder.checkpoint("student") == tmp_path / "student.pt"


def test_text_run_round_trips(tmp_path):
    info = TextRun(dataset="chatterbot", labels=["x", "y"], max_length=24, student_dir="student_hf")
    write_run(tmp_path, info)
    folder = load_run(tmp_path)
    assert folder.info == info and folder.kind == "text"
    assert folder.info.escalation_threshold is None and folder.info.teacher_dir is None


def test_run_without_kind_is_a_sensor_run(tmp_path):
    data = raw_sensor()
    del data["kind"]
    assert isinstance(load_run(write_raw(tmp_path, data)).info, SensorRun)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (raw_sensor(schema=2), r"run\.json: field 'schema' is 2, this edgekit reads schema 1"),
        (raw_sensor(kind="audio"), r"run\.json: field 'kind' is 'audio' \(expected sensor or text\)"),
        ({k: v for k, v in raw_sensor().items() if k != "window"}, r"run\.json: field 'window' is required"),
        (raw_sensor(window="64"), r"run\.json: field 'window' must be an integer; got '64'"),
        (
            raw_sensor(score="sigmoid"),
            r"run\.json: field 'score' must be one of softmax or identity; got 'sigmoid'",
        ),
        (
            raw_sensor(models={"student": {"kwargs": {}}}),
            r"run\.json: field 'models\.student\.arch' is required",
        ),
        (raw_sensor(normalization={"mean": [0.0]}), r"run\.json: field 'normalization\.std' is required"),
        (
            raw_sensor(thresholds={"student": None}),
            r"run\.json: field 'thresholds\.student' must be a number",
        ),
        (raw_sensor(extra=1), r"run\.json: field 'extra' is not a known setting"),
        ([1, 2], r"run\.json: must hold a JSON object"),
    ],
)
def test_invalid_run_json_fails_with_one_line_naming_file_and_field(tmp_path, data, message):
    write_raw(tmp_path, data) if isinstance(data, dict) else (tmp_path / "run.json").write_text(
        json.dumps(data)
    )
    with pytest.raises(DataError, match=message) as info:
        load_run(tmp_path)
    assert str(tmp_path / "run.json") in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, EdgekitError)


def test_text_run_lacking_student_dir_names_the_field(tmp_path):
    write_raw(tmp_path, {"schema": 1, "kind": "text", "dataset": "d", "labels": ["a"], "max_length": 8})
    with pytest.raises(DataError, match=r"field 'student_dir' is required"):
        load_run(tmp_path)


def test_missing_or_broken_run_json(tmp_path):
    with pytest.raises(DataError, match=r"no run\.json \(not a RUN_DIR written by `edgekit distill`\)"):
        load_run(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(DataError, match=r"run\.json: not valid JSON"):
        load_run(tmp_path)


def test_unknown_checkpoint_names_the_models_the_run_has(tmp_path):
    write_run(tmp_path, sensor_info())
    with pytest.raises(DataError, match=r"no model 'big' \(has: student, teacher\)"):
        load_run(tmp_path).checkpoint("big")


def test_report_is_empty_without_report_json_and_must_be_an_object(tmp_path):
    write_run(tmp_path, sensor_info())
    folder = load_run(tmp_path)
    assert folder.report() == {}
    (tmp_path / "report.json").write_text(json.dumps({"student": {"f1": 0.9}}))
    assert folder.report()["student"]["f1"] == 0.9
    (tmp_path / "report.json").write_text("[]")
    with pytest.raises(DataError, match=r"report\.json: must hold a JSON object"):
        folder.report()


def test_windows_round_trip_with_and_without_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = lambda n: rng.normal(size=(n, 4, 3)).astype(np.float32)  # noqa: E731
    labelled = RunWindows(x(5), x(6), np.array([0, 1, 0, 0, 1, 1]), x(7), np.ones(7, np.int64))
    save_windows(tmp_path, labelled)
    write_run(tmp_path, sensor_info())
    got = load_run(tmp_path).windows()
    np.testing.assert_array_equal(got.test_x, labelled.test_x)
    np.testing.assert_array_equal(got.val_y, labelled.val_y)
    assert got.test_y.dtype == np.int64

    save_windows(tmp_path, RunWindows(x(5), x(6), None, x(7), None))
    got = load_windows(tmp_path)
    assert got.val_y is None and got.test_y is None and got.calib_x.shape == (5, 4, 3)


def test_windows_shape_must_match_run_json(tmp_path):
    w = np.zeros((3, 8, 3), np.float32)
    save_windows(tmp_path, RunWindows(w, w, None, w, None))
    write_run(tmp_path, sensor_info())
    with pytest.raises(
        DataError, match=r"windows\.npz: test windows have shape \(8, 3\), run\.json says \(4, 3\)"
    ):
        load_run(tmp_path).windows()


def test_missing_windows_file_or_array(tmp_path):
    with pytest.raises(DataError, match=r"no windows\.npz"):
        load_windows(tmp_path)
    np.savez(tmp_path / "windows.npz", calib_x=np.zeros((1, 4, 3)))
    with pytest.raises(DataError, match=r"windows\.npz: array 'val_x' is missing"):
        load_windows(tmp_path)


def test_run_module_imports_no_torch():
    import subprocess
    import sys

    probe = "import sys, edgekit.run; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_distill_writes_a_run_that_loads(sensor_run):
    folder = load_run(sensor_run)
    assert isinstance(folder.info, SensorRun)
    assert {"student", "teacher"} <= set(folder.info.models)
    w = folder.windows()
    assert w.test_x.shape[1:] == (folder.info.window, len(folder.info.channels))
    assert folder.checkpoint("student").is_file()


def test_text_eval_round_trips_and_bad_lines_name_the_line(tmp_path):
    write_text_eval(tmp_path, ["how are you", "what is a cpu"], [1, 0])
    texts, labels = load_text_eval(tmp_path)
    assert (
        texts == ["how are you", "what is a cpu"] and labels.tolist() == [1, 0] and labels.dtype == np.int64
    )
    (tmp_path / "text_eval.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"text_eval\.jsonl:2: expected"):
        load_text_eval(tmp_path)
    (tmp_path / "text_eval.jsonl").unlink()
    with pytest.raises(DataError, match=r"no text_eval\.jsonl"):
        load_text_eval(tmp_path)
