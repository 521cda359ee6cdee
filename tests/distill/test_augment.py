"""Augmentations keep shapes, are deterministic under a seed, and mix hard targets with mixup."""

import numpy as np
import pytest

from edgekit.distill.augment import augment, jitter, mixup, time_shift, transfer_set


def _windows(n=20, w=64, c=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, w, c)).astype(np.float32) + np.linspace(0, 3, w)[None, :, None]


@pytest.mark.parametrize("shape", [(20, 64, 2), (30, 1, 9)])
def test_views_keep_shape_and_are_seeded(shape):
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    a = augment(x, np.random.default_rng(7))
    b = augment(x, np.random.default_rng(7))
    c = augment(x, np.random.default_rng(8))
    assert a[0].shape == x.shape and a[0].dtype == np.float32
    for u, v in zip(a, b, strict=True):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    assert not np.allclose(a[0], x)  # a view differs from its window
    assert np.isfinite(a[0]).all()


def test_window_one_only_jitter_scale_and_mixup():
    # a single reading has no time axis to shift or warp: without mixup a view is x * factor + noise, so
    # each view stays close to its own reading (a time shift would swap nothing, but crop would NaN)
    x = np.random.default_rng(2).normal(size=(500, 1, 3)).astype(np.float32)
    v, partner, lam = augment(x, np.random.default_rng(0), p_mix=0.0)
    assert (partner == -1).all() and (lam == 1).all()
    rel = np.abs(v - x) / (np.abs(x) + 1.0)
    assert np.median(rel) < 0.1
    # jitter on window 1 scales with each channel's spread over the rows (a window's own spread is 0)
    assert np.std(jitter(x, np.random.default_rng(0)) - x) > 0.01


def test_time_shift_is_a_circular_roll():
    x = np.arange(10, dtype=np.float32)[None, :, None].repeat(3, axis=0)
    out = time_shift(x, np.random.default_rng(3), frac=0.3)
    for row in out[:, :, 0]:
        shift = int(-row[0]) % 10
        assert shift in (0, 1, 2, 3, 7, 8, 9)  # at most 30% of 10 steps either way
        assert np.array_equal(row, np.roll(np.arange(10), shift))


def test_mixup_returns_partner_and_lambda():
    x = _windows()
    views, partner, lam = mixup(x, x, np.random.default_rng(0), p=1.0)
    assert (partner >= 0).all() and (lam >= 0.5).all() and (lam <= 1).all()
    i = 0
    expected = lam[i] * x[i] + (1 - lam[i]) * x[partner[i]]
    assert np.allclose(views[i], expected, atol=1e-6)


def test_transfer_set_mixes_hard_targets_and_masks_unlabelled():
    x = _windows(n=6)
    y = np.array([0, 1, 2, -1, 1, 0])
    ts = transfer_set(x, views=4, rng=np.random.default_rng(5), p_mix=0.5)
    assert len(ts) == 6 * 5 and ts.x.shape == (30, 64, 2)
    assert np.array_equal(ts.source[:6], np.arange(6)) and (ts.partner[:6] == -1).all()
    hard, known = ts.targets(y, k=3)
    assert hard.shape == (30, 3)
    # real rows: one-hot where labelled, nothing where not
    assert np.array_equal(known[:6], y >= 0) and np.array_equal(hard[:6][y >= 0], np.eye(3)[y[y >= 0]])
    for r in range(6, 30):
        src, pj, lam = ts.source[r], ts.partner[r], ts.lam[r]
        if y[src] < 0 or (pj >= 0 and y[pj] < 0):
            assert not known[r] and not hard[r].any()
            continue
        want = lam * np.eye(3)[y[src]] + (0 if pj < 0 else (1 - lam) * np.eye(3)[y[pj]])
        assert known[r] and np.allclose(hard[r], want) and np.isclose(hard[r].sum(), 1.0)
    assert (ts.partner[6:] >= 0).any()  # some views are mixed
