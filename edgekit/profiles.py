"""Typed target profiles, one YAML file per device in `firmware_configs/`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edgekit.config import from_dict, load_yaml
from edgekit.errors import ConfigError

QuantMode = Literal["fp32", "fp16", "int8-dynamic", "int8-static-qdq"]
Percentile = Literal["p50", "p90", "p95", "p99", "p99.9"]

# Providers and options onnxruntime documents; anything else is a typo we should catch early.
KNOWN_PROVIDERS = (
    "CPUExecutionProvider",
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "XnnpackExecutionProvider",
    "ACLExecutionProvider",
    "ArmNNExecutionProvider",
    "OpenVINOExecutionProvider",
    "CoreMLExecutionProvider",
)


@dataclass
class Threads:
    intra_op: int = 1
    inter_op: int = 1

    def __post_init__(self) -> None:
        if self.intra_op < 0 or self.inter_op < 0:
            raise ValueError("thread counts must be >= 0 (0 lets onnxruntime choose)")


@dataclass
class ExecutionProvider:
    name: str
    options: dict[str, str | int | float | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in KNOWN_PROVIDERS:
            raise ValueError(
                f"unknown execution provider {self.name!r} (known: {', '.join(KNOWN_PROVIDERS)})"
            )


@dataclass
class Quantization:
    mode: QuantMode = "fp32"
    # onnxruntime's names: QInt8 (signed) / QUInt8 (unsigned).
    weight_type: Literal["QInt8", "QUInt8"] = "QInt8"
    activation_type: Literal["QInt8", "QUInt8"] = "QUInt8"
    per_channel: bool = False
    reduce_range: bool = False
    calibration_windows: int = 512
    calibrate_method: Literal["MinMax", "Entropy", "Percentile"] = "MinMax"


@dataclass
class Latency:
    budget_ms: float = 100.0
    percentile: Percentile = "p99"

    def __post_init__(self) -> None:
        if self.budget_ms <= 0:
            raise ValueError("budget_ms must be > 0")


@dataclass
class Gate:
    """Release gate applied by `edgekit export`."""

    max_f1_drop: float = 0.01
    parity_atol: float = 1e-4
    require_quantized_faster: bool = True


@dataclass
class MQTTTopics:
    """Topic layout; `{device}` and `{stream}` are filled in by the daemon."""

    sensors: str = "edgekit/{device}/sensors/{stream}"
    anomalies: str = "edgekit/{device}/anomalies"
    scores: str = "edgekit/{device}/scores"
    status: str = "edgekit/{device}/status"
    errors: str = "edgekit/{device}/errors"
    heartbeat: str = "edgekit/{device}/heartbeat"
    cmd: str = "edgekit/{device}/cmd"


@dataclass
class Daemon:
    queue_size: int = 10000
    overload: Literal["drop-oldest", "drop-newest"] = "drop-oldest"
    max_batch: int = 64
    heartbeat_s: float = 10.0
    max_payload_bytes: int = 262144
    publish_scores: bool = False
    qos: int = 1
    keepalive_s: int = 30
    queue_bytes: int = 8 * 2**20  # payload bytes the input queue may hold (with queue_size: both bound it)
    max_clock_skew_s: float = 3600.0  # readings stamped further ahead of the daemon's clock are refused
    stream_idle_s: float = 300.0  # when max_streams is reached, a stream idle this long makes room
    require_pubkey: bool = False  # serve refuses to start without --pubkey (unsigned bundles)

    def __post_init__(self) -> None:
        if self.queue_bytes < self.max_payload_bytes:
            raise ValueError(
                f"queue_bytes ({self.queue_bytes}) must be >= max_payload_bytes ({self.max_payload_bytes})"
            )
        if not self.max_clock_skew_s > 0:
            raise ValueError("max_clock_skew_s must be > 0")
        if not self.stream_idle_s >= 0:
            raise ValueError("stream_idle_s must be >= 0")


@dataclass
class TargetProfile:
    name: str
    description: str = ""
    arch: Literal["aarch64", "x86_64", "armv7l"] = "aarch64"
    cpu: str = ""
    cores: int = 1
    threads: Threads = field(default_factory=Threads)
    execution_providers: list[ExecutionProvider] = field(
        default_factory=lambda: [ExecutionProvider("CPUExecutionProvider")]
    )
    quantization: Quantization = field(default_factory=Quantization)
    opset: int = 17
    latency: Latency = field(default_factory=Latency)
    gate: Gate = field(default_factory=Gate)
    mqtt: MQTTTopics = field(default_factory=MQTTTopics)
    daemon: Daemon = field(default_factory=Daemon)

    def __post_init__(self) -> None:
        if not self.execution_providers:
            raise ValueError("execution_providers must list at least one provider")
        if not 11 <= self.opset <= 21:
            raise ValueError(f"opset {self.opset} is outside the supported range 11..21")
        if self.cores < 1:
            raise ValueError("cores must be >= 1")

    @property
    def provider_names(self) -> list[str]:
        return [p.name for p in self.execution_providers]


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
