"""`edgekit distill --dataset chatterbot|rotten_tomatoes`: fine-tune the MiniLM teacher, distil a small
BERT student and DistilBERT-style students (teacher layers kept, `layer_students`) with the Hinton loss
(and train the same students without KD), evaluate, and write RUN_DIR.

Stages: `text_transfer` (splits, student vocabulary, transfer set), `text_train` (teacher and
students), `text_evaluate` (figures and the escalation policy), `report` (table); this module wires
them and writes the folder.

RUN_DIR: run.json (schema 1, kind "text", dataset, labels, max_length, student_dir, teacher_dir,
escalation_threshold, seed), config.yaml (the effective config), teacher_hf/ and student_hf/
(save_pretrained model + tokenizer, whose tokenizer.json truncates and pads to max_length),
student_no_kd_hf/, one NAME_hf/ per other student (`edgekit export RUN_DIR --model NAME`),
text_eval.jsonl (held-out test statements, {"text", "label"}), report.json and report.md.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgekit import __version__
from edgekit.distill.config import write_config
from edgekit.distill.report import render_text_table, write_report
from edgekit.distill.text_config import TextDistillConfig, check_text_config
from edgekit.distill.text_evaluate import evaluate_text
from edgekit.distill.text_train import fine_tune_teacher, layer_student_name, train_students
from edgekit.distill.text_transfer import SPLITS, build_transfer_set, encode, load_splits
from edgekit.distill.train import predict, set_seed
from edgekit.models.text import TextStudentConfig, fix_lengths, minilm_dir
from edgekit.run import TextRun, write_run, write_text_eval

__all__ = ["TextDistillConfig", "distill_text"]


def distill_text(cfg: TextDistillConfig) -> dict[str, Any]:
    """Run the text distillation and write RUN_DIR; returns the report (with a rendered "table")."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    check_text_config(cfg)
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected here
    set_seed(cfg.seed)
    clock, timings = time.perf_counter(), {}

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    sp = load_splits(cfg)
    labels, k, L = sp.train.label_names, len(sp.train.label_names), cfg.max_length
    texts = {s: getattr(sp, s).texts for s in SPLITS}
    y = {s: torch.from_numpy(getattr(sp, s).labels) for s in SPLITS}

    t_dir = Path(cfg.teacher_dir) if cfg.teacher_dir else minilm_dir()
    tok = AutoTokenizer.from_pretrained(t_dir)
    x_t = {s: encode(tok, texts[s], L) for s in SPLITS}
    teacher, teacher_hf, t_history = fine_tune_teacher(cfg, t_dir, tok.pad_token_id, labels, x_t, y)
    history = {"teacher": t_history}
    t_logits = {s: predict(teacher, x_t[s], 256) for s in SPLITS}
    lap("teacher_s")

    ts = build_transfer_set(cfg, tok, t_dir, texts, x_t, y["train"], teacher, t_logits["train"])
    lap("transfer_set_s")

    s_cfg = cfg.student or TextStudentConfig()
    students = train_students(cfg, s_cfg, ts, teacher_hf, labels, sp.val.labels, history)
    lap("students_s")

    # -- RUN_DIR: HF directories whose tokenizer.json pads and truncates to max_length
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    s_tok = ts.tokenizer
    fix_lengths(tok, L)
    fix_lengths(s_tok, L)
    models: dict[str, tuple[nn.Module, Any, dict[str, torch.Tensor]]] = {"teacher": (teacher, tok, x_t)}
    models |= {n: (m, s_tok, ts.x) for n, m in students.items()}
    dirs = {n: f"{n}_hf" for n in models}
    for name, (m, tk, _x) in models.items():
        m.model.save_pretrained(out / dirs[name])
        tk.save_pretrained(out / dirs[name])

    report = evaluate_text(cfg, sp, models, t_logits, history, {n: out / d for n, d in dirs.items()})
    report |= {
        "edgekit_version": __version__,
        "kind": "text",
        "dataset": cfg.dataset,
        "labels": labels,
        "classes_merged": sp.train.merged,
        "corpus": sp.train.stats,
        "statements": {s: getattr(sp, s).class_counts() for s in SPLITS},
        "max_length": L,
        "kd": {
            "loss": "hinton",
            "temperature": cfg.temperature,
            "alpha": cfg.alpha,
            "student_init": cfg.student_init,
            "hidden_kd": cfg.hidden_kd,
        },
        "layer_students": {layer_student_name(keep): keep for keep in cfg.layer_students},
        "transfer_set": {
            "statements": len(ts.x_train),
            "augment_copies": cfg.augment_copies,
            "p_delete": cfg.augment_p_delete,
            "p_mask": cfg.augment_p_mask,
            "p_replace": cfg.augment_p_replace,
        },
        "student_config": asdict(s_cfg),
        "student_vocab": {
            "size": len(s_tok),
            "teacher_size": len(tok),
            "test_unk_rate": float(
                (ts.x["test"] == s_tok.unk_token_id).sum() / (ts.x["test"] != s_tok.pad_token_id).sum()
            ),
        },
        "extra_rows": [n for n in students if n not in ("student", "student_no_kd")],
        "seed": cfg.seed,
    }
    lap("evaluate_s")
    report["timings"] = timings

    write_text_eval(out, sp.test.texts, sp.test.labels.tolist())
    write_run(
        out,
        TextRun(
            dataset=cfg.dataset,
            labels=labels,
            max_length=L,
            student_dir=dirs["student"],
            teacher_dir=dirs["teacher"],
            escalation_threshold=report["escalation"]["threshold"],
            seed=cfg.seed,
        ),
    )
    write_config(out, replace(cfg, student=s_cfg))
    table = render_text_table(report)
    write_report(out, report, table, f"{cfg.dataset} (text, {k} classes)")
    report["table"] = table
    return report
