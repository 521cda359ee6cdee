"""Post-training conversions keyed by the profile's quantization mode: fp32, int8-dynamic,
int8-static-qdq (calibrated on real training windows) and fp16 (I/O kept float32)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime.quantization
from onnxruntime.quantization import CalibrationDataReader

from edgekit.errors import DataError
from edgekit.profiles import Quantization
from edgekit.registry import Registry

log = logging.getLogger(__name__)

# src model, dst path, the profile's settings, normalized calibration inputs, input name -> settings used
QuantizeFn = Callable[[Path, Path, Quantization, "np.ndarray | None", str], dict[str, Any]]


@dataclass(frozen=True)
class Quantizer:
    fn: QuantizeFn
    # Golden self-test tolerance on the device: another CPU's INT8/FP16 kernels round differently, but a
    # wrong kernel (shared/ARM.md: outputs 2x off) must still fail.
    golden_atol: float
    golden_rtol: float
    needs_calibration: bool = False
    integer: bool = False


QUANTIZERS: Registry[Quantizer] = Registry("quantization mode")


# onnxruntime.quantization logs every tensor it skips with module-level logging.info/warning calls, i.e. on
# the ROOT logger under the name "root", so there is no onnxruntime logger to quieten.
_ORT_QUANTIZATION_DIR = os.path.dirname(onnxruntime.quantization.__file__) + os.sep


class _OrtQuantizationChatter(logging.Filter):
    """Drops onnxruntime.quantization's own sub-ERROR records; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.pathname.startswith(_ORT_QUANTIZATION_DIR)


@contextlib.contextmanager
def quiet_ort_quantization() -> Iterator[None]:
    """Silence onnxruntime.quantization's chatter while converting, without touching any logger's level
    (a filter on the root logger sees only records logged on root itself, and drops only onnxruntime's)."""
    root = logging.getLogger()
    chatter = _OrtQuantizationChatter()
    root.addFilter(chatter)
    try:
        yield
    finally:
        root.removeFilter(chatter)


def _fp32(src: Path, dst: Path, q: Quantization, calib: np.ndarray | None, input_name: str) -> dict[str, Any]:
    shutil.copyfile(src, dst)
    return {"mode": "fp32"}


def _int8_dynamic(
    src: Path, dst: Path, q: Quantization, calib: np.ndarray | None, input_name: str
) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet_ort_quantization():
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType[q.weight_type],
            per_channel=q.per_channel,
            reduce_range=q.reduce_range,
        )
    # dynamic quantization computes activation ranges at run time: activation_type is not a setting here
    return {
        "mode": "int8-dynamic",
        "tool": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": q.weight_type,
        "per_channel": q.per_channel,
        "reduce_range": q.reduce_range,
    }


class WindowReader(CalibrationDataReader):
    """CalibrationDataReader over normalized windows, in fixed-size batches."""

    def __init__(self, input_name: str, x: np.ndarray, batch: int = 64) -> None:
        self.input_name, self.x, self.batch = input_name, x, batch
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self.x):
            return None
        out = {
            self.input_name: np.ascontiguousarray(self.x[self._i : self._i + self.batch], dtype=np.float32)
        }
        self._i += self.batch
        return out

    def rewind(self) -> None:
        self._i = 0


def _int8_static_qdq(
    src: Path, dst: Path, q: Quantization, calib: np.ndarray | None, input_name: str
) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calib is None or len(calib) == 0:
        raise DataError("int8-static-qdq needs calibration windows (windows.npz calib_x is empty)")
    x = calib[: q.calibration_windows]
    reader = WindowReader(input_name, x)
    pre = dst.with_name(dst.stem + ".pre.onnx")
    with quiet_ort_quantization():
        # onnxruntime's recommended step before static quantization: shape inference + graph fusions
        quant_pre_process(str(src), str(pre))
        quantize_static(
            str(pre),
            str(dst),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=q.per_channel,
            reduce_range=q.reduce_range,
            weight_type=QuantType[q.weight_type],
            activation_type=QuantType[q.activation_type],
            calibrate_method=CalibrationMethod[q.calibrate_method],
        )
    pre.unlink(missing_ok=True)
    return {
        "mode": "int8-static-qdq",
        "tool": "onnxruntime.quantization.quantize_static",
        "format": "QDQ",
        "weight_type": q.weight_type,
        "activation_type": q.activation_type,
        "per_channel": q.per_channel,
        "reduce_range": q.reduce_range,
        "calibrate_method": q.calibrate_method,
        "calibration_windows": len(x),
        "calibration_source": "windows.npz calib_x (training split), normalized with run.json stats",
    }


def _fp16(src: Path, dst: Path, q: Quantization, calib: np.ndarray | None, input_name: str) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    # keep_io_types: the device feeds and reads float32, casts live inside the graph
    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    # the converter appends the input casts after their consumers; onnx.checker requires topological order
    wrapped = OnnxModel(model)
    wrapped.topological_sort()
    onnx.save(wrapped.model, str(dst))
    return {
        "mode": "fp16",
        "tool": "onnxruntime.transformers.float16.convert_float_to_float16",
        "keep_io_types": True,
    }


QUANTIZERS.register("fp32")(Quantizer(_fp32, golden_atol=1e-4, golden_rtol=1e-3))
QUANTIZERS.register("int8-dynamic")(
    Quantizer(_int8_dynamic, golden_atol=5e-2, golden_rtol=1e-2, integer=True)
)
QUANTIZERS.register("int8-static-qdq")(
    Quantizer(_int8_static_qdq, golden_atol=5e-2, golden_rtol=1e-2, needs_calibration=True, integer=True)
)
QUANTIZERS.register("fp16")(Quantizer(_fp16, golden_atol=2e-2, golden_rtol=1e-2))


def quantize(
    mode: str, src: Path, dst: Path, q: Quantization, calib: np.ndarray | None, input_name: str
) -> dict[str, Any]:
    """Write the `mode` variant of `src` to `dst`; returns the exact settings used (for the manifest)."""
    quantizer = QUANTIZERS.get(mode)
    settings = quantizer.fn(src, dst, q, calib, input_name)
    log.info("quantized %s -> %s (%s)", src.name, dst.name, mode)
    return settings
