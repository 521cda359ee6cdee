"""`edgekit export --cascade`: the teacher beside the student in one signed bundle (local) or the rule only
(remote), both models gated and self-tested; the severe-class recall gate. Real runs, onnxruntime, files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgekit.bundle.manifest import Manifest
from edgekit.bundle.signing import verify_bundle
from edgekit.errors import BundleError, ConfigError, GateError
from edgekit.escalation import EscalationTarget
from edgekit.export.pipeline import ExportOptions, export_run
from edgekit.runtime.engine import Engine, self_test

SEVERE = EscalationTarget(rate=0.1, severe_classes=["rotor"])


@pytest.fixture(scope="module")
def kclass_run(kclass_bundle):
    """The 3-class run (ok / bearing / rotor) the kclass_bundle fixture was exported from."""
    return kclass_bundle.parent / "run"


@pytest.fixture(scope="module")
def local_bundle(kclass_run, keypair, tmp_path_factory):
    out = tmp_path_factory.mktemp("cascade") / "local"
    opts = ExportOptions(latency_runs=20, cascade="local", escalation=SEVERE)
    return export_run(kclass_run, "x86-gateway", out, key=keypair[0], options=opts)


def test_local_cascade_bundle_carries_the_teacher_and_verifies(local_bundle, keypair):
    m = verify_bundle(local_bundle, keypair[1])
    c = m.cascade
    assert c is not None and c.mode == "local" and c.teacher is not None
    assert (c.teacher.model_file, c.teacher.golden.file) == ("teacher.onnx", "teacher.golden.npz")
    assert {"model.onnx", "golden.npz", "teacher.onnx", "teacher.golden.npz"} <= set(m.files)
    # the teacher passed the same gates as the student (parity vs torch, release gate vs its own FP32)
    assert c.teacher.metrics["parity"]["fp32_vs_torch"]["max_abs_diff"] <= 1e-4
    assert "gate" in c.teacher.metrics and c.teacher.quantization["mode"] == "fp32"
    # both golden self-tests pass through the runtime's own code path
    self_test(local_bundle, m)
    teacher = m.for_cascade_teacher()
    self_test(local_bundle, teacher)
    windows = np.load(local_bundle / "teacher.golden.npz")["inputs"]
    student_out = Engine(local_bundle, None, m).infer(Engine(local_bundle, None, m).preprocess(windows))
    engine = Engine(local_bundle, None, teacher)
    assert not np.allclose(engine.infer(engine.preprocess(windows)), student_out)  # two different models
    # the rule: chosen on validation for the bundle's models, severe class included, test figures recorded
    assert c.severe_classes == ["rotor"] and c.measure in ("max_prob", "margin", "neg_entropy")
    v = c.validation
    assert v["target"] == {"rate": 0.1, "quality": None} and v["metric"] == "macro_f1"
    assert {"escalation_rate", "student_quality", "teacher_quality", "cascade_quality"} <= set(v)
    assert 0.0 < m.metrics["cascade"]["test"]["escalation_rate"] < 1.0
    # the rule distill chose on the torch models rides along for comparison
    assert m.metrics["cascade"]["distill_rule"]["validation"]["target"] == {"rate": 0.1, "quality": None}
    # severe classes given, no limit in the profile: the recall comparison is recorded, not gated
    assert m.metrics["severe_recall_gate"]["status"] == "not checked"


def test_verify_self_tests_the_teacher_too(local_bundle, keypair, tmp_path, capsys, resign):
    from edgekit.cli import main

    assert main(["verify", str(local_bundle), "--pubkey", str(keypair[1])]) == 0
    assert "(and the cascade teacher's)" in capsys.readouterr().out
    # a teacher whose golden outputs no longer match, in a properly re-signed bundle: verify refuses it
    copy = tmp_path / "bundle"
    shutil.copytree(local_bundle, copy)
    with np.load(copy / "teacher.golden.npz") as g:
        golden = {k: g[k] for k in g.files}
    np.savez(copy / "teacher.golden.npz", inputs=golden["inputs"], outputs=golden["outputs"] + 1.0)
    resign(copy, keypair[0])
    assert main(["verify", str(copy), "--pubkey", str(keypair[1])]) != 0
    assert "self-test failed" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["teacher.onnx", "teacher.golden.npz"])
def test_tampered_teacher_is_refused(local_bundle, keypair, tmp_path, name):
    copy = tmp_path / "bundle"
    shutil.copytree(local_bundle, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"file {name} does not match its sha256"):
        verify_bundle(copy, keypair[1])


def test_local_cascade_bundle_installs(local_bundle, keypair, tmp_path):
    from edgekit.runtime.install import install_bundle

    release = install_bundle(
        local_bundle.with_name(local_bundle.name + ".tar.gz"), tmp_path / "root", keypair[1]
    )
    assert (release / "teacher.onnx").is_file()
    self_test(release, Manifest.load(release).for_cascade_teacher())


def test_remote_cascade_carries_the_rule_only(kclass_run, keypair, tmp_path):
    opts = ExportOptions(latency_runs=20, cascade="remote", escalation=EscalationTarget(quality=0.99))
    out = export_run(kclass_run, "x86-gateway", tmp_path / "remote", key=keypair[0], options=opts)
    m = verify_bundle(out, keypair[1])
    assert m.cascade is not None and m.cascade.mode == "remote" and m.cascade.teacher is None
    assert not any(f.startswith("teacher") for f in m.files)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("teacher")) == []
    v = m.cascade.validation
    assert v["target"] == {"rate": None, "quality": 0.99}
    assert v["cascade_quality"] >= 0.99 * v["teacher_quality"]
    with pytest.raises(BundleError, match="carries no cascade teacher"):
        m.for_cascade_teacher()


def test_severe_recall_drop_fails_the_gate(kclass_run, keypair, tmp_path, profile_variant):
    # negative limit: the student must beat the teacher's rotor recall by a whole point, which it cannot
    strict = profile_variant("x86-gateway", "strict-severe", gate={"max_severe_recall_drop": -1.0})
    out = tmp_path / "refused"
    with pytest.raises(
        GateError, match=r"student recall on severe class 'rotor' is [0-9.]+ vs the teacher's [0-9.]+"
    ):
        export_run(
            kclass_run, strict, out, key=keypair[0], options=ExportOptions(latency_runs=20, escalation=SEVERE)
        )
    assert not out.exists()
    loose = profile_variant("x86-gateway", "loose-severe", gate={"max_severe_recall_drop": 1.0})
    out = export_run(
        kclass_run,
        loose,
        tmp_path / "ok",
        key=keypair[0],
        options=ExportOptions(latency_runs=20, escalation=SEVERE),
    )
    g = Manifest.load(out).metrics["severe_recall_gate"]
    assert g["status"] == "passed" and g["max_severe_recall_drop"] == 1.0
    rotor = g["classes"]["rotor"]
    assert rotor["drop"] == pytest.approx(rotor["teacher_recall"] - rotor["student_recall"])


def test_text_runs_cannot_carry_a_cascade_yet(synthetic_text_run, tmp_path):
    with pytest.raises(ConfigError, match="text runs cannot carry a cascade"):
        export_run(synthetic_text_run, "x86-gateway", tmp_path / "b", options=ExportOptions(cascade="local"))


def test_cli_export_cascade_overrides_the_target(kclass_run, keypair, tmp_path, capsys):
    from edgekit.cli import main

    out = tmp_path / "cli"
    rc = main(
        [
            "export", str(kclass_run), "--profile", "x86-gateway", "--out", str(out), "--key", str(keypair[0]),
            "--cascade", "remote", "--escalate-for-quality", "0.99", "--severe-class", "rotor",
            "--latency-runs", "20",
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0
    assert "cascade remote (rule only): cascade rule (0.99 of the teacher's macro_f1)" in printed
    assert "severe-class recall gate: not checked (rotor student" in printed
    assert Manifest.load(out).cascade.severe_classes == ["rotor"]
    rc = main(["export", str(kclass_run), "--profile", "x86-gateway", "--out", str(tmp_path / "x"), "--escalate-rate", "0.1", "--escalate-for-quality", "0.9"])  # fmt: skip
    assert rc != 0 and "give one of the two" in capsys.readouterr().err
