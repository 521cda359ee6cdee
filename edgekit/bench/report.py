"""A finished bench report on disk: report.json (versioned), samples.npz, PNG plots (matplotlib optional), report.md.

`write_report` writes them; `load_report` reads report.json back (checking its schema version), and the
tables of `edgekit.bench.format` are made from that JSON form alone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.format import markdown
from edgekit.bench.plots import plot_e2e, plot_model, pyplot
from edgekit.bench.resolve import REPORT_SCHEMA
from edgekit.errors import DataError

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


def load_report(path: str | Path) -> dict[str, Any]:
    """report.json (or the folder holding it) as written by `write_report`; DataError when it is not one."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read a bench report ({exc})") from None
    schema = report.get("schema") if isinstance(report, dict) else None
    if not isinstance(schema, int) or not 1 <= schema <= REPORT_SCHEMA:
        raise DataError(
            f"{path}: bench report schema {schema!r} is not one this edgekit reads (1..{REPORT_SCHEMA})"
        )
    missing = [k for k in ("mode", "bundle", "profile", "machine", "verdict") if k not in report]
    if missing:
        raise DataError(f"{path}: not a bench report (no {', '.join(missing)})")
    return report


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")
