"""The distillation table: teacher vs distilled student vs the same student without KD, over datasets,
label fractions and seeds, with paired bootstrap CIs of the KD gain and onnxruntime latency.

    .venv/bin/python benchmarks/distill_table.py [--datasets shuttle mitdb plaid acsf1]
        [--fractions 0.01 0.05 0.1 1.0] [--seeds 0 1 2 3 4] [--quick] [--reuse] [--out runs/bench-distill]
        [--section distill]

Every run goes through the public `edgekit.distill.pipeline.distill(DistillConfig(...))` with its
defaults (only `--quick` shortens the epoch budget, and says so). Label fractions apply where labels
exist; a label-free dataset (mitdb) gets one row. This module measures and writes
OUT/distill_table.json (a versioned `DistillTable`); `distill_format.py` turns that into the markdown
section of benchmarks/RESULTS.md and the plain-words verdicts.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, write_section
from distill_format import render

from edgekit.data import Normalizer
from edgekit.data.ts_format import published_accuracies
from edgekit.distill.config import DATASET_DEFAULTS
from edgekit.distill.pipeline import DistillConfig, distill
from edgekit.errors import EdgekitError
from edgekit.metrics import bootstrap_interval, macro_f1
from edgekit.run import RunFolder, SensorRun, load_run

SCHEMA = 1
MODELS = ("teacher", "student", "student_no_kd")
ORT_OPSET = 17  # the x86-gateway profile's opset
QUICK_EPOCHS = {"teacher_epochs": 8, "student_epochs": 12}
log = logging.getLogger("distill_table")


@dataclass
class SeedResult:
    """One run (dataset, fraction, seed): its test labels and each model's per-window decisions."""

    seed: int
    y: np.ndarray  # test class indices (label-free: 1 = anomaly)
    pred: dict[str, np.ndarray]  # per model: predicted class per test window
    report: dict[str, Any]


@dataclass
class Row:
    """One (dataset, label fraction) cell over its seeds; per-model lists hold one value per seed."""

    dataset: str
    mode: str
    fraction: float | None  # None: label-free
    seeds: list[int]
    classes: list[str]
    metrics: dict[str, dict[str, list[float | None]]]
    params: dict[str, int | None]
    kd_gain: float | None
    kd_gain_ci95: tuple[float, float] | None
    kd_wins: int
    retention: float | None
    param_ratio: float | None
    rare_recall: dict[str, dict[str, float]]
    published_accuracy: dict[str, float]
    failed: dict[int, str] = field(default_factory=dict)
    # labelled training rows per seed (keep_labels keeps one per class at least: on a small set several
    # fractions can leave the same rows)
    labelled_rows: list[int] = field(default_factory=list)


@dataclass
class Latency:
    """onnxruntime p50 per `session.run` in microseconds, by model then batch size, interleaved."""

    dataset: str
    input_shape: list[int]
    p50_us: dict[str, dict[int, float]]
    calls: dict[int, int]


@dataclass
class DistillTable:
    rows: list[Row]
    latency: list[Latency]
    seeds: list[int]
    quick: bool
    machine: str
    wall_s: float
    max_rows: int | None = None
    # (dataset, label fraction) cells without a single finished run, and why
    missing: list[str] = field(default_factory=list)
    schema: int = SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=_json_default)

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form (what distill_format.py reads)."""
        return json.loads(self.to_json())


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


# ---------------------------------------------------------------- runs and per-window decisions


def _decisions(run: RunFolder) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Test labels and each model's per-window decisions, recomputed from the run's checkpoints and
    windows.npz: argmax of the class logits (supervised) or score >= the validation threshold."""
    import torch

    from edgekit.models.registry import ModelSpec, build_model, load_weights

    info = run.info
    assert isinstance(info, SensorRun)
    w = run.windows()
    norm = Normalizer(
        np.asarray(info.normalization.mean, np.float32), np.asarray(info.normalization.std, np.float32)
    )
    x = torch.from_numpy(norm(w.test_x))
    y = w.test_y if info.mode == "supervised" else info.anomaly_labels(w.test_y)
    out = {}
    for name in MODELS:
        if name not in info.models or not run.checkpoint(name).is_file():
            continue
        spec = info.models[name]
        m = load_weights(build_model(ModelSpec(spec.arch, dict(spec.kwargs))), str(run.checkpoint(name)))
        with torch.no_grad():
            o = torch.cat([m(x[i : i + 4096]) for i in range(0, len(x), 4096)]).numpy()
        out[name] = (
            o.argmax(axis=1)
            if info.score == "softmax"
            else (o[:, 0] >= info.thresholds[name]).astype(np.int64)
        )
    return np.asarray(y, np.int64), out


