"""edgekit.flash runs on devices (the Mender module, `edgekit device`): it must not pull in the training stack."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import importlib, json, pkgutil, sys
import edgekit.flash
mods = [importlib.import_module(i.name).__name__ for i in pkgutil.iter_modules(edgekit.flash.__path__, "edgekit.flash.")]
from edgekit.cli import build_parser
build_parser().parse_args(["device", "status", "/tmp"])
bad = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "transformers", "optimum", "onnx"}
             or m.startswith(("edgekit.export", "edgekit.distill", "edgekit.models")))
# The parser's `distill --help` shows the defaults of distill/config.py, a typed config (stdlib + yaml only).
bad = [m for m in bad if m not in ("edgekit.distill", "edgekit.distill.config")]
print(json.dumps({"mods": mods, "bad": bad}))
"""


def test_flash_imports_only_the_device_side():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "edgekit.flash.update_module" in result["mods"] and "edgekit.flash.ssh" in result["mods"]
    assert result["bad"] == []
