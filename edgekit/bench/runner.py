"""`run_bench`: load the bundle (and variants to compare), time them, judge the budget, write the report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import edgekit.bench.latency as latency
import edgekit.bench.text as text
from edgekit.bench.machine import machine_info
from edgekit.bench.report import write_report
from edgekit.bench.resolve import mark_host, report_header, resolve_budget, resolve_profile
from edgekit.bench.variants import (
    TORCH_PREFIX,
    VARIANT_PREFIX,
    Variant,
    VariantUnavailable,
    bundle_variant,
    load_variant,
    load_windows,
    own_variants,
    unique_names,
)
from edgekit.errors import DataError
from edgekit.profiles import TargetProfile
from edgekit.runtime.install import opened_bundle

log = logging.getLogger(__name__)

DEFAULT_RUNS = 1000
SENSOR_STAGES = "preprocess (normalize) | infer (session.run) | postprocess (score)"


@dataclass
class BenchConfig:
    bundle: str  # a bundle folder or a .tar.gz of one
    profile: str | None = None  # default: the profile the bundle was exported for
    runs: int | None = None  # default DEFAULT_RUNS unless duration_s is given
    duration_s: float | None = None
    warmup: int = 50
    batch: int = 1
    percentile: str | None = None  # default: the profile's latency.percentile
    budget_ms: float | None = None  # default: the profile's latency.budget_ms
    data: str | None = None  # npz of RAW windows (text: .txt/.jsonl of texts); default: the golden inputs
    compare: list[str] = field(default_factory=list)
    seed: int = 0
    out: str | None = None
    plots: bool = True


def _open_variants(
    stack: ExitStack,
    bundle: Path,
    compare: list[str],
    profile: TargetProfile,
    say: Callable[[str], None],
    notes: list[str],
) -> list[Variant]:
    """The bundle and the variants to compare (tarballs unpacked for as long as `stack` is open)."""
    variants = [bundle_variant(bundle, profile)]
    for spec in compare:
        if spec.startswith(VARIANT_PREFIX):
            variants += own_variants(bundle, spec, profile, variants[0].info["variant"])
            continue
        try:
            if not spec.startswith(TORCH_PREFIX):
                spec = str(stack.enter_context(opened_bundle(spec)))
            variants.append(load_variant(spec, profile))
        except VariantUnavailable as exc:
            notes.append(str(exc))
            say(f"note: {exc}")
    unique_names(variants)
    first = variants[0]
    for v in variants[1:]:
        if (v.window, v.channels) != (first.window, first.channels):
            raise DataError(
                f"{v.name}: takes windows [{v.window}, {v.channels}] but {first.name} takes [{first.window}, {first.channels}];"
                " compared variants must take the same input"
            )
    return variants


def run_bench(cfg: BenchConfig, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Benchmark cfg.bundle (and cfg.compare, interleaved) and return the report; writes files when cfg.out is set."""
    say = echo or (lambda _msg: None)
    runs = DEFAULT_RUNS if cfg.runs is None and cfg.duration_s is None else cfg.runs
    notes: list[str] = []
    with ExitStack() as stack:
        bundle = stack.enter_context(opened_bundle(cfg.bundle))
        profile = resolve_profile(bundle, cfg.profile)
        q, budget = resolve_budget(profile, cfg.percentile, cfg.budget_ms)
        variants = _open_variants(stack, bundle, cfg.compare, profile, say, notes)
        windows, source = load_windows(variants[0], cfg.data)
        batches = latency.make_batches(windows, cfg.batch, seed=cfg.seed)
        what = f"{runs} runs" if runs is not None else f"{cfg.duration_s:g} s"
        say(
            f"benchmarking {', '.join(v.name for v in variants)} on profile {profile.name}: batch {cfg.batch}, "
            f"warm-up {cfg.warmup}, {what}{', interleaved' if len(variants) > 1 else ''}"
        )
        samples = latency.measure(
            variants, batches, runs=runs, duration_s=cfg.duration_s, warmup=cfg.warmup, seed=cfg.seed
        )

    qs = tuple(sorted({*latency.DEFAULT_QS, q}))
    summaries = []
    for v, s in zip(variants, samples, strict=True):
        summaries.append({**latency.summarize(s, qs), "kind": v.kind, "providers": v.providers, **v.info})
    verdicts = [latency.verdict(s, budget, q) for s in summaries]
    key = latency.percentile_key(q)
    report: dict[str, Any] = {
        **report_header("model", cfg.bundle, profile, q, budget, cfg.budget_ms, cfg.percentile),
        "method": {
            "runs": runs,
            "duration_s": cfg.duration_s,
            "warmup": cfg.warmup,
            "batch": cfg.batch,
            "interleaved": len(variants) > 1,
            "order": "random per round" if len(variants) > 1 else "sequential",
            "seed": cfg.seed,
            "inputs": source,
            "input_windows": len(windows),
            "input_order": f"seeded permutation (seed {cfg.seed})",
            "distinct_batches": len(batches),
            "stages": (text.STAGES if variants[0].info.get("input") == "text" else SENSOR_STAGES)
            + "; total = sum",
            "percentiles": "numpy linear interpolation (edgekit.metrics.percentiles)",
            "gc": "enabled, as in the daemon",
        },
        "machine": machine_info(variants[0].providers),
        "variants": summaries,
        "ratios": latency.ratios(summaries, key) if len(summaries) > 1 else [],
        "verdict": verdicts[0],
        "verdicts": verdicts,
        "notes": notes,
    }
    mark_host(report, profile)
    if cfg.out:
        report["files"] = write_report(
            cfg.out, report, {s.name: s.arrays() for s in samples}, plots=cfg.plots
        )
    return report
