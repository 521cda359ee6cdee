"""What the benchmark ran on: CPU model, cores, arch, OS, Python and onnxruntime, recorded in every report."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

# /proc/cpuinfo on aarch64 names the core only by implementer/part number; these are the boards
# edgekit ships profiles for (plus common neighbours).
_ARM_PARTS = {
    ("0x41", "0xd03"): "Cortex-A53",
    ("0x41", "0xd04"): "Cortex-A35",
    ("0x41", "0xd05"): "Cortex-A55",
    ("0x41", "0xd07"): "Cortex-A57",
    ("0x41", "0xd08"): "Cortex-A72",
    ("0x41", "0xd09"): "Cortex-A73",
    ("0x41", "0xd0a"): "Cortex-A75",
    ("0x41", "0xd0b"): "Cortex-A76",
    ("0x41", "0xd0c"): "Neoverse-N1",
    ("0x41", "0xd41"): "Cortex-A78",
    ("0x41", "0xd42"): "Cortex-A78AE",
    ("0x41", "0xd4f"): "Neoverse-V2",
    ("0x4e", "0x004"): "NVIDIA Carmel",
}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model(cpuinfo: str | None = None) -> str:
    """Human CPU name from /proc/cpuinfo ('model name' on x86, implementer/part table on ARM)."""
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    if fields.get("model name"):
        return fields["model name"]
    part = (fields.get("cpu implementer", "").lower(), fields.get("cpu part", "").lower())
    if part in _ARM_PARTS:
        return _ARM_PARTS[part]
    if part[0]:
        return f"ARM implementer {part[0]} part {part[1]}"
    return platform.processor() or "unknown"


def os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def machine_info(used_providers: list[str] | None = None) -> dict:
    """A JSON-able record of the machine and software versions; `used_providers` from the session."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip() or None
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    mem_kb = next(
        (
            int(line.split()[1])
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal:")
        ),
        None,
    )
    board = _read("/proc/device-tree/model").strip("\x00\n ") or None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_model": cpu_model(),
        "board": board,
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "cpu_governor": governor,
        "cpu_max_mhz": int(max_khz) // 1000 if max_khz.isdigit() else None,
        "mem_total_mb": mem_kb // 1024 if mem_kb else None,
        "arch": platform.machine(),
        "os": os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "providers_available": ort.get_available_providers(),
        "providers_used": list(used_providers or []),
        "load_avg_1_5_15": load,
        "timer": "time.perf_counter_ns",
        "timer_resolution_s": time.get_clock_info("perf_counter").resolution,
    }


def describe(info: dict) -> str:
    """One line for the terminal."""
    cores = (
        info["cores"]
        if info.get("cores_usable") in (None, info["cores"])
        else f"{info['cores_usable']}/{info['cores']}"
    )
    board = f"{info['board']}, " if info.get("board") else ""
    return (
        f"{board}{info['cpu_model']} x{cores} ({info['arch']}), {info['os']}, Python {info['python']}, "
        f"onnxruntime {info['onnxruntime']} [{', '.join(p.replace('ExecutionProvider', '') for p in info['providers_used'])}]"
    )
