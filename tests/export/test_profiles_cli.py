"""A bad profile is one clear line naming the field and the file, and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

EDGEKIT = [sys.executable, "-m", "edgekit"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantization": {"mode": "int4"}}, "quantization.mode"),
        ({"gate": {"max_f1_dorp": 0.1}}, "gate.max_f1_dorp"),
    ],
)
def test_profiles_show_bad_field(tmp_path, change, field):
    from edgekit.profiles import list_profiles

    data = yaml.safe_load(list_profiles()["raspberry-pi-5"].read_text())
    for section, values in change.items():
        data[section].update(values) if section in data else data.update({section: values})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run(
        [*EDGEKIT, "profiles", "show", str(path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert field in lines[0] and str(path) in lines[0]
