"""Provider selection: a GPU provider is offered only when its libraries really load on this device, and a
profile asking for one the device cannot run gets one warning line per process, not an "EP Error" block per
session (real onnxruntime sessions in a real subprocess, real shared libraries)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from edgekit.runtime.engine import has_library, load_problem, provider_problem, usable_providers

GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
no_tensorrt = pytest.mark.skipif(has_library("nvinfer"), reason="this machine has TensorRT")

SESSIONS = textwrap.dedent(
    """
    import logging, sys
    import onnx
    from onnx import TensorProto, helper
    from edgekit.profiles import load_profile
    from edgekit.runtime.engine import create_session

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, sys.argv[1])
    profile = load_profile("jetson-orin-nano")  # TensorRT, CUDA, CPU
    for _ in range(3):
        print(create_session(sys.argv[1], profile).get_providers())
    """
)


@no_tensorrt
def test_gpu_profile_on_a_cpu_device_gets_cpu_and_one_warning_line(tmp_path):
    """Before: one warning per provider, and on onnxruntime-gpu without TensorRT an EP Error per session."""
    proc = subprocess.run(
        [sys.executable, "-c", SESSIONS, str(tmp_path / "relu.onnx")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['CPUExecutionProvider']"] * 3
    assert "EP Error" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("WARNING edgekit.runtime.engine: ")
    assert "TensorrtExecutionProvider (" in lines[0] and "CUDAExecutionProvider (" in lines[0]


@no_tensorrt
def test_compiled_in_gpu_providers_without_their_libraries_are_not_usable():
    """What onnxruntime-gpu on a Jetson without TensorRT reports: all three providers compiled in."""
    assert usable_providers(GPU, available=GPU) == ["CPUExecutionProvider"]
    assert "libnvinfer" in (provider_problem("TensorrtExecutionProvider", GPU) or "")
    assert provider_problem("TensorrtExecutionProvider", ["CPUExecutionProvider"]) == (
        "not in this onnxruntime build"
    )
    assert usable_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_library_probe_finds_real_libraries_and_names_missing_ones():
    present = {"CUDAExecutionProvider": (("c",), ("m",))}  # libc and libm exist everywhere
    assert usable_providers(GPU[1:], available=GPU, libraries=present) == GPU[1:]
    absent = {"CUDAExecutionProvider": (("c",), ("edgekit_no_such_lib", "edgekit_nor_this"))}
    assert usable_providers(GPU[1:], available=GPU, libraries=absent) == ["CPUExecutionProvider"]
    assert provider_problem("CUDAExecutionProvider", GPU, absent) == "libedgekit_no_such_lib not found"


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build the libraries")
def test_load_problem_names_the_missing_dependency(tmp_path):
    """A provider library whose dependency is gone, as libonnxruntime_providers_tensorrt.so without TensorRT."""
    (tmp_path / "dep.c").write_text("int dep(void) { return 1; }\n")
    (tmp_path / "prov.c").write_text("int dep(void);\nint prov(void) { return dep(); }\n")
    cc = ["cc", "-shared", "-fPIC"]
    subprocess.run([*cc, "-o", tmp_path / "libedgekitdep.so", tmp_path / "dep.c"], check=True)
    subprocess.run(
        [*cc, "-o", tmp_path / "libprov.so", tmp_path / "prov.c", f"-L{tmp_path}", "-ledgekitdep"], check=True
    )
    (tmp_path / "libedgekitdep.so").unlink()
    problem = load_problem(str(tmp_path / "libprov.so"))
    assert problem is not None and "libedgekitdep.so" in problem and "\n" not in problem
    assert load_problem(str(tmp_path / "libprov.so")) == problem  # cached: probed once per process
