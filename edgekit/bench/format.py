"""Bench reports as text: the terminal table, report.md, and their pieces (model-only and e2e).

Reads a finished report (the JSON-able dict of `run_bench` / `run_e2e`); measures nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.machine import describe


def fmt_ms(x: float | None) -> str:
    """A latency in ms for people: three significant digits below 1 ms, no rounding to 0.000."""
    if x is None or not np.isfinite(x):
        return "-"
    if x >= 100:
        return f"{x:.1f}"
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


def e2e_rows(e2e: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    key = e2e["verdict"]["percentile"]
    cols = ["p50", "p95", "p99"] + ([key] if key not in ("p50", "p95", "p99") else [])
    headers = ["path", "readings/s", "achieved/s", "received/expected", *cols]
    headers += ["max", "dropped", "x relay p50", "sustained"]
    rows = []
    for r in e2e["rows"]:
        lat = r["latency_ms"] or {}
        exp = r["expected_reports"]
        rows.append(
            [
                r["path"],
                f"{r['rate']:,.0f}",
                f"{r['achieved_per_s']:,.0f}",
                f"{r['received']}/{exp if exp is not None else '-'}",
                *[fmt_ms(lat.get(c)) for c in cols],
                fmt_ms(lat.get("max")),
                str(r.get("dropped", "-")),
                f"{r['relay_p50_ratio']:.2f}" if "relay_p50_ratio" in r else "",
                "yes" if r["sustained"] else "NO",
            ]
        )
    return headers, rows


def saturation_line(e2e: dict[str, Any]) -> str:
    sat, fail = e2e["saturation_per_s"], e2e["first_unsustained_per_s"]
    text = (
        f"saturation point: {sat:,.0f} readings/s sustained" if sat else "saturation point: no rate sustained"
    )
    return text + (
        f"; {fail:,.0f}/s was not" if fail else "; every swept rate was (sweep higher to find the limit)"
    )


def verdict_line(v: dict) -> str:
    line = (
        f"{v['result']}: {v['variant']} {v['percentile']} = {fmt_ms(v['value_ms'])} ms "
        f"{'<=' if v['passed'] else '>'} budget {v['budget_ms']:g} ms ({v['measured']})"
    )
    if v.get("host_warning"):
        line += f" -- NOT ON THE TARGET: {v['host_warning']}"
    return line


def format_table(report: dict) -> str:
    """What the CLI prints: machine, results table (ms), ratios vs the first variant, the verdict."""
    parts = [f"machine: {describe(report['machine'])}"]
    if report.get("variants"):
        parts.append(text_table(*model_rows(report)))
        parts.append(
            "times in ms; e2e = preprocess + infer + postprocess per call; x = ratio vs the first variant"
        )
    if report.get("e2e"):
        parts.append(text_table(*e2e_rows(report["e2e"])))
    parts += [f"note: {n}" for n in report.get("notes", [])]
    if report.get("verdict"):
        parts.append(verdict_line(report["verdict"]))
    if report.get("e2e"):
        parts.append(saturation_line(report["e2e"]))
    return "\n".join(parts)


def e2e_markdown(e2e: dict[str, Any]) -> str:
    return "\n".join(
        [
            "## End to end through the broker (ms)",
            "",
            md_table(*e2e_rows(e2e)),
            "",
            saturation_line(e2e) + ". x relay p50 = daemon p50 / bare-relay p50 at the same rate.",
            f"Daemon peak RSS: {e2e['daemon_rss_mb']['peak']:.0f} MB." if e2e.get("daemon_rss_mb") else "",
        ]
    )


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
        lines += [e2e_markdown(report["e2e"]), ""]
    for name, file in report.get("files", {}).get("plots", {}).items():
        lines += [f"![{name}]({file})", ""]
    if report.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in report["notes"]], ""]
    return "\n".join(lines)
