"""Bundles carrying several variants: every variant quality-gated, the latency rule left to the device when
fp32 is carried too, profile validation, and the CLI flags (`export --variants`, `install --variant`)."""

from __future__ import annotations

import pytest

from edgekit.bundle.manifest import Manifest
from edgekit.cli import main
from edgekit.errors import ConfigError, GateError
from edgekit.export.gate import DEVICE_DECIDES, latency_gate
from edgekit.export.pipeline import ExportOptions, export_run
from edgekit.profiles import load_profile


def test_profile_variants_must_carry_the_default_mode(profile_variant):
    with pytest.raises(ConfigError, match=r"must include quantization\.mode fp32"):
        load_profile(profile_variant("x86-gateway", variants=["int8-dynamic"]))
    with pytest.raises(ConfigError, match="variants"):
        load_profile(profile_variant("x86-gateway", variants=["fp32", "int4"]))
    pi4 = load_profile("raspberry-pi-4")
    assert pi4.quantization.mode in pi4.variants and "fp32" in pi4.variants
    assert load_profile("jetson-orin-nano").variants == ["fp16", "fp32"]


def test_every_variant_is_quality_gated(sensor_run, tmp_path, profile_variant, keypair):
    # fp32 is the reference and passes; the impossible bound must still refuse the int8 variant it carries
    prof = profile_variant("x86-gateway", gate={"max_f1_drop": -1.0}, variants=["fp32", "int8-dynamic"])
    out = tmp_path / "bundle"
    with pytest.raises(GateError, match=r"refused the int8-dynamic model .* F1 dropped") as refused:
        export_run(sensor_run, prof, out, key=keypair[0], options=ExportOptions(latency_runs=20))
    assert not out.exists() and not (tmp_path / "bundle.tar.gz").exists()
    assert refused.value.mode == "int8-dynamic"  # callers can drop that variant and export the rest


def test_latency_only_recorded_when_the_device_can_fall_back_to_fp32(variant_bundle, profile_variant):
    m = Manifest.load(variant_bundle)
    assert m.metrics["gate"]["mode"] == "fp32" and m.quantization["mode"] == "fp32"  # top level: the default
    for v in m.variants[1:]:
        gate = v.metrics["gate"]
        assert gate["latency_gate"] == DEVICE_DECIDES and gate["quality_gate"] == "passed"
        assert set(gate["latency_ms"]) == {"fp32", v.name} and v.quantization["mode"] == v.name
    x86_int8 = load_profile(profile_variant("x86-gateway", quantization={"mode": "int8-dynamic"}))
    slower = {"fp32": {"p50": 0.016, "p99": 0.02}, "int8-dynamic": {"p50": 0.037, "p99": 0.07}}
    assert latency_gate(slower, x86_int8, "int8-dynamic")[0] == "failed"  # alone, the old rule holds
    assert latency_gate(slower, x86_int8, "int8-dynamic", device_decides=True) == (DEVICE_DECIDES, None)


def test_cli_exports_variants_and_install_forces_one(sensor_run, tmp_path, keypair, capsys):
    out = tmp_path / "b"
    argv = [
        "export",
        str(sensor_run),
        "--profile",
        "x86-gateway",
        "--out",
        str(out),
        "--key",
        str(keypair[0]),
    ]
    assert main([*argv, "--variants", "fp32,int8-dynamic", "--latency-runs", "20"]) == 0
    printed = capsys.readouterr().out
    assert "variant int8-dynamic (model.int8-dynamic.onnx): test F1" in printed
    assert Manifest.load(out).variant_names() == ["fp32", "int8-dynamic"]
    assert main(["verify", str(out), "--pubkey", str(keypair[1])]) == 0
    assert "golden self-tests of 2 variants pass" in capsys.readouterr().out
    root = tmp_path / "root"
    tarball = str(out) + ".tar.gz"
    assert (
        main(
            [
                "install",
                tarball,
                "--root",
                str(root),
                "--pubkey",
                str(keypair[1]),
                "--variant",
                "int8-dynamic",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "running variant int8-dynamic on CPUExecutionProvider (forced" in printed
    rc = main(["install", tarball, "--root", str(root), "--pubkey", str(keypair[1]), "--variant", "int4"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "has no variant 'int4'" in err
    rc = main([*argv, "--overwrite", "--variants", "fp32,int4"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "int4" in err


def test_text_bundle_for_jetson_carries_fp16_and_fp32_and_tunes_on_what_this_host_has(
    synthetic_text_run, tmp_path, keypair
):
    from edgekit.runtime.engine import device_providers
    from edgekit.runtime.install import install_bundle
    from edgekit.runtime.selection import read_selection

    jetson = load_profile("jetson-orin-nano")
    out = export_run(
        synthetic_text_run, jetson, tmp_path / "t", key=keypair[0], options=ExportOptions(latency_runs=20)
    )
    m = Manifest.load(out)
    assert m.variant_names() == ["fp16", "fp32"] and m.variants[0].model_file == "model.onnx"
    # no libnvinfer/libcudart here: TensorRT and CUDA are probed away, not offered to onnxruntime
    providers = device_providers(jetson)
    release = install_bundle(str(out) + ".tar.gz", tmp_path / "root", keypair[1], jetson)
    sel = read_selection(release)
    assert {(x.variant, x.provider) for x in sel.measurements} == {
        (v, p) for v in ("fp16", "fp32") for p in providers
    }
    assert all(x.self_test == "passed" for x in sel.measurements) and sel.batch_sizes == [1, 64]
    assert sel.variant == min(sel.measurements, key=lambda x: x.score).variant
