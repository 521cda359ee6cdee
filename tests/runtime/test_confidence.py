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
