"""README.md's examples work as written: every `mosquitto_pub` payload for a sensor topic is expanded by bash
exactly as a user's shell would and parsed by the daemon's own parser against the channel names of the real
Shuttle data the example bundles are distilled from."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from edgekit.data import load_dataset
from edgekit.runtime.payloads import Schema, parse_payload

README = Path(__file__).resolve().parents[1] / "README.md"


def _sensor_examples() -> list[str]:
    lines = [
        ln
        for ln in README.read_text().splitlines()
        if re.match(r"mosquitto_pub -t edgekit/[^/]+/sensors/", ln)
    ]
    assert len(lines) >= 3, "README lost its sensor payload examples"
    return lines


def test_readme_sensor_payloads_parse_against_the_bundle_channels() -> None:
    channels = load_dataset("shuttle").channels
    schema = Schema(list(channels))
    for line in _sensor_examples():
        # Let bash expand the quoting and $(date ...) exactly as in a terminal, then print the -m argument.
        cmd = re.sub(r"^mosquitto_pub -t \S+ -m ", "printf '%s' ", line.split("   #")[0])
        payload = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True).stdout
        now = time.time()
        rows = parse_payload(payload.encode(), schema, now)
        assert rows.values.shape[1] == len(channels), line
        assert abs(float(rows.ts[-1]) - now) < 60, f"example timestamp is not the current time: {line}"
