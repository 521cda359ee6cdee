"""`run_bench`: load the bundle (and variants to compare), time them, judge the budget, write the report."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.bench import latency
from edgekit.bench.machine import machine_info
from edgekit.bench.variants import (
    VariantUnavailable,
    bundle_variant,
    load_variant,
    load_windows,
    unique_names,
)
from edgekit.bundle.manifest import Manifest
from edgekit.errors import ConfigError, DataError
from edgekit.profiles import TargetProfile, load_profile

log = logging.getLogger(__name__)

DEFAULT_RUNS = 1000
REPORT_SCHEMA = 1


@dataclass
class BenchConfig:
    bundle: str
    profile: str | None = None  # default: the profile the bundle was exported for
    runs: int | None = None  # default DEFAULT_RUNS unless duration_s is given
    duration_s: float | None = None
    warmup: int = 50
    batch: int = 1
    percentile: str | None = None  # default: the profile's latency.percentile
    budget_ms: float | None = None  # default: the profile's latency.budget_ms
    data: str | None = None  # npz of RAW windows; default: the bundle's golden inputs
    compare: list[str] = field(default_factory=list)
    seed: int = 0
    out: str | None = None
    plots: bool = True


def resolve_profile(bundle: str | Path, name: str | None) -> TargetProfile:
    """The named profile, or the one recorded in the bundle's manifest."""
    if name:
        return load_profile(name)
    manifest = Manifest.load(bundle)
    try:
        return load_profile(manifest.profile)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}; the bundle names profile {manifest.profile!r}, pass --profile NAME"
        ) from None


def resolve_budget(
    profile: TargetProfile, percentile: str | None, budget_ms: float | None
) -> tuple[float, float]:
    """(q, budget_ms): flags override the profile's latency section."""
    q = latency.parse_percentile(percentile or profile.latency.percentile)
    budget = profile.latency.budget_ms if budget_ms is None else budget_ms
    if budget <= 0:
        raise ConfigError(f"--budget-ms must be > 0, got {budget}")
    return q, budget


def profile_record(
    profile: TargetProfile, q: float, budget: float, overridden: bool = False
) -> dict[str, Any]:
    return {
        "name": profile.name,
        "budget_ms": budget,
        "percentile": latency.percentile_key(q),
        "budget_from": "flag" if overridden else "profile",
        "threads": asdict(profile.threads),
        "execution_providers": profile.provider_names,
    }


def report_header(
    mode: str,
    bundle: str,
    profile: TargetProfile,
    q: float,
    budget: float,
    budget_flag: float | None,
    percentile_flag: str | None,
) -> dict[str, Any]:
    """The fields every bench report starts with (model-only and e2e)."""
    return {
        "schema": REPORT_SCHEMA,
        "tool": f"edgekit bench {__version__}",
        "mode": mode,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "bundle": str(bundle),
        "profile": profile_record(
            profile, q, budget, overridden=budget_flag is not None or percentile_flag is not None
        ),
    }


def run_bench(cfg: BenchConfig, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Benchmark cfg.bundle (and cfg.compare, interleaved) and return the report; writes files when cfg.out is set."""
    say = echo or (lambda _msg: None)
    profile = resolve_profile(cfg.bundle, cfg.profile)
    q, budget = resolve_budget(profile, cfg.percentile, cfg.budget_ms)
    runs = DEFAULT_RUNS if cfg.runs is None and cfg.duration_s is None else cfg.runs
    notes: list[str] = []

    variants = [bundle_variant(cfg.bundle, profile)]
    for spec in cfg.compare:
        try:
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
    windows, source = load_windows(first, cfg.data)
    batches = latency.make_batches(windows, cfg.batch)
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
            "distinct_batches": len(batches),
            "stages": "preprocess (normalize) | infer (session.run) | postprocess (score); total = sum",
            "percentiles": "numpy linear interpolation (edgekit.metrics.percentiles)",
            "gc": "enabled, as in the daemon",
        },
        "machine": machine_info(first.providers),
        "variants": summaries,
        "ratios": latency.ratios(summaries, key) if len(summaries) > 1 else [],
        "verdict": verdicts[0],
        "verdicts": verdicts,
        "notes": notes,
    }
    if cfg.out:
        from edgekit.bench.report import write_report

        report["files"] = write_report(
            cfg.out, report, {s.name: s.arrays() for s in samples}, plots=cfg.plots
        )
    return report
