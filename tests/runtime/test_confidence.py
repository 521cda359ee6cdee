import numpy as np
import pytest

from edgekit.runtime.confidence import confidence

P = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [1.0, 0.0, 0.0]])


def test_known_values():
    np.testing.assert_allclose(confidence("max_prob", P), [0.7, 0.4, 1.0])
    np.testing.assert_allclose(confidence("margin", P), [0.5, 0.05, 1.0])
    ent = -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1))
    np.testing.assert_allclose(confidence("neg_entropy", P)[0], -ent)
    assert confidence("neg_entropy", P)[2] == pytest.approx(0.0, abs=1e-9)  # one-hot: surest
    np.testing.assert_allclose(
        confidence("score_distance", score=np.array([0.1, 0.9, 0.5]), threshold=0.5), [0.4, 0.4, 0]
    )


def test_unknown_measure_and_missing_input():
    with pytest.raises(ValueError, match="unknown confidence measure"):
        confidence("vibes", P)
    with pytest.raises(ValueError, match="needs class probabilities"):
        confidence("margin")


def test_severe_in_sight_and_softmax():
    from edgekit.runtime.confidence import severe_in_sight, softmax

    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.5, 0.25, 0.25]])
    # class 2 severe: row 0 has P=0.1 (< 0.2), row 2 has P=0.25 (>= 0.2); class 1 severe: row 1 is top-1
    np.testing.assert_array_equal(severe_in_sight(probs, np.array([2]), 0.2), [False, False, True])
    np.testing.assert_array_equal(severe_in_sight(probs, np.array([1]), 0.9), [False, True, False])
    assert not severe_in_sight(probs, np.array([], dtype=np.int64), 0.2).any()
    np.testing.assert_allclose(softmax(np.log(probs)), probs)
