"""Typed target profiles, one YAML file per device in `firmware_configs/`."""

from __future__ import annotations

import os
import platform
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from edgekit.config import alternatives, from_dict, load_yaml, setting
from edgekit.errors import ConfigError

QuantMode = Literal["fp32", "fp16", "int8-dynamic", "int8-static-qdq"]
Percentile = Literal["p50", "p90", "p95", "p99", "p99.9"]
# Providers and options onnxruntime documents; anything else is a typo we should catch early.
ProviderName = Literal[
    "CPUExecutionProvider",
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "XnnpackExecutionProvider",
    "ACLExecutionProvider",
    "ArmNNExecutionProvider",
    "OpenVINOExecutionProvider",
    "CoreMLExecutionProvider",
]
KNOWN_PROVIDERS: tuple[str, ...] = get_args(ProviderName)


def topic_template(*placeholders: str, level: str | None = None) -> Callable[[str], str | None]:
    """A Check test for an MQTT topic template: only `placeholders`, and `level` (if any) once as a whole level.

    Checked at load time because the daemon fills templates with str.format and subscribes with `level`
    replaced by a wildcard, which MQTT only accepts as a whole topic level.
    """
    allowed = alternatives((f"{{{p}}}" for p in placeholders), last="and")
    wanted = (
        f"a topic template with {{{level}}} as one whole level, using only {allowed}"
        if level
        else f"a topic template using only {allowed}"
    )
    wanted += ", without + # or a leading $"

    def test(value: str) -> str | None:
        if not value or value.startswith("$") or any(c in value for c in "+#\0"):
            return wanted
        try:
            parts = list(string.Formatter().parse(value))
        except ValueError:  # a lone { or }
            return wanted
        names = [name for _, name, _, _ in parts if name is not None]
        if any("{" in text or "}" in text for text, *_ in parts):  # {{ and }} would survive as braces
            return wanted
        if any(name not in placeholders or spec or conv for _, name, spec, conv in parts if name is not None):
            return wanted
        if level and (names.count(level) != 1 or f"{{{level}}}" not in value.split("/")):
            return wanted
        return None

    return test


def _non_empty(value: object) -> str | None:
    return None if value else "not empty"


# platform.machine() spellings -> the `arch:` of firmware_configs/*.yaml
_MACHINE_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


def host_arch() -> str:
    """This machine's architecture in profile terms, to compare with a profile's (or bundle's) `arch`."""
    m = platform.machine().lower()
    return _MACHINE_ARCH.get(m, m)


@dataclass
class Threads:
    # 0 lets onnxruntime choose
    intra_op: int = setting(1, ge=0, le=1024)
    inter_op: int = setting(1, ge=0, le=1024)


@dataclass
class ExecutionProvider:
    name: ProviderName
    options: dict[str, str | int | float | bool] = field(default_factory=dict)


def _cpu_only() -> list[ExecutionProvider]:
    return [ExecutionProvider("CPUExecutionProvider")]


@dataclass
class Quantization:
    mode: QuantMode = "fp32"
    # onnxruntime's names: QInt8 (signed) / QUInt8 (unsigned).
    weight_type: Literal["QInt8", "QUInt8"] = "QInt8"
    activation_type: Literal["QInt8", "QUInt8"] = "QUInt8"
    per_channel: bool = False
    reduce_range: bool = False
    calibration_windows: int = setting(512, ge=1, le=1_000_000)
    calibrate_method: Literal["MinMax", "Entropy", "Percentile"] = "MinMax"


@dataclass
class Latency:
    budget_ms: float = setting(100.0, gt=0, le=3_600_000)
    percentile: Percentile = "p99"


