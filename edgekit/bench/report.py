"""Write a finished bench report: report.json (versioned), samples.npz, PNG plots (matplotlib optional), report.md."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.format import markdown
from edgekit.bench.plots import plot_e2e, plot_model, pyplot

log = logging.getLogger(__name__)

NO_MATPLOTLIB = "plots skipped: matplotlib is not installed (pip install 'edgekit[bench]' or matplotlib)"


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
        plt = pyplot()
        if plt is None:
            report.setdefault("notes", []).append(NO_MATPLOTLIB)
        else:
            if report.get("variants"):
                files["plots"].update(plot_model(out, report, arrays, plt))
            if report.get("e2e"):
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
