"""Layering of the whole package (every import counted, also those inside functions): no import circle
anywhere in edgekit; the device side (runtime, bundle) reaches no training, data or bench module; exporting
pulls in no distillation code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import edgekit

PACKAGE = Path(edgekit.__file__).resolve().parent
CHECKED = ("edgekit.export", "edgekit.models", "edgekit.run", "edgekit.metrics")


def module_graph() -> dict[str, set[str]]:
    """edgekit module -> the edgekit modules it imports anywhere in its source."""
    mods: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {m for t in targets if (m := resolve(t)) and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_through_export_models_run_or_metrics():
    graph = module_graph()
    assert "edgekit.export.pipeline" in graph and "edgekit.models.registry" in graph
    bad = [c for c in cycles(graph) if any(m.startswith(CHECKED) for m in c)]
    assert bad == []


def test_no_import_circle_anywhere():
    graph = module_graph()
    assert "edgekit.bench.e2e" in graph and "edgekit.runtime.daemon" in graph
    assert cycles(graph) == []


DEVICE_SIDE = ("edgekit.runtime", "edgekit.bundle")
NOT_ON_DEVICE = (
    "edgekit.export",
    "edgekit.distill",
    "edgekit.models",
    "edgekit.bench",
    "edgekit.data",
    "edgekit.demo",
)


def test_device_side_reaches_no_training_or_bench_module():
    """Transitively: what edgekit.runtime/bundle import, and what that imports, stays on the device side."""
    graph = module_graph()
    for start in (m for m in graph if m.startswith(DEVICE_SIDE)):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert not [m for m in seen if m.startswith(NOT_ON_DEVICE)], start


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_models_registry_knows_no_architecture_module():
    assert "edgekit.models.sensor" not in module_graph()["edgekit.models.registry"]


def test_export_imports_no_distillation_code():
    probe = (
        "import json, sys; import edgekit.export.pipeline, edgekit.export.gate, edgekit.run, edgekit.metrics; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('edgekit.distill'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
