"""Write one named section of benchmarks/RESULTS.md, replacing the previous run's section."""

from __future__ import annotations

import os
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# edgekit benchmark results\n\nEvery figure below was printed by the script named in its section, run on the machine described there.\nRe-run the command to regenerate a section; sections are replaced, not appended.\n"


def machine() -> str:
    from edgekit.bench.machine import cpu_model

    cpu = cpu_model()
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "not installed"
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}, onnxruntime {ort}"


def write_section(name: str, title: str, body: str, command: str | None = None) -> None:
    command = command or "python " + " ".join(
        [os.path.relpath(sys.argv[0], RESULTS.parent.parent), *sys.argv[1:]]
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- BEGIN {name} -->\n## {title}\n\n"
        f"- command: `{command}`\n- date: {stamp}\n- machine: {machine()}\n\n{body.rstrip()}\n<!-- END {name} -->\n"
    )
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)
