"""The chatterbot-corpus loader on the real installed corpus, and its conversation-level split."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.data.text import (
    OTHER,
    build_corpus,
    load_chatterbot,
    read_conversations,
    split_by_group,
    subsample_groups,
)
from edgekit.errors import DataError


@pytest.fixture(scope="module")
def corpus():
    return load_chatterbot()


def _key(t: str) -> str:
    return " ".join(t.lower().split())


def test_real_corpus_counts(corpus):
    # 4,332 statements in the files (as DATA.md counts them), far fewer distinct ones: tech_support.yml
    # is 10 conversations repeated 105 times
    assert corpus.stats["statements_in_files"] == 4332
    assert corpus.stats["duplicates_removed"] > 2000
    assert len(corpus) == corpus.stats["distinct_statements"]
    assert len({_key(t) for t in corpus.texts}) == len(corpus)
    assert corpus.label_names == ["ai", "coding", "emotion", "trivia", OTHER]
    counts = corpus.class_counts()
    assert all(n >= 150 for n in counts.values()), counts
    assert sum(counts.values()) == len(corpus)
    assert "tech_support" in corpus.merged[OTHER]
    assert sum(1 for c in corpus.categories if c == "tech_support") == 20


def test_split_keeps_conversations_and_texts_on_one_side(corpus):
    sp = split_by_group(corpus, seed=0)
    parts = (sp.train, sp.val, sp.test)
    assert sum(len(p) for p in parts) == len(corpus)
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert not set(a.groups.tolist()) & set(b.groups.tolist())
            assert not {_key(t) for t in a.texts} & {_key(t) for t in b.texts}
    shares = np.array([len(p) for p in parts]) / len(corpus)
    assert np.allclose(shares, (0.6, 0.2, 0.2), atol=0.03), shares
    for p in parts:  # stratified: every class in every split, near its overall share
        c = p.class_counts()
        assert all(n > 0 for n in c.values()), c
        assert abs(c["trivia"] / len(p) - corpus.class_counts()["trivia"] / len(corpus)) < 0.05


def test_split_is_deterministic_per_seed(corpus):
    a, b, c = (split_by_group(corpus, seed=s) for s in (3, 3, 4))
    assert a.test.texts == b.test.texts and a.train.texts == b.train.texts
    assert a.test.texts != c.test.texts


def test_subsample_takes_whole_groups(corpus):
    small = subsample_groups(corpus, 300, seed=1)
    assert 300 <= len(small) < 400
    for g in np.unique(small.groups):
        assert (small.groups == g).sum() == (corpus.groups == g).sum()


def test_bare_string_entry_and_category_name(tmp_path):
    (tmp_path / "t.yml").write_text(
        "categories:\n- Tech Support\nconversations:\n- - q one\n  - a one\n- a bare string entry\n",
        encoding="utf-8",
    )
    convs = read_conversations(tmp_path)
    assert convs == [("tech_support", ["q one", "a one"]), ("tech_support", ["a bare string entry"])]


def test_ambiguous_statements_dropped_and_shared_statements_grouped():
    # synthetic conversations, only to pin the grouping rules
    convs = [
        ("a", ["hello", "Q1", "A1"]),
        ("b", ["Hello", "Q2"]),  # "hello" is under two categories: no single label, dropped
        ("a", ["q1 ", "A3"]),  # shares "Q1" with the first conversation: same group
        ("b", ["Q4", "A4"]),
    ]
    c = build_corpus(convs, min_class_size=1)
    assert "hello" not in {_key(t) for t in c.texts}
    assert c.stats["ambiguous_statements_dropped"] == 2 and c.stats["duplicates_removed"] == 1
    g = dict(zip(c.texts, c.groups.tolist(), strict=True))
    assert g["Q1"] == g["A1"] == g["A3"] != g["Q4"]
    assert g["Q2"] != g["Q4"]


def test_merging_and_errors():
    convs = [("a", [f"a{i}"]) for i in range(5)] + [("b", ["b0", "b1"]), ("c", ["c0"])]
    c = build_corpus(convs, min_class_size=3)
    assert c.label_names == ["a", OTHER] and c.merged[OTHER] == ["b", "c"]
    with pytest.raises(DataError, match="unknown categories"):
        build_corpus(convs, classes=["zzz"])
    with pytest.raises(DataError, match="two classes"):
        build_corpus([("a", ["x", "y"])], min_class_size=1)
    with pytest.raises(DataError, match="fractions"):
        split_by_group(c, (0.5, 0.5, 0.5))
