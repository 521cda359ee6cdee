"""Text distillation: a short real run (real corpus, MiniLM cut to one layer) checked against the
RUN_DIR contract, plus the vocabulary shrink and the multi-class / escalation figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgekit.distill.escalation import escalation_threshold, escalation_view
from edgekit.metrics import classification_metrics, macro_f1


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from edgekit.distill.text import TextDistillConfig, distill_text

    out = tmp_path_factory.mktemp("text_run")
    cfg = TextDistillConfig(
        out=str(out),
        max_statements=600,
        max_length=16,
        teacher_layers=1,
        teacher_epochs=2,
        teacher_lr=3e-4,
        student_epochs=15,
        bootstrap=50,
    )
    return out, distill_text(cfg)


def test_run_dir_contract(text_run):
    out, report = text_run
    run = json.loads((out / "run.json").read_text())
    assert run["schema"] == 1 and run["kind"] == "text" and run["dataset"] == "chatterbot"
    assert run["labels"] == report["labels"] and run["max_length"] == 16 and run["seed"] == 0
    assert isinstance(run["escalation_threshold"], float)
    for key in ("student_dir", "teacher_dir"):
        d = out / run[key]
        for f in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json"):
            assert (d / f).is_file(), d / f
    rows = [json.loads(line) for line in (out / "text_eval.jsonl").read_text().splitlines()]
    assert len(rows) == sum(report["statements"]["test"].values())
    assert all(isinstance(r["text"], str) and 0 <= r["label"] < len(run["labels"]) for r in rows)
    saved = json.loads((out / "report.json").read_text())
    for name in ("teacher", "student", "student_no_kd"):
        assert {"accuracy", "macro_f1", "macro_f1_ci95", "per_class", "params", "bytes", "torch_ms"} <= set(
            saved[name]
        )
    assert saved["teacher"]["params"] > saved["student"]["params"]
    assert (
        "retention" in saved
        and "escalation" in saved
        and (out / "report.md").read_text().startswith("# Distillation")
    )


def test_student_beats_majority_class(text_run):
    out, report = text_run
    rows = [json.loads(line) for line in (out / "text_eval.jsonl").read_text().splitlines()]
    y = np.array([r["label"] for r in rows])
    majority = max(report["statements"]["train"], key=report["statements"]["train"].get)
    constant_accuracy = float((y == report["labels"].index(majority)).mean())
    assert report["student"]["accuracy"] > constant_accuracy, (
        report["student"]["accuracy"],
        constant_accuracy,
    )


def test_saved_student_reproduces_report(text_run):
    """What an exporter sees: the saved directory alone (fixed-length padding from tokenizer.json)."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForSequenceClassification

    out, report = text_run
    run = json.loads((out / "run.json").read_text())
    d = out / run["student_dir"]
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    rows = [json.loads(line) for line in (out / "text_eval.jsonl").read_text().splitlines()]
    enc = tok.encode_batch([r["text"] for r in rows])
    assert {len(e.ids) for e in enc} == {run["max_length"]}
    model = AutoModelForSequenceClassification.from_pretrained(d).eval()
    with torch.no_grad():
        logits = model(
            input_ids=torch.tensor([e.ids for e in enc]),
            attention_mask=torch.tensor([e.attention_mask for e in enc]),
        ).logits
    acc = float((logits.argmax(1).numpy() == np.array([r["label"] for r in rows])).mean())
    assert acc == pytest.approx(report["student"]["accuracy"], abs=1.5 / len(rows))
    assert model.config.id2label[0] == run["labels"][0]


def test_shrunk_vocabulary_keeps_training_pieces():
    from transformers import AutoTokenizer

    from edgekit.models.text import minilm_dir, shrink_tokenizer

    tok = AutoTokenizer.from_pretrained(minilm_dir())
    train = ["My computer won't turn on.", "Who was the 37th President?"]
    small, kept = shrink_tokenizer(tok, train, 16)
    assert len(small) == len(kept) < 400
    for t in train:
        assert [kept[i] for i in small(t)["input_ids"]] == tok(t)["input_ids"]
    unseen = small("Xylophone quartet")["input_ids"]
    assert small.unk_token_id not in unseen and len(unseen) > 4  # spelled with fallback pieces


