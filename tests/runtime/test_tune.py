"""The device measures which variant to run: real multi-variant bundles, real onnxruntime sessions, real
installs, and the daemon against a real mosquitto serving the chosen variant."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit.bundle.manifest import SELECTION, Manifest
from edgekit.bundle.signing import sign_bundle, verify_bundle
from edgekit.cli import main
from edgekit.errors import BundleError
from edgekit.profiles import load_profile
from edgekit.runtime.daemon import DaemonConfig
from edgekit.runtime.engine import Engine, device_providers
from edgekit.runtime.install import install_bundle
from edgekit.runtime.mqtt import ClientOptions
from edgekit.runtime.payloads import encode_reading
from edgekit.runtime.selection import read_selection
from edgekit.runtime.tune import expected_batch_sizes, tune_release

VARIANTS = ["fp32", "int8-dynamic", "int8-static-qdq"]
PROFILE = "x86-gateway"


def test_every_variant_file_is_covered_by_the_one_signature(variant_bundle, keypair, tmp_path):
    m = verify_bundle(variant_bundle, keypair[1])
    assert m.variant_names() == VARIANTS and m.default_variant == "fp32" and m.model_file == "model.onnx"
    for v in m.variants:
        assert v.model_file in m.files and v.golden.file in m.files
        assert v.metrics["gate"]["quality_gate"] in ("passed", "not applicable: fp32 is the reference")
    tampered = tmp_path / "tampered"
    shutil.copytree(variant_bundle, tampered)
    data = bytearray((tampered / "model.int8-dynamic.onnx").read_bytes())
    data[-1] ^= 0xFF
    (tampered / "model.int8-dynamic.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.int8-dynamic\.onnx does not match its sha256"):
        verify_bundle(tampered, keypair[1])
    # a variant whose file the signed list leaves out is refused, naming the variant
    unlisted = tmp_path / "unlisted"
    shutil.copytree(variant_bundle, unlisted)
    m = Manifest.load(unlisted)
    del m.files["golden.int8-static-qdq.npz"]
    m.save(unlisted)
    sign_bundle(unlisted, keypair[0])
    with pytest.raises(
        BundleError, match=r"variants\[int8-static-qdq\]\.golden\.file golden\.int8-static-qdq"
    ):
        verify_bundle(unlisted, keypair[1])


def test_install_measures_every_variant_on_every_provider_and_runs_the_fastest(
    variant_bundle, keypair, tmp_path
):
    profile = load_profile(PROFILE)
    release = install_bundle(variant_bundle, tmp_path / "root", keypair[1], profile)
    sel = read_selection(release)
    assert sel is not None and not sel.forced and sel.batch_sizes == expected_batch_sizes(profile) == [1, 128]
    pairs = {(m.variant, m.provider) for m in sel.measurements}
    assert pairs == {(v, p) for v in VARIANTS for p in device_providers(profile)}
    assert all(m.self_test == "passed" and set(m.median_ms) == {"1", "128"} for m in sel.measurements)
    best = min(sel.measurements, key=lambda m: m.score)
    assert (sel.variant, sel.provider) == (best.variant, best.provider) and best.score == pytest.approx(
        1.0, abs=0.5
    )
    # the device never runs a variant slower than another correct one: nothing scores below the chosen one
    assert all(m.score >= best.score for m in sel.measurements)
    # selection.json is the device's, not the bundle's: the release still verifies
    verify_bundle(release, keypair[1])
    engine = Engine.from_verified(release, keypair[1], profile)
    assert engine.variant == sel.variant and engine.providers[0] == sel.provider
    assert engine.manifest.model_file == Manifest.load(release).for_variant(sel.variant).model_file


def test_a_forced_variant_is_run_and_recorded_as_forced(variant_bundle, keypair, tmp_path, capsys):
    profile = load_profile(PROFILE)
    root = tmp_path / "root"
    release = install_bundle(variant_bundle, root, keypair[1], profile, variant="int8-dynamic")
    sel = read_selection(release)
    assert (
        sel.forced
        and sel.variant == "int8-dynamic"
        and {m.variant for m in sel.measurements} == {"int8-dynamic"}
    )
    assert Engine.load(release, profile).variant == "int8-dynamic"
    # `edgekit device tune ROOT` without --variant measures all again and lifts the force
    assert main(["device", "tune", str(root), "--budget-ms", "60"]) == 0
    out = capsys.readouterr().out
    assert all(v in out for v in VARIANTS) and "fastest correct" in out
    assert not read_selection(release).forced
    assert main(["device", "tune", str(root), "--variant", "int8-static-qdq", "--batch-sizes", "1,8"]) == 0
    sel = read_selection(release)
    assert sel.forced and sel.variant == "int8-static-qdq" and sel.batch_sizes == [1, 8]
    with pytest.raises(BundleError, match=r"has no variant 'int4'.*fp32, int8-dynamic, int8-static-qdq"):
        tune_release(release, profile, variant="int4")
    assert read_selection(release).variant == "int8-static-qdq"  # a refused tune leaves the choice alone


def test_a_variant_failing_its_golden_self_test_is_never_chosen(variant_bundle, keypair, resign, tmp_path):
    profile = load_profile(PROFILE)
    bad = tmp_path / "bad"
    shutil.copytree(variant_bundle, bad)
    # every variant except fp32 gets wrong golden outputs, legitimately signed: only fp32 can be chosen,
    # however fast the others are
    for name in ("int8-dynamic", "int8-static-qdq"):
        path = bad / f"golden.{name}.npz"
        with np.load(path) as g:
            arrays = {k: g[k] for k in g.files}
        arrays["outputs"] = arrays["outputs"] + 1.0
        np.savez(path, **arrays)
    resign(bad, keypair[0])
    release = install_bundle(bad, tmp_path / "root", keypair[1], profile)
    sel = read_selection(release)
    assert sel.variant == "fp32"
    failed = {m.variant for m in sel.measurements if m.self_test.startswith("failed: ")}
    assert failed == {"int8-dynamic", "int8-static-qdq"}
    assert all(not m.median_ms and m.score is None for m in sel.measurements if m.variant in failed)
    with pytest.raises(BundleError, match=r"no variant passes its golden self-test.*int8-dynamic on CPU"):
        tune_release(release, profile, variant="int8-dynamic")


def test_engine_load_ignores_a_selection_that_no_longer_fits(variant_bundle, tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(variant_bundle, bundle)
    (bundle / SELECTION).write_text(json.dumps({"schema_version": 1, "variant": "int4"}))  # invalid
    assert Engine.load(bundle).variant == "fp32"
    sel = tune_release(bundle, None, [1], variant="int8-dynamic", budget_s=0.02)
    assert Engine.load(bundle).variant == "int8-dynamic"
    data = json.loads((bundle / SELECTION).read_text())
    assert data["variant"] == sel.variant and data["provider"] == "CPUExecutionProvider"
    data["provider"] = "CUDAExecutionProvider"  # chosen on a GPU this device does not have (now)
    (bundle / SELECTION).write_text(json.dumps(data))
    engine = Engine.load(bundle)
    assert engine.variant == "int8-dynamic" and engine.providers == ["CPUExecutionProvider"]
    data["variant"] = "fp64"  # names a variant this bundle lacks
    (bundle / SELECTION).write_text(json.dumps(data))
    assert Engine.load(bundle).variant == "fp32"


def test_single_variant_bundles_load_and_install_as_before(sensor_bundle, keypair, tmp_path):
    m = Manifest.load(sensor_bundle)
    assert m.variants == [] and m.variant_names() == ["fp32"] and m.for_variant("fp32") is m
    # no `variants` key at all: an edgekit that predates variants still reads a single-model bundle
    assert "variants" not in json.loads((sensor_bundle / "manifest.json").read_text())
    release = install_bundle(sensor_bundle, tmp_path / "root", keypair[1], load_profile(PROFILE))
    sel = read_selection(release)
    assert sel.variant == "fp32" and not sel.forced
    engine = Engine.from_verified(release, keypair[1])
    assert engine.variant == "fp32" and engine.manifest.model_file == "model.onnx"
    assert engine.threshold == m.threshold


def test_the_daemon_serves_the_chosen_variant_and_names_it(
    rt, broker, mqtt_io, variant_bundle, keypair, tmp_path, shuttle_rows
):
    profile = load_profile(PROFILE)
    root = tmp_path / "root"
    install_bundle(variant_bundle, root, keypair[1], profile, variant="int8-static-qdq")
    x, _ = shuttle_rows
    listen, publish = mqtt_io
    out = listen(["edgekit/dev1/scores", "edgekit/dev1/heartbeat"])
    engine = Engine.load(root / "current", profile)
    expected = engine.score(x[:20, None, :])
    cfg = DaemonConfig(
        bundle=str(root / "current"),
        client=ClientOptions(broker.url),
        device="dev1",
        pubkey=str(keypair[1]),
        threshold=float("-inf"),
        publish_scores=True,
        heartbeat_s=0.2,
    )
    with rt.running(cfg, profile) as d:
        pub = publish()
        for i in range(20):
            pub.send("edgekit/dev1/sensors/s", encode_reading(1_700_000_000.0 + i, x[i]))
        assert rt.wait_until(lambda: len(out.json("scores")) >= 20 and out.json("heartbeat"), 20)
        assert d.snapshot()["variant"] == "int8-static-qdq"
    scores = out.json("scores")
    assert {s["variant"] for s in scores} == {"int8-static-qdq"}
    np.testing.assert_allclose([s["score"] for s in scores[:20]], expected, rtol=1e-5, atol=1e-6)
    beat = out.json("heartbeat")[-1]
    assert beat["variant"] == "int8-static-qdq" and beat["provider"] == "CPUExecutionProvider"
