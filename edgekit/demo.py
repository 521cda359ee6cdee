"""`edgekit demo`: the whole pipeline on real data, with nothing running beforehand.

Stages: distill on the real Shuttle data and print the teacher/student table; later stages (export,
bundle, serve through MQTT, bench) run against a private mosquitto unless a broker URL is given.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    out: str = "runs/demo"
    broker: str | None = None
    dataset: str = "shuttle"
    quick: bool = False  # small slice and few epochs, for smoke tests


def _say(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run_demo(cfg: DemoConfig) -> dict:
    """Run every stage; returns what each stage produced (paths, reports)."""
    from edgekit.broker import Broker
    from edgekit.distill.pipeline import DistillConfig, distill

    out = Path(cfg.out)
    results: dict = {}
    with ExitStack() as stack:
        if cfg.broker is None:
            broker = stack.enter_context(Broker())
            broker_url = broker.url
            print(f"started a private mosquitto at {broker_url} (pass --broker to use your own)")
        else:
            broker_url = cfg.broker
        results["broker"] = broker_url

        _say(f"1. distill: teacher -> student on the real {cfg.dataset} data")
        dcfg = DistillConfig(out=str(out / "run"), dataset=cfg.dataset)
        if cfg.quick:
            dcfg.max_rows, dcfg.teacher_epochs, dcfg.student_epochs = 4000, 4, 8
        report = distill(dcfg)
        print(report["table"])
        results["run"] = out / "run"
        results["distill"] = report

        _say(
            "2. export: signed bundles for a Raspberry Pi 4 (INT8), a Jetson Orin Nano (FP16), an x86 gateway (FP32)"
        )
        results["bundles"] = _export_stage(out)
    return results


DEMO_TARGETS = ("raspberry-pi-4", "jetson-orin-nano", "x86-gateway")


def _export_stage(out: Path) -> dict[str, Path]:
    """Key pair, one signed bundle per target, verification, and an atomic install on a simulated device."""
    from edgekit.bundle import keygen, verify_bundle
    from edgekit.bundle.install import install_bundle
    from edgekit.export.pipeline import ExportOptions, export_run

    keys = out / "keys"
    priv, pub = keys / "edgekit.key", keys / "edgekit.pub"
    if not priv.exists():
        keygen(priv, pub)
    bundles: dict[str, Path] = {}
    rows = [
        "| target | quantization | model.onnx KB | test F1 | F1 drop vs FP32 | quality gate | latency gate (this host) |",
        "|---|---|---|---|---|---|---|",
    ]
    for target in DEMO_TARGETS:
        path = export_run(
            out / "run", target, out / "bundles" / target, key=priv, options=ExportOptions(overwrite=True)
        )
        m = verify_bundle(path, pub)
        gate, test = m.metrics["gate"], m.metrics["test"]
        drop, f1 = gate.get("f1_drop"), test.get("f1")
        rows.append(
            f"| {target} | {m.quantization['mode']} | {(path / m.model_file).stat().st_size / 1024:.1f} | "
            f"{'-' if f1 is None else format(f1, '.4f')} | {'-' if drop is None else format(drop, '.4f')} | "
            f"{gate['quality_gate']} | {gate['latency_gate']} |"
        )
        bundles[target] = path
    print("\n".join(rows))
    device_root = out / "device"
    current = install_bundle(bundles["x86-gateway"], device_root, pub)
    print(f"\nall bundles verified (Ed25519 signature + sha256 of every file) with {pub}")
    print(
        f"installed {current.name} atomically under {device_root}/current (rollback: edgekit rollback --root {device_root})"
    )
    return bundles
