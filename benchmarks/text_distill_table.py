"""Text distillation along a Pareto curve: the fine-tuned MiniLM-L6 teacher, DistilBERT-style students
(teacher layers kept) and the small BERT student, each with and without KD, over several seeds; every
model exported to ONNX (FP32 and INT8) and timed through the device's TextEngine (tokenize + infer,
onnxruntime, one thread, batch 1 and 32, on real held-out texts).

    .venv/bin/python benchmarks/text_distill_table.py --dataset rotten_tomatoes --seeds 0 1 2

The line above is the full table (all statements, the config's epochs; hours on 2 CPU cores). Any of
--max-statements, --teacher-epochs, --student-epochs, --layer-student-epochs, --max-length below their
full values makes a REDUCED run: the section title and body say so and list what was cut. Prints the
table and writes the section "text-distill-DATASET" of benchmarks/RESULTS.md; every figure lands in
OUT/table.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_section

from edgekit.distill.text import TextDistillConfig, distill_text

PROFILE = "x86-gateway"  # onnxruntime CPU, intra_op 1, inter_op 1: the one-thread figures
MODES = ("fp32", "int8-dynamic")
BATCHES = (1, 32)
# published anchors quoted beside the table (GLUE dev, their own teachers)
ANCHORS = (
    "DistilBERT (Sanh et al. 2019): 6 of BERT-base's 12 layers, 97% of its GLUE score, 60% faster; "
    "TinyBERT-4 (Jiao et al. 2020): 96.8% of BERT-base, 9.4x faster"
)


def _layers(text: str) -> list[int]:
    return [int(i) for i in text.split(",")]


def run_seeds(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One distillation per seed (the split, the transfer set and every initialisation change with it)."""
    reports = []
    for seed in args.seeds:
        done = Path(args.out) / f"seed{seed}" / "report.json"
        if (
            args.reuse and done.exists()
        ):  # a finished seed of an earlier invocation (same flags: yours to keep)
            r = json.loads(done.read_text())
            r["wall_s"] = None
            reports.append(r)
            print(f"\nseed {seed}: reused {done}", flush=True)
            continue
        cfg = TextDistillConfig(
            out=str(Path(args.out) / f"seed{seed}"),
            dataset=args.dataset,
            seed=seed,
            max_statements=args.max_statements,
            layer_students=[_layers(x) for x in args.layers],
            hidden_kd=args.hidden_kd,
            augment_p_replace=args.p_replace,
            augment_copies=args.augment_copies,
            compare_init=False,
        )
        for flag in ("max_length", "teacher_epochs", "student_epochs", "layer_student_epochs"):
            if getattr(args, flag) is not None:
                setattr(cfg, flag, getattr(args, flag))
        t0 = time.time()
        r = distill_text(cfg)
        r["wall_s"] = round(time.time() - t0)
        reports.append(r)
        print(f"\nseed {seed} ({r['wall_s']} s)\n{r['table']}", flush=True)
    return reports


