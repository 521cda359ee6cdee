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


def test_resample_matches_adaptive_mean_pool_and_linear_interpolation():
    import torch
    import torch.nn.functional as F

    from edgekit.data.series import resample, resample_series

    rng = np.random.default_rng(0)
    for n in (1000, 513, 256, 100):
        s = rng.normal(size=(n, 2)).astype(np.float32)
        t = torch.from_numpy(s.T.copy())[None]
        ref = (
            F.adaptive_avg_pool1d(t, 256)
            if n >= 256
            else F.interpolate(t, 256, mode="linear", align_corners=True)
        )
        assert np.allclose(resample(s, 256), ref[0].numpy().T, atol=1e-4), n
    # a spike keeps its energy when pooled (mean over its bin), and the ends stay put when stretched
    spike = np.zeros((1000, 1), np.float32)
    spike[500] = 100.0
    assert resample(spike, 250).sum() == np.float32(100.0 / 4)
    ramp = np.arange(5, dtype=np.float32)[:, None]
    assert resample(ramp, 9)[[0, -1], 0].tolist() == [0.0, 4.0]
    w = resample_series([spike, ramp], np.array([3, 1]), 16)
    assert w.x.shape == (2, 16, 1) and list(w.y) == [3, 1] and list(w.end_row) == [0, 1]


def test_keep_labels_is_stratified_seeded_and_keeps_one_per_class():
    from edgekit.data.labels import UNLABELLED, keep_labels

    y = np.array([0] * 80 + [1] * 15 + [2] * 3 + [UNLABELLED] * 10)
    a, b, c = keep_labels(y, 0.1, 0), keep_labels(y, 0.1, 0), keep_labels(y, 0.1, 1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    kept = a != UNLABELLED
    assert kept.sum() == round(0.1 * 98)
    assert np.array_equal(a[kept], y[kept])  # kept labels are the true ones
    assert np.bincount(a[kept], minlength=3).min() >= 1  # the 3-series class keeps one
    assert (a[y == UNLABELLED] == UNLABELLED).all()


def test_japanese_vowels_series_resample_to_one_multichannel_window():
    from edgekit.distill.config import DistillConfig
    from edgekit.distill.prepare_series import prepare_series

    p = prepare_series(DistillConfig(out="x", dataset="japanesevowels", max_rows=45, label_fraction=0.5))
    assert p.window == 32 and p.train.x.shape[1:] == (32, 12) and len(p.classes) == 9
    assert len(p.train) + len(p.val) == 45 and len(p.test) == 45
    assert (p.val.y >= 0).all() and (p.train.y < 0).any()