# what a reused run's config.yaml must agree on with the run this table would start
REUSE_KEYS = ("dataset", "seed", "label_fraction", "max_rows", "teacher_epochs", "student_epochs")


class OutOfTime(Exception):
    """The --budget-min is spent: runs not already finished under --out are not started."""


def _reusable(run_dir: Path, cfg: DistillConfig) -> bool:
    """A finished run (config.yaml is written last) made with the same settings."""
    from edgekit.distill.config import read_config_file

    path = run_dir / "config.yaml"
    if not path.is_file():
        return False
    have = read_config_file(path)
    return all(have.get(k) == getattr(cfg, k) for k in REUSE_KEYS)


def run_one(
    ds: str, fraction: float | None, seed: int, out: Path, args: argparse.Namespace, deadline: float
) -> SeedResult:
    run_dir = out / ds / ("label-free" if fraction is None else f"f{fraction:g}") / f"seed{seed}"
    cfg = DistillConfig(
        out=str(run_dir),
        dataset=ds,
        seed=seed,
        label_fraction=1.0 if fraction is None else fraction,
        max_rows=args.max_rows,
        **(QUICK_EPOCHS if args.quick else {}),
    )
    if not (args.reuse and _reusable(run_dir, cfg)):
        if time.time() > deadline:
            raise OutOfTime(f"not run: the time budget of {args.budget_min:g} min was spent")
        t0 = time.time()
        distill(cfg)
        log.info("%s fraction %s seed %s: %.0f s", ds, fraction, seed, time.time() - t0)
    run = load_run(run_dir)
    y, pred = _decisions(run)
    return SeedResult(seed, y, pred, run.report())


# ---------------------------------------------------------------- statistics over seeds