@dataclass
class Gate:
    """Release gate applied by `edgekit export`."""

    # negative: the candidate must beat FP32 by that much (a strict, rarely useful bound, but coherent)
    max_f1_drop: float = setting(0.01, ge=-1, le=1)
    parity_atol: float = setting(1e-4, ge=0, le=1)  # 0: bit-exact parity required
    require_quantized_faster: bool = True
    # the student's test recall on each severe class (--severe-class) may be at most this far below the
    # teacher's: safety behaviour does not carry over by itself (None: not checked; negative: must beat it)
    max_severe_recall_drop: float | None = setting(None, ge=-1, le=1)


@dataclass
class MQTTTopics:
    """Topic layout; `{device}` and `{stream}` are filled in by the daemon."""

    sensors: str = setting(
        "edgekit/{device}/sensors/{stream}", test=topic_template("device", "stream", level="stream")
    )
    # text bundles: UTF-8 text (or {"text", "id"}) in on `text`, one report per message out on `classifications`
    text: str = setting(
        "edgekit/{device}/text/{stream}", test=topic_template("device", "stream", level="stream")
    )
    classifications: str = setting("edgekit/{device}/classifications", test=topic_template("device"))
    anomalies: str = setting("edgekit/{device}/anomalies", test=topic_template("device"))
    scores: str = setting("edgekit/{device}/scores", test=topic_template("device"))
    status: str = setting("edgekit/{device}/status", test=topic_template("device"))
    errors: str = setting("edgekit/{device}/errors", test=topic_template("device"))
    heartbeat: str = setting("edgekit/{device}/heartbeat", test=topic_template("device"))
    cmd: str = setting("edgekit/{device}/cmd", test=topic_template("device"))
    # cascade: escalated windows out (a teacher service subscribes to all devices with {device} -> +);
    # its answers come back on `<escalations>/answers`
    escalations: str = setting("edgekit/{device}/escalations", test=topic_template("device", level="device"))
    # drift, stuck-sensor and out-of-range alerts (edgekit.runtime.drift)
    alerts: str = setting("edgekit/{device}/alerts", test=topic_template("device"))


@dataclass
class Daemon:
    queue_size: int = setting(10000, ge=1, le=10_000_000)
    # the MQTT network thread scores what it read, in batches (runtime.handoff), handing over to the
    # scoring thread only under overload: no thread hand-over per message; false: every message goes
    # through the input queue to the scoring thread
    inline_scoring: bool = True
    overload: Literal["drop-oldest", "drop-newest"] = "drop-oldest"
    max_batch: int = setting(64, ge=1, le=65536)
    heartbeat_s: float = setting(10.0, ge=0.1, le=86400)
    max_payload_bytes: int = setting(262144, ge=16, le=268_435_455)  # MQTT's own packet limit
    publish_scores: bool = False
    qos: Literal[0, 1, 2] = 1
    # QoS of anomaly/score reports (null: `qos`); 0 spares a PUBACK per report, and loses reports on a drop
    report_qos: Literal[0, 1, 2] | None = None
    # each: one message per report; batch: one message per flush, a JSON array of its reports
    reports: Literal["each", "batch"] = "each"
    keepalive_s: int = setting(30, ge=1, le=65535)  # MQTT's range; 0 (off) would hide a dead broker
    # payload bytes the input queue may hold (with queue_size: both bound it)
    queue_bytes: int = setting(8 * 2**20, ge=16, le=2**34)
    # readings stamped further ahead of the daemon's clock are refused
    max_clock_skew_s: float = setting(3600.0, gt=0, le=10 * 365 * 86400)
    # when max_streams is reached, a stream idle this long makes room
    stream_idle_s: float = setting(300.0, ge=0, le=365 * 86400)
    require_pubkey: bool = False  # serve refuses to start without --pubkey (unsigned bundles)
    # student/teacher cascade: as the bundle says, off, or forced local (teacher on the device) / remote
    cascade: Literal["bundle", "off", "local", "remote"] = "bundle"

    def __post_init__(self) -> None:
        if self.queue_bytes < self.max_payload_bytes:
            raise ValueError(
                f"queue_bytes ({self.queue_bytes}) must be >= max_payload_bytes ({self.max_payload_bytes})"
            )


