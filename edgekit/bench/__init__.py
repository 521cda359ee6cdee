"""Benchmarks a device runs itself: model latency per stage, variants interleaved, a budget verdict, reports.

Device side: numpy and onnxruntime (matplotlib optional for plots; torch only for a torch:RUN_DIR variant).
"""

from edgekit.bench.runner import BenchConfig, run_bench

# `edgekit bench` exit status when the latency budget is missed (distinct from errors: 2, gates: 3).
EXIT_BUDGET_FAIL = 4

__all__ = ["EXIT_BUDGET_FAIL", "BenchConfig", "run_bench"]
