"""Label-free runs (autoencoder, score "identity") on data without test anomalies: the gate's quality is
decision agreement with FP32, and the threshold is the false-alarm quantile on validation."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.bundle.signing import verify_bundle
from edgekit.export.pipeline import ExportOptions, export_run
from edgekit.metrics import far_threshold
from edgekit.runtime.engine import Engine


@pytest.fixture(scope="module")
def daphnet_run(tmp_path_factory):
    from edgekit.distill.pipeline import DistillConfig, distill

    out = tmp_path_factory.mktemp("runs") / "daphnet"
    distill(DistillConfig(out=str(out), dataset="daphnet", max_rows=3000, teacher_epochs=2, student_epochs=2))
    return out


def test_identity_bundle_gates_on_agreement(daphnet_run, tmp_path, keypair):
    out = export_run(
        daphnet_run,
        "jetson-orin-nano",
        tmp_path / "b",
        key=keypair[0],
        options=ExportOptions(latency_runs=20),
    )
    m = verify_bundle(out, keypair[1])
    assert m.output.score == "identity" and m.input.shape[1:] == [64, 9]
    gate = m.metrics["gate"]
    assert gate["quality_metric"] == "decision_agreement_vs_fp32 (no test labels)"
    assert gate["disagreement"] <= 0.01 and gate["quality_gate"] == "passed"
    assert m.metrics["parity"]["bundle_vs_torch"]["agreement_kind"] == "decision"
    with np.load(daphnet_run / "windows.npz") as w:
        scores = Engine.from_verified(out, keypair[1]).score(w["val_x"])
    # the threshold is the 1% false-alarm quantile of the bundle's own validation scores (distill's rule)
    assert m.threshold == pytest.approx(far_threshold(scores, 0.01), rel=1e-6)
