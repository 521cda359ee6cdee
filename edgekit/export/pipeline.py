"""`edgekit export`: RUN_DIR (from `edgekit distill`) + target profile -> verified, gated, signed bundle."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.bundle.manifest import Golden, InputSpec, Manifest, Normalization, OutputSpec, WindowSpec
from edgekit.errors import ConfigError, DataError
from edgekit.export.gate import EvalSplit, release_gate
from edgekit.export.onnx import (
    EXPORTER,
    check_model,
    compare,
    export_torch,
    model_opset,
    require_parity,
    torch_outputs,
)
from edgekit.export.opcheck import check_ops
from edgekit.export.package import golden_indices, publish, seal, staging, write_golden
from edgekit.export.quantize import QUANTIZERS, quantize
from edgekit.profiles import TargetProfile, load_profile
from edgekit.runtime.engine import Engine

log = logging.getLogger(__name__)

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")


@dataclass
class ExportOptions:
    model: str = "student"
    model_id: str | None = None
    version: str = "1.0.0"
    overwrite: bool = False
    latency_runs: int = 500
    extra_provenance: dict[str, Any] = field(default_factory=dict)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "run.json"
    try:
        run = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{run_dir}: no run.json (not a RUN_DIR written by `edgekit distill`)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    return run


def source_commit() -> tuple[str | None, bool | None]:
    """git commit of the edgekit source tree and whether it had uncommitted changes; None outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head.stdout.strip() or None, bool(dirty.stdout.strip())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def provenance(run_dir: Path, files: list[Path], extra: dict[str, Any]) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort
    import torch

    commit, dirty = source_commit()
    return {
        "source_commit": commit,
        "source_dirty": dirty,
        "run_dir": str(run_dir.resolve()),
        "inputs_sha256": {f.name: _sha256(f) for f in files if f.is_file()},
        "versions": {
            "edgekit": __version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "python": platform.python_version(),
        },
        "export_host": {"machine": platform.machine(), "system": platform.system(), "processor": cpu_model()},
        **extra,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def model_id_for(run: dict[str, Any], model: str) -> str:
    base = Path(str(run.get("dataset") or "model")).stem
    return re.sub(r"[^a-z0-9]+", "-", f"{base}-{model}".lower()).strip("-")


def _split(run_dir: Path, run: dict[str, Any]) -> tuple[EvalSplit, np.ndarray]:
    path = run_dir / "windows.npz"
    if not path.is_file():
        raise DataError(
            f"{run_dir}: no windows.npz (held-out windows are needed for the parity and release gates)"
        )
    with np.load(path) as w:
        arr = {k: w[k] for k in w.files}
    label = lambda k: arr[k].astype(np.int64) if arr[k].size else None  # noqa: E731  distill stores zeros(0) for "no labels"
    split = EvalSplit(
        arr["val_x"],
        label("val_y"),
        arr["test_x"],
        label("test_y"),
        run["score"],
        run.get("false_alarm_rate"),
    )
    return split, arr["calib_x"]


def export_run(
    run_dir: str | Path,
    profile: TargetProfile | str | Path,
    out: str | Path,
    key: str | Path | None = None,
    options: ExportOptions | None = None,
) -> Path:
    """Export RUN_DIR's model for `profile` into bundle folder `out` (+ out.tar.gz); dispatches on run.json kind."""
    run_dir, out = Path(run_dir), Path(out)
    opts = options or ExportOptions()
    if not SEMVER.match(opts.version):
        raise ConfigError(f"model version {opts.version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    prof = profile if isinstance(profile, TargetProfile) else load_profile(profile)
    run = read_run(run_dir)
    kind = run.get("kind", "sensor")
    if kind == "text":
        from edgekit.export.text import export_text

        return export_text(run_dir, prof, out, key, opts)
    if kind != "sensor":
        raise DataError(f"{run_dir}/run.json: unknown kind {kind!r} (expected sensor or text)")
    return _export_sensor(run_dir, run, prof, out, key, opts)


def _export_sensor(
    run_dir: Path,
    run: dict[str, Any],
    prof: TargetProfile,
    out: Path,
    key: str | Path | None,
    opts: ExportOptions,
) -> Path:
    import torch

    from edgekit.data import Normalizer
    from edgekit.models.registry import ModelSpec, build_model, load_weights

    if opts.model not in run.get("models", {}):
        raise DataError(
            f"{run_dir}/run.json: no model {opts.model!r} (has: {', '.join(run.get('models', {}))})"
        )
    weights = run_dir / f"{opts.model}.pt"
    model = load_weights(build_model(ModelSpec.from_dict(run["models"][opts.model])), str(weights))
    mode = prof.quantization.mode
    quantizer = QUANTIZERS.get(mode)
    norm = Normalizer(
        np.asarray(run["normalization"]["mean"], np.float32),
        np.asarray(run["normalization"]["std"], np.float32),
    )
    split, calib_raw = _split(run_dir, run)
    w, c = int(run["window"]), len(run["channels"])
    if split.test_x.shape[1:] != (w, c):
        raise DataError(
            f"{run_dir}/windows.npz: test windows have shape {split.test_x.shape[1:]}, run.json says ({w}, {c})"
        )

    with staging(out, opts.overwrite) as tmp:
        work, bundle, ref_dir = tmp / "work", tmp / "bundle", tmp / "fp32"
        for d in (work, bundle, ref_dir):
            d.mkdir()
        fp32 = export_torch(model, torch.from_numpy(norm(split.test_x[:2])), work / "fp32.onnx", prof.opset)
        x_test = norm(split.test_x)
        torch_out = torch_outputs(model, x_test)
        ref_thr = float(run.get("thresholds", {}).get(opts.model, 0.0))
        fp32_engine_out = _run_onnx(fp32, x_test)
        fp32_parity = compare(torch_out, fp32_engine_out, ref_thr)
        require_parity(fp32_parity, prof.gate.parity_atol, f"{opts.model} (fp32 ONNX vs torch)")

        settings = quantize(
            mode,
            fp32,
            bundle / "model.onnx",
            prof.quantization,
            norm(calib_raw) if quantizer.needs_calibration else None,
            "x",
        )
        check_model(bundle / "model.onnx")
        ops = check_ops(bundle / "model.onnx", prof)
        cand_parity = compare(torch_out, _run_onnx(bundle / "model.onnx", x_test), ref_thr)

        manifest = Manifest(
            model_id=opts.model_id or model_id_for(run, opts.model),
            model_version=opts.version,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            kind="sensor",
            input=InputSpec("x", "float32", [None, w, c]),
            output=OutputSpec("logits", run["score"]),
            labels=list(run["labels"]),
            threshold=ref_thr,
            profile=prof.name,
            window=WindowSpec(w, int(run["hop"]), list(run["channels"])),
            normalization=Normalization(
                list(run["normalization"]["mean"]), list(run["normalization"]["std"])
            ),
            golden=Golden(atol=quantizer.golden_atol, rtol=quantizer.golden_rtol),
        )
        manifest.save(bundle)
        shutil.copyfile(fp32, ref_dir / "model.onnx")
        manifest.save(ref_dir)
        ref = Engine(ref_dir, prof)
        cand = None if mode == "fp32" else Engine(bundle, prof)
        gate = release_gate(ref, cand, split, prof, mode, latency_runs=opts.latency_runs)

        engine = cand or Engine(bundle, prof)
        manifest.threshold = float(gate["candidate"]["threshold"])
        idx = golden_indices(split.test_y, len(split.test_x))
        g_in = split.test_x[idx].astype(np.float32)
        write_golden(bundle, manifest, inputs=g_in, outputs=engine.infer(engine.preprocess(g_in)))

        report = read_report(run_dir)
        manifest.quantization = settings
        manifest.metrics = {
            "teacher": report.get("teacher"),
            "distilled": report.get(opts.model),
            "test": gate["candidate"],
            "parity": {
                "fp32_vs_torch": fp32_parity.to_dict(),
                "bundle_vs_torch": cand_parity.to_dict(),
                "atol": prof.gate.parity_atol,
            },
            "gate": {k: v for k, v in gate.items() if k not in ("candidate",)},
            "opcheck": ops.to_dict(),
        }
        manifest.provenance = provenance(
            run_dir,
            [run_dir / "run.json", weights, run_dir / "windows.npz"],
            {
                "source_model": opts.model,
                "exporter": EXPORTER,
                "opset": model_opset(bundle / "model.onnx"),
                **opts.extra_provenance,
            },
        )
        seal(bundle, manifest, key)
        Engine(bundle, prof, manifest).self_test()
        publish(bundle, out, opts.overwrite)
    log.info("wrote %s (%s, %s) and %s.tar.gz", out, prof.name, mode, out.name)
    return out


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    from edgekit.runtime.engine import create_session

    sess = create_session(path)
    name = sess.get_inputs()[0].name
    return np.concatenate(
        [sess.run(None, {name: x[i : i + 4096]})[0] for i in range(0, len(x), 4096)]
    ).astype(np.float32)


def read_report(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "report.json"
    return json.loads(path.read_text()) if path.is_file() else {}
