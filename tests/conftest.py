"""Shared fixtures: a real mosquitto on a free loopback port, and small real runs/bundles."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def broker():
    """A private mosquitto (TCP_NODELAY on), stopped after the test."""
    from edgekit.broker import Broker

    with Broker() as b:
        yield b


@pytest.fixture(scope="session")
def keypair(tmp_path_factory) -> tuple:
    """An Ed25519 key pair: (private_key_path, public_key_path)."""
    from edgekit.bundle.signing import keygen

    d = tmp_path_factory.mktemp("keys")
    return keygen(d / "edgekit.key", d / "edgekit.pub")


@pytest.fixture(scope="session")
def sensor_run(tmp_path_factory):
    """RUN_DIR of a quick real distillation on a 4,000-row Shuttle slice (a few seconds)."""
    from edgekit.distill.pipeline import DistillConfig, distill

    out = tmp_path_factory.mktemp("runs") / "shuttle"
    distill(DistillConfig(out=str(out), dataset="shuttle", max_rows=4000, teacher_epochs=3, student_epochs=5))
    return out


@pytest.fixture(scope="session")
def sensor_bundle(tmp_path_factory, sensor_run, keypair):
    """A signed FP32 bundle exported from `sensor_run` for the x86-gateway profile (signed with `keypair`)."""
    from edgekit.export.pipeline import ExportOptions, export_run

    out = tmp_path_factory.mktemp("bundles") / "shuttle-x86"
    return export_run(sensor_run, "x86-gateway", out, key=keypair[0], options=ExportOptions(latency_runs=100))


@pytest.fixture(scope="session")
def variant_bundle(tmp_path_factory, sensor_run, keypair):
    """A signed x86-gateway bundle from `sensor_run` carrying three variants: fp32 (default), int8-dynamic and
    int8-static-qdq."""
    from edgekit.export.pipeline import ExportOptions, export_run

    out = tmp_path_factory.mktemp("bundles") / "shuttle-variants"
    opts = ExportOptions(latency_runs=50, variants=["fp32", "int8-dynamic", "int8-static-qdq"])
    return export_run(sensor_run, "x86-gateway", out, key=keypair[0], options=opts)


@pytest.fixture(scope="session")
def windowed_bundle(tmp_path_factory, keypair):
    """A signed bundle with window 32 / hop 8 from a quick real MIT-BIH ECG distillation (label-free)."""
    from edgekit.distill.pipeline import DistillConfig, distill
    from edgekit.export.pipeline import ExportOptions, export_run

    run = tmp_path_factory.mktemp("runs") / "mitdb"
    distill(
        DistillConfig(
            out=str(run), dataset="mitdb", window=32, hop=8, max_rows=3000, teacher_epochs=2, student_epochs=2
        )
    )
    out = tmp_path_factory.mktemp("bundles") / "mitdb-x86"
    return export_run(run, "x86-gateway", out, key=keypair[0], options=ExportOptions(latency_runs=20))


@pytest.fixture(scope="session")
def text_bundle(tmp_path_factory, keypair):
    """A signed FP32 text bundle from a tiny real chatterbot distillation (one-layer MiniLM teacher, short
    training: for mechanics, not quality), exported for the x86-gateway profile (signed with `keypair`)."""
    from edgekit.distill.text import TextDistillConfig, distill_text
    from edgekit.export.pipeline import ExportOptions, export_run

    run = tmp_path_factory.mktemp("runs") / "chatterbot"
    distill_text(
        TextDistillConfig(
            out=str(run),
            max_statements=600,
            max_length=16,
            teacher_layers=1,
            teacher_epochs=1,
            teacher_lr=3e-4,
            student_epochs=3,
            augment_copies=1,
            bootstrap=20,
        )
    )
    out = tmp_path_factory.mktemp("bundles") / "chatterbot-x86"
    return export_run(run, "x86-gateway", out, key=keypair[0], options=ExportOptions(latency_runs=20))
