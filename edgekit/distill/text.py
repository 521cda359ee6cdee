"""`edgekit distill --dataset chatterbot`: fine-tune the MiniLM teacher, distil a small BERT student
with the Hinton loss (and train the same student without KD), evaluate, and write RUN_DIR.

RUN_DIR: run.json (schema 1, kind "text", dataset, labels, max_length, student_dir, teacher_dir,
escalation_threshold, seed), teacher_hf/ and student_hf/ (save_pretrained model + tokenizer, whose
tokenizer.json truncates and pads to max_length), student_no_kd_hf/, text_eval.jsonl (held-out test
statements, {"text", "label"}), report.json and report.md.

Transfer set: ~1.1k training statements are few for KD, so the training set is extended with copies in
which words are randomly deleted or masked, labelled by the teacher (soft targets) and by the original
statement (hard label). Both students train on the same inputs, so KD vs no-KD isolates the soft targets.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekit import __version__
from edgekit.data.text import MIN_CLASS_SIZE, TextSplits, load_chatterbot, split_by_group, subsample_groups
from edgekit.distill.evaluate import torch_latency_ms
from edgekit.distill.losses import LOSSES
from edgekit.distill.text_report import escalation_threshold, escalation_view, render_text_table
from edgekit.distill.train import TrainConfig, fit, predict, set_seed
from edgekit.errors import ConfigError
from edgekit.metrics import agreement, bootstrap_interval, classification_metrics, macro_f1
from edgekit.models.registry import count_params
from edgekit.run import TextRun, write_run, write_text_eval

if TYPE_CHECKING:  # transformers is imported when a run starts, after HF_HUB_OFFLINE is set
    from edgekit.models.text import TextStudentConfig

log = logging.getLogger(__name__)

TEXT_DATASETS = ("chatterbot",)
SPLITS = ("train", "val", "test")
Init = Literal["teacher", "random"]


@dataclass
class TextDistillConfig:
    out: str
    dataset: str = "chatterbot"
    min_class_size: int = MIN_CLASS_SIZE
    classes: list[str] | None = None
    max_statements: int | None = None
    max_length: int = 32
    teacher_dir: str | None = None  # default: the installed all-MiniLM-L6-v2
    teacher_layers: int | None = None  # keep only the first N encoder layers (quick runs)
    teacher_epochs: int = 5
    teacher_lr: float = 1e-4
    teacher_patience: int = 2
    # Frozen word embeddings: ~6x faster steps on CPU (the 30522x384 matrix dominates backward and
    # AdamW) and a common choice when fine-tuning on ~1k examples.
    freeze_teacher_embeddings: bool = True
    student_epochs: int = 30
    student_lr: float = 1e-3
    student_patience: int = 8
    batch_size: int = 32
    temperature: float = 4.0
    alpha: float = 0.5
    student: TextStudentConfig | None = None  # default: TextStudentConfig()
    student_init: Init = "teacher"
    shrink_vocab: bool = True
    augment_copies: int = 2  # perturbed copies of the training set in the transfer set (0: none)
    augment_p_delete: float = 0.1
    augment_p_mask: float = 0.1
    compare_init: bool = False  # also distil a student with the other embedding init (extra report row)
    escalation_target: float | None = None  # default: the teacher's validation accuracy
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    bootstrap: int = 1000
    seed: int = 0


def _check(cfg: TextDistillConfig) -> None:
    if cfg.dataset not in TEXT_DATASETS:
        raise ConfigError(
            f"dataset: {cfg.dataset!r} is not a text dataset (choose from {list(TEXT_DATASETS)})"
        )
    if cfg.max_length < 4:
        raise ConfigError(f"max_length must be >= 4 tokens, got {cfg.max_length}")
    if not 0.0 <= cfg.alpha <= 1.0 or cfg.temperature <= 0:
        raise ConfigError(f"alpha must be in [0, 1] and temperature > 0 (got {cfg.alpha}, {cfg.temperature})")
    if cfg.student_init not in ("teacher", "random"):
        raise ConfigError(f"student_init must be 'teacher' or 'random', got {cfg.student_init!r}")
    if cfg.augment_copies < 0 or not 0 <= cfg.augment_p_delete + cfg.augment_p_mask <= 1:
        raise ConfigError("augment_copies must be >= 0 and augment_p_delete + augment_p_mask in [0, 1]")


def augment_ids(
    ids: torch.Tensor,
    copies: int,
    protected: list[int],
    mask_id: int,
    pad_id: int,
    p_delete: float,
    p_mask: float,
    seed: int,
) -> torch.Tensor:
    """`copies` perturbed versions of right-padded token rows [N, L]: each unprotected token is deleted
    with probability p_delete (the row closes up and is re-padded) or else replaced by mask_id with
    probability p_mask."""
    a = ids.numpy()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(copies):
        r = rng.random(a.shape)
        free = ~np.isin(a, protected)
        delete = free & (r < p_delete)
        row = np.where(free & ~delete & (r < p_delete + p_mask), mask_id, a)
        order = np.argsort(delete, axis=1, kind="stable")  # deleted positions move to the end ...
        row = np.take_along_axis(row, order, axis=1)
        row[np.arange(a.shape[1]) >= (a.shape[1] - delete.sum(1))[:, None]] = pad_id  # ... and become padding
        out.append(row)
    return torch.from_numpy(np.concatenate(out)) if out else ids[:0]


def _splits(cfg: TextDistillConfig) -> TextSplits:
    corpus = load_chatterbot(cfg.min_class_size, cfg.classes)
    if cfg.max_statements:
        corpus = subsample_groups(corpus, cfg.max_statements, cfg.seed)
    return split_by_group(corpus, cfg.fractions, cfg.seed)


def _encode(tokenizer: Any, texts: list[str], max_length: int) -> torch.Tensor:
    return torch.tensor(
        tokenizer(texts, max_length=max_length, truncation=True, padding="max_length")["input_ids"]
    )


def _ce_step(m: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(m(xb), yb)


def _ci(n: int, stat: Any, cfg: TextDistillConfig) -> tuple[float, float]:
    return bootstrap_interval(n, stat, cfg.bootstrap, cfg.seed)


def distill_text(cfg: TextDistillConfig) -> dict[str, Any]:
    """Run the text distillation and write RUN_DIR; returns the report (with a rendered "table")."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from edgekit.models.text import (
        Logits,
        TextStudentConfig,
        build_student,
        fix_lengths,
        minilm_dir,
        project_embeddings,
        shrink_tokenizer,
    )

    _check(cfg)
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected here
    set_seed(cfg.seed)
    clock, timings = time.perf_counter(), {}

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    sp = _splits(cfg)
    labels, k, L = sp.train.label_names, len(sp.train.label_names), cfg.max_length
    texts = {s: getattr(sp, s).texts for s in SPLITS}
    y = {s: torch.from_numpy(getattr(sp, s).labels) for s in SPLITS}

    def train_cfg(epochs: int, lr: float, patience: int, wd: float) -> TrainConfig:
        return TrainConfig(
            epochs=epochs, batch_size=cfg.batch_size, lr=lr, weight_decay=wd, patience=patience, seed=cfg.seed
        )

    # -- teacher: MiniLM + a fresh classification head, fine-tuned with early stopping on validation CE
    t_dir = Path(cfg.teacher_dir) if cfg.teacher_dir else minilm_dir()
    tok = AutoTokenizer.from_pretrained(t_dir)
    x_t = {s: _encode(tok, texts[s], L) for s in SPLITS}
    teacher_hf = AutoModelForSequenceClassification.from_pretrained(
        t_dir,
        num_labels=k,
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        **({"num_hidden_layers": cfg.teacher_layers} if cfg.teacher_layers else {}),
    )
    teacher_hf.get_input_embeddings().requires_grad_(not cfg.freeze_teacher_embeddings)
    teacher = Logits(teacher_hf, tok.pad_token_id)
    history = {
        "teacher": fit(
            teacher, x_t["train"], y["train"], _ce_step,
            lambda m: float(F.cross_entropy(predict(m, x_t["val"], 256), y["val"])),
            train_cfg(cfg.teacher_epochs, cfg.teacher_lr, cfg.teacher_patience, 0.01), "teacher (fine-tune)",
        )
    }  # fmt: skip
    t_logits = {s: predict(teacher, x_t[s], 256) for s in SPLITS}
    lap("teacher_s")

    # -- student inputs: a vocabulary chosen from training and validation text only (test words the
    # student never saw are spelled with single-character fallback pieces), and the transfer set
    if cfg.shrink_vocab:
        s_tok, kept = shrink_tokenizer(tok, texts["train"] + texts["val"], L)
        to_student = torch.zeros(len(tok), dtype=torch.long)
        to_student[torch.tensor(kept)] = torch.arange(len(kept))
    else:
        s_tok, kept, to_student = (
            AutoTokenizer.from_pretrained(t_dir, model_max_length=L),
            None,
            torch.arange(len(tok)),
        )
    x_s = {s: _encode(s_tok, texts[s], L) for s in SPLITS}
    special = [tok.pad_token_id, tok.cls_token_id, tok.sep_token_id]
    x_aug = augment_ids(
        x_t["train"], cfg.augment_copies, special, tok.mask_token_id, tok.pad_token_id,
        cfg.augment_p_delete, cfg.augment_p_mask, cfg.seed,
    )  # fmt: skip
    # every piece of a training statement is in the student vocabulary, so ids map one to one
    x_train = torch.cat([x_s["train"], to_student[x_aug]])
    y_train = y["train"].repeat(cfg.augment_copies + 1)
    kd_targets = torch.cat(
        [y_train.float()[:, None], torch.cat([t_logits["train"], predict(teacher, x_aug, 256)])], dim=1
    )
    lap("transfer_set_s")

    # -- students: identical start, same inputs; KD adds the teacher's soft targets. Early stopping on
    # validation macro-F1, the figure reported (validation CE turns up early while F1 still improves).
    s_cfg = cfg.student or TextStudentConfig()
    hinton = LOSSES.get("hinton")

    def make_student(init: Init) -> nn.Module:
        torch.manual_seed(cfg.seed)
        m = build_student(s_cfg, len(s_tok), labels, L)
        if init == "teacher":
            project_embeddings(m, teacher_hf, kept)
        return Logits(m, s_tok.pad_token_id)

    def kd_step(m: nn.Module, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
        return hinton(m(xb), tb[:, 1:], tb[:, 0].long(), temperature=cfg.temperature, alpha=cfg.alpha)

    def val_f1_loss(m: nn.Module) -> float:
        return 1.0 - macro_f1(sp.val.labels, predict(m, x_s["val"], 256).argmax(1).numpy(), k)

    s_train = train_cfg(cfg.student_epochs, cfg.student_lr, cfg.student_patience, 1e-4)
    runs: dict[str, tuple[Init, bool]] = {
        "student": (cfg.student_init, True),
        "student_no_kd": (cfg.student_init, False),
    }
    if cfg.compare_init:
        other: Init = "random" if cfg.student_init == "teacher" else "teacher"
        runs[f"student_{other}_init"] = (other, True)
    students: dict[str, nn.Module] = {}
    for name, (init, kd) in runs.items():
        students[name] = make_student(init)
        history[name] = fit(
            students[name],
            x_train,
            kd_targets if kd else y_train,
            kd_step if kd else _ce_step,
            val_f1_loss,
            s_train,
            name,
        )
    lap("students_s")

    # -- RUN_DIR: HF directories whose tokenizer.json pads and truncates to max_length
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    fix_lengths(tok, L)
    fix_lengths(s_tok, L)
    models: dict[str, tuple[nn.Module, Any, dict[str, torch.Tensor]]] = {"teacher": (teacher, tok, x_t)}
    models |= {n: (m, s_tok, x_s) for n, m in students.items()}
    dirs = {n: f"{n}_hf" for n in models}
    for name, (m, tk, _x) in models.items():
        m.model.save_pretrained(out / dirs[name])
        tk.save_pretrained(out / dirs[name])

    report = _evaluate(cfg, sp, models, t_logits, history, out, dirs)
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
        },
        "transfer_set": {
            "statements": len(x_train),
            "augment_copies": cfg.augment_copies,
            "p_delete": cfg.augment_p_delete,
            "p_mask": cfg.augment_p_mask,
        },
        "student_config": asdict(s_cfg),
        "student_vocab": {
            "size": len(s_tok),
            "teacher_size": len(tok),
            "test_unk_rate": float(
                (x_s["test"] == s_tok.unk_token_id).sum() / (x_s["test"] != s_tok.pad_token_id).sum()
            ),
        },
        "extra_rows": [n for n in students if n not in ("student", "student_no_kd")],
        "seed": cfg.seed,
    }
    lap("evaluate_s")
    report["timings"] = timings

    write_text_eval(out, sp.test.texts, sp.test.labels.tolist())
    run = TextRun(
        dataset=cfg.dataset,
        labels=labels,
        max_length=L,
        student_dir=dirs["student"],
        teacher_dir=dirs["teacher"],
        escalation_threshold=report["escalation"]["threshold"],
        seed=cfg.seed,
    )
    write_run(out, run)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    table = render_text_table(report)
    (out / "report.md").write_text(f"# Distillation report: {cfg.dataset} (text, {k} classes)\n\n{table}\n")
    report["table"] = table
    return report


