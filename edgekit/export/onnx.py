"""torch -> ONNX with a dynamic batch axis at the profile's opset, checked, and compared against torch."""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from edgekit.errors import GateError

log = logging.getLogger(__name__)

# TorchScript exporter: it emits exactly the requested opset (the dynamo exporter in this torch
# only targets opset >= 18 and cannot convert Pad back to 17), and exports a small model in ~0.1 s.
EXPORTER = "torchscript+onnxscript-optimizer"


def export_torch(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    opset: int,
    input_name: str = "x",
    output_name: str = "logits",
) -> Path:
    """Export `model` (eval mode) with batch as the only dynamic axis, fold constants, run onnx.checker."""
    import onnxscript.optimizer

    path = Path(path)
    model = model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and constant-folding chatter
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            opset_version=opset,
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            do_constant_folding=True,
            dynamo=False,
        )
    ir_log = logging.getLogger("onnx_ir")
    level = ir_log.level
    ir_log.setLevel(logging.WARNING)  # one INFO line per deduplicated constant otherwise
    try:
        graph = onnxscript.optimizer.optimize(onnx.load(str(path)))
    finally:
        ir_log.setLevel(level)
    check_model(graph, path)
    onnx.save(graph, str(path))
    return path


def check_model(model: onnx.ModelProto | str | Path, where: str | Path = "") -> None:
    """onnx.checker with full shape inference; raises GateError naming the file."""
    try:
        onnx.checker.check_model(model if isinstance(model, onnx.ModelProto) else str(model), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise GateError(f"{where or model}: onnx.checker rejected the exported graph ({exc})") from None


def model_opset(path: str | Path) -> int:
    m = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))


@torch.no_grad()
def torch_outputs(model: nn.Module, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    model = model.eval()
    outs = [
        model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch]))).numpy()
        for i in range(0, len(x), batch)
    ]
    return np.concatenate(outs).astype(np.float32)


@dataclass
class Parity:
    """How closely a candidate's raw outputs follow the reference's on the same real inputs."""

    n: int
    max_abs_diff: float
    mean_abs_diff: float
    # INT8 saturates on inputs far outside the calibration range (Shuttle has 100-sigma readings):
    # the max is one outlier, the p99 describes the rest
    p99_abs_diff: float
    # argmax agreement for class logits; decision agreement at the threshold for a 1-column score
    agreement: float
    agreement_kind: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(reference: np.ndarray, candidate: np.ndarray, threshold: float | None = None) -> Parity:
    if reference.shape != candidate.shape:
        raise GateError(f"output shape {candidate.shape} differs from the reference's {reference.shape}")
    d = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    if reference.ndim == 2 and reference.shape[1] > 1:
        agree, kind = float((reference.argmax(1) == candidate.argmax(1)).mean()), "argmax"
    else:
        thr = 0.0 if threshold is None else threshold
        agree, kind = float(((reference[:, 0] >= thr) == (candidate[:, 0] >= thr)).mean()), "decision"
    per_input = d.reshape(len(d), -1).max(axis=1)
    return Parity(
        len(reference), float(d.max()), float(d.mean()), float(np.percentile(per_input, 99)), agree, kind
    )


def require_parity(p: Parity, atol: float, what: str, min_agreement: float = 1.0) -> None:
    """The FP32 export must reproduce torch: refuse with the measured figures otherwise."""
    if not np.isfinite(p.max_abs_diff) or p.max_abs_diff > atol or p.agreement < min_agreement:
        raise GateError(
            f"parity gate failed for {what}: max |onnx - torch| = {p.max_abs_diff:.3g} (allowed {atol:g}), "
            f"{p.agreement_kind} agreement {p.agreement:.4f} (required {min_agreement:g}) on {p.n} held-out inputs"
        )
    log.info(
        "parity %s: max abs diff %.3g, %s agreement %.4f over %d inputs",
        what,
        p.max_abs_diff,
        p.agreement_kind,
        p.agreement,
        p.n,
    )
