"""The text runtime on a real text bundle: batches padded to their longest message give the outputs of
one-by-one runs, truncation at max_length, and the device tokenizer checked against the exporter's ids."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit.errors import BundleError
from edgekit.runtime.text import TextEngine

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