def _evaluate(
    cfg: TextDistillConfig,
    sp: TextSplits,
    models: dict[str, tuple[nn.Module, Any, dict[str, torch.Tensor]]],
    t_logits: dict[str, torch.Tensor],
    history: dict[str, Any],
    out: Path,
    dirs: dict[str, str],
) -> dict[str, Any]:
    """Per-model test figures with bootstrap CIs, retention, KD vs no-KD, and the escalation policy."""
    labels, k = sp.train.label_names, len(sp.train.label_names)
    y_val, y_test = sp.val.labels, sp.test.labels
    n = len(y_test)
    logits = {
        name: {s: t_logits[s] if name == "teacher" else predict(m, x[s], 256) for s in ("val", "test")}
        for name, (m, _tk, x) in models.items()
    }
    preds = {name: {s: lg.argmax(1).numpy() for s, lg in v.items()} for name, v in logits.items()}
    report: dict[str, Any] = {}
    for name, (m, tk, x) in models.items():
        pr = preds[name]["test"]
        row = classification_metrics(y_test, pr, labels)
        row["accuracy_ci95"] = _ci(n, lambda i, pr=pr: float((pr[i] == y_test[i]).mean()), cfg)
        row["macro_f1_ci95"] = _ci(n, lambda i, pr=pr: macro_f1(y_test[i], pr[i], k), cfg)
        # latency on the longest test statement, i.e. at max_length tokens: the fixed shape an export runs
        longest = int((x["test"] != tk.pad_token_id).sum(1).argmax())
        row |= {
            "params": count_params(m),
            "bytes": (out / dirs[name] / "model.safetensors").stat().st_size,
            "torch_ms": torch_latency_ms(m, x["test"][longest : longest + 1]),
            "epochs_run": history[name]["epochs_run"],
            "val_accuracy": float((preds[name]["val"] == y_val).mean()),
            "val_macro_f1": macro_f1(y_val, preds[name]["val"], k),
        }
        report[name] = row

    t, s, nk = report["teacher"], report["student"], report["student_no_kd"]
    ps, pn = preds["student"]["test"], preds["student_no_kd"]["test"]
    report |= {
        "retention": s["macro_f1"] / t["macro_f1"] if t["macro_f1"] else None,
        "agreement": agreement(preds["teacher"]["test"], ps),
        "compression": t["params"] / s["params"],
        "compression_bytes": t["bytes"] / s["bytes"],
        "kd_minus_no_kd_macro_f1": s["macro_f1"] - nk["macro_f1"],
        "kd_minus_no_kd_macro_f1_ci95": _ci(
            n, lambda i: macro_f1(y_test[i], ps[i], k) - macro_f1(y_test[i], pn[i], k), cfg
        ),
        "kd_beats_no_kd": bool(s["macro_f1"] > nk["macro_f1"]),
    }

    # escalation: statements the student is unsure of go to the teacher; the threshold is the lowest
    # confidence at which the student's kept validation statements reach the target accuracy
    conf = {sp_: torch.softmax(logits["student"][sp_], 1).max(1).values.numpy() for sp_ in ("val", "test")}
    target = cfg.escalation_target if cfg.escalation_target is not None else t["val_accuracy"]
    thr = escalation_threshold(conf["val"], preds["student"]["val"] == y_val, target)
    report["escalation"] = {
        "score": "student max softmax probability",
        "threshold": thr,
        "target_accuracy": target,
        "val": escalation_view(conf["val"], preds["student"]["val"], preds["teacher"]["val"], y_val, thr, k),
        "test": escalation_view(conf["test"], ps, preds["teacher"]["test"], y_test, thr, k),
    }
    return report
