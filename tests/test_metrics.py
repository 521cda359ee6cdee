import numpy as np
import pytest

from edgekit.metrics import best_f1_threshold, far_threshold, percentiles, prf, recall_at_far, roc_auc


def test_roc_auc_known_values():
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)  # tie
    assert roc_auc(np.array([0, 0]), np.array([0.1, 0.2])) is None


def test_prf_and_undefined_cases():
    m = prf(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5 and m["false_alarm_rate"] == 0.5
    assert prf(np.array([0, 0]), np.array([0, 0]))["recall"] is None


def test_thresholds():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    assert best_f1_threshold(y, s) == pytest.approx(0.7)
    assert far_threshold(np.arange(100.0), 0.01) == 99.0
    assert recall_at_far(y, s, 0.01) == 1.0


def test_percentiles_on_known_samples():
    p = percentiles(np.arange(1, 101, dtype=float))
    assert (
        p["p50"] == pytest.approx(50.5)
        and p["p99"] == pytest.approx(99.01)
        and p["p99.9"] == pytest.approx(99.901)
    )
