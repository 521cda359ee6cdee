"""The cascade plot (matplotlib, optional): quality and mean latency against the escalation rate, with the
student alone, the teacher alone and the chosen rule marked. Reads cascade.json's data; measures nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.bench.plots import pyplot, save_figure


def plot_cascade(out: Path, result: dict[str, Any]) -> str | None:
    """out/cascade.png; None when matplotlib is not installed."""
    plt = pyplot()
    if plt is None:
        return None
    curve = result["curve"]
    rates = [p["escalation_rate"] for p in curve]
    metric = "macro-F1" if result["metric"] == "macro_f1" else "F1"
    fig, (qa, la) = plt.subplots(1, 2, figsize=(11, 4))
    qa.plot(
        rates, [p["quality"] for p in curve], "o-", color="#4c72b0", label=f"cascade ({result['measure']})"
    )
    for name, color in (("student", "#dd8452"), ("teacher", "#55a868")):
        q = result[name]["quality"]
        if q is not None:
            qa.axhline(q, color=color, ls="--", label=f"{name} alone ({q:.3f})")
    chosen = result["chosen"]
    if chosen["quality"] is not None:
        qa.plot(
            [chosen["escalation_rate"]], [chosen["quality"]], "*", ms=14, color="#c44e52", label="chosen rule"
        )
    qa.set_xlabel("share of test windows escalated to the teacher")
    qa.set_ylabel(f"test {metric}")
    qa.set_title("Quality vs escalation", fontsize=10)
    qa.legend(fontsize=8, loc="lower right")

    la.plot(rates, [p["latency_mean_ms"] for p in curve], "o-", color="#4c72b0", label="cascade mean")
    la.plot(rates, [p["latency_p99_ms"] for p in curve], "s:", color="#4c72b0", label="cascade p99")
    for name, color in (("student", "#dd8452"), ("teacher", "#55a868")):
        la.axhline(result[name]["latency_mean_ms"], color=color, ls="--", label=f"{name} alone (mean)")
    la.plot(
        [chosen["escalation_rate"]],
        [chosen["latency_mean_ms"]],
        "*",
        ms=14,
        color="#c44e52",
        label="chosen rule",
    )
    la.set_xlabel("share of test windows escalated to the teacher")
    la.set_ylabel("latency per window, batch 1 (ms)")
    la.set_title(f"Latency per window ({result['profile']}, onnxruntime)", fontsize=10)
    la.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Cascade on the test split: {Path(result['run_dir']).name}", fontsize=11)
    return save_figure(fig, out / "cascade.png", plt)
