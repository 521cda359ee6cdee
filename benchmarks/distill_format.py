"""Markdown and plain-words verdicts for the distillation table, from its JSON form (OUT/distill_table.json,
written by distill_table.py). Formatting only: nothing here trains or times anything.

    .venv/bin/python benchmarks/distill_format.py runs/bench-distill/distill_table.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

MODELS = ("teacher", "student", "student_no_kd")
# issue 11's targets
RETENTION_TARGET, RATIO_TARGET, SCARCE_MAX = 0.97, 20.0, 0.10
AUC_RATIO_TARGET, RECALL_RATIO_TARGET = 0.9, 0.8
FLOOR_TARGET, THROUGHPUT_TARGET = 2.0, 10.0
PUBLISHED_GAP = 0.05


def _vals(row: dict[str, Any], model: str, metric: str) -> list[float]:
    return [v for v in row["metrics"][model].get(metric, []) if v is not None]


def _mean(row: dict[str, Any], model: str, metric: str) -> float | None:
    v = _vals(row, model, metric)
    return float(np.mean(v)) if v else None


def _ms(row: dict[str, Any], model: str, metric: str) -> str:
    v = _vals(row, model, metric)
    if not v:
        return "-"
    return f"{np.mean(v):.3f} ± {np.std(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def _f(v: float | None, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def _labels(row: dict[str, Any]) -> str:
    if row["fraction"] is None:
        return "none (label-free)"
    n = row.get("labelled_rows") or []
    return f"{row['fraction']:.0%} ({np.mean(n):,.0f} rows)" if n else f"{row['fraction']:.0%}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def _main_table(data: dict[str, Any]) -> list[str]:
    header = [
        "dataset", "training labels", "seeds", "teacher macro-F1", "student (KD) macro-F1",
        "student no-KD macro-F1", "KD gain [paired 95% CI]", "KD wins", "retention",
        "teacher / student params", "accuracy T / S / no-KD",
    ]  # fmt: skip
    rows = []
    for r in data["rows"]:
        ci = r["kd_gain_ci95"]
        gain = (
            f"{_f(r['kd_gain'], '+.3f')} [{_f(ci[0], '+.3f')}, {_f(ci[1], '+.3f')}]"
            if ci
            else _f(r["kd_gain"], "+.3f")
        )
        acc = " / ".join(_f(_mean(r, m, "accuracy")) for m in MODELS)
        p = r["params"]
        params = (
            f"{p['teacher']} / {p['student']} ({_f(r['param_ratio'], '.0f')}x)" if r["param_ratio"] else "-"
        )
        rows.append([
            r["dataset"], _labels(r), str(len(r["seeds"])), *(_ms(r, m, "macro_f1") for m in MODELS),
            gain, f"{r['kd_wins']}/{len(r['seeds'])}", _f(r["retention"]), params, acc,
        ])  # fmt: skip
    return _table(header, rows)


def _anomaly_lines(data: dict[str, Any]) -> list[str]:
    """Label-free rows: the anomaly view (ROC-AUC, recall at the validation threshold, F1)."""
    rows = [r for r in data["rows"] if r["mode"] == "unsupervised"]
    if not rows:
        return []
    header = ["dataset", "metric", "teacher", "student (KD)", "student no-KD", "student / teacher"]
    out = []
    for r in rows:
        for metric in ("roc_auc", "recall", "f1"):
            t, s = _mean(r, "teacher", metric), _mean(r, "student", metric)
            out.append(
                [
                    r["dataset"],
                    metric,
                    *(_ms(r, m, metric) for m in MODELS),
                    _f(s / t if t and s is not None else None),
                ]
            )
    return [
        "",
        "Label-free rows, anomaly view (test; recall and F1 at each model's validation threshold):",
        "",
        *_table(header, out),
    ]


def _rare_lines(data: dict[str, Any]) -> list[str]:
    out = []
    for r in data["rows"]:
        for cls, rec in r["rare_recall"].items():
            out.append(
                f"- {r['dataset']}, {_labels(r)} labels: rare class '{cls}' recall (mean over seeds): "
                + ", ".join(f"{m} {_f(rec.get(m))}" for m in MODELS)
            )
    return (
        [
            "",
            "Recall of each rare class (under 10% of the labelled training windows; label-free: the anomalies):",
            "",
            *out,
        ]
        if out
        else []
    )


def _published_lines(data: dict[str, Any]) -> list[str]:
    out = []
    for r in data["rows"]:
        pub = r["published_accuracy"]
        if not pub:
            continue
        best = max(pub, key=pub.get)
        t, s = _mean(r, "teacher", "series_accuracy"), _mean(r, "student", "series_accuracy")
        out.append(
            f"- {r['dataset']}, {_labels(r)} labels: series accuracy teacher {_f(t)}, student {_f(s)}; published (aeon, "
            f"mean over resamples, full labels): "
            + ", ".join(f"{k} {v:.3f}" for k, v in sorted(pub.items()))
            + (
                f"; gap to best ({best}): teacher {_f(pub[best] - t, '+.3f')}, student {_f(pub[best] - s, '+.3f')}"
                if t is not None and s is not None
                else ""
            )
        )
    return ["", "Published baselines beside (whole-series test accuracy):", "", *out] if out else []


def _latency_lines(data: dict[str, Any]) -> list[str]:
    if not data["latency"]:
        return []
    header = [
        "dataset", "input", "floor b1 µs", "student b1 µs", "teacher b1 µs", "student / floor (b1)",
        "floor b256 µs", "student b256 µs", "teacher b256 µs", "teacher / student (b256)", "calls b1 / b256",
    ]  # fmt: skip
    rows = []
    for lat in data["latency"]:
        p = {n: {int(b): v for b, v in d.items()} for n, d in lat["p50_us"].items()}
        rows.append([
            lat["dataset"], "x".join(map(str, lat["input_shape"])),
            *(_f(p[n][1], ".1f") for n in ("floor", "student", "teacher")), _f(p["student"][1] / p["floor"][1], ".2f"),
            *(_f(p[n][256], ".1f") for n in ("floor", "student", "teacher")), _f(p["teacher"][256] / p["student"][256], ".1f"),
            f"{lat['calls']['1']} / {lat['calls']['256']}",
        ])  # fmt: skip
    return [
        "",
        "onnxruntime latency (p50 per `session.run`, CPU, 1 intra-op thread, models exported to ONNX in this run, "
        "calls interleaved; the floor is an Identity model of the same input):",
        "",
        *_table(header, rows),
    ]


def render(data: dict[str, Any], section: bool = True) -> str:
    """The table (and, for the RESULTS.md section, the notes, verdicts and failures) as markdown."""
    order = list(dict.fromkeys(r["dataset"] for r in data["rows"]))
    data = data | {
        "rows": sorted(data["rows"], key=lambda r: (order.index(r["dataset"]), r["fraction"] or 0.0))
    }
    lines = _main_table(data)
    if section:
        lines = [
            f"Seeds {data['seeds']}{' (QUICK: shortened epoch budget, not the defaults)' if data['quick'] else ''}; "
            f"every run is `distill(DistillConfig(out, dataset, label_fraction, seed))` with defaults; "
            f"this invocation took {data['wall_s'] / 60:.0f} min (runs reused from --out are not re-timed). macro-F1 mean ± sd over seeds; KD gain = student minus "
            "no-KD macro-F1, 95% CI from a paired bootstrap over seeds and test windows; retention = student / "
            "teacher mean macro-F1. The no-KD student has the same architecture and epoch budget and sees only "
            "the labelled rows (label-free: the same-budget autoencoder on normal windows).",
            "",
            *lines,
            *_anomaly_lines(data),
            *_rare_lines(data),
            *_published_lines(data),
            *_latency_lines(data),
            "",
            "Verdicts (issue 11 targets):",
            "",
            *(f"- {v}" for v in verdicts(data)),
        ]
        if data.get("missing") or any(r.get("failed") for r in data["rows"]):
            lines += ["", "Runs not in the table:", ""]
        for r in data["rows"]:
            for seed, why in r.get("failed", {}).items():
                lines.append(f"- missing run: {r['dataset']}, {_labels(r)} labels, seed {seed}: {why}")
        lines += [f"- missing cell: {m}" for m in data.get("missing", [])]
    return "\n".join(lines)


def verdicts(data: dict[str, Any]) -> list[str]:
    """Each target of issue 11 in plain words: met, not met, or not measured in this run."""
    out = []
    won = []
    for r in data["rows"]:
        if r["fraction"] is None or r["fraction"] > SCARCE_MAX:
            continue
        ci = r["kd_gain_ci95"]
        ok = (
            ci is not None
            and ci[0] > 0
            and (r["retention"] or 0) >= RETENTION_TARGET
            and (r["param_ratio"] or 0) >= RATIO_TARGET
        )
        if ok:
            won.append(f"{r['dataset']} at {r['fraction']:.0%}")
    scarce = {r["dataset"] for r in data["rows"] if r["fraction"] is not None and r["fraction"] <= SCARCE_MAX}
    out.append(
        f"Label-scarce KD (CI of the gain above 0, retention >= {RETENTION_TARGET}, >= {RATIO_TARGET:.0f}x fewer "
        f"parameters, on >= 2 datasets): {'MET' if len({w.split(' at ')[0] for w in won}) >= 2 else 'NOT MET'}"
        f" - holds for {', '.join(won) or 'none'} (datasets with labelled rows here: {', '.join(sorted(scarce)) or 'none'})."
    )
    for r in data["rows"]:
        if r["mode"] != "unsupervised":
            continue
        ta, sa = _mean(r, "teacher", "roc_auc"), _mean(r, "student", "roc_auc")
        tr, sr = _mean(r, "teacher", "recall"), _mean(r, "student", "recall")
        if None in (ta, sa, tr, sr):
            out.append(f"{r['dataset']} label-free: not measured (no test anomalies).")
            continue
        a_ok, r_ok = sa / ta >= AUC_RATIO_TARGET, sr / tr >= RECALL_RATIO_TARGET
        out.append(
            f"{r['dataset']} label-free: student ROC-AUC {sa:.3f} = {sa / ta:.2f}x the teacher's {ta:.3f} "
            f"({'MET' if a_ok else 'NOT MET'}, target {AUC_RATIO_TARGET}x); recall at the validation threshold "
            f"{sr:.3f} = {sr / tr:.2f}x the teacher's {tr:.3f} ({'MET' if r_ok else 'NOT MET'}, target {RECALL_RATIO_TARGET}x); means over {len(r['seeds'])} seeds."
        )
    for lat in data["latency"]:
        p = {n: {int(b): v for b, v in d.items()} for n, d in lat["p50_us"].items()}
        f_ratio, t_ratio = p["student"][1] / p["floor"][1], p["teacher"][256] / p["student"][256]
        out.append(
            f"{lat['dataset']} latency: student batch 1 takes {f_ratio:.2f}x the runtime's per-call floor "
            f"({'MET' if f_ratio <= FLOOR_TARGET else 'NOT MET'}, target <= {FLOOR_TARGET:.0f}x); at batch 256 the "
            f"student runs {t_ratio:.1f}x as many windows per second as the teacher ({'MET' if t_ratio >= THROUGHPUT_TARGET else 'NOT MET'}, target >= {THROUGHPUT_TARGET:.0f}x)."
        )
    for r in data["rows"]:
        pub = r["published_accuracy"]
        t = _mean(r, "teacher", "series_accuracy")
        if r["dataset"] == "plaid" and pub and t is not None and r["fraction"] == 1.0:
            best = max(pub.values())
            out.append(
                f"PLAID teacher within {PUBLISHED_GAP:.0%} of the best published accuracy ({best:.3f}): "
                f"{'MET' if best - t <= PUBLISHED_GAP else 'NOT MET'} (teacher {t:.3f}, student {_f(_mean(r, 'student', 'series_accuracy'))})."
            )
    return out


if __name__ == "__main__":
    from pathlib import Path

    table = json.loads(Path(sys.argv[1]).read_text())
    print(render(table) + "\n")
