"""Op listing and the per-provider support table."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from edgekit.errors import GateError
from edgekit.export.opcheck import check_ops, graph_ops
from edgekit.profiles import load_profile


def test_dynamic_int8_ops_warn_for_tensorrt_but_not_cpu(quantized_bundles):
    model = quantized_bundles["int8-dynamic"] / "model.onnx"
    ops = graph_ops(onnx.load(str(model)))
    assert ops["DynamicQuantizeLinear"] >= 1
    trt = check_ops(model, load_profile("jetson-orin-nano"))
    assert trt.provider == "TensorrtExecutionProvider"
    assert any("DynamicQuantizeLinear" in w for w in trt.warnings)
    assert check_ops(model, load_profile("raspberry-pi-4")).warnings == []


def test_unknown_op_domain_is_refused(tmp_path):
    node = helper.make_node("Mystery", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(
        helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
        ),
        path,
    )
    with pytest.raises(GateError, match=r"com\.example:Mystery"):
        check_ops(path, load_profile("x86-gateway"))
