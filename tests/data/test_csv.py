import numpy as np
import pytest

from edgekit.data import load_csv
from edgekit.errors import DataError


def _write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _rows(n, fmt="{i},{a},{b},{lab}", bad=None):
    lines = []
    for i in range(n):
        cells = {"i": i, "a": i * 0.5, "b": 1.0, "lab": int(i % 10 == 0)}
        if bad and i in bad:
            cells.update(bad[i])
        lines.append(fmt.format(**cells))
    return "\n".join(lines)


def test_loads_channels_labels_timestamps(tmp_path):
    p = _write(tmp_path, "ts,a,b,label\n" + _rows(40))
    t = load_csv(p, label_column="label", timestamp_column="ts")
    assert t.channels == ["a", "b"] and t.values.shape == (40, 2)
    assert t.labels.sum() == 4 and t.timestamps[3] == 3.0


def test_iso_timestamps_are_sorted(tmp_path):
    lines = [f"2024-01-01T00:00:{59 - i:02d},{i},1" for i in range(40)]
    t = load_csv(_write(tmp_path, "time,a,b\n" + "\n".join(lines)), timestamp_column="time")
    assert np.all(np.diff(t.timestamps) > 0)
    assert t.values[0, 0] == 39.0


@pytest.mark.parametrize(
    ("header", "kwargs", "message"),
    [
        ("ts,a,b,label", {"label_column": "anomaly"}, "label column 'anomaly' not found"),
        ("ts,a,b,label", {"channels": ["a", "zz"]}, "channel column 'zz' not found"),
        ("ts,a,b,label", {"timestamp_column": "time"}, "timestamp column 'time' not found"),
    ],
)
def test_missing_columns(tmp_path, header, kwargs, message):
    p = _write(tmp_path, header + "\n" + _rows(40))
    with pytest.raises(DataError, match=message):
        load_csv(p, **kwargs)


def test_non_numeric_value_names_row_and_column(tmp_path):
    p = _write(tmp_path, "ts,a,b,label\n" + _rows(40, bad={5: {"a": "oops"}}))
    with pytest.raises(DataError, match=r"row 7, column 'a': 'oops' is not a number"):
        load_csv(p, label_column="label", timestamp_column="ts")


def test_short_nan_gap_is_filled_long_run_is_an_error(tmp_path):
    gap = {i: {"a": ""} for i in (5, 6)}
    t = load_csv(
        _write(tmp_path, "ts,a,b,label\n" + _rows(40, bad=gap)), label_column="label", timestamp_column="ts"
    )
    assert t.values[5, 0] == t.values[4, 0] == t.values[6, 0]
    run = {i: {"a": "nan"} for i in range(10, 20)}
    with pytest.raises(DataError, match=r"column 'a', rows 12-21: 10 missing values in a row"):
        load_csv(
            _write(tmp_path, "ts,a,b,label\n" + _rows(40, bad=run), "r.csv"),
            label_column="label",
            timestamp_column="ts",
        )


def test_too_few_rows(tmp_path):
    with pytest.raises(DataError, match="5 data rows; at least 32"):
        load_csv(_write(tmp_path, "ts,a,b,label\n" + _rows(5)), label_column="label")


def test_labels_mixing_integers_and_strings_are_refused(tmp_path):
    # labels used to be 0/1 only; now integers or strings are classes, but a mix is one clear line
    with pytest.raises(DataError, match="all integers or all strings, found '1' and 'bearing'"):
        load_csv(
            _write(tmp_path, "ts,a,b,label\n" + _rows(40, bad={3: {"lab": "bearing"}})),
            label_column="label",
            timestamp_column="ts",
        )
    with pytest.raises(DataError, match="all integers or all strings"):
        load_csv(
            _write(tmp_path, "ts,a,b,label\n" + _rows(40, bad={3: {"lab": 0.5}})),
            label_column="label",
            timestamp_column="ts",
        )


