"""The run folder (RUN_DIR) that `edgekit distill` writes and `edgekit export` / `edgekit bench` read.

Layout: run.json (a `SensorRun` or `TextRun`, versioned by `schema`), report.json (free-form figures for
people), and per kind the model files: `<model>.pt` checkpoints and windows.npz (`RunWindows`) for sensor
runs; Hugging Face folders and text_eval.jsonl for text runs. Everyone reads it through `load_run`, which
validates run.json against these dataclasses, so a bad or old folder fails with one line naming the file
and the field instead of a KeyError deep in an exporter. Imports no torch: export and bench read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekit.bundle.manifest import Cascade, Normalization
from edgekit.config import from_dict, to_dict
from edgekit.errors import ConfigError, DataError

RUN_SCHEMA = 1
RUN_FILE = "run.json"
REPORT_FILE = "report.json"
WINDOWS_FILE = "windows.npz"
TEXT_EVAL_FILE = "text_eval.jsonl"


@dataclass
class ArchSpec:
    """How to rebuild a checkpoint's architecture (`edgekit.models.ModelSpec` in plain data)."""

    arch: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class SensorRun:
    """run.json of a sensor (time-series) run: windowing, normalization, scores and models."""

    dataset: str
    mode: Literal["supervised", "unsupervised"]
    window: int
    hop: int
    channels: list[str]
    normalization: Normalization
    labels: list[str]
    # softmax: score = P(anomaly) = 1 - P(normal_class) from K-class logits (the top class's probability
    # without a normal class); identity: score = the model's one output column
    score: Literal["softmax", "identity"]
    thresholds: dict[str, float]
    models: dict[str, ArchSpec]
    false_alarm_rate: float | None = None
    # the class whose absence is an anomaly (softmax runs); None for K > 2 classes without one
    normal_class: str | None = None
    seed: int = 0
    # the escalation rule chosen on validation at distill time (its target and figures in `validation`);
    # export re-chooses it for the models the bundle carries, with the same target unless overridden
    cascade: Cascade | None = None
    kind: Literal["sensor"] = "sensor"
    schema: int = RUN_SCHEMA

    @property
    def normal_index(self) -> int | None:
        """The bundle's `OutputSpec.normal_index`: None keeps the binary rule (score = P(class 1)) for
        two classes whose first is normal, and means "no normal class" for K > 2."""
        if self.normal_class is None or self.normal_class not in self.labels:
            return None
        i = self.labels.index(self.normal_class)
        return None if len(self.labels) == 2 and i == 0 else i

    def anomaly_labels(self, y: np.ndarray | None) -> np.ndarray | None:
        """Class indices -> 1 for anomaly (not the normal class), 0 for normal; None without a normal class."""
        if y is None:
            return None
        if len(self.labels) == 2 and self.normal_class is None:
            return y
        if self.normal_class is None or self.normal_class not in self.labels:
            return None
        return (y != self.labels.index(self.normal_class)).astype(np.int64)


@dataclass
class TextRun:
    """run.json of a text run: a Hugging Face student folder with its tokenizer, and the labels."""

    dataset: str
    labels: list[str]
    max_length: int
    student_dir: str
    teacher_dir: str | None = None
    # escalate to the teacher below this student max-softmax probability
    escalation_threshold: float | None = None
    seed: int = 0
    kind: Literal["text"] = "text"
    schema: int = RUN_SCHEMA


RunInfo = SensorRun | TextRun
_KINDS: dict[str, type[SensorRun] | type[TextRun]] = {"sensor": SensorRun, "text": TextRun}


@dataclass
class RunWindows:
    """windows.npz: raw (unnormalized) windows, (n, window, channels); labels are None when unlabelled."""

    calib_x: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray | None
    test_x: np.ndarray
    test_y: np.ndarray | None