@dataclass
class Drift:
    """Drift monitoring on the device (edgekit.runtime.drift), for bundles that carry reference statistics."""

    enabled: bool = True
    # population stability index above which a channel (or the score) counts as drifted; 0.25 is the
    # customary "significant shift" mark
    psi_threshold: float = setting(0.25, gt=0, le=100)
    consecutive: int = setting(3, ge=1, le=10_000)  # evaluations in a row over the threshold before an alert
    window_readings: int = setting(1000, ge=10, le=10_000_000)  # the sliding window, per stream
    # the window slides by this many readings (a multiple of the window); PSI is evaluated at each slide
    evaluate_every: int = setting(100, ge=1, le=10_000_000)
    # out of range: beyond the training min/max by this fraction of the training range
    range_margin: float = setting(0.1, ge=0, le=1000)
    alert_interval_s: float = setting(60.0, ge=0, le=7 * 86400)  # at most one alert per kind/stream/channel
    # streams with their own histograms; further streams share one pooled per-device histogram ("*")
    max_streams: int = setting(64, ge=0, le=100_000)

    def __post_init__(self) -> None:
        blocks, rest = divmod(self.window_readings, self.evaluate_every)
        if rest or not 1 <= blocks <= 1000:
            raise ValueError(
                f"window_readings ({self.window_readings}) must be 1 to 1000 times evaluate_every "
                f"({self.evaluate_every})"
            )


@dataclass
class TargetProfile:
    name: str = setting(test=_non_empty)
    description: str = ""
    arch: Literal["aarch64", "x86_64", "armv7l"] = "aarch64"
    cpu: str = ""
    cores: int = setting(1, ge=1, le=1024)
    threads: Threads = field(default_factory=Threads)
    execution_providers: list[ExecutionProvider] = setting(default_factory=_cpu_only, test=_non_empty)
    quantization: Quantization = field(default_factory=Quantization)
    # Variants a bundle for this target carries (quantization.mode is the default one and must be listed);
    # empty: only quantization.mode. The device measures which to run (edgekit.runtime.tune).
    variants: list[QuantMode] = field(default_factory=list)
    opset: int = setting(17, ge=11, le=21)  # what the exporter and onnxruntime >= 1.17 support
    latency: Latency = field(default_factory=Latency)
    gate: Gate = field(default_factory=Gate)
    mqtt: MQTTTopics = field(default_factory=MQTTTopics)
    daemon: Daemon = field(default_factory=Daemon)
    drift: Drift = field(default_factory=Drift)

    @property
    def provider_names(self) -> list[str]:
        return [p.name for p in self.execution_providers]

    def __post_init__(self) -> None:
        if self.variants and self.quantization.mode not in self.variants:
            raise ValueError(
                f"variants {self.variants} must include quantization.mode {self.quantization.mode} (the default)"
            )
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"variants {self.variants} repeat a mode")


def profile_dirs() -> list[Path]:
    """Where profiles are looked up: $EDGEKIT_PROFILES, the copy inside a wheel, the repository's folder."""
    dirs = []
    if env := os.environ.get("EDGEKIT_PROFILES"):
        dirs.append(Path(env))
    here = Path(__file__).resolve().parent
    dirs += [here / "firmware_configs", here.parent / "firmware_configs"]
    return [d for d in dirs if d.is_dir()]


def list_profiles() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in profile_dirs():
        for p in sorted(d.glob("*.yaml")):
            found.setdefault(p.stem, p)
    return found


def load_profile(name_or_path: str | Path) -> TargetProfile:
    """Load a profile by name (from the profile folders) or by path to a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        known = list_profiles()
        if str(name_or_path) not in known:
            raise ConfigError(f"unknown profile {name_or_path!r} (known: {', '.join(known) or 'none found'})")
        path = known[str(name_or_path)]
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile must be a YAML mapping")
    data.setdefault("name", path.stem)
    return from_dict(TargetProfile, data, where=str(path))
