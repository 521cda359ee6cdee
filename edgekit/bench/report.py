"""Bench output: a terminal table, report.json, samples.npz, report.md and PNG plots (matplotlib optional)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

NO_MATPLOTLIB = "plots skipped: matplotlib is not installed (pip install 'edgekit[bench]' or matplotlib)"


def fmt_ms(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    if x >= 100:
        return f"{x:.1f}"
    # Small models run in microseconds; keep three significant digits rather than rounding to 0.000.
    return f"{x:.2f}" if x >= 1 else f"{x:.3g}"


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned others."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def model_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    key = report["profile"]["percentile"]
    cols = ["p50", "p90", "p95", "p99", "p99.9"]
    if key not in cols:
        cols.append(key)
    headers = [
        "variant",
        "batch",
        "calls",
        "pre p50",
        "infer p50",
        "post p50",
        *[f"e2e {c}" for c in cols],
        "max",
        "mean",
        "win/s",
    ]
    ratio = {r["name"]: r for r in report.get("ratios", [])}
    if ratio:
        headers += ["x p50", f"x {key}"]
    rows = []
    for s in report["variants"]:
        row = [s["name"], str(s["batch"]), str(s["calls"])]
        row += [fmt_ms(s[st]["p50"]) for st in ("preprocess", "infer", "postprocess")]
        row += [fmt_ms(s["total"][c]) for c in cols]
        row += [fmt_ms(s["total"]["max"]), fmt_ms(s["total"]["mean"]), f"{s['throughput_windows_per_s']:.0f}"]
        if ratio:
            r = ratio[s["name"]]
            row += [f"{r['p50_ratio']:.2f}", f"{r[f'{key}_ratio']:.2f}"]
        rows.append(row)
    return headers, rows


def verdict_line(v: dict) -> str:
    return (
        f"{v['result']}: {v['variant']} {v['percentile']} = {fmt_ms(v['value_ms'])} ms "
        f"{'<=' if v['passed'] else '>'} budget {v['budget_ms']:g} ms ({v['measured']})"
    )


def format_table(report: dict) -> str:
    """What the CLI prints: machine, results table (ms), ratios vs the first variant, the verdict."""
    from edgekit.bench.machine import describe

    parts = [f"machine: {describe(report['machine'])}"]
    if report.get("variants"):
        parts.append(text_table(*model_rows(report)))
        parts.append(
            "times in ms; e2e = preprocess + infer + postprocess per call; x = ratio vs the first variant"
        )
    if report.get("e2e"):
        from edgekit.bench.e2e import e2e_rows

        parts.append(text_table(*e2e_rows(report["e2e"])))
    parts += [f"note: {n}" for n in report.get("notes", [])]
    if report.get("verdict"):
        parts.append(verdict_line(report["verdict"]))
    return "\n".join(parts)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_model(out: Path, report: dict, arrays: dict[str, dict[str, np.ndarray]], plt: Any) -> dict[str, str]:
    """latency_cdf.png, latency_over_time.png and stages.png for model-only runs."""
    budget = report["profile"]["budget_ms"]
    key = report["profile"]["percentile"]
    files = {}

    fig = cdf_figure(
        plt,
        {name: a["total_ms"] for name, a in arrays.items()},
        budget,
        xlabel="end-to-end latency per call (ms, log scale)",
        title=f"Latency distribution, batch {report['method']['batch']} ({report['machine']['cpu_model']})",
        mark_q=float(key[1:]),
    )
    files["latency_cdf"] = _save(fig, out / "latency_cdf.png", plt)

    fig = over_time_figure(
        plt,
        {name: (a["start_s"], a["total_ms"]) for name, a in arrays.items()},
        budget,
        xlabel="time since measurement start (s)",
        title="Latency over time (drift, throttling, outliers)",
    )
    files["latency_over_time"] = _save(fig, out / "latency_over_time.png", plt)

    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.5 * len(arrays)))
    names = list(arrays)
    left = np.zeros(len(names))
    for stage, color in (("preprocess", "#4c72b0"), ("infer", "#dd8452"), ("postprocess", "#55a868")):
        vals = np.array([float(np.median(arrays[n][f"{stage}_ms"])) for n in names])
        ax.barh(names, vals, left=left, color=color, label=stage)
        left += vals
    ax.set_xlabel("median time per call (ms)")
    ax.set_title("Where the time goes (median per stage)", fontsize=10)
    ax.invert_yaxis()
    ax.legend(
        fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25 - 0.6 / len(names)), frameon=False
    )
    files["stages"] = _save(fig, out / "stages.png", plt)
    return files


def cdf_figure(
    plt: Any,
    series: dict[str, np.ndarray],
    budget: float,
    xlabel: str,
    title: str,
    mark_q: float | None = None,
) -> Any:
    """Latency CDFs (log ms against a logit percentile axis, so the tail is readable) with the budget."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    hi = 0.0
    for label, ms in series.items():
        t = np.sort(ms)
        hi = max(hi, float(t[-1]))
        # Plotting positions (i - 0.5) / n stay inside (0, 1), which the logit scale needs.
        ax.plot(t, (np.arange(1, len(t) + 1) - 0.5) / len(t), label=label, lw=1.6)
    _budget_line(ax, budget, hi, vertical=True)
    ax.set_xscale("log")
    ax.set_yscale("logit")
    ticks = [0.5, 0.9, 0.99, 0.999]
    ax.set_yticks(ticks, [f"p{100 * t:g}" for t in ticks])
    ax.yaxis.set_minor_formatter(plt.NullFormatter())
    if mark_q is not None:
        ax.axhline(mark_q / 100, color="grey", ls=":", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("percentile (logit scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def over_time_figure(
    plt: Any, series: dict[str, tuple[np.ndarray, np.ndarray]], budget: float, xlabel: str, title: str
) -> Any:
    """Latency (log ms) against time, one dot per sample, with the budget."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, (t, ms) in series.items():
        ax.plot(t, ms, ".", ms=2, alpha=0.5, label=label)
    _budget_line(ax, budget, max(float(ms.max()) for _, ms in series.values()), vertical=False)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("end-to-end latency (ms, log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, markerscale=4)
    return fig


def _budget_line(ax: Any, budget: float, data_max: float, vertical: bool) -> None:
    """Draw the budget, unless it is far off the data's scale: then say so instead of squashing the data."""
    if budget <= 10 * data_max:
        (ax.axvline if vertical else ax.axhline)(
            budget, color="crimson", ls="--", lw=1, label=f"budget {budget:g} ms"
        )
    else:
        ax.text(
            0.99,
            0.02 if vertical else 0.97,
            f"budget {budget:g} ms: off scale",
            transform=ax.transAxes,
            ha="right",
            va="bottom" if vertical else "top",
            color="crimson",
            fontsize=8,
        )


def _save(fig: Any, path: Path, plt: Any) -> str:
    # bbox_inches="tight" also makes room for legends placed outside the axes.
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path.name


def markdown(report: dict) -> str:
    """report.md: verdict, machine, method, tables, plots, notes."""
    m, p, meth = report["machine"], report["profile"], report.get("method", {})
    lines = [f"# edgekit bench: {Path(report['bundle']).name}", ""]
    if report.get("verdict"):
        lines += [f"**{verdict_line(report['verdict'])}**", ""]
    lines += [
        f"Profile `{p['name']}`: budget {p['budget_ms']:g} ms at {p['percentile']} (from {p['budget_from']}), "
        f"threads intra {p['threads']['intra_op']} / inter {p['threads']['inter_op']}, providers {', '.join(p['execution_providers'])}.",
        "",
        "## Machine",
        "",
        md_table(["", ""], [[k, str(v)] for k, v in m.items()]),
        "",
        "## Method",
        "",
        *[f"- {k}: {v}" for k, v in meth.items()],
        "",
    ]
    if report.get("variants"):
        lines += ["## Results (ms)", "", md_table(*model_rows(report)), ""]
        lines += ["e2e = preprocess + infer + postprocess per call; x = ratio vs the first variant.", ""]
    if report.get("e2e"):
        from edgekit.bench.e2e import e2e_markdown

        lines += [e2e_markdown(report["e2e"]), ""]
    for name, file in report.get("files", {}).get("plots", {}).items():
        lines += [f"![{name}]({file})", ""]
    if report.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in report["notes"]], ""]
    return "\n".join(lines)


def write_report(
    out: str | Path, report: dict, arrays: dict[str, dict[str, np.ndarray]], plots: bool = True
) -> dict[str, Any]:
    """Write report.json, samples.npz (raw per-call times), PNG plots and report.md; returns the file names."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {"json": "report.json", "markdown": "report.md", "plots": {}}
    if arrays:
        np.savez_compressed(
            out / "samples.npz", **{f"{n}/{k}": v for n, a in arrays.items() for k, v in a.items()}
        )
        files["samples"] = "samples.npz"
    if plots:
        plt = _pyplot()
        if plt is None:
            report.setdefault("notes", []).append(NO_MATPLOTLIB)
        else:
            if report.get("variants"):
                files["plots"].update(plot_model(out, report, arrays, plt))
            if report.get("e2e"):
                from edgekit.bench.e2e import plot_e2e

                files["plots"].update(plot_e2e(out, report["e2e"], arrays, plt))
    report["files"] = files
    (out / "report.json").write_text(
        json.dumps(report, indent=2, default=_json_default) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    return files


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")
