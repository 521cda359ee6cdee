import numpy as np
import pytest

from edgekit.data import Normalizer, SensorTable, make_windows, split_table
from edgekit.errors import DataError


def _table(n=100, c=2, ordered=True, labels=None):
    values = np.arange(n * c, dtype=np.float32).reshape(n, c)
    return SensorTable("t", values, [f"c{i}" for i in range(c)], labels=labels, ordered=ordered)


def test_windows_shape_hop_and_content():
    w = make_windows(_table(10, 2), window=4, hop=3)
    assert w.x.shape == (3, 4, 2)  # starts 0, 3, 6
    np.testing.assert_array_equal(w.x[1, :, 0], [6, 8, 10, 12])  # rows 3..6, channel 0
    np.testing.assert_array_equal(w.end_row, [3, 6, 9])


def test_window_label_is_any_anomaly_among_fresh_readings():
    labels = np.zeros(10, dtype=np.int64)
    labels[2] = 1
    w = make_windows(_table(10, 1, labels=labels), window=4, hop=2)
    # windows end at rows 3, 5, 7, 9; fresh readings are the last 2 rows: {2,3} {4,5} {6,7} {8,9}
    np.testing.assert_array_equal(w.y, [1, 0, 0, 0])


def test_too_short_for_a_window():
    with pytest.raises(DataError, match="fewer than one window"):
        make_windows(_table(3, 1), window=4, hop=1)


def test_normalizer_uses_given_rows_only_and_floors_constant_channels():
    x = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
    n = Normalizer.fit(x)
    np.testing.assert_allclose(n.mean, [2.0, 5.0])
    np.testing.assert_allclose(n.std, [1.0, 1.0])  # second channel constant -> std 1
    np.testing.assert_allclose(n(x)[:, 0], [-1.0, 1.0])


def test_time_ordered_split_is_contiguous_and_disjoint():
    s = split_table(_table(100, 1), (0.6, 0.2, 0.2))
    assert s.train.rows.max() < s.val.rows.min() and s.val.rows.max() < s.test.rows.min()
    assert len(s.train) + len(s.val) + len(s.test) == 100
    # windows made per split never straddle two splits
    for part in (s.train, s.val, s.test):
        w = make_windows(part, 5, 1)
        starts = w.end_row - 4
        assert set(starts) <= set(part.rows)


def test_stratified_split_keeps_anomaly_rate_and_is_disjoint():
    rng = np.random.default_rng(0)
    labels = (rng.random(1000) < 0.1).astype(np.int64)
    s = split_table(_table(1000, 1, ordered=False, labels=labels), (0.6, 0.2, 0.2), seed=3)
    sets = [set(p.rows) for p in (s.train, s.val, s.test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sum(map(len, sets)) == 1000
    for p in (s.train, s.val, s.test):
        assert abs(p.labels.mean() - labels.mean()) < 0.01
    again = split_table(_table(1000, 1, ordered=False, labels=labels), (0.6, 0.2, 0.2), seed=3)
    np.testing.assert_array_equal(again.test.rows, s.test.rows)


def test_bad_fractions():
    with pytest.raises(DataError):
        split_table(_table(10, 1), (0.5, 0.5, 0.5))
