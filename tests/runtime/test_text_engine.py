"""The text runtime on a real text bundle: batches padded to their longest message give the outputs of
one-by-one runs, truncation at max_length, and the device tokenizer checked against the exporter's ids."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit.errors import BundleError
from edgekit.runtime.text import TextEngine, prefix_cut_chars

LONG = " ".join(["the pump on line three is vibrating and the bearing temperature keeps rising"] * 4)


@pytest.fixture(scope="module")
def engine(text_bundle) -> TextEngine:
    return TextEngine.from_verified(text_bundle, None)


def test_a_batch_is_padded_to_its_longest_message_not_to_max_length(engine):
    texts = ["hi", "what is your favourite programming language?"]
    feeds = engine.tokenize(texts)
    lengths = [sum(e.attention_mask) for e in engine.tokenizer.encode_batch(texts)]
    assert feeds["input_ids"].shape == (2, max(lengths)) and max(lengths) < engine.max_length
    assert feeds["attention_mask"].tolist()[0] == [1] * lengths[0] + [0] * (max(lengths) - lengths[0])
    assert all(v.dtype == np.int64 for v in feeds.values())


def test_long_texts_are_truncated_at_the_bundles_max_length(engine):
    assert engine.tokenize([LONG, "hi"])["input_ids"].shape == (2, engine.max_length)


def test_padding_to_the_batch_maximum_gives_the_outputs_of_one_by_one(engine):
    texts = [*engine.golden_texts(), "hi", LONG, "are you a robot"]
    batched = engine.infer(engine.tokenize(texts))
    single = np.concatenate([engine.infer(engine.tokenize([t])) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=1e-4)
    probs = engine.postprocess(batched)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (probs.argmax(1) == single.argmax(1)).all()


def test_golden_texts_reproduce_the_exporters_logits(engine):
    """tokenizers on the device + padding to the longest == the exporter's HF tokenizer padded to max_length."""
    with np.load(engine.bundle_dir / "golden.npz") as g:
        texts, expected = [str(t) for t in g["texts"]], g["outputs"]
    gl = engine.manifest.golden
    np.testing.assert_allclose(engine.infer(engine.tokenize(texts)), expected, atol=gl.atol, rtol=gl.rtol)


def full_tokenization(engine: TextEngine, texts: list[str]) -> dict[str, np.ndarray]:
    """What tokenize() must give: the tokenizer on the whole texts, no cut."""
    encs = engine.tokenizer.encode_batch(texts)
    cols = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
    return {n: np.asarray([getattr(e, cols[n]) for e in encs], np.int64) for n in engine.input_names}


def test_long_texts_cut_before_tokenizing_give_the_ids_of_the_whole_text(engine):
    assert engine.cut_chars is not None  # a BERT WordPiece tokenizer: cut at spaces
    rng = np.random.default_rng(0)
    pool = [
        "pump",
        "Bearing",
        "temp.",
        "rising!",
        "Café",
        "crème",
        "brûlée",
        "naïve",
        "机器人",
        "温度",
        "3.14",
        "x" * 150,  # longer than WordPiece's max word: one [UNK]
        "tab\there",
        "new\nline",
        "nb\u00a0sp",
        "ctl\x1cchar",
        "\u0301",
        "e\u0301",
        "ÅNGSTRÖM",
        "don't",
        "\u200b",
        "😀",
        "[SEP]",
        "—",
        "",
    ]
    texts = []
    for _ in range(300):
        words = rng.choice(pool, size=int(rng.integers(0, 400)))
        seps = rng.choice([" ", " ", " ", "  ", "\t", "\n"], size=len(words))
        texts.append("".join(w + sp for w, sp in zip(words, seps, strict=True)))
    huge_words = ("y" * 150 + " ") * 40  # the cut text holds 1-2 [UNK]s, short of max_length: retokenized
    no_space = "z" * (engine.cut_chars + 50)
    at_cut = "a" * engine.cut_chars + " " + LONG
    texts += [huge_words, no_space, at_cut, LONG, ""]
    assert sum(engine.tokenizer.encode(engine._cut(huge_words)).attention_mask) < engine.max_length
    assert sum(len(engine._cut(t)) < len(t) for t in texts) > 100  # the cut really ran
    for batch in [texts[i : i + 7] for i in range(0, len(texts), 7)] + [[t] for t in texts]:
        got, want = engine.tokenize(batch), full_tokenization(engine, batch)
        for name in engine.input_names:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{name} of {batch!r:.200}")


def test_tokenizers_whose_cut_is_not_exact_are_never_cut():
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers

    def tok(pre, norm=None) -> Tokenizer:
        t = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
        t.pre_tokenizer = pre
        if norm is not None:
            t.normalizer = norm
        return t

    assert prefix_cut_chars(tok(pre_tokenizers.Whitespace()), 16) == 128
    seq = pre_tokenizers.Sequence([pre_tokenizers.Punctuation(), pre_tokenizers.WhitespaceSplit()])
    assert prefix_cut_chars(tok(seq, normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()])), 8)
    assert prefix_cut_chars(tok(pre_tokenizers.ByteLevel()), 16) is None  # spaces belong to the next word
    assert prefix_cut_chars(tok(pre_tokenizers.Metaspace()), 16) is None
    assert prefix_cut_chars(tok(pre_tokenizers.Punctuation()), 16) is None  # does not split at spaces
    assert prefix_cut_chars(tok(pre_tokenizers.Whitespace(), normalizers.Replace(" ", "")), 16) is None
    spaced = tok(pre_tokenizers.Whitespace())
    spaced.add_tokens([AddedToken("pump room", normalized=False)])
    assert prefix_cut_chars(spaced, 16) is None
    nfkc = tok(pre_tokenizers.Whitespace(), normalizers.NFKC())
    nfkc.add_tokens([AddedToken("x\u00a8y", normalized=True)])  # NFKC: "x \u0308y", a space inside
    assert prefix_cut_chars(nfkc, 16) is None
    raw = tok(pre_tokenizers.Whitespace(), normalizers.NFKC())
    raw.add_tokens([AddedToken("x\u00a8y", normalized=False)])  # matched as written: no space
    assert prefix_cut_chars(raw, 16) == 128


def test_self_test_refuses_a_tokenizer_that_disagrees_with_the_exporter(engine, text_bundle, tmp_path):
    bad = tmp_path / "bundle"
    shutil.copytree(text_bundle, bad)
    spec = json.loads((bad / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    first = engine.tokenizer.encode(engine.golden_texts()[0]).tokens[1]  # after [CLS]
    other = next(t for t in vocab if t not in (first,) and not t.startswith("["))
    vocab[first], vocab[other] = vocab[other], vocab[first]  # same files, other ids for one word
    (bad / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(BundleError, match="other token ids than the exporter"):
        TextEngine(bad).self_test()


def test_engines_refuse_the_other_kind_of_bundle(text_bundle, sensor_bundle):
    from edgekit.runtime.engine import Engine

    with pytest.raises(BundleError, match="cannot classify text"):
        TextEngine(sensor_bundle)
    with pytest.raises(BundleError, match="cannot score sensor windows"):
        Engine(text_bundle)
