"""DistilBERT-style text students: layers kept from the teacher, the hidden-state KD loss, word replacement
in the transfer set, and the config checks that guard them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.distill.text_config import TextDistillConfig, check_text_config
from edgekit.distill.text_train import hidden_state_mse, layer_student_name, student_specs
from edgekit.distill.text_transfer import augment_ids
from edgekit.errors import ConfigError
from edgekit.models.text import layer_dropped_student, minilm_dir, spread_layers


@pytest.fixture(scope="module")
def teacher():
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    return AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=3).eval()


def test_spread_layers_keeps_first_and_last():
    assert spread_layers(6, 3) == [0, 2, 5] and spread_layers(6, 2) == [0, 5]
    assert spread_layers(6, 6) == list(range(6)) and spread_layers(6, 1) == [5]
    with pytest.raises(ValueError):
        spread_layers(6, 7)


def test_layer_dropped_student_starts_as_the_teachers_chosen_layers(teacher):
    kept = [0, 100, 101, 102, 103, 2000, 7592, 30000]  # vocabulary pieces kept, in teacher ids
    student = layer_dropped_student(teacher, [0, 2, 5], kept, max_length=24)
    assert student.config.num_hidden_layers == 3 and student.config.vocab_size == len(kept)
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for s_layer, t_layer in enumerate([0, 2, 5]):
        prefix = f"bert.encoder.layer.{s_layer}."
        names = [n for n in s_state if n.startswith(prefix)]
        assert len(names) == 16
        for n in names:
            assert torch.equal(s_state[n], t_state[n.replace(prefix, f"bert.encoder.layer.{t_layer}.")]), n
    assert torch.equal(
        s_state["bert.embeddings.word_embeddings.weight"],
        t_state["bert.embeddings.word_embeddings.weight"][kept],
    )
    assert torch.equal(
        s_state["bert.embeddings.position_embeddings.weight"],
        t_state["bert.embeddings.position_embeddings.weight"][:24],
    )
    for n in ("classifier.weight", "bert.pooler.dense.weight", "bert.embeddings.LayerNorm.weight"):
        assert torch.equal(s_state[n], t_state[n])
    # the same computation: on pieces it kept, the student with every layer kept is the teacher
    full = layer_dropped_student(teacher, list(range(6)), kept, max_length=24).eval()
    ids = torch.tensor([[2, 5, 6, 3, 4, 7]])
    with torch.no_grad():
        np.testing.assert_allclose(
            full(input_ids=ids).logits.numpy(),
            teacher(input_ids=torch.tensor(kept)[ids]).logits.numpy(),
            atol=1e-5,
        )
    with pytest.raises(ValueError):
        layer_dropped_student(teacher, [2, 0], kept, 24)
    # positions are not cut below the 16 tokens optimum's exporter traces with
    assert layer_dropped_student(teacher, [5], kept, 8).config.max_position_embeddings == 16


def test_hidden_state_mse_known_value():
    s = [torch.zeros(1, 3, 2), torch.ones(1, 3, 2)]
    t = [torch.tensor([[[1.0, 1.0], [2.0, 0.0], [9.0, 9.0]]]), torch.ones(1, 3, 2)]
    mask = torch.tensor([[1, 1, 0]])  # the third position is padding: its difference does not count
    # layer 1: squared differences 1+1+4+0 over 2 tokens x 2 dims = 1.5; layer 2: 0; mean 0.75
    assert hidden_state_mse(s, t, mask).item() == pytest.approx(0.75)


def test_word_replacement_swaps_only_whole_one_piece_words():
    # ids 10..13 words, 20 a '##' continuation: [CLS] 10 11 20 12 [SEP] pad pad
    ids = torch.tensor([[101, 10, 11, 20, 12, 102, 0, 0]] * 200)
    continuation = np.zeros(200, bool)
    continuation[20] = True
    pool = np.array([50, 51])
    out = augment_ids(
        ids, 1, [0, 101, 102], 103, 0, 0.0, 0.0, seed=0, p_replace=0.5, continuation=continuation, pool=pool
    ).numpy()
    assert (out[:, [0, 2, 3, 5, 6, 7]] == ids.numpy()[:, [0, 2, 3, 5, 6, 7]]).all()  # 11 + ##20 is one word
    for col, word in ((1, 10), (4, 12)):
        assert set(out[:, col]) <= {word, 50, 51}
        assert 0.35 < (out[:, col] != word).mean() < 0.65
    # no replacement asked: the same rows as before the option existed
    base = augment_ids(ids, 2, [0, 101, 102], 103, 0, 0.2, 0.2, seed=3)
    again = augment_ids(ids, 2, [0, 101, 102], 103, 0, 0.2, 0.2, seed=3, continuation=continuation, pool=pool)
    assert torch.equal(base, again)


def test_student_specs_and_config_checks():
    cfg = TextDistillConfig(out="x", layer_students=[[0, 2, 5], [0, 5]])
    names = [s.name for s in student_specs(cfg)]
    assert names == [
        "student", "student_no_kd", "student_l0_2_5", "student_l0_2_5_no_kd", "student_l0_5", "student_l0_5_no_kd"
    ]  # fmt: skip
    assert layer_student_name([0, 5]) == "student_l0_5"
    cfg.no_kd_students = False
    assert [s.name for s in student_specs(cfg)][2:] == ["student_l0_2_5", "student_l0_5"]
    for bad in (
        {"layer_students": [[2, 1]]},
        {"layer_students": [[]]},
        {"hidden_kd": -1.0},
        {"augment_p_replace": 0.9},
    ):
        with pytest.raises(ConfigError):
            check_text_config(TextDistillConfig(out="x", **bad))
