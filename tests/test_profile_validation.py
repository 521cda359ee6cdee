"""Every profile field is validated at load time: one line naming the file, the field, the value and what is
allowed, through load_profile, `edgekit profiles show` and `edgekit serve` (real files, real processes)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from edgekit.errors import ConfigError
from edgekit.profiles import MQTTTopics, load_profile
from edgekit.runtime.mqtt import Topics

EDGEKIT = [sys.executable, "-m", "edgekit"]

# (YAML of the bad profile, field the message must name, text of the refused value as the message shows it)
BAD = [
    ("threads: {intra_op: -1}", "threads.intra_op", "-1"),
    ("threads: {inter_op: 5000}", "threads.inter_op", "5000"),
    ("threads: {intra_op: two}", "threads.intra_op", "'two'"),
    ("execution_providers: []", "execution_providers", "[]"),
    ("execution_providers: [{name: GPUExecutionProvider}]", "execution_providers[0].name", "'GPU"),
    ("execution_providers: [{name: CPUExecutionProvider, options: {a: null}}]", "options.a", "None"),
    ("quantization: {mode: int4}", "quantization.mode", "'int4'"),
    ("quantization: {weight_type: QInt4}", "quantization.weight_type", "'QInt4'"),
    ("quantization: {activation_type: float}", "quantization.activation_type", "'float'"),
    ("quantization: {per_channel: 2}", "quantization.per_channel", "2"),
    ("quantization: {reduce_range: sometimes}", "quantization.reduce_range", "'sometimes'"),
    ("quantization: {calibration_windows: 0}", "quantization.calibration_windows", "0"),
    ("quantization: {calibrate_method: Median}", "quantization.calibrate_method", "'Median'"),
    ("latency: {budget_ms: 0}", "latency.budget_ms", "0"),
    ("latency: {budget_ms: .inf}", "latency.budget_ms", "inf"),
    ("latency: {budget_ms: .nan}", "latency.budget_ms", "nan"),
    ("latency: {percentile: p42}", "latency.percentile", "'p42'"),
    ("gate: {max_f1_drop: 2}", "gate.max_f1_drop", "2"),
    ("gate: {parity_atol: -0.1}", "gate.parity_atol", "-0.1"),
    ("gate: {require_quantized_faster: 3}", "gate.require_quantized_faster", "3"),
    ("mqtt: {sensors: 'edgekit/{device}/{sensor}'}", "mqtt.sensors", "{sensor}"),
    ("mqtt: {sensors: 'edgekit/{device}/data'}", "mqtt.sensors", "'edgekit/{device}/data'"),
    ("mqtt: {sensors: 'edgekit/{device}/s-{stream}'}", "mqtt.sensors", "s-{stream}"),
    ("mqtt: {sensors: 'edgekit/{stream}/{stream}'}", "mqtt.sensors", "{stream}/{stream}"),
    ("mqtt: {anomalies: 'edgekit/{dev}/anomalies'}", "mqtt.anomalies", "{dev}"),
    ("mqtt: {scores: 'edgekit/{device}/#'}", "mqtt.scores", "#"),
    ("mqtt: {status: 'edgekit/{device/status'}", "mqtt.status", "{device/status"),
    ("mqtt: {errors: 'edgekit/{device!r}/errors'}", "mqtt.errors", "{device!r}"),
    ("mqtt: {heartbeat: '$SYS/{device}'}", "mqtt.heartbeat", "$SYS"),
    ("mqtt: {cmd: 'edgekit/{device}/{stream}/cmd'}", "mqtt.cmd", "{stream}"),
    ("mqtt: {cmd: ''}", "mqtt.cmd", "''"),
    ("daemon: {queue_size: -1}", "daemon.queue_size", "-1"),
    ("daemon: {overload: drop-all}", "daemon.overload", "'drop-all'"),
    ("daemon: {max_batch: 0}", "daemon.max_batch", "0"),
    ("daemon: {heartbeat_s: 0}", "daemon.heartbeat_s", "0"),
    ("daemon: {max_payload_bytes: 0}", "daemon.max_payload_bytes", "0"),
    ("daemon: {publish_scores: maybe}", "daemon.publish_scores", "'maybe'"),
    ("daemon: {qos: 7}", "daemon.qos", "7"),
    ("daemon: {qos: true}", "daemon.qos", "True"),
    ("daemon: {keepalive_s: 70000}", "daemon.keepalive_s", "70000"),
    ("arch: arm64", "arch", "'arm64'"),
    ("cores: 0", "cores", "0"),
    ("opset: 9", "opset", "9"),
    ("name: ''", "name", "''"),
    ("description: [a]", "description", "['a']"),
]


def write_profile(tmp_path, text: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    return path


def check_message(message: str, path, field: str, got: str) -> None:
    assert "\n" not in message
    assert message.startswith(f"{path}: field '") and f"{field}' must be " in message, message
    assert got in message.split("; got ", 1)[1], message


@pytest.mark.parametrize(("text", "field", "got"), BAD, ids=[b[0] for b in BAD])
def test_load_profile_refuses_bad_value(tmp_path, text, field, got):
    path = write_profile(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_profile(path)
    check_message(str(exc.value), path, field, got)


@pytest.mark.parametrize(("text", "field", "got"), BAD, ids=[b[0] for b in BAD])
def test_profiles_show_refuses_bad_value_in_one_line(tmp_path, text, field, got):
    path = write_profile(tmp_path, text)
    proc = subprocess.run(
        [*EDGEKIT, "profiles", "show", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    check_message(lines[0].removeprefix("edgekit profiles: error: "), path, field, got)


def test_message_says_what_is_allowed(tmp_path):
    path = write_profile(tmp_path, "daemon: {qos: 7}")
    with pytest.raises(ConfigError, match=r"field 'daemon.qos' must be one of 0, 1 or 2; got 7$"):
        load_profile(path)
    path.write_text("daemon: {max_batch: 0}\n")
    with pytest.raises(ConfigError, match=r"field 'daemon.max_batch' must be >= 1 and <= 65536; got 0$"):
        load_profile(path)


GOOD_TOPICS = {
    "sensors": "plant/{device}/{stream}/data",
    "anomalies": "plant/{device}-anomalies",
    "cmd": "plant/all/cmd",
}


def test_valid_templates_load_and_resolve(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump({"mqtt": GOOD_TOPICS, "daemon": {"qos": 0, "max_batch": 1}}))
    prof = load_profile(path)
    assert prof.mqtt == MQTTTopics(**GOOD_TOPICS) and prof.daemon.qos == 0
    t = Topics(prof.mqtt, "d1")
    assert t.sensors_filter == "plant/d1/+/data" and t.anomalies == "plant/d1-anomalies"
    assert t.stream_of("plant/d1/s7/data") == "s7"


def test_serve_with_bad_profile_exits_with_one_line(tmp_path, sensor_bundle):
    """Before: `serve` accepted qos 7, printed 'serving' and its MQTT thread died while the process stayed up."""
    path = write_profile(tmp_path, "daemon: {qos: 7}")
    cmd = [*EDGEKIT, "serve", "--bundle", str(sensor_bundle), "--broker", "mqtt://127.0.0.1:1"]
    proc = subprocess.run(
        [*cmd, "--device", "d1", "--profile", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0] == f"edgekit serve: error: {path}: field 'daemon.qos' must be one of 0, 1 or 2; got 7"