def measure_latency(
    run_dir: Path, models: list[str], runs: int, bundles: Path, block: int = 1
) -> tuple[dict[str, Any], dict[str, str]]:
    """Export every model (FP32 + INT8 variants, unsigned) and time tokenize+infer through TextEngine,
    all variants interleaved per batch size, on the run's held-out texts. Returns the figures and the
    variants the release gate refused (by "model/mode", with its reason): those are exported without
    the refused variant and not timed, as a device would never run them."""
    from edgekit.bench.latency import make_batches, measure
    from edgekit.bench.variants import bundle_variant
    from edgekit.bundle.manifest import Manifest
    from edgekit.errors import GateError
    from edgekit.export.pipeline import ExportOptions, export_run
    from edgekit.profiles import load_profile

    profile = load_profile(PROFILE)
    texts = np.array(
        [json.loads(ln)["text"] for ln in (run_dir / "text_eval.jsonl").read_text().splitlines()]
    )
    out: dict[str, Any] = {}
    refused: dict[str, str] = {}
    variants = []
    for name in models:
        modes = list(MODES)
        while True:
            try:
                bundle = export_run(
                    run_dir,
                    profile,
                    bundles / name,
                    options=ExportOptions(model=name, variants=modes, latency_runs=20, overwrite=True),
                )
                break
            except GateError as exc:
                if exc.mode not in modes or len(modes) == 1:  # not a variant's release gate
                    raise
                refused[f"{name}/{exc.mode}"] = str(exc)
                modes.remove(exc.mode)
        manifest = Manifest.load(bundle)
        # a bundle left with one variant (the gate refused the other) is a single-model bundle
        one = [(modes[0], manifest.model_file, manifest.metrics, None)]
        many = [(v.mode, v.model_file, v.metrics, v.mode) for v in manifest.variants or []]
        for mode, model_file, metrics, variant in many or one:
            out[f"{name}/{mode}"] = {
                "onnx_bytes": (bundle / model_file).stat().st_size,
                "macro_f1": metrics["test"]["macro_f1"],
                "accuracy": metrics["test"]["accuracy"],
            }
            variants.append(bundle_variant(bundle, profile, name=f"{name}/{mode}", variant=variant))
    for b in BATCHES:
        # a seeded order (the test split is grouped by movie: the long plot summaries of a movie together),
        # and at least one pass over every held-out text
        n_runs = max(runs, -(-len(texts) // b))
        batches = make_batches(texts, b, seed=0)
        for s in measure(variants, batches, runs=n_runs, warmup=10, block=block):
            ms = np.asarray(s.preprocess) + np.asarray(s.infer)  # tokenize + infer (softmax left out)
            out[s.name][f"b{b}"] = {
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
                "calls": len(ms),
            }
    return out, refused


def _mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def _ci_span(cis: list[Any]) -> str:
    return "[" + ", ".join(f"{lo:.3f}-{hi:.3f}" for lo, hi in cis) + "]"


def _cell(lat: dict[str, Any] | None, b: int) -> str:
    return "-" if not lat else f"{lat[f'b{b}']['p50_ms']:.2f}/{lat[f'b{b}']['p99_ms']:.2f}"


def targets(reports: list[dict[str, Any]], latency: dict[str, Any], students: list[str]) -> list[str]:
    """Where each exported student lands against the issue's targets: >= 97% of the teacher's macro-F1 at
    >= 3x lower tokenize+infer latency, and >= 90% at >= 15x (batch 1, p50, vs the FP32 teacher). The
    exported figures are seed 0's (the seed whose models were timed)."""
    t_f1 = latency["teacher/fp32"]["macro_f1"]
    t_ms = latency["teacher/fp32"]["b1"]["p50_ms"]
    out = [
        "Targets (seed " + str(reports[0]["seed"]) + "'s exported models, batch-1 p50 vs the FP32 teacher):"
    ]
    for name in students:
        for mode in MODES:
            lat = latency.get(f"{name}/{mode}")
            if not lat:
                continue
            ret, speed = lat["macro_f1"] / t_f1, t_ms / lat["b1"]["p50_ms"]
            met = [
                goal
                for goal, (r, x) in {"97% at 3x": (0.97, 3), "90% at 15x": (0.90, 15)}.items()
                if ret >= r and speed >= x
            ]
            out.append(
                f"- {name} {mode}: retention {ret:.3f}, {speed:.1f}x faster: {'meets ' + ' and '.join(met) if met else 'meets neither'}"
            )
        kept = {r["seed"]: r["students"][name]["retention"] for r in reports if name in r.get("students", {})}
        if len(kept) > 1:  # one seed's model was timed; say whether the others keep its quality
            below = [seed for seed, v in kept.items() if v < 0.90]
            out.append(
                f"  {name} FP32 retention over seeds {list(kept)}: mean {np.mean(list(kept.values())):.3f}, "
                f"min {min(kept.values()):.3f}; below 90% on seeds {below or 'none'}"
            )
    return out


def render(reports: list[dict[str, Any]], latency: dict[str, Any], students: list[str]) -> str:
    """The per-model table (quality over seeds, latency of the first seed's exports) and KD vs no-KD."""
    teacher_b1 = latency["teacher/fp32"]["b1"]["p50_ms"]
    head = (
        "| model | params | ONNX MB fp32 / int8 | tok+infer ms b1 fp32 p50/p99 | b1 int8 | b32 fp32 | b32 int8 "
        "| speed-up b1 (fp32, int8) | accuracy (mean ± sd) | per-seed 95% CI | macro-F1 (mean ± sd) | per-seed 95% CI "
        "| int8 macro-F1 | retention | agreement |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in ["teacher", *students]:
        rows = [r[name] for r in reports]
        lat = {m: latency.get(f"{name}/{m}") for m in MODES}
        mb = " / ".join("-" if not lat[m] else f"{lat[m]['onnx_bytes'] / 2**20:.1f}" for m in MODES)
        speed = ", ".join("-" if not lat[m] else f"{teacher_b1 / lat[m]['b1']['p50_ms']:.1f}x" for m in MODES)
        vs = [r["students"].get(name, {}) for r in reports] if name != "teacher" else []
        ret = _mean_sd([v["retention"] for v in vs]) if vs else "-"
        agr = _mean_sd([v["agreement"] for v in vs]) if vs else "-"
        lines.append(
            f"| {name} | {rows[0]['params']:,} | {mb} | {_cell(lat['fp32'], 1)} | {_cell(lat['int8-dynamic'], 1)} "
            f"| {_cell(lat['fp32'], 32)} | {_cell(lat['int8-dynamic'], 32)} | {speed} "
            f"| {_mean_sd([x['accuracy'] for x in rows])} | {_ci_span([x['accuracy_ci95'] for x in rows])} "
            f"| {_mean_sd([x['macro_f1'] for x in rows])} | {_ci_span([x['macro_f1_ci95'] for x in rows])} "
            f"| {'-' if not lat['int8-dynamic'] else format(lat['int8-dynamic']['macro_f1'], '.3f')} | {ret} | {agr} |"
        )
    lines += ["", *targets(reports, latency, students)]
    lines += [
        "",
        "KD vs the same student trained without the teacher (macro-F1 difference, paired bootstrap 95% CI per seed):",
    ]
    for name in students:
        vs = [
            r["students"][name] for r in reports if "kd_minus_no_kd_macro_f1" in r["students"].get(name, {})
        ]
        if vs:
            per = "; ".join(
                f"seed {r['seed']}: {v['kd_minus_no_kd_macro_f1']:+.3f} [{v['kd_minus_no_kd_macro_f1_ci95'][0]:+.3f}, "
                f"{v['kd_minus_no_kd_macro_f1_ci95'][1]:+.3f}]"
                for r, v in zip(reports, vs, strict=True)
            )
            lines.append(f"- {name}: mean {np.mean([v['kd_minus_no_kd_macro_f1'] for v in vs]):+.3f}; {per}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="rotten_tomatoes", choices=["rotten_tomatoes", "chatterbot"])
    ap.add_argument("--out", default="runs/bench-text")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--layers", nargs="*", default=["0,2,5", "0,5"], help="teacher layers per layer student")
    ap.add_argument("--hidden-kd", type=float, default=0.0, help="weight of the hidden-state MSE (0: off)")
    ap.add_argument("--p-replace", type=float, default=0.1, help="word replacement rate in the transfer set")
    ap.add_argument(
        "--augment-copies",
        type=int,
        default=2,
        help="perturbed copies of the training set in the transfer set",
    )
    ap.add_argument("--latency-runs", type=int, default=300)
    ap.add_argument(
        "--block",
        type=int,
        default=25,
        help="calls of one model in a row per interleaved round (1: per call, as before 2026-12-08)",
    )
    ap.add_argument(
        "--section", help="RESULTS.md section to write (default: text-distill-DATASET)", default=None
    )
    ap.add_argument(
        "--reuse", action="store_true", help="reuse seeds whose OUT/seedN/report.json exists (not re-timed)"
    )
    reduced = ap.add_argument_group("reductions (any of these makes a REDUCED run)")
    reduced.add_argument("--max-statements", type=int)
    reduced.add_argument("--max-length", type=int)
    reduced.add_argument("--teacher-epochs", type=int)
    reduced.add_argument("--student-epochs", type=int)
    reduced.add_argument("--layer-student-epochs", type=int)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cuts = {
        k: v
        for k, v in vars(args).items()
        if k in ("max_statements", "max_length", "teacher_epochs", "student_epochs", "layer_student_epochs")
        and v is not None
    }
    t0 = time.time()
    reports = run_seeds(args)
    students = [n for n in reports[0]["students"]]
    students = sorted(students, key=lambda n: -reports[0][n]["params"])
    run0 = Path(args.out) / f"seed{args.seeds[0]}"
    latency, refused = measure_latency(
        run0, ["teacher", *students], args.latency_runs, Path(args.out) / "bundles", args.block
    )
    wall = time.time() - t0
    table = render(reports, latency, students)
    if refused:
        table += "\n\nRefused by the release gate (exported without that variant, not timed):\n" + "\n".join(
            f"- {k}: {v}" for k, v in refused.items()
        )
    (Path(args.out) / "table.json").write_text(
        json.dumps({"reports": reports, "latency": latency, "refused": refused}, indent=1, default=str)
    )
    print(f"\n{table}\n\nwall {wall:.0f} s")
    r = reports[0]
    n = {s: sum(v.values()) for s, v in r["statements"].items()}
    calls = ", ".join(f"batch {b}: {latency['teacher/fp32'][f'b{b}']['calls']}" for b in BATCHES)
    label = f"REDUCED run ({', '.join(f'{k}={v}' for k, v in cuts.items())})" if cuts else "full run"
    reused = [x["seed"] for x in reports if x.get("wall_s") is None]
    reused_note = (
        f" (seeds {reused} reused from an earlier invocation with the same flags (--reuse): not re-timed)"
        if reused
        else ""
    )
    body = f"""\
**{label}**; seeds {args.seeds} (each seed draws its own split by movie/conversation, transfer set and
initialisations); wall {wall:.0f} s on this machine, shared with other jobs{reused_note}. Data: {args.dataset}, classes
{", ".join(r["labels"])}; seed {r["seed"]}: {n["train"]}/{n["val"]}/{n["test"]} train/val/test statements. Teacher:
all-MiniLM-L6-v2 + head, fine-tuned. Students: {", ".join(f"{k} = teacher layers {v}" for k, v in r["layer_students"].items())}
(DistilBERT-style: every weight copied from the fine-tuned teacher; none when --layers is empty), and `student` (BERT
{r["student_config"]["layers"]}x{r["student_config"]["hidden"]}, embeddings projected from the teacher's);
vocabulary shrunk to {r["student_vocab"]["size"]} of {r["student_vocab"]["teacher_size"]} pieces. Hinton KD T={r["kd"]["temperature"]},
alpha={r["kd"]["alpha"]}, hidden-state KD weight {r["kd"]["hidden_kd"]}; transfer set {r["transfer_set"]["statements"]} statements
(training set + {r["transfer_set"]["augment_copies"]} copies with pieces deleted p={r["transfer_set"]["p_delete"]}, masked
p={r["transfer_set"]["p_mask"]}, one-piece words replaced p={r["transfer_set"]["p_replace"]}), each copy labelled by the teacher.
max_length {r["max_length"]}. Latency: seed {args.seeds[0]}'s models exported (optimum ONNX; INT8 = dynamic
quantization), timed through edgekit.runtime.text.TextEngine (profile {PROFILE}: onnxruntime CPU, 1
thread), tokenize + infer, {calls} calls per model (batch 1 covers every held-out text at least once;
texts drawn in a seeded random order, as the test split is grouped by movie), all models interleaved
in blocks of {args.block} calls (after one unrecorded call: a device runs one model, so a small model is not
charged the cold caches a large one left), on the held-out test texts; speed-up = teacher FP32 batch-1 p50 / model p50. Retention = student
macro-F1 / teacher macro-F1 (same seed). Anchors (not comparable tasks): {ANCHORS}.

{table}
"""
    write_section(
        args.section or f"text-distill-{args.dataset}",
        f"Text distillation ({args.dataset}): teacher vs "
        + ("layer-dropped vs small students" if args.layers else "small student"),
        body,
    )


if __name__ == "__main__":
    main()
