"""The `.ts` reader on the real PLAID and ACSF1 files shipped by sktime/aeon, and on small hand-written files."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.data.ts_format import load_ts_problem, published_accuracies, read_ts
from edgekit.errors import DataError


def test_plaid_real_files() -> None:
    train, test = load_ts_problem("sktime", "datasets/data/PLAID", "PLAID")
    assert len(train.series) == 537 and len(test.series) == 537
    assert train.class_names == [str(i) for i in range(11)]
    assert train.channels == 1
    lengths = {s.shape[0] for s in train.series}
    assert len(lengths) > 1  # variable length, kept as such
    assert all(np.isfinite(s).all() for s in train.series)


def test_acsf1_real_files() -> None:
    train, test = load_ts_problem("aeon", "datasets/data/ACSF1", "ACSF1")
    assert len(train.series) == 100 and len(test.series) == 100
    assert {s.shape for s in train.series} == {(1460, 1)}
    assert len(train.class_names) == 10


def test_published_accuracies() -> None:
    acsf1 = published_accuracies("ACSF1")
    assert set(acsf1) == {"HC2", "InceptionTime", "WEASEL-2.0", "FreshPRINCE"}
    assert 0.8 < acsf1["HC2"] < 0.9
    plaid = published_accuracies("PLAID")
    assert set(plaid) == {"WEASEL-2.0"} and 0.85 < plaid["WEASEL-2.0"] < 0.95


def test_multivariate_and_missing(tmp_path) -> None:
    p = tmp_path / "x.ts"
    p.write_text("# comment\n@problemName X\n@classLabel true a b\n@data\n1,2,?:4,5,6:a\n1,2:3,4:b\n")
    prob = read_ts(p)
    assert prob.channels == 2 and prob.labels == ["a", "b"]
    assert prob.series[0].shape == (3, 2) and np.isnan(prob.series[0][2, 0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("@classLabel true a\n@data\n1,2:b\n", "not declared"),
        ("@classLabel false\n@data\n1,2\n", "no class labels"),
        ("@classLabel true a\n@data\n1,x:a\n", "non-numeric"),
        ("@classLabel true a\n@data\n1,2:1:a\n", "differ in length"),
        ("@classLabel true a\n@data\n", "no series"),
    ],
)
def test_bad_files_one_line(tmp_path, text: str, message: str) -> None:
    p = tmp_path / "bad.ts"
    p.write_text(text)
    with pytest.raises(DataError, match=message):
        read_ts(p)