def test_integer_labels_beyond_binary_are_classes(tmp_path):
    t = load_csv(
        _write(tmp_path, "ts,a,b,label\n" + _rows(40, bad={3: {"lab": 7}})),
        label_column="label",
        timestamp_column="ts",
    )
    assert t.classes == ["0", "1", "7"]
    assert t.labels[3] == 2 and t.labels[0] == 1 and t.labels[1] == 0


def test_string_labels_and_blank_cells(tmp_path):
    names = ["ok", "ok", "", "bearing", "ok", "rotor", ""]
    text = "a,b,fault\n" + "\n".join(f"{i % 5},{i % 3},{names[i % 7]}" for i in range(70))
    t = load_csv(_write(tmp_path, text), label_column="fault")
    assert t.classes == ["bearing", "ok", "rotor"]
    assert list(t.labels[:7]) == [1, 1, -1, 0, 1, 2, -1]


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "nope.csv")


def _plant_csv(tmp_path, time_cells, label_name="fault", rows=60):
    """A real plant CSV: a time column, two sensor channels, a 0/1 valve channel and a label."""
    lines = [f"time,temp,vib,valve,{label_name}"]
    for i in range(rows):
        lines.append(f"{time_cells(i)},{20 + (i * 7) % 5},{(i * 3) % 11 / 10},{i % 2},{int(i % 13 == 0)}")
    return _write(tmp_path, "\n".join(lines) + "\n", "plant.csv")


TIMES = {
    "iso": (lambda i: f"2024-03-01T00:{i // 60:02d}:{i % 60:02d}", "ISO 8601 times"),
    "unix": (lambda i: str(1_700_000_000 + i // 2), "unix times"),  # two readings per second
    "index": (lambda i: str(i), "strictly increasing"),
}


@pytest.mark.parametrize("kind", sorted(TIMES))
def test_time_and_label_columns_are_not_silently_model_inputs(tmp_path, kind):
    cells, why = TIMES[kind]
    p = _plant_csv(tmp_path, cells)
    with pytest.raises(DataError) as err:
        load_csv(p)
    msg = str(err.value)
    assert f"column 'time' looks like timestamps ({why})" in msg
    assert "column 'fault' looks like a label (values 0/1)" in msg
    assert "--timestamp-column time --label-column fault" in msg and "--channels" in msg
    assert "valve" not in msg  # a 0/1 channel not named like a label is a reading
    # each flag lifts its half of the refusal; --channels lifts both
    with pytest.raises(DataError, match="column 'fault' looks like a label") as err:
        load_csv(p, timestamp_column="time")
    assert "timestamps" not in str(err.value)
    with pytest.raises(DataError, match="column 'time' looks like timestamps"):
        load_csv(p, label_column="fault")
    t = load_csv(p, label_column="fault", timestamp_column="time")
    assert t.channels == ["temp", "vib", "valve"] and t.labels.sum() == 5
    assert load_csv(p, channels=["temp", "vib"]).channels == ["temp", "vib"]


@pytest.mark.parametrize("name", ["label", "is_anomaly", "y", "Target", "class_id"])
def test_label_named_few_valued_columns_are_refused(tmp_path, name):
    p = _plant_csv(tmp_path, lambda i: str(i), label_name=name)
    with pytest.raises(DataError, match=f"column '{name}' looks like a label"):
        load_csv(p, timestamp_column="time")


def test_plain_sensor_csv_without_time_or_label_is_accepted(tmp_path):
    lines = ["temp,vib_y,valve"] + [f"{20 + (i * 7) % 5},{(i * 3) % 11},{i % 2}" for i in range(40)]
    t = load_csv(_write(tmp_path, "\n".join(lines)))
    assert t.channels == ["temp", "vib_y", "valve"]


@pytest.mark.parametrize("kind", sorted(TIMES))
def test_cli_refuses_csv_with_time_and_label_inputs_in_one_line(tmp_path, kind):
    import subprocess
    import sys

    p = _plant_csv(tmp_path, TIMES[kind][0])
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", "distill", "--csv", str(p), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "'time' looks like timestamps" in err and "'fault' looks like a label" in err
    assert "--timestamp-column time --label-column fault" in err
    assert not (tmp_path / "o").exists()
