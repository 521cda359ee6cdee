"""A loaded text bundle: tokenize with the bundle's tokenizer.json (the `tokenizers` library only), run the
onnxruntime session, softmax. No transformers, torch or optimum on the device.

A batch is padded to its LONGEST message, not to the bundle's max_length: a 6-token alarm message costs 6
positions, not 64. Texts longer than max_length are truncated there, as the export did.

Long texts are cut before tokenizing, exactly: a model that reads 32 tokens need not tokenize a 2 KB log
line. When the tokenizer splits words at spaces and normalizes character by character (BERT/WordPiece
style, `prefix_cut_chars`), the tokens of text[:i] are the first tokens of text whenever text[i] is a
space; so a text is cut at the first space after `cut_chars`, and if the cut text fills max_length, its
ids are the full text's ids. A cut text that does not fill max_length (very long words) is tokenized
whole again. Tokenizers of other kinds (byte-level BPE, SentencePiece's Metaspace) are never cut.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from edgekit.bundle.manifest import Manifest
from edgekit.errors import BundleError
from edgekit.profiles import TargetProfile
from edgekit.runtime.engine import BundleEngine, self_test

log = logging.getLogger(__name__)

# Tried in order when tokenizer.json carries no padding section (HF saves one only when asked to pad).
_PAD_TOKENS = ("[PAD]", "<pad>", "<|padding|>")


# Normalizers that map each character on its own (a space stays a space and combines with nothing), and
# pre-tokenizers that split at every space and never join across one: under these, cutting at a space is exact.
_CUT_SAFE_NORMALIZERS = {"BertNormalizer", "Lowercase", "NFD", "NFKD", "NFC", "NFKC", "StripAccents"}
_CUT_SAFE_PRE_TOKENIZERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit", "Punctuation", "Digits"}
_SPLITS_AT_SPACES = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}
# characters of text kept per token of max_length before the cut; English averages 4-5 per word piece
CHARS_PER_TOKEN = 8


def _parts(spec: dict | None, key: str) -> list[str] | None:
    """Type names of a normalizer/pre-tokenizer spec, Sequences flattened; None for an unknown shape."""
    if spec is None:
        return []
    if spec.get("type") == "Sequence":
        out: list[str] = []
        for sub in spec.get(key, []):
            names = _parts(sub, key)
            if names is None:
                return None
            out += names
        return out
    return [spec["type"]] if isinstance(spec.get("type"), str) else None


def prefix_cut_chars(tok: Tokenizer, max_length: int) -> int | None:
    """Characters from which a text may be cut at its next space without changing its first max_length
    ids; None when this tokenizer's normalizer or pre-tokenizer makes a cut inexact."""
    spec = json.loads(tok.to_str())
    norms = _parts(spec.get("normalizer"), "normalizers")
    pres = _parts(spec.get("pre_tokenizer"), "pretokenizers")
    if norms is None or pres is None or not set(norms) <= _CUT_SAFE_NORMALIZERS:
        return None
    if not set(pres) <= _CUT_SAFE_PRE_TOKENIZERS or not set(pres) & _SPLITS_AT_SPACES:
        return None
    for t in spec.get("added_tokens") or []:
        forms = [t.get("content", "")]
        if t.get("normalized") and tok.normalizer is not None:  # matched after normalizing: NFKC makes
            forms.append(tok.normalizer.normalize_str(forms[0]))  # "\u00a8" into " \u0308"
        if any(c.isspace() for f in forms for c in f):
            return None  # an added token holding a space could be cut in two
    return CHARS_PER_TOKEN * max_length


def load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    """tokenizer.json set to truncate at `max_length` and pad each batch to its longest encoding."""
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a plain Exception for unreadable or unknown JSON
        raise BundleError(f"{path}: not a readable tokenizer.json ({exc})") from None
    pad = tok.padding
    if pad is not None:
        pad_id, pad_token = pad["pad_id"], pad["pad_token"]
    else:
        found = [(t, tok.token_to_id(t)) for t in _PAD_TOKENS if tok.token_to_id(t) is not None]
        # the attention mask hides padded positions, so any id works when the vocabulary names no pad token
        pad_token, pad_id = found[0] if found else ("[PAD]", 0)
    tok.enable_truncation(max_length)
    tok.enable_padding(pad_id=pad_id, pad_token=pad_token)  # length None: the longest of the batch
    return tok


