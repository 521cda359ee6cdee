"""Text bundles: a HF student exported with optimum's ONNX exporter, parity against the torch model on
real held-out texts, optional INT8/FP16, quality gated on macro-F1, and tokenizer.json in the bundle.

RUN_DIR contract (written by the text distillation, typed by `edgekit.run.TextRun`): run.json with
student_dir, labels, max_length and optional escalation_threshold; STUDENT_DIR (save_pretrained model and
tokenizer, with tokenizer.json); text_eval.jsonl ({"text", "label"} per line).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle.manifest import InputSpec, Manifest, OutputSpec, TextSpec
from edgekit.errors import ConfigError, DataError
from edgekit.export.exporter import ExportOptions, ModelExporter
from edgekit.export.gate import GateModel, Quality, QualityMetric
from edgekit.export.onnx import check_model
from edgekit.export.package import golden_indices
from edgekit.metrics import classification_metrics
from edgekit.profiles import TargetProfile
from edgekit.run import TEXT_EVAL_FILE, RunFolder, TextRun, load_text_eval
from edgekit.runtime.engine import create_session

TEXT_MODES = ("fp32", "int8-dynamic", "fp16")
EXPORTER = "optimum.exporters.onnx.main_export (task text-classification)"
# statements per onnxruntime / torch call when scoring the held-out texts
BATCH = 256


def _run(sess: Any, feeds: dict[str, np.ndarray], batch: int = BATCH) -> np.ndarray:
    names = [i.name for i in sess.get_inputs()]
    n = len(next(iter(feeds.values())))
    outs = [sess.run(["logits"], {k: feeds[k][i : i + batch] for k in names})[0] for i in range(0, n, batch)]
    return np.concatenate(outs).astype(np.float32)


class TextExporter(ModelExporter):
    kind = "text"
    metric = QualityMetric("macro_f1", "macro-F1")
    input_name = "input_ids"
    converter = EXPORTER
    supported_modes = TEXT_MODES

    def __init__(self, run: RunFolder, profile: TargetProfile, options: ExportOptions) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never reach for the hub
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        super().__init__(run, profile, options)
        for mode in self.modes:
            if mode not in TEXT_MODES:
                raise ConfigError(
                    f"profile {profile.name}: quantization.mode {mode} is not supported for text bundles (use one of {', '.join(TEXT_MODES)})"
                )
        assert isinstance(run.info, TextRun)
        self.info: TextRun = run.info
        # --model picks a model of the run: its student (run.json), its teacher, or another NAME_hf/ folder
        named = {"student": self.info.student_dir, "teacher": self.info.teacher_dir}
        self.student_dir = run.path / (named.get(options.model) or f"{options.model}_hf")
        if not self.student_dir.is_dir():
            raise ConfigError(f"{run.path}: no model {options.model!r} (no folder {self.student_dir.name}/)")
        if not (self.student_dir / "tokenizer.json").is_file():
            raise DataError(
                f"{self.student_dir}: no tokenizer.json (save the fast tokenizer with the student)"
            )
        self.texts, self.y = load_text_eval(run.path)
        tokenizer = AutoTokenizer.from_pretrained(self.student_dir)
        self.encoded = dict(
            tokenizer(
                self.texts,
                max_length=self.info.max_length,
                truncation=True,
                padding="max_length",
                return_tensors="np",
            )
        )
        self.model = AutoModelForSequenceClassification.from_pretrained(self.student_dir).eval()
        self.feeds: dict[str, np.ndarray] = {}

    @property
    def model_name(self) -> str:
        # the bundle's default model id follows the exported student (`--model student_l3` etc.)
        return "text student" if self.options.model == "student" else f"text {self.options.model}"

    @property
    def report_row(self) -> str:
        return self.options.model

    @property
    def source_model(self) -> str:
        return self.student_dir.name

    def to_onnx(self, work: Path) -> Path:
        from optimum.exporters.onnx import main_export

        main_export(
            str(self.student_dir),
            output=str(work),
            task="text-classification",
            opset=self.profile.opset,
            do_validation=False,
        )
        fp32 = work / "model.onnx"
        check_model(fp32)
        # the graph's own inputs decide the feeds (input_ids, attention_mask, maybe token_type_ids)
        graph_inputs = create_session(fp32, self.profile).get_inputs()
        self.feeds = {i.name: self.encoded[i.name].astype(np.int64) for i in graph_inputs}
        return fp32

    def torch_outputs(self) -> np.ndarray:
        import torch

        n = len(self.texts)
        with torch.no_grad():
            return np.concatenate(
                [
                    self.model(
                        **{k: torch.from_numpy(v[i : i + BATCH]) for k, v in self.feeds.items()}
                    ).logits.numpy()
                    for i in range(0, n, BATCH)
                ]
            )

    def onnx_outputs(self, model: Path) -> np.ndarray:
        return _run(create_session(model, self.profile), self.feeds)

    def manifest_fields(self) -> dict[str, Any]:
        return {
            "kind": "text",
            "input": InputSpec("input_ids", "int64", [None, None]),
            "output": OutputSpec("logits", "softmax"),
            "labels": list(self.info.labels),
            # the run chose its escalation threshold for its student; other models carry none
            "threshold": float((self.options.model == "student" and self.info.escalation_threshold) or 0.0),
            "text": TextSpec("tokenizer.json", self.info.max_length),
        }

    def gate_model(self, bundle_dir: Path, manifest: Manifest) -> GateModel:
        sess = create_session(bundle_dir / manifest.model_file, self.profile)

        def quality() -> Quality:
            pred = _run(sess, self.feeds).argmax(1)
            return Quality(classification_metrics(self.y, pred, list(self.info.labels)), pred)

        singles = [{k: v[i : i + 1] for k, v in self.feeds.items()} for i in range(min(len(self.texts), 64))]
        return GateModel(quality, lambda i: sess.run(["logits"], singles[i % len(singles)]))

    def finish(self, bundle: Path, manifest: Manifest, candidate: dict[str, Any]) -> None:
        shutil.copyfile(self.student_dir / "tokenizer.json", bundle / "tokenizer.json")

    def golden(self, bundle: Path, manifest: Manifest) -> dict[str, np.ndarray]:
        # token ids, so the device proves the model without needing the tokenizer
        idx = golden_indices(None, len(self.texts))
        feeds = {k: v[idx] for k, v in self.feeds.items()}
        outputs = _run(create_session(bundle / manifest.model_file, self.profile), feeds)
        # the texts too: the device checks its tokenizer against these ids, and benches on real texts
        return {**feeds, "outputs": outputs, "texts": np.array([self.texts[i] for i in idx])}

    def extra_metrics(self) -> dict[str, Any]:
        return {
            "threshold_meaning": "escalate to the teacher when the max softmax probability is below threshold"
        }

    @property
    def provenance_files(self) -> list[Path]:
        return [self.run.run_file, self.student_dir / "model.safetensors", self.run.path / TEXT_EVAL_FILE]
