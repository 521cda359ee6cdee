"""Machine info: CPU names from real /proc/cpuinfo layouts, and the record of this machine."""

from __future__ import annotations

import onnxruntime as ort

from edgekit.bench.machine import cpu_model, describe, machine_info

X86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Celeron(R) J4125 CPU @ 2.00GHz\n"
# Raspberry Pi 4 (64-bit Raspberry Pi OS): no 'model name', only implementer/part numbers.
PI4 = (
    "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
    "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
)


def test_cpu_model_from_cpuinfo() -> None:
    assert cpu_model(X86) == "Intel(R) Celeron(R) J4125 CPU @ 2.00GHz"
    assert cpu_model(PI4) == "Cortex-A72"
    assert "0xd99" in cpu_model(PI4.replace("0xd08", "0xd99"))


def test_machine_info_records_versions_and_providers() -> None:
    info = machine_info(["CPUExecutionProvider"])
    assert info["onnxruntime"] == ort.__version__
    assert "CPUExecutionProvider" in info["providers_available"]
    assert info["providers_used"] == ["CPUExecutionProvider"]
    assert info["cores"] >= 1 and info["arch"] and info["python"] and info["cpu_model"]
    assert "onnxruntime" in describe(info)