def is_unicode(s: str) -> bool:
    """False for a str holding a lone UTF-16 surrogate (JSON's "\\ud800" decodes to one): tokenizers refuses
    such a string, and with it the whole batch it sits in, so receivers refuse the message first."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TextEngine(BundleEngine):
    """`classify(texts)` maps strings to class probabilities [B, K]; the stages are public for the bench."""

    KIND = "text"
    REFUSAL = "cannot classify text"

    def __init__(
        self, bundle_dir: str | Path, profile: TargetProfile | None = None, manifest: Manifest | None = None
    ) -> None:
        super().__init__(bundle_dir, profile, manifest)
        m = self.manifest
        if m.text is None:
            raise BundleError(f"{bundle_dir}: a text bundle without a text spec")
        self.max_length = m.text.max_length
        self.tokenizer = load_tokenizer(self.bundle_dir / m.text.tokenizer, self.max_length)
        self.input_names = [i.name for i in self.session.get_inputs()]
        known = {"input_ids", "attention_mask", "token_type_ids"}
        if unknown := [n for n in self.input_names if n not in known]:
            raise BundleError(f"{bundle_dir}: the model takes inputs a tokenizer cannot give: {unknown}")
        self.labels = list(m.labels)
        self.cut_chars = prefix_cut_chars(self.tokenizer, self.max_length)

    def _cut(self, text: str) -> str:
        if self.cut_chars is None or len(text) <= self.cut_chars:
            return text
        i = text.find(" ", self.cut_chars)
        return text if i < 0 else text[:i]

    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        """tokenizers Encodings of `texts`, long ones cut first where that is exact (module docstring)."""
        texts = list(texts)
        cut = [self._cut(t) for t in texts]
        encs = self.tokenizer.encode_batch(cut)
        redo = [
            i
            for i, e in enumerate(encs)
            if len(cut[i]) < len(texts[i]) and sum(e.attention_mask) < self.max_length
        ]
        if redo:  # a cut text short of max_length (very long words): the whole text decides
            for i in redo:
                cut[i] = texts[i]
            encs = self.tokenizer.encode_batch(cut)
        return encs

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The model's feeds [B, L] (int64), L = the longest encoding of the batch (<= max_length)."""
        encs = self.encode(texts)
        cols = {
            "input_ids": [e.ids for e in encs],
            "attention_mask": [e.attention_mask for e in encs],
            "token_type_ids": [e.type_ids for e in encs],
        }
        return {n: np.asarray(cols[n], dtype=np.int64) for n in self.input_names}

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Raw logits [B, K] as float32."""
        return np.asarray(self.session.run([self.output_name], feeds)[0], dtype=np.float32)

    @staticmethod
    def postprocess(logits: np.ndarray) -> np.ndarray:
        """Softmax over the classes, computed stably."""
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def classify(self, texts: Sequence[str]) -> np.ndarray:
        return self.postprocess(self.infer(self.tokenize(texts)))

    def golden_texts(self) -> list[str]:
        """The held-out texts of the golden file, or (older bundles) its token ids decoded back to text."""
        with np.load(self.bundle_dir / self.manifest.golden.file) as g:
            if "texts" in g.files:
                return [str(t) for t in g["texts"]]
            ids = g["input_ids"]
        return self.tokenizer.decode_batch([row.tolist() for row in ids], skip_special_tokens=True)

    def self_test(self) -> None:
        """Golden token ids must reproduce the golden logits, and when the golden file holds its texts, this
        device's tokenizer must give the ids the exporter's tokenizer gave."""
        self_test(self.bundle_dir, self.manifest, self.profile)
        with np.load(self.bundle_dir / self.manifest.golden.file) as g:
            if "texts" not in g.files:
                return
            texts, ids, mask = [str(t) for t in g["texts"]], g["input_ids"], g["attention_mask"]
        for i, enc in enumerate(self.encode(texts)):  # the path the daemon runs, cut included
            n = int(mask[i].sum())
            if enc.ids[: sum(enc.attention_mask)] != ids[i, :n].tolist():
                raise BundleError(
                    f"{self.bundle_dir}: self-test failed: tokenizer.json gives other token ids than the "
                    f"exporter for golden text {i} ({texts[i][:40]!r})"
                )
