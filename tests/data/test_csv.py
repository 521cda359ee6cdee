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


def test_label_must_be_binary(tmp_path):
    with pytest.raises(DataError, match="is not 0 or 1"):
        load_csv(_write(tmp_path, "ts,a,b,label\n" + _rows(40, bad={3: {"lab": 2}})), label_column="label")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "nope.csv")
