"""INT8 dynamic, INT8 static QDQ (calibrated on real training windows) and FP16 bundles: parity within
tolerance, the exact settings recorded, and the latency gate saying what it could and could not check."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.bundle.signing import verify_bundle
from edgekit.export.quantize import WindowReader
from edgekit.profiles import load_profile
from edgekit.runtime.engine import Engine

# p99 over test windows of max |bundle - torch| on logits, per mode (the max itself is one 100-sigma
# Shuttle reading that saturates INT8); decisions must agree on nearly every test window
TOLERANCE = {"int8-dynamic": 0.5, "int8-static-qdq": 0.5, "fp16": 0.02}


@pytest.mark.parametrize("mode", ["int8-dynamic", "int8-static-qdq", "fp16"])
def test_quantized_bundle_parity_and_settings(quantized_bundles, keypair, mode):
    bundle = quantized_bundles[mode]
    m = verify_bundle(bundle, keypair[1])
    prof = load_profile(m.profile)
    q = m.quantization
    assert q["mode"] == mode
    if mode.startswith("int8"):
        assert (
            q["weight_type"] == prof.quantization.weight_type
            and q["per_channel"] == prof.quantization.per_channel
        )
    if mode == "int8-static-qdq":
        assert q["format"] == "QDQ" and q["activation_type"] == "QUInt8" and q["calibrate_method"] == "MinMax"
        assert 0 < q["calibration_windows"] <= prof.quantization.calibration_windows
    if mode == "fp16":
        assert q["keep_io_types"] is True and m.input.dtype == "float32"
    parity = m.metrics["parity"]["bundle_vs_torch"]
    assert parity["p99_abs_diff"] < TOLERANCE[mode]
    assert parity["agreement"] >= 0.99
    gate = m.metrics["gate"]
    assert gate["quality_gate"] == "passed" and gate["f1_drop"] <= prof.gate.max_f1_drop
    lat = gate["latency_ms"]
    assert set(lat) == {"fp32", mode} and lat[mode]["p99"] >= lat[mode]["p50"]
    if mode == "fp16":
        assert gate["latency_gate"] == "skipped: no CUDA/TensorRT on export host"
    else:  # aarch64 targets: this x86 host's timing is recorded, not used to refuse
        assert gate["latency_gate"].startswith("skipped: export host is x86_64, target is aarch64")
    Engine.from_verified(bundle, keypair[1])


def test_calibration_reader_batches_then_stops():
    x = np.arange(10 * 3, dtype=np.float32).reshape(10, 1, 3)
    r = WindowReader("x", x, batch=4)
    sizes = []
    while (b := r.get_next()) is not None:
        sizes.append(len(b["x"]))
    assert sizes == [4, 4, 2]
    r.rewind()
    assert r.get_next()["x"].shape == (4, 1, 3)


def test_quantization_quiets_only_onnxruntime_and_leaves_logger_levels_alone(tmp_path, caplog):
    """onnxruntime.quantization's root-logger chatter is dropped; the root level is untouched, so other
    code's records (another thread, the caller) still get through during a conversion."""
    import logging

    import onnx
    from onnx import TensorProto, helper

    from edgekit.export.quantize import quantize, quiet_ort_quantization

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], np.arange(8, dtype=np.float32).tolist())
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["logits"])], "g", [x], [y], [w])
    src = tmp_path / "fp32.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), src)

    root = logging.getLogger()
    caplog.set_level(logging.INFO)
    before = root.level
    with quiet_ort_quantization():
        assert root.level == before
        logging.warning("caller's own root warning")
        logging.getLogger("edgekit.elsewhere").info("another module's info")
    prof = load_profile("raspberry-pi-4")
    quantize("int8-dynamic", src, tmp_path / "int8.onnx", prof.quantization, None, "x")
    assert root.level == before
    messages = [r.getMessage() for r in caplog.records]
    assert "caller's own root warning" in messages and "another module's info" in messages
    assert not [r for r in caplog.records if "onnxruntime" in r.pathname and r.levelno < logging.ERROR]
    assert (tmp_path / "int8.onnx").is_file()
