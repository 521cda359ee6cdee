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
    return results
