"""The text transfer set: held-out splits of the corpus, the student's (shrunk) vocabulary, and the
training statements plus perturbed copies labelled by the teacher.

~1.1k training statements are few for KD, so the training set is extended with copies in which words
are randomly deleted or masked, labelled by the teacher (soft targets) and by the original statement
(hard label). Both students train on the same inputs, so KD vs no-KD isolates the soft targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekit.data.rotten_tomatoes import load_rotten_tomatoes
from edgekit.data.text import TextCorpus, TextSplits, load_chatterbot, split_by_group, subsample_groups
from edgekit.distill.text_config import TextDistillConfig
from edgekit.distill.train import predict
from edgekit.models.text import shrink_tokenizer

SPLITS = ("train", "val", "test")


def load_corpus(cfg: TextDistillConfig) -> TextCorpus:
    if cfg.dataset == "rotten_tomatoes":
        return load_rotten_tomatoes(cfg.classes, cfg.min_class_size)
    return load_chatterbot(cfg.min_class_size, cfg.classes)


def load_splits(cfg: TextDistillConfig) -> TextSplits:
    corpus = load_corpus(cfg)
    if cfg.max_statements:
        corpus = subsample_groups(corpus, cfg.max_statements, cfg.seed)
    return split_by_group(corpus, cfg.fractions, cfg.seed)


def encode(tokenizer: Any, texts: list[str], max_length: int) -> torch.Tensor:
    return torch.tensor(
        tokenizer(texts, max_length=max_length, truncation=True, padding="max_length")["input_ids"]
    )


def _one_piece_words(a: np.ndarray, continuation: np.ndarray) -> np.ndarray:
    """[N, L] True where a token is a whole word: not a '##' piece, and the next token does not continue it."""
    cont = continuation[a]
    return ~cont & ~np.concatenate([cont[:, 1:], np.zeros_like(cont[:, :1])], axis=1)


def augment_ids(
    ids: torch.Tensor,
    copies: int,
    protected: list[int],
    mask_id: int,
    pad_id: int,
    p_delete: float,
    p_mask: float,
    seed: int,
    *,
    p_replace: float = 0.0,
    continuation: np.ndarray | None = None,
    pool: np.ndarray | None = None,
) -> torch.Tensor:
    """`copies` perturbed versions of right-padded token rows [N, L]: each unprotected token is deleted
    with probability p_delete (the row closes up and is re-padded) or else replaced by mask_id with
    probability p_mask, or else, if it is a one-piece word, replaced with probability p_replace by a word
    drawn from `pool`. `continuation[id]` is True for '##' pieces (a word's second and later pieces)."""
    a = ids.numpy()
    rng = np.random.default_rng(seed)
    if p_replace > 0:
        if continuation is None or pool is None or not len(pool):
            raise ValueError("word replacement needs the continuation-piece table and a pool of words")
        single = _one_piece_words(a, continuation)
    out = []
    for _ in range(copies):
        r = rng.random(a.shape)
        free = ~np.isin(a, protected)
        delete = free & (r < p_delete)
        row = np.where(free & ~delete & (r < p_delete + p_mask), mask_id, a)
        if p_replace > 0:
            swap = free & single & (r >= p_delete + p_mask) & (r < p_delete + p_mask + p_replace)
            row = np.where(swap, rng.choice(pool, a.shape), row)
        order = np.argsort(delete, axis=1, kind="stable")  # deleted positions move to the end ...
        row = np.take_along_axis(row, order, axis=1)
        row[np.arange(a.shape[1]) >= (a.shape[1] - delete.sum(1))[:, None]] = pad_id  # ... and become padding
        out.append(row)
    return torch.from_numpy(np.concatenate(out)) if out else ids[:0]


def word_pool(tok: Any, x: torch.Tensor, special: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The '##'-continuation table of `tok`'s vocabulary, and every one-piece word occurrence in token rows
    `x` (so a draw from it follows the training set's word frequencies)."""
    continuation = np.array([t.startswith("##") for t in tok.convert_ids_to_tokens(list(range(len(tok))))])
    a = x.numpy()
    return continuation, a[_one_piece_words(a, continuation) & ~np.isin(a, special)]


@dataclass
class TransferSet:
    tokenizer: Any  # the student's
    kept: list[int] | None  # teacher token ids kept in the student vocabulary (None: not shrunk)
    x: dict[str, torch.Tensor]  # each split in student token ids
    x_train: torch.Tensor  # training statements and their perturbed copies, student ids
    y_train: torch.Tensor
    kd_targets: torch.Tensor  # [label, teacher logits...] per x_train row


def build_transfer_set(
    cfg: TextDistillConfig,
    tok: Any,
    t_dir: Path,
    texts: dict[str, list[str]],
    x_t: dict[str, torch.Tensor],
    y_train: torch.Tensor,
    teacher: nn.Module,
    t_logits_train: torch.Tensor,
) -> TransferSet:
    """Student vocabulary from training and validation text only (test words the student never saw are
    spelled with single-character fallback pieces), and the transfer set labelled by `teacher`."""
    from transformers import AutoTokenizer

    L = cfg.max_length
    if cfg.shrink_vocab:
        s_tok, kept = shrink_tokenizer(tok, texts["train"] + texts["val"], L)
        to_student = torch.zeros(len(tok), dtype=torch.long)
        to_student[torch.tensor(kept)] = torch.arange(len(kept))
    else:
        s_tok, kept, to_student = (
            AutoTokenizer.from_pretrained(t_dir, model_max_length=L),
            None,
            torch.arange(len(tok)),
        )
    x_s = {s: encode(s_tok, texts[s], L) for s in SPLITS}
    special = [tok.pad_token_id, tok.cls_token_id, tok.sep_token_id]
    continuation, pool = word_pool(tok, x_t["train"], special)
    x_aug = augment_ids(
        x_t["train"], cfg.augment_copies, special, tok.mask_token_id, tok.pad_token_id,
        cfg.augment_p_delete, cfg.augment_p_mask, cfg.seed,
        p_replace=cfg.augment_p_replace, continuation=continuation, pool=pool,
    )  # fmt: skip
    # the teacher labels the perturbed statements themselves (their soft targets, not the originals')
    # every piece of a training statement is in the student vocabulary, so ids map one to one
    x_train = torch.cat([x_s["train"], to_student[x_aug]])
    y_all = y_train.repeat(cfg.augment_copies + 1)
    # no augmented copies (augment_copies 0): nothing to ask the teacher about
    aug_logits = predict(teacher, x_aug, 256) if len(x_aug) else t_logits_train[:0]
    kd_targets = torch.cat([y_all.float()[:, None], torch.cat([t_logits_train, aug_logits])], dim=1)
    return TransferSet(s_tok, kept, x_s, x_train, y_all, kd_targets)