def paired_gain_ci(
    results: list[SeedResult], k: int, n: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """95% interval of the macro-F1 gain (student - student_no_kd), resampling seeds and, within each drawn
    seed, its test windows, with both students always scored on the same draw (pairs kept)."""
    rng = np.random.default_rng(seed + 1)

    def stat(seed_idx: np.ndarray) -> float:
        gains = []
        for i in seed_idx:
            r = results[i]
            rows = rng.integers(0, len(r.y), len(r.y))
            y = r.y[rows]
            gains.append(
                macro_f1(y, r.pred["student"][rows], k) - macro_f1(y, r.pred["student_no_kd"][rows], k)
            )
        return float(np.mean(gains))

    return bootstrap_interval(len(results), stat, n, seed)


def _recall(y: np.ndarray, pred: np.ndarray, cls: int) -> float | None:
    mask = y == cls
    return float((pred[mask] == cls).mean()) if mask.any() else None


def summarize(ds: str, fraction: float | None, results: list[SeedResult], failed: dict[int, str]) -> Row:
    first = results[0].report
    mode = first["mode"]
    classes = list(first.get("classes") or ["normal", "anomaly"])
    k = len(classes)
    metrics: dict[str, dict[str, list[float | None]]] = {}
    for name in MODELS:
        per: dict[str, list[float | None]] = {"macro_f1": [], "accuracy": []}
        for r in results:
            p = r.pred.get(name)
            per["macro_f1"].append(None if p is None else macro_f1(r.y, p, k))
            per["accuracy"].append(None if p is None else float((p == r.y).mean()))
            rep = r.report.get(name, {})
            for key in ("f1", "recall", "roc_auc", "series_accuracy"):
                if rep.get(key) is not None:
                    per.setdefault(key, []).append(rep[key])
        metrics[name] = per
    mean = {n: _mean(metrics[n]["macro_f1"]) for n in MODELS}
    params = {n: first.get(n, {}).get("params") for n in MODELS}
    gains = [
        a - b
        for a, b in zip(metrics["student"]["macro_f1"], metrics["student_no_kd"]["macro_f1"], strict=True)
        if a is not None and b is not None
    ]
    # rare classes: the runs' own rule (share of labelled training windows); label-free: the anomalies
    rare = sorted({c for r in results for c in r.report.get("rare_classes", [])}) or (
        ["anomaly"] if mode == "unsupervised" else []
    )
    rare_recall = {
        c: {
            n: _mean([_recall(r.y, r.pred[n], classes.index(c)) for r in results if n in r.pred])
            for n in MODELS
        }
        for c in rare
    }
    problem = {"plaid": "PLAID", "acsf1": "ACSF1"}.get(ds)
    return Row(
        dataset=ds,
        mode=mode,
        fraction=fraction,
        seeds=[r.seed for r in results],
        classes=classes,
        metrics=metrics,
        params=params,
        kd_gain=float(np.mean(gains)) if gains else None,
        kd_gain_ci95=paired_gain_ci(results, k) if gains else None,
        kd_wins=sum(g > 0 for g in gains),
        retention=mean["student"] / mean["teacher"]
        if mean["teacher"] and mean["student"] is not None
        else None,
        param_ratio=params["teacher"] / params["student"]
        if params["teacher"] and params["student"]
        else None,
        rare_recall=rare_recall,
        published_accuracy=published_accuracies(problem) if problem else {},
        failed=failed,
        labelled_rows=[int(r.report["labelled_rows"]) for r in results if "labelled_rows" in r.report],
    )


def _mean(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


# ---------------------------------------------------------------- onnxruntime latency


def _identity_model(path: Path, shape: list[int]) -> Path:
    """The runtime's per-call floor: an Identity graph with the models' input (dynamic batch)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *shape])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", *shape])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "floor", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ORT_OPSET)])
    onnx.save(model, str(path))
    return path


def measure_latency(ds: str, run_dir: Path, budget_s: float) -> Latency:
    """Teacher, student and the Identity floor, each exported to ONNX and run by onnxruntime (CPU, 1
    intra-op thread), batch 1 and 256 on real test windows; calls interleaved model by model."""
    import onnxruntime as ort
    import torch

    from edgekit.export.onnx import export_torch
    from edgekit.models.registry import ModelSpec, build_model, load_weights

    run = load_run(run_dir)
    info = run.info
    assert isinstance(info, SensorRun)
    norm = Normalizer(
        np.asarray(info.normalization.mean, np.float32), np.asarray(info.normalization.std, np.float32)
    )
    x = norm(run.windows().test_x)
    work = run_dir / "latency"
    work.mkdir(exist_ok=True)
    paths = {"floor": _identity_model(work / "floor.onnx", list(x.shape[1:]))}
    for name in ("teacher", "student"):
        spec = info.models[name]
        m = load_weights(build_model(ModelSpec(spec.arch, dict(spec.kwargs))), str(run.checkpoint(name)))
        paths[name] = export_torch(m, torch.from_numpy(x[:2]), work / f"{name}.onnx", ORT_OPSET)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions = {
        n: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for n, p in paths.items()
    }
    p50: dict[str, dict[int, float]] = {n: {} for n in sessions}
    calls: dict[int, int] = {}
    for batch in (1, 256):
        feed = np.ascontiguousarray(x[np.arange(batch) % len(x)])
        times: dict[str, list[int]] = {n: [] for n in sessions}
        names = {n: s.get_inputs()[0].name for n, s in sessions.items()}
        for _ in range(20):  # warm-up
            for n, s in sessions.items():
                s.run(None, {names[n]: feed})
        end = time.perf_counter() + budget_s
        while time.perf_counter() < end or len(times["floor"]) < 50:
            for n, s in sessions.items():  # interleaved: one call each per round
                t0 = time.perf_counter_ns()
                s.run(None, {names[n]: feed})
                times[n].append(time.perf_counter_ns() - t0)
        calls[batch] = len(times["floor"])
        for n, t in times.items():
            p50[n][batch] = float(np.median(t)) / 1e3
    return Latency(ds, list(x.shape[1:]), p50, calls)


# ---------------------------------------------------------------- driver


def build_table(args: argparse.Namespace) -> DistillTable:
    t_start = time.time()
    deadline = t_start + 60 * args.budget_min if args.budget_min is not None else float("inf")
    out = Path(args.out)
    rows, latency, missing = [], [], []
    for ds in args.datasets:
        label_free = DATASET_DEFAULTS.get(ds, {}).get("mode") == "unsupervised"
        fractions: list[float | None] = [None] if label_free else list(args.fractions)
        lat_dir: Path | None = None
        for fraction in fractions:
            results, failed = [], {}
            for seed in args.seeds:
                try:
                    results.append(run_one(ds, fraction, seed, out, args, deadline))
                except (
                    EdgekitError,
                    OutOfTime,
                ) as exc:  # e.g. too few labelled rows of a class at 1%: recorded, shown
                    failed[seed] = str(exc)
                    log.warning("%s fraction %s seed %s failed: %s", ds, fraction, seed, exc)
            if not results:
                missing.append(f"{ds}, label fraction {fraction}: " + "; ".join(sorted(set(failed.values()))))
                continue
            row = summarize(ds, fraction, results, failed)
            rows.append(row)
            print(
                render(DistillTable([row], [], args.seeds, args.quick, "", 0.0).to_dict(), section=False),
                flush=True,
            )
            if lat_dir is None or fraction == 1.0:
                lat_dir = (
                    out
                    / ds
                    / ("label-free" if fraction is None else f"f{fraction:g}")
                    / f"seed{results[0].seed}"
                )
        if lat_dir is not None:
            latency.append(measure_latency(ds, lat_dir, args.latency_s))
    wall = time.time() - t_start
    return DistillTable(rows, latency, list(args.seeds), args.quick, machine(), wall, args.max_rows, missing)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["shuttle", "mitdb", "plaid", "acsf1"])
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.05, 0.1, 1.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0..4 (0..1 with --quick)")
    ap.add_argument("--quick", action="store_true", help=f"2 seeds and a short epoch budget {QUICK_EPOCHS}")
    ap.add_argument("--max-rows", type=int, default=None, help="a slice of each dataset (smoke tests)")
    ap.add_argument("--reuse", action="store_true", help="reuse finished runs found under --out")
    ap.add_argument(
        "--latency-s", type=float, default=3.0, help="seconds of interleaved calls per batch size"
    )
    ap.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="start no new run after this many minutes (finished runs are still reused with --reuse); "
        "what was not run is listed under the table",
    )
    ap.add_argument("--out", default="runs/bench-distill")
    ap.add_argument(
        "--section",
        default="distill",
        help="the section of benchmarks/RESULTS.md this table replaces (a part of the grid re-run after a "
        "change goes into a section of its own, e.g. distill-mitdb)",
    )
    args = ap.parse_args()
    args.seeds = args.seeds if args.seeds is not None else ([0, 1] if args.quick else [0, 1, 2, 3, 4])
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)  # this script's progress; the exporters' INFO chatter stays quiet
    table = build_table(args)
    path = Path(args.out) / "distill_table.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table.to_json())
    title = (
        "Distillation: teacher vs student vs student without KD"
        + (" (QUICK: short budget)" if args.quick else "")
        + (f" (SLICE: first {args.max_rows} rows)" if args.max_rows else "")
    )
    data = table.to_dict()
    write_section(args.section, title, render(data))
    print("\n" + render(data) + "\n")


if __name__ == "__main__":
    main()
