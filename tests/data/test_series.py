import numpy as np

from edgekit.data.series import load_series_splits, series_windows


def test_windows_per_series_with_short_series_padded():
    long = np.arange(10, dtype=np.float32)[:, None]
    short = np.array([[5.0], [6.0], [7.0]], np.float32)
    w = series_windows([long, short], np.array([2, 0]), window=4, hop=3)
    assert w.x.shape == (4, 4, 1)  # 3 windows of the long series, 1 of the short one
    assert list(w.y) == [2, 2, 2, 0] and list(w.end_row) == [0, 0, 0, 1]
    assert w.x[-1, :, 0].tolist() == [5.0, 5.0, 6.0, 7.0]  # left-padded with its first reading
    assert w.x[1, :, 0].tolist() == [3.0, 4.0, 5.0, 6.0]


def test_plaid_splits_by_series_and_is_seeded():
    a = load_series_splits("plaid", 0.25, seed=0, max_series=60)
    b = load_series_splits("plaid", 0.25, seed=0, max_series=60)
    assert len(a.classes) == 11 and a.problem == "PLAID"
    assert len(a.train[0]) + len(a.val[0]) == 60 and len(a.test[0]) == 60
    key = lambda s: s.tobytes()  # noqa: E731
    train, val = {key(s) for s in a.train[0]}, {key(s) for s in a.val[0]}
    assert not train & val  # no series in two splits
    assert [key(s) for s in a.val[0]] == [key(s) for s in b.val[0]]
    lengths = {len(s) for s in a.train[0] + a.test[0]}
    assert len(lengths) > 1  # variable-length series
