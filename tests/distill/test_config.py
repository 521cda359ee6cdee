"""`edgekit distill --config`: the typed run file, flag precedence, the effective config written into
RUN_DIR (and repeating a run from it), one-line errors, and the flags -> dataclass helper."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace

import pytest
import yaml

from edgekit.cli import build_parser, given_fields, main, options_from_args
from edgekit.distill.config import CONFIG_FILE, DistillConfig, build_config, read_config_file, write_config

QUICK = ["--dataset", "shuttle", "--max-rows", "1500", "--teacher-epochs", "2", "--student-epochs", "2"]


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_run_writes_its_config_and_the_config_repeats_the_run(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["distill", *QUICK, "--out", str(a)]) == 0
    saved = yaml.safe_load((a / CONFIG_FILE).read_text())
    # the effective config: defaults and the windowing the run resolved are filled in, no output folder
    assert saved["student_epochs"] == 2 and saved["alpha"] == 0.5 and saved["window"] == 1
    assert saved["mode"] == "supervised" and "out" not in saved
    assert main(["distill", "--config", str(a / CONFIG_FILE), "--out", str(b)]) == 0
    ra, rb = (json.loads((d / "report.json").read_text()) for d in (a, b))
    for name in ("teacher", "student", "student_no_kd"):
        assert ra[name]["f1"] == rb[name]["f1"] and ra[name]["threshold"] == rb[name]["threshold"]
    assert yaml.safe_load((b / CONFIG_FILE).read_text()) == saved
    assert json.loads((a / "run.json").read_text()) == json.loads((b / "run.json").read_text())


def test_flags_override_the_config_file(tmp_path):
    out = tmp_path / "from_file"
    run = tmp_path / "run.yaml"
    run.write_text(
        yaml.safe_dump(
            {
                "dataset": "shuttle",
                "max_rows": 1500,
                "teacher_epochs": 1,
                "student_epochs": 1,
                "alpha": 0.3,
                "out": str(out),
            }
        )
    )
    assert main(["distill", "--config", str(run), "--student-epochs", "2", "--alpha", "0.7"]) == 0
    saved = yaml.safe_load((out / CONFIG_FILE).read_text())  # `out` came from the file
    assert saved["teacher_epochs"] == 1 and saved["student_epochs"] == 2 and saved["alpha"] == 0.7
    assert json.loads((out / "report.json").read_text())["kd"]["alpha"] == 0.7


@pytest.mark.parametrize(
    ("settings", "flags", "message"),
    [
        ({"alpha": "high"}, [], "run.yaml: field 'alpha' must be a number; got 'high'"),
        ({"alpha": 2}, [], "run.yaml: field 'alpha' must be in [0, 1], got 2.0"),
        ({"alpha": 0.3}, ["--alpha", "2"], "--alpha must be in [0, 1], got 2.0"),
        ({"temperature": 0}, [], "run.yaml: field 'temperature' must be > 0, got 0.0"),
        ({"windw": 3}, [], "run.yaml: field 'windw' is not a known setting"),
        (
            {"mode": "weird"},
            [],
            "run.yaml: field 'mode' must be one of supervised or unsupervised; got 'weird'",
        ),
        ({"train": {"lr": "fast"}}, [], "run.yaml: field 'train.lr' must be a number; got 'fast'"),
        ({}, [], "no output folder (give --out"),
    ],
)
def test_bad_config_file_is_one_line_naming_file_field_and_value(tmp_path, capsys, settings, flags, message):
    run = tmp_path / "run.yaml"
    run.write_text(yaml.safe_dump({"dataset": "shuttle", **settings}))
    out = [] if not settings else ["--out", str(tmp_path / "o")]
    assert message in _one_line_error(capsys, ["distill", "--config", str(run), *flags, *out])


def test_config_file_that_is_not_a_mapping_or_not_yaml(tmp_path, capsys):
    run = tmp_path / "run.yaml"
    run.write_text("- just\n- a list\n")
    assert "run.yaml: must be a mapping of settings" in _one_line_error(
        capsys, ["distill", "--config", str(run), "--out", str(tmp_path / "o")]
    )
    run.write_text("alpha: [unclosed\n")
    assert "invalid YAML" in _one_line_error(capsys, ["distill", "--config", str(run)])


def test_text_config_rejects_sensor_settings_and_round_trips(tmp_path, capsys):
    from edgekit.distill.text_config import TextDistillConfig
    from edgekit.models.text import TextStudentConfig

    run = tmp_path / "run.yaml"
    run.write_text(yaml.safe_dump({"dataset": "chatterbot", "window": 3, "out": str(tmp_path / "o")}))
    assert "run.yaml: field 'window' is not a known setting" in _one_line_error(
        capsys, ["distill", "--config", str(run)]
    )
    cfg = TextDistillConfig(out=str(tmp_path), max_statements=600, student=TextStudentConfig(layers=1))
    write_config(tmp_path, cfg)
    path = tmp_path / CONFIG_FILE
    again = build_config(TextDistillConfig, read_config_file(path), str(path), {"out": str(tmp_path)})
    assert again == cfg


def test_sensor_config_round_trips_with_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = DistillConfig(out="o", csv="plant.csv", channels=["a", "b"], fractions=(0.5, 0.25, 0.25))
    write_config(tmp_path, cfg)
    path = tmp_path / CONFIG_FILE
    data = read_config_file(path)
    assert data["csv"] == str(tmp_path / "plant.csv")  # repeatable from any working directory
    again = build_config(DistillConfig, data, str(path), {"out": "o"})
    assert again == replace(cfg, csv=str(tmp_path / "plant.csv"))


def test_epochs_help_matches_the_defaults_in_code():
    from edgekit.distill.text_config import TextDistillConfig

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    help_text = " ".join(sub.choices["distill"].format_help().split())
    sensor, text = DistillConfig(out=""), TextDistillConfig(out="")
    for field in ("teacher_epochs", "student_epochs"):
        assert f"default {getattr(sensor, field)} (sensor), {getattr(text, field)} (text)" in help_text
    assert f"(default {text.max_length})" in help_text


def test_text_only_flags_are_refused_for_sensor_data(tmp_path, capsys):
    err = _one_line_error(capsys, ["distill", *QUICK, "--max-length", "16", "--out", str(tmp_path)])
    assert "--max-length: only used with the text datasets chatterbot, rotten_tomatoes" in err


@dataclass
class _Options:
    rate: float = 1.0
    name: str = "x"
    max_statements: int | None = None


def test_options_from_args_copies_given_flags_by_field_name():
    args = argparse.Namespace(rate=2.5, name=None, max_rows=7, unrelated="ignored")
    assert given_fields(_Options, args) == {"rate": 2.5}
    opts = options_from_args(_Options, args, renames={"max_statements": "max_rows"}, name="y")
    assert opts == _Options(rate=2.5, name="y", max_statements=7)
