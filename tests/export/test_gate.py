"""The release gate refuses bad artifacts and writes nothing; its latency rule is explicit."""

from __future__ import annotations

import pytest

from edgekit.cli import main
from edgekit.errors import GateError
from edgekit.export.gate import latency_applicability, latency_gate
from edgekit.export.pipeline import ExportOptions, export_run
from edgekit.profiles import load_profile


def _nothing_written(out):
    assert not out.exists()
    assert not (out.parent / (out.name + ".tar.gz")).exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no staging leftovers


def test_quality_gate_refuses_and_writes_nothing(sensor_run, tmp_path, profile_variant, keypair):
    # an impossible bound: the candidate would have to gain a whole F1 point over FP32
    prof = profile_variant("raspberry-pi-5", gate={"max_f1_drop": -1.0})
    out = tmp_path / "out" / "bundle"
    with pytest.raises(GateError, match=r"refused the int8-static-qdq model .* F1 dropped .* allowed -1"):
        export_run(sensor_run, prof, out, key=keypair[0], options=ExportOptions(latency_runs=20))
    _nothing_written(out)


def test_parity_gate_refuses_through_cli(sensor_run, tmp_path, profile_variant, capsys):
    prof = profile_variant("x86-gateway", gate={"parity_atol": 0.0})
    out = tmp_path / "bundle"
    rc = main(["export", str(sensor_run), "--profile", str(prof), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and len(err.splitlines()) == 1 and "parity gate failed" in err
    _nothing_written(out)


def test_latency_rule_is_explicit(profile_variant):
    pi4 = load_profile("raspberry-pi-4")
    assert (
        latency_applicability(load_profile("x86-gateway"), "fp32") == "not applicable: fp32 is the reference"
    )
    assert (
        latency_applicability(load_profile("jetson-orin-nano"), "fp16")
        == "skipped: no CUDA/TensorRT on export host"
    )
    assert latency_applicability(pi4, "int8-dynamic").startswith(
        "skipped: export host is x86_64, target is aarch64"
    )
    x86_int8 = load_profile(profile_variant("x86-gateway", quantization={"mode": "int8-dynamic"}))
    assert latency_applicability(x86_int8, "int8-dynamic") is None  # same arch: this host's timing decides
    slower = {"fp32": {"p50": 0.016, "p99": 0.02}, "int8-dynamic": {"p50": 0.037, "p99": 0.07}}
    status, failure = latency_gate(slower, x86_int8, "int8-dynamic")
    assert status == "failed" and "slower than FP32" in failure
    assert latency_gate(slower, pi4, "int8-dynamic")[1] is None  # recorded and warned, not refused
    off = load_profile(
        profile_variant(
            "x86-gateway", quantization={"mode": "int8-dynamic"}, gate={"require_quantized_faster": False}
        )
    )
    assert (
        latency_gate(slower, off, "int8-dynamic")[0]
        == "not required by profile (gate.require_quantized_faster: false)"
    )


def test_text_quality_gate_refuses_on_macro_f1_and_writes_nothing(
    synthetic_text_run, tmp_path, profile_variant, keypair
):
    """Text bundles go through the same release gate as sensor bundles, gated on macro-F1."""
    prof = profile_variant("raspberry-pi-4", gate={"max_f1_drop": -1.0})
    out = tmp_path / "out" / "text"
    with pytest.raises(GateError, match=r"refused the int8-dynamic model .* macro-F1 dropped .* allowed -1"):
        export_run(synthetic_text_run, prof, out, key=keypair[0], options=ExportOptions(latency_runs=20))
    _nothing_written(out)


def test_invalid_run_json_is_one_line_naming_file_and_field(sensor_run, tmp_path, capsys):
    """run.json is validated before anything is exported (it used to fail with a KeyError traceback)."""
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(sensor_run, run)
    data = json.loads((run / "run.json").read_text())
    del data["normalization"]
    (run / "run.json").write_text(json.dumps(data))
    out = tmp_path / "bundle"
    rc = main(["export", str(run), "--profile", "x86-gateway", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{run / 'run.json'}: field 'normalization' is required" in err
    _nothing_written(out)
