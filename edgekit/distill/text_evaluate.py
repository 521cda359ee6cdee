"""Text evaluation: per-model test figures with bootstrap CIs, retention, KD vs no-KD, and the
escalation policy (statements the student is unsure of go to the teacher)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgekit.data.text import TextSplits
from edgekit.distill.escalation import escalation_threshold, escalation_view
from edgekit.distill.report import torch_latency_ms
from edgekit.distill.text_config import TextDistillConfig
from edgekit.distill.train import predict
from edgekit.metrics import agreement, bootstrap_interval, classification_metrics, macro_f1
from edgekit.models.registry import count_params


def evaluate_text(
    cfg: TextDistillConfig,
    sp: TextSplits,
    models: dict[str, tuple[nn.Module, Any, dict[str, torch.Tensor]]],
    t_logits: dict[str, torch.Tensor],
    history: dict[str, Any],
    model_dirs: dict[str, Path],
) -> dict[str, Any]:
    """`models`: name -> (logits module, tokenizer, token ids per split); `model_dirs`: the saved folders."""
    labels, k = sp.train.label_names, len(sp.train.label_names)
    y_val, y_test = sp.val.labels, sp.test.labels
    n = len(y_test)

    def ci(stat: Any) -> tuple[float, float]:
        return bootstrap_interval(n, stat, cfg.bootstrap, cfg.seed)

    logits = {
        name: {s: t_logits[s] if name == "teacher" else predict(m, x[s], 256) for s in ("val", "test")}
        for name, (m, _tk, x) in models.items()
    }
    preds = {name: {s: lg.argmax(1).numpy() for s, lg in v.items()} for name, v in logits.items()}
    report: dict[str, Any] = {}
    for name, (m, tk, x) in models.items():
        pr = preds[name]["test"]
        row = classification_metrics(y_test, pr, labels)
        row["accuracy_ci95"] = ci(lambda i, pr=pr: float((pr[i] == y_test[i]).mean()))
        row["macro_f1_ci95"] = ci(lambda i, pr=pr: macro_f1(y_test[i], pr[i], k))
        # latency on the longest test statement, i.e. at max_length tokens: the fixed shape an export runs
        longest = int((x["test"] != tk.pad_token_id).sum(1).argmax())
        row |= {
            "params": count_params(m),
            "bytes": (model_dirs[name] / "model.safetensors").stat().st_size,
            "torch_ms": torch_latency_ms(m, x["test"][longest : longest + 1]),
            "epochs_run": history[name]["epochs_run"],
            "val_accuracy": float((preds[name]["val"] == y_val).mean()),
            "val_macro_f1": macro_f1(y_val, preds[name]["val"], k),
        }
        report[name] = row

    t = report["teacher"]

    def versus_teacher(name: str) -> dict[str, Any]:
        """Retention, agreement and size against the teacher, and KD vs the same student without KD."""
        s, p = report[name], preds[name]["test"]
        out = {
            "retention": s["macro_f1"] / t["macro_f1"] if t["macro_f1"] else None,
            "agreement": agreement(preds["teacher"]["test"], p),
            "compression": t["params"] / s["params"],
            "compression_bytes": t["bytes"] / s["bytes"],
        }
        if (twin := f"{name}_no_kd") in report:
            pn = preds[twin]["test"]
            out |= {
                "kd_minus_no_kd_macro_f1": s["macro_f1"] - report[twin]["macro_f1"],
                "kd_minus_no_kd_macro_f1_ci95": ci(
                    lambda i: macro_f1(y_test[i], p[i], k) - macro_f1(y_test[i], pn[i], k)
                ),
                "kd_beats_no_kd": bool(s["macro_f1"] > report[twin]["macro_f1"]),
            }
        return out

    kd_students = [n for n in models if n != "teacher" and not n.endswith("_no_kd")]
    report["students"] = {n: versus_teacher(n) for n in kd_students}
    report |= report["students"]["student"]  # the small student's figures at the top level, as before
    ps = preds["student"]["test"]

    # escalation: the threshold is the lowest confidence at which the student's kept validation
    # statements reach the target accuracy
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
