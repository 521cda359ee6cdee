"""Benchmarks a device runs itself: model latency per stage, variants interleaved, a budget verdict, reports;
and the daemon end to end through a real broker (`run_e2e`).

Public surface (what the CLI, the demo and scripts use): `run_bench` / `BenchConfig`, `run_e2e` /
`E2EConfig`, `format_table` and `fmt_ms` for the terminal, `write_report` / `load_report` for the files, and the rig
(`DaemonProcess`, `Recorder`, `mqtt_client`) for driving a real `edgekit serve`.
Device side: numpy, onnxruntime and paho-mqtt (matplotlib optional for plots; torch only for a
torch:RUN_DIR variant).
"""

from edgekit.bench.e2e import E2EConfig, run_e2e
from edgekit.bench.format import fmt_ms, format_table
from edgekit.bench.report import load_report, write_report
from edgekit.bench.rig import DaemonProcess, Recorder, mqtt_client
from edgekit.bench.runner import BenchConfig, run_bench

# `edgekit bench` exit status when the latency budget is missed (distinct from errors: 2, gates: 3).
EXIT_BUDGET_FAIL = 4

__all__ = [
    "EXIT_BUDGET_FAIL",
    "BenchConfig",
    "DaemonProcess",
    "E2EConfig",
    "Recorder",
    "fmt_ms",
    "format_table",
    "load_report",
    "mqtt_client",
    "run_bench",
    "run_e2e",
    "write_report",
]