@dataclass
class RunFolder:
    """A validated RUN_DIR: its path and its run.json."""

    path: Path
    info: RunInfo

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    def checkpoint(self, model: str) -> Path:
        """The `<model>.pt` weights of a sensor run's model; DataError naming the models it has."""
        if not isinstance(self.info, SensorRun) or model not in self.info.models:
            has = ", ".join(self.info.models) if isinstance(self.info, SensorRun) else "none, a text run"
            raise DataError(f"{self.run_file}: no model {model!r} (has: {has})")
        return self.path / f"{model}.pt"

    def windows(self) -> RunWindows:
        """windows.npz, checked against run.json's window and channels."""
        return load_windows(self.path, self.info)

    def report(self) -> dict[str, Any]:
        """report.json (free-form figures), {} when the folder has none."""
        path = self.path / REPORT_FILE
        if not path.is_file():
            return {}
        data = _read_json(path)
        if not isinstance(data, dict):
            raise DataError(f"{path}: must hold a JSON object")
        return data


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def load_run(path: str | Path) -> RunFolder:
    """Read and validate RUN_DIR/run.json (`path` is the folder or the file); DataError names file and field."""
    path = Path(path)
    run_dir, file = (
        (path.parent, path) if path.name == RUN_FILE and path.is_file() else (path, path / RUN_FILE)
    )
    if not file.is_file():
        raise DataError(f"{run_dir}: no {RUN_FILE} (not a RUN_DIR written by `edgekit distill`)")
    data = _read_json(file)
    if not isinstance(data, dict):
        raise DataError(f"{file}: must hold a JSON object")
    if data.get("schema") != RUN_SCHEMA:
        raise DataError(
            f"{file}: field 'schema' is {data.get('schema')!r}, this edgekit reads schema {RUN_SCHEMA} "
            "(re-run `edgekit distill`)"
        )
    # runs written before text runs existed carry no kind and are sensor runs
    kind = data.get("kind", "sensor")
    if kind not in _KINDS:
        raise DataError(f"{file}: field 'kind' is {kind!r} (expected {' or '.join(_KINDS)})")
    try:
        info = from_dict(_KINDS[kind], data, where=str(file))
    except ConfigError as exc:
        raise DataError(str(exc)) from None
    return RunFolder(run_dir, info)


def write_run(run_dir: str | Path, info: RunInfo) -> Path:
    """Write `info` as RUN_DIR/run.json (the one writer; `load_run` reads it back)."""
    path = Path(run_dir) / RUN_FILE
    data = to_dict(info)
    # schema and kind first, so a person opening the file sees what it is
    data = {"schema": data.pop("schema"), "kind": data.pop("kind"), **data}
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def save_windows(run_dir: str | Path, windows: RunWindows) -> Path:
    """Write windows.npz; missing labels are stored as empty arrays (npz has no None)."""
    path = Path(run_dir) / WINDOWS_FILE
    none = np.zeros(0)
    np.savez_compressed(
        path,
        calib_x=windows.calib_x,
        val_x=windows.val_x,
        val_y=none if windows.val_y is None else windows.val_y,
        test_x=windows.test_x,
        test_y=none if windows.test_y is None else windows.test_y,
    )
    return path


def load_windows(run_dir: str | Path, info: RunInfo | None = None) -> RunWindows:
    """Read windows.npz; with `info` (a SensorRun) also check the window shape against run.json."""
    path = Path(run_dir) / WINDOWS_FILE
    if not path.is_file():
        raise DataError(
            f"{run_dir}: no {WINDOWS_FILE} (held-out windows are needed for the parity and release gates)"
        )
    with np.load(path) as npz:
        arr = {k: npz[k] for k in npz.files}
    missing = [k for k in ("calib_x", "val_x", "val_y", "test_x", "test_y") if k not in arr]
    if missing:
        raise DataError(f"{path}: array {missing[0]!r} is missing")
    label = lambda k: arr[k].astype(np.int64) if arr[k].size else None  # noqa: E731
    windows = RunWindows(arr["calib_x"], arr["val_x"], label("val_y"), arr["test_x"], label("test_y"))
    if isinstance(info, SensorRun):
        want = (info.window, len(info.channels))
        if windows.test_x.shape[1:] != want:
            raise DataError(
                f"{path}: test windows have shape {windows.test_x.shape[1:]}, {RUN_FILE} says {want}"
            )
    return windows


def write_text_eval(run_dir: str | Path, texts: list[str], labels: list[int]) -> Path:
    """Write text_eval.jsonl: one {"text", "label"} object per held-out statement."""
    path = Path(run_dir) / TEXT_EVAL_FILE
    with path.open("w", encoding="utf-8") as fh:
        for text, label in zip(texts, labels, strict=True):
            fh.write(json.dumps({"text": text, "label": label}) + "\n")
    return path


def load_text_eval(run_dir: str | Path) -> tuple[list[str], np.ndarray]:
    """text_eval.jsonl of a text run: held-out statements and their class indices."""
    path = Path(run_dir) / TEXT_EVAL_FILE
    texts, labels = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(
            f"{path.parent}: no {path.name} (held-out texts are needed for the parity and release gates)"
        ) from None
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = json.loads(line)
                texts.append(str(row["text"]))
                labels.append(int(row["label"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(
                    f'{path}:{n}: expected {{"text": ..., "label": class index}} ({exc})'
                ) from None
    if not texts:
        raise DataError(f"{path}: no texts")
    return texts, np.asarray(labels, dtype=np.int64)
