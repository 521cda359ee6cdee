"""The device side must start without the training stack: importing every module of edgekit.runtime,
edgekit.bundle and edgekit.bench (what `edgekit[runtime]` devices run) and building the whole CLI
parser in a fresh interpreter loads none of torch, transformers, optimum or onnx (onnxruntime is fine)."""

from __future__ import annotations

import json
import subprocess
import sys

TRAINING_ONLY = ("torch", "transformers", "optimum", "onnx")

PROBE = f"""
import importlib, json, pkgutil, sys
import edgekit.bench, edgekit.bundle, edgekit.runtime
mods = []
for pkg in (edgekit.runtime, edgekit.bundle, edgekit.bench):
    for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
        mods.append(info.name)
assert "edgekit.runtime.daemon" in mods and "edgekit.bench.e2e" in mods and "edgekit.runtime.install" in mods
assert "edgekit.runtime.text" in mods and "edgekit.runtime.text_scoring" in mods
from edgekit.cli import build_parser
build_parser().parse_args(["serve", "--bundle", "b", "--broker", "mqtt://h", "--device", "d"])
bad = sorted(m for m in sys.modules if m.split(".")[0] in {TRAINING_ONLY!r})
print(json.dumps({{"bad": bad, "ort": "onnxruntime" in sys.modules, "tok": "tokenizers" in sys.modules}}))
"""


def test_device_side_imports_no_training_stack():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bad"] == [], f"device-side import pulled in: {result['bad'][:10]}"
    assert result["ort"]  # the probe really imported the runtime
    assert result["tok"]  # and the text runtime with its tokenizer