def test_multiclass_metrics_and_escalation():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    m = classification_metrics(y, pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    f1 = [2 * 1 / (2 + 2), 2 * 2 / (2 + 3), 2 * 1 / (2 + 1)]  # 2tp / (support + predicted)
    assert m["macro_f1"] == pytest.approx(np.mean(f1)) == pytest.approx(macro_f1(y, pred, 3))
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["recall"] == 1.0

    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 0, 1, 0], bool)
    assert escalation_threshold(conf, correct, 1.0) == pytest.approx(0.7)  # keep the top three
    assert escalation_threshold(conf, correct, 0.5) == 0.0  # all kept already meet the target
    assert escalation_threshold(conf, np.zeros(6, bool), 0.9) > 0.9  # nothing reaches it: escalate all
    view = escalation_view(conf, pred, y, y, 0.7, 3)  # a perfect teacher takes the escalated half
    assert view["escalated_fraction"] == 0.5 and view["combined_accuracy"] == pytest.approx(5 / 6)


def test_cli_rejects_sensor_flags_for_text(tmp_path, capsys):
    from edgekit.cli import main

    assert main(["distill", "--dataset", "chatterbot", "--window", "3", "--out", str(tmp_path)]) == 2
    assert "--window" in capsys.readouterr().err


def test_augment_ids_deletes_and_masks_only_unprotected_tokens():
    from edgekit.distill.text_transfer import augment_ids

    ids = torch.tensor([[101, 5, 6, 7, 8, 102, 0, 0]] * 50)
    out = augment_ids(
        ids, copies=2, protected=[0, 101, 102], mask_id=103, pad_id=0, p_delete=0.3, p_mask=0.3, seed=0
    )
    assert out.shape == (100, 8)
    for row in out.tolist():
        body = row[1 : row.index(102)]
        assert row[0] == 101 and row.count(102) == 1 and all(t == 0 for t in row[row.index(102) + 1 :])
        assert all(t in (5, 6, 7, 8, 103) for t in body) and len(body) <= 4
        kept = [t for t in body if t != 103]
        assert kept == sorted(kept)  # survivors keep their order
    assert (out == 103).any() and (out == 0).sum() > ids.shape[0] * 2 * 2  # some masked, some deleted
    assert torch.equal(out, augment_ids(ids, 2, [0, 101, 102], 103, 0, 0.3, 0.3, seed=0))


def test_run_dir_config_repeats_the_text_run(text_run):
    """RUN_DIR/config.yaml holds the effective settings (the student shape filled in) and loads back."""
    from edgekit.distill.config import CONFIG_FILE, build_config, read_config_file
    from edgekit.distill.text_config import TextDistillConfig
    from edgekit.models.text import TextStudentConfig

    out, _report = text_run
    path = out / CONFIG_FILE
    data = read_config_file(path)
    assert "out" not in data and data["max_statements"] == 600 and data["teacher_layers"] == 1
    cfg = build_config(TextDistillConfig, data, str(path), {"out": str(out / "again")})
    assert cfg.student == TextStudentConfig() and cfg.max_length == 16 and cfg.bootstrap == 50


@pytest.mark.parametrize("copies", [0, 2])
def test_transfer_set_with_and_without_augmented_copies(copies):
    """Before: augment_copies 0 crashed (the teacher was asked about an empty batch: torch.cat of nothing)."""
    import torch
    from transformers import AutoTokenizer

    from edgekit.distill.text_config import TextDistillConfig
    from edgekit.distill.text_transfer import build_transfer_set, encode
    from edgekit.models.text import minilm_dir

    t_dir = minilm_dir()
    tok = AutoTokenizer.from_pretrained(t_dir, model_max_length=16)
    texts = {
        "train": ["the printer is out of toner", "reset my password please", "the fan is noisy"],
        "val": ["my screen stays black"],
        "test": ["the network is down again"],
    }
    cfg = TextDistillConfig(out="unused", max_length=16, augment_copies=copies)
    x_t = {s: encode(tok, t, 16) for s, t in texts.items()}
    teacher = torch.nn.Sequential(torch.nn.Embedding(len(tok), 4), torch.nn.Flatten(), torch.nn.Linear(64, 3))
    t_logits = teacher(x_t["train"]).detach()
    ts = build_transfer_set(cfg, tok, t_dir, texts, x_t, torch.tensor([0, 1, 2]), teacher, t_logits)
    assert len(ts.x_train) == 3 * (copies + 1) and ts.kd_targets.shape == (3 * (copies + 1), 4)
