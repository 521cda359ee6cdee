"""Bench plots (matplotlib, optional): latency CDFs, latency over time, stages, the e2e rate sweep.

Reads a finished report and its raw samples; measures nothing. matplotlib is imported only by `pyplot()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is not installed."""
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
    files["latency_cdf"] = save_figure(fig, out / "latency_cdf.png", plt)

    fig = over_time_figure(
        plt,
        {name: (a["start_s"], a["total_ms"]) for name, a in arrays.items()},
        budget,
        xlabel="time since measurement start (s)",
        title="Latency over time (drift, throttling, outliers)",
    )
    files["latency_over_time"] = save_figure(fig, out / "latency_over_time.png", plt)

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
    files["stages"] = save_figure(fig, out / "stages.png", plt)
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
    budget_line(ax, budget, hi, vertical=True)
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
    budget_line(ax, budget, max(float(ms.max()) for _, ms in series.values()), vertical=False)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("end-to-end latency (ms, log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, markerscale=4)
    return fig


def budget_line(ax: Any, budget: float, data_max: float, vertical: bool) -> None:
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


def save_figure(fig: Any, path: Path, plt: Any) -> str:
    # bbox_inches="tight" also makes room for legends placed outside the axes.
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path.name


def plot_e2e(
    out: Path, e2e: dict[str, Any], samples: dict[str, dict[str, np.ndarray]], plt: Any
) -> dict[str, str]:
    """rate_sweep.png, e2e_latency_cdf.png and e2e_latency_over_time.png."""
    budget = e2e["verdict"]["budget_ms"]
    key = e2e["verdict"]["percentile"]
    files = {}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    hi = 0.0
    for path, color in (("daemon", "#dd8452"), ("relay", "#4c72b0")):
        rs = [r for r in e2e["rows"] if r["path"] == path and r["latency_ms"]]
        if not rs:
            continue
        x = [r["rate"] for r in rs]
        for stat, ls in (("p50", "-"), (key, "--")):
            y = [r["latency_ms"][stat] for r in rs]
            hi = max(hi, *y)
            ax.plot(x, y, ls, marker="o", color=color, label=f"{path} {stat}")
        for r in rs:
            if not r["sustained"]:
                ax.plot([r["rate"]], [r["latency_ms"][key]], "x", color="crimson", ms=10, mew=2)
    budget_line(ax, budget, hi, vertical=False)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (readings/s, log scale)")
    ax.set_ylabel("end-to-end latency (ms, log scale)")
    ax.set_title("Rate sweep: daemon vs bare relay (x = not sustained)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    files["rate_sweep"] = save_figure(fig, out / "rate_sweep.png", plt)

    daemon = {k: v for k, v in samples.items() if k.startswith("daemon@") and len(v["latency_ms"])}
    if daemon:
        fig = cdf_figure(
            plt,
            {f"{name.split('@')[1]} readings/s": a["latency_ms"] for name, a in daemon.items()},
            budget,
            xlabel="publisher -> report at subscriber (ms, log scale)",
            title="Daemon end-to-end latency distribution per rate",
        )
        files["e2e_latency_cdf"] = save_figure(fig, out / "e2e_latency_cdf.png", plt)

        series, offset = {}, 0.0
        for name, a in daemon.items():  # rates back to back on one time axis
            series[name.split("@")[1] + "/s"] = (a["arrival_s"] + offset, a["latency_ms"])
            offset += float(a["arrival_s"][-1]) + 0.5
        fig = over_time_figure(
            plt,
            series,
            budget,
            xlabel="time (s, rates back to back)",
            title="Daemon latency over time (backlog shows as a ramp)",
        )
        files["e2e_latency_over_time"] = save_figure(fig, out / "e2e_latency_over_time.png", plt)
    return files
