"""Text bundles: a HF student exported with optimum's ONNX exporter, parity against the torch model on
real held-out texts, optional INT8/FP16, the release gate on macro-F1, and tokenizer.json in the bundle.

RUN_DIR contract (written by the text distillation): run.json {"kind": "text", "student_dir",
"labels", "max_length", optional "escalation_threshold"}, STUDENT_DIR (save_pretrained model and
tokenizer, with tokenizer.json), text_eval.jsonl ({"text", "label"} per line).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle.manifest import Golden, InputSpec, Manifest, OutputSpec, TextSpec
from edgekit.errors import ConfigError, DataError
from edgekit.export.gate import (
    check_drop,
    host_arch,
    interleaved_latency,
    latency_applicability,
    latency_gate,
    refuse,
)
from edgekit.export.onnx import check_model, compare, model_opset, require_parity
from edgekit.export.opcheck import check_ops
from edgekit.export.package import golden_indices, publish, seal, staging, write_golden
from edgekit.export.pipeline import ExportOptions, model_id_for, provenance, read_report, read_run
from edgekit.export.quantize import QUANTIZERS, quantize
from edgekit.profiles import TargetProfile
from edgekit.runtime.engine import create_session, self_test

log = logging.getLogger(__name__)

TEXT_MODES = ("fp32", "int8-dynamic", "fp16")
EXPORTER = "optimum.exporters.onnx.main_export (task text-classification)"


def read_texts(path: Path) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(
            f"{path.parent}: no {path.name} (held-out texts are needed for the parity and release gates)"
        ) from None
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
                texts.append(str(row["text"]))
                labels.append(int(row["label"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(
                    f'{path}:{n}: expected {{"text": ..., "label": class index}} ({exc})'
                ) from None
    if not texts:
        raise DataError(f"{path}: no texts")
    return texts, np.asarray(labels, dtype=np.int64)


def _run(sess: Any, feeds: dict[str, np.ndarray], batch: int = 256) -> np.ndarray:
    names = [i.name for i in sess.get_inputs()]
    n = len(next(iter(feeds.values())))
    outs = [sess.run(["logits"], {k: feeds[k][i : i + batch] for k in names})[0] for i in range(0, n, batch)]
    return np.concatenate(outs).astype(np.float32)


def _quality(logits: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    from edgekit.distill.text_report import classification_metrics

    return classification_metrics(y, logits.argmax(1), labels)


def export_text(
    run_dir: Path, prof: TargetProfile, out: Path, key: str | Path | None, opts: ExportOptions
) -> Path:
    """Export a text RUN_DIR's student for `prof` into bundle folder `out` (+ out.tar.gz)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never reach for the hub
    import torch
    from optimum.exporters.onnx import main_export
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = read_run(run_dir)
    mode = prof.quantization.mode
    if mode not in TEXT_MODES:
        raise ConfigError(
            f"profile {prof.name}: quantization.mode {mode} is not supported for text bundles (use one of {', '.join(TEXT_MODES)})"
        )
    for k in ("student_dir", "labels", "max_length"):
        if k not in run:
            raise DataError(f"{run_dir}/run.json: text run lacks {k!r}")
    student_dir = run_dir / run["student_dir"]
    if not (student_dir / "tokenizer.json").is_file():
        raise DataError(f"{student_dir}: no tokenizer.json (save the fast tokenizer with the student)")
    labels, max_len = list(run["labels"]), int(run["max_length"])
    texts, y = read_texts(run_dir / "text_eval.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    enc = dict(
        tokenizer(texts, max_length=max_len, truncation=True, padding="max_length", return_tensors="np")
    )
    model = AutoModelForSequenceClassification.from_pretrained(student_dir).eval()
    quantizer = QUANTIZERS.get(mode)

    with staging(out, opts.overwrite) as tmp:
        work, bundle = tmp / "work", tmp / "bundle"
        bundle.mkdir()
        main_export(
            str(student_dir),
            output=str(work),
            task="text-classification",
            opset=prof.opset,
            do_validation=False,
        )
        fp32 = work / "model.onnx"
        check_model(fp32)
        ref_sess = create_session(fp32, prof)
        feeds = {i.name: enc[i.name].astype(np.int64) for i in ref_sess.get_inputs()}
        with torch.no_grad():
            torch_out = np.concatenate(
                [
                    model(**{k: torch.from_numpy(v[i : i + 256]) for k, v in feeds.items()}).logits.numpy()
                    for i in range(0, len(texts), 256)
                ]
            )
        ref_out = _run(ref_sess, feeds)
        fp32_parity = compare(torch_out, ref_out)
        require_parity(fp32_parity, prof.gate.parity_atol, "text student (fp32 ONNX vs torch)")

        settings = quantize(mode, fp32, bundle / "model.onnx", prof.quantization, None, "input_ids")
        check_model(bundle / "model.onnx")
        ops = check_ops(bundle / "model.onnx", prof)
        cand_sess = create_session(bundle / "model.onnx", prof)
        cand_out = _run(cand_sess, feeds)
        cand_parity = compare(torch_out, cand_out)

        # release gate: macro-F1 on the held-out texts vs FP32, latency as for sensor bundles
        ref_q, cand_q = _quality(ref_out, y, labels), _quality(cand_out, y, labels)
        singles = [{k: v[i : i + 1] for k, v in feeds.items()} for i in range(min(len(texts), 64))]
        runners = {"fp32": lambda i: ref_sess.run(["logits"], singles[i % len(singles)])}
        if mode != "fp32":
            runners[mode] = lambda i: cand_sess.run(["logits"], singles[i % len(singles)])
        lat = interleaved_latency(runners, runs=opts.latency_runs)
        gate: dict[str, Any] = {
            "mode": mode,
            "max_f1_drop": prof.gate.max_f1_drop,
            "fp32": ref_q,
            "host_arch": host_arch(),
            "latency_ms": lat,
            "quality_metric": "macro_f1",
        }
        if mode == "fp32":
            gate |= {
                "quality_gate": "not applicable: fp32 is the reference",
                "latency_gate": latency_applicability(prof, mode),
            }
        else:
            drop, failure = check_drop(
                "macro-F1", ref_q["macro_f1"], cand_q["macro_f1"], prof.gate.max_f1_drop
            )
            status, lat_failure = latency_gate(lat, prof, mode)
            failures = [f for f in (failure, lat_failure) if f]
            gate |= {
                "macro_f1_drop": drop,
                "quality_gate": "failed" if failure else "passed",
                "latency_gate": status,
                "latency_ratio_p50": lat[mode]["p50"] / lat["fp32"]["p50"],
            }
            refuse(failures, mode, prof)

        shutil.copyfile(student_dir / "tokenizer.json", bundle / "tokenizer.json")
        manifest = Manifest(
            model_id=opts.model_id or model_id_for(run, "text-student"),
            model_version=opts.version,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            kind="text",
            input=InputSpec("input_ids", "int64", [None, None]),
            output=OutputSpec("logits", "softmax"),
            labels=labels,
            threshold=float(run.get("escalation_threshold") or 0.0),
            profile=prof.name,
            text=TextSpec("tokenizer.json", max_len),
            golden=Golden(atol=quantizer.golden_atol, rtol=quantizer.golden_rtol),
        )
        idx = golden_indices(None, len(texts))
        golden_feeds = {k: v[idx] for k, v in feeds.items()}
        write_golden(bundle, manifest, outputs=_run(cand_sess, golden_feeds), **golden_feeds)
        report = read_report(run_dir)
        manifest.quantization = settings
        manifest.metrics = {
            "teacher": report.get("teacher"),
            "distilled": report.get("student"),
            "test": cand_q,
            "threshold_meaning": "escalate to the teacher when the max softmax probability is below threshold",
            "parity": {
                "fp32_vs_torch": fp32_parity.to_dict(),
                "bundle_vs_torch": cand_parity.to_dict(),
                "atol": prof.gate.parity_atol,
            },
            "gate": gate,
            "opcheck": ops.to_dict(),
        }
        manifest.provenance = provenance(
            run_dir,
            [run_dir / "run.json", student_dir / "model.safetensors", run_dir / "text_eval.jsonl"],
            {
                "source_model": run["student_dir"],
                "exporter": EXPORTER,
                "opset": model_opset(bundle / "model.onnx"),
                **opts.extra_provenance,
            },
        )
        seal(bundle, manifest, key)
        self_test(bundle, manifest, prof)
        publish(bundle, out, opts.overwrite)
    log.info("wrote text bundle %s (%s, %s)", out, prof.name, mode)
    return out
