"""Which ops a graph uses, checked against what the profile's first execution provider is known to lack.

onnxruntime partitions a graph: nodes the first provider cannot take run on the next one (finally the
CPU), which works but splits the graph and costs copies. So a known gap is a warning recorded in the
manifest; a node no onnxruntime provider can run at all (an unknown op domain) refuses the export.
The table is small on purpose: only gaps with a public source, each cited.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from edgekit.errors import GateError
from edgekit.profiles import TargetProfile

log = logging.getLogger(__name__)

# Op domains onnxruntime implements; anything else needs a custom-op library the device will not have.
ORT_DOMAINS = ("", "ai.onnx", "com.microsoft", "ai.onnx.ml")

_TRT_DYNAMIC = (
    "TensorRT has no dynamic-quantization layers (onnx/onnx-tensorrt#623, microsoft/onnxruntime#21169); "
    "the node runs on the next provider and splits the TensorRT graph. Use int8-static-qdq or fp16 for TensorRT."
)
_TRT_QOPERATOR = (
    "TensorRT imports INT8 only as QuantizeLinear/DequantizeLinear (QDQ format), not QOperator nodes."
)
_TRT_CONTRIB = (
    "onnxruntime contrib op (com.microsoft); TensorRT has no plugin for it (microsoft/onnxruntime#10888)."
)

# provider -> {op_type: why it is not supported there}
UNSUPPORTED: dict[str, dict[str, str]] = {
    "TensorrtExecutionProvider": {
        "DynamicQuantizeLinear": _TRT_DYNAMIC,
        "MatMulInteger": _TRT_DYNAMIC,
        "ConvInteger": _TRT_DYNAMIC,
        "QLinearConv": _TRT_QOPERATOR,
        "QLinearMatMul": _TRT_QOPERATOR,
        "com.microsoft:*": _TRT_CONTRIB,
    },
    "CUDAExecutionProvider": {
        "ConvInteger": "no CUDA kernel for ConvInteger (microsoft/onnxruntime#5127); it runs on the CPU.",
    },
}


@dataclass
class OpReport:
    provider: str
    ops: dict[str, int]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"first_provider": self.provider, "ops": self.ops, "warnings": self.warnings}


def graph_ops(model: onnx.ModelProto) -> Counter[str]:
    """op_type counts over the main graph and its subgraphs, prefixed 'domain:' outside the default domain."""
    counts: Counter[str] = Counter()

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            counts[node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"] += 1
            for attr in node.attribute:
                for g in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    walk(g)

    walk(model.graph)
    return counts


def check_ops(model_path: str | Path, profile: TargetProfile) -> OpReport:
    """List the graph's ops; warn for gaps of the profile's first provider, refuse ops nothing can run."""
    ops = graph_ops(onnx.load(str(model_path)))
    unknown = sorted(op for op in ops if ":" in op and op.split(":")[0] not in ORT_DOMAINS)
    if unknown:
        raise GateError(
            f"{Path(model_path).name}: ops {', '.join(unknown)} are in domains onnxruntime does not implement"
        )
    first = profile.provider_names[0]
    table = UNSUPPORTED.get(first, {})
    report = OpReport(first, dict(sorted(ops.items())))
    for op, n in sorted(ops.items()):
        domain = op.split(":")[0] if ":" in op else ""
        why = table.get(op) or (table.get(f"{domain}:*") if domain else None)
        if why:
            msg = f"{first} does not support {op} ({n} node{'s' * (n > 1)}): {why}"
            report.warnings.append(msg)
            log.warning("%s", msg)
    return report
