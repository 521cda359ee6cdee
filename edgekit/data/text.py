"""Labelled text from the chatterbot-corpus package, deduplicated, with conversation-level splits.

The corpus repeats itself heavily (tech_support.yml is 10 distinct conversations repeated 105 times,
coding.yml holds 98 distinct conversations out of 184), so a split by conversation *entry* would put the
same question in train and test. Statements are therefore deduplicated after normalization, and
conversations that share any statement are merged into one group (union-find); the split assigns whole
groups. A statement that appears under two categories ("yes.", "hello") has no single label and is dropped.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from edgekit.data.datasets import package_file
from edgekit.errors import DataError

log = logging.getLogger(__name__)

OTHER = "other"
# Categories with fewer distinct statements than this are merged into OTHER: at a 20% test share a
# class of 150 statements has ~30 test statements, the fewest that give a per-class F1 interval narrow
# enough to compare teacher and student (after deduplication only ai, coding, emotion and trivia qualify).
MIN_CLASS_SIZE = 150


@dataclass
class TextCorpus:
    """Distinct statements with a class index, their source category and the conversation group they belong to."""

    texts: list[str]
    labels: np.ndarray  # [N] int64 index into label_names
    label_names: list[str]
    categories: list[str]  # [N] the file's own category, before merging into OTHER
    groups: np.ndarray  # [N] int64; statements of one group never straddle a split
    merged: dict[str, list[str]] = field(default_factory=dict)  # class -> source categories
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, idx: np.ndarray) -> TextCorpus:
        idx = np.asarray(idx, dtype=np.int64)
        return TextCorpus(
            texts=[self.texts[i] for i in idx],
            labels=self.labels[idx],
            label_names=self.label_names,
            categories=[self.categories[i] for i in idx],
            groups=self.groups[idx],
            merged=self.merged,
            stats=self.stats,
        )

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(c) for name, c in zip(self.label_names, counts, strict=True)}


@dataclass
class TextSplits:
    train: TextCorpus
    val: TextCorpus
    test: TextCorpus


def chatterbot_dir(language: str = "english") -> Path:
    """The installed corpus folder of one language, located without importing the package."""
    return package_file("chatterbot_corpus", f"data/{language}/conversations.yml").parent


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _category(doc: dict, path: Path) -> str:
    cats = doc.get("categories")
    if not cats:
        return path.stem
    return "_".join(str(cats[0]).lower().split())


def read_conversations(folder: Path) -> list[tuple[str, list[str]]]:
    """(category, statements) for every conversation in every *.yml file of `folder`."""
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise DataError(f"{folder}: no *.yml corpus files")
    convs: list[tuple[str, list[str]]] = []
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DataError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("conversations"), list):
            raise DataError(f"{path}: expected a mapping with a 'conversations' list")
        cat = _category(doc, path)
        for conv in doc["conversations"]:
            # trivia.yml has one entry written as a bare string (a mis-indented question): keep it as a
            # one-statement conversation rather than iterating its characters.
            items = [conv] if isinstance(conv, str) else conv if isinstance(conv, list) else []
            statements = [str(s).strip() for s in items if s is not None and str(s).strip()]
            if statements:
                convs.append((cat, statements))
    return convs


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent: list[int], i: int, j: int) -> None:
    a, b = _find(parent, i), _find(parent, j)
    if a != b:
        parent[max(a, b)] = min(a, b)


def build_corpus(
    convs: list[tuple[str, list[str]]],
    min_class_size: int = MIN_CLASS_SIZE,
    classes: list[str] | None = None,
    group_keys: list[str] | None = None,
) -> TextCorpus:
    """Deduplicate, drop ambiguous statements, group conversations, and map categories to classes.

    `group_keys` (one per conversation): conversations with the same key also join one group (the
    Rotten Tomatoes reviews of one movie), besides those that share a statement."""
    key_cats: dict[str, set[str]] = {}
    for cat, statements in convs:
        for s in statements:
            key_cats.setdefault(_key(s), set()).add(cat)
    total = sum(len(st) for _c, st in convs)
    ambiguous = {k for k, cats in key_cats.items() if len(cats) > 1}

    # union conversations that share a statement, so every copy of it lands in one split
    parent = list(range(len(convs)))
    first_conv: dict[str, int] = {}
    first_key: dict[str, int] = {}
    for ci, gk in enumerate(group_keys or []):
        if gk in first_key:
            _union(parent, first_key[gk], ci)
        else:
            first_key[gk] = ci
    for ci, (_cat, statements) in enumerate(convs):
        for s in statements:
            k = _key(s)
            if k in ambiguous:
                continue
            if k in first_conv:
                _union(parent, first_conv[k], ci)
            else:
                first_conv[k] = ci

    texts: list[str] = []
    cats: list[str] = []
    group_of: list[int] = []
    seen: set[str] = set()
    dropped = 0
    for ci, (cat, statements) in enumerate(convs):
        for s in statements:
            k = _key(s)
            if k in ambiguous or k in seen:
                dropped += k in ambiguous
                continue
            seen.add(k)
            texts.append(s)
            cats.append(cat)
            group_of.append(_find(parent, ci))
    if not texts:
        raise DataError("the corpus has no usable statements")

    counts = Counter(cats)
    if classes is None:
        classes = sorted(c for c, n in counts.items() if n >= min_class_size)
    unknown = [c for c in classes if c not in counts]
    if unknown:
        raise DataError(f"unknown categories {unknown}; the corpus has {sorted(counts)}")
    small = sorted(c for c in counts if c not in classes)
    label_names = list(classes) + ([OTHER] if small else [])
    if len(label_names) < 2:
        raise DataError(f"need at least two classes; categories by size: {counts.most_common()}")
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index.get(c, len(classes)) for c in cats], dtype=np.int64)
    _, groups = np.unique(np.array(group_of), return_inverse=True)
    merged = {c: [c] for c in classes} | ({OTHER: small} if small else {})
    stats = {
        "statements_in_files": total,
        "distinct_statements": len(texts),
        "duplicates_removed": total - len(texts) - dropped,
        "ambiguous_statements_dropped": dropped,
        "groups": int(groups.max()) + 1,
    }
    return TextCorpus(texts, labels, label_names, cats, groups.astype(np.int64), merged, stats)


def load_chatterbot(
    min_class_size: int = MIN_CLASS_SIZE, classes: list[str] | None = None, language: str = "english"
) -> TextCorpus:
    """The chatterbot-corpus statements as a deduplicated labelled corpus (see the module docstring)."""
    corpus = build_corpus(read_conversations(chatterbot_dir(language)), min_class_size, classes)
    log.info(
        "chatterbot: %s distinct statements in %s groups; classes %s",
        len(corpus),
        corpus.stats["groups"],
        corpus.class_counts(),
    )
    return corpus


def subsample_groups(corpus: TextCorpus, n: int, seed: int = 0) -> TextCorpus:
    """About `n` statements made of whole groups drawn at random (quick runs and tests)."""
    if n >= len(corpus):
        return corpus
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    members = _members(corpus.groups)
    for g in rng.permutation(len(members)):
        if len(keep) >= n:
            break
        keep.extend(members[g])
    return corpus.take(np.sort(np.array(keep)))


def _members(groups: np.ndarray) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(int(groups.max()) + 1)]
    for i, g in enumerate(groups):
        out[int(g)].append(i)
    return [m for m in out if m]


def split_by_group(
    corpus: TextCorpus, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 0
) -> TextSplits:
    """Seeded train/val/test split of whole groups, stratified by source category.

    Within each stratum (the set of categories a group holds: one chatterbot category, or for a movie
    e.g. "fresh+plot+rotten"), groups are visited in a seeded random order and each goes to the split
    furthest below its target share of statements, so every split gets its share of every topic
    (including the topics merged into OTHER) without cutting a conversation.
    """
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (3,) or (frac <= 0).any() or abs(frac.sum() - 1.0) > 1e-6:
        raise DataError(f"split fractions must be three positive numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    members = _members(corpus.groups)
    by_cat: dict[str, list[int]] = {}
    for gi, m in enumerate(members):
        by_cat.setdefault("+".join(sorted({corpus.categories[i] for i in m})), []).append(gi)
    parts: list[list[int]] = [[], [], []]
    for cat in sorted(by_cat):
        gs = by_cat[cat]
        counts = np.zeros(3)
        for gi in rng.permutation(len(gs)):
            size = len(members[gs[gi]])
            dest = int(np.argmax(frac * (counts.sum() + size) - counts))
            counts[dest] += size
            parts[dest].extend(members[gs[gi]])
    splits = TextSplits(*(corpus.take(np.sort(np.array(p, dtype=np.int64))) for p in parts))
    for name in ("train", "val", "test"):
        part = getattr(splits, name)
        missing = [c for c, n in part.class_counts().items() if n == 0]
        if not len(part) or (missing and name == "train"):
            raise DataError(f"the {name} split has no statements of {missing or 'any class'}; use more data")
        if missing:
            log.warning("the %s split has no statements of %s", name, missing)
    return splits
