"""`edgekit export`: RUN_DIR (from `edgekit distill`) + target profile -> verified, gated, signed bundle.

`export_run` reads the run folder and picks the kind's `ModelExporter`; `export_model` is the one skeleton
every kind goes through (optimum's `main_export` -> `onnx_export_from_model` is the model for this shape).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgekit.bundle.manifest import Golden, Manifest, Variant
from edgekit.errors import ConfigError
from edgekit.export.cascade import cascade_rule, severe_gate
from edgekit.export.exporter import ExportOptions, ModelExporter, model_id_for, provenance
from edgekit.export.gate import GateModel, release_gate
from edgekit.export.onnx import Parity, check_model, compare, model_opset, require_parity
from edgekit.export.opcheck import check_ops
from edgekit.export.package import publish, seal, staging, write_golden
from edgekit.export.quantize import QUANTIZERS, quantize
from edgekit.export.sensor import SensorExporter
from edgekit.export.text import TextExporter
from edgekit.profiles import TargetProfile, load_profile
from edgekit.run import load_run
from edgekit.runtime.engine import self_test

__all__ = ["EXPORTERS", "ExportOptions", "convert_fp32", "export_model", "export_run", "variant_files"]

log = logging.getLogger(__name__)

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")

# run.json kind -> the exporter supplying that kind's pieces (edgekit.run validates the kind)
EXPORTERS: dict[str, type[ModelExporter]] = {"sensor": SensorExporter, "text": TextExporter}


def export_run(
    run_dir: str | Path,
    profile: TargetProfile | str | Path,
    out: str | Path,
    key: str | Path | None = None,
    options: ExportOptions | None = None,
) -> Path:
    """Export RUN_DIR's model for `profile` into bundle folder `out` (+ out.tar.gz); dispatches on run.json kind."""
    opts = options or ExportOptions()
    if not SEMVER.match(opts.version):
        raise ConfigError(f"model version {opts.version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    for mode in opts.variants or []:
        QUANTIZERS.get(mode)  # an unknown mode fails here, before the run is loaded
    prof = profile if isinstance(profile, TargetProfile) else load_profile(profile)
    run = load_run(run_dir)
    return export_model(EXPORTERS[run.kind](run, prof, opts), Path(out), key)


def variant_files(mode: str, default: str, stem: str = "model") -> tuple[str, str]:
    """(model file, golden file) of a variant: the default keeps model.onnx/golden.npz, as single-model bundles;
    another model of the bundle (`stem`: the cascade's teacher) gets teacher.onnx/teacher.golden.npz."""
    if stem != "model":
        return (
            (f"{stem}.onnx", f"{stem}.golden.npz")
            if mode == default
            else (f"{stem}.{mode}.onnx", f"{stem}.golden.{mode}.npz")
        )
    if mode == default:
        return "model.onnx", "golden.npz"
    return f"model.{mode}.onnx", f"golden.{mode}.npz"


@dataclass
class Shared:
    """What every variant's export reuses: the FP32 graph, its parity and the gate's FP32 reference."""

    fp32: Path
    bundle: Path
    torch_out: np.ndarray
    fp32_parity: Parity
    ref: GateModel
    base: Manifest


def _new_manifest(exporter: ModelExporter) -> Manifest:
    opts = exporter.options
    return Manifest(
        model_id=opts.model_id or model_id_for(exporter.run.info.dataset, exporter.model_name),
        model_version=opts.version,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        profile=exporter.profile.name,
        **exporter.manifest_fields(),
    )


def convert_fp32(exporter: ModelExporter, root: Path, bundle: Path) -> Shared:
    """FP32 ONNX under `root`, parity vs torch (GateError when off), and the gate's FP32 reference: a
    bundle-shaped folder `root/fp32` (model.onnx + manifest, the run's threshold) that engines load."""
    work, ref_dir = root / "work", root / "fp32"
    for d in (work, ref_dir):
        d.mkdir(parents=True)
    fp32 = exporter.to_onnx(work)
    torch_out = exporter.torch_outputs()
    fp32_parity = compare(torch_out, exporter.onnx_outputs(fp32), exporter.parity_threshold)
    require_parity(
        fp32_parity, exporter.profile.gate.parity_atol, f"{exporter.model_name} (fp32 ONNX vs torch)"
    )
    manifest = _new_manifest(exporter)
    # the FP32 reference as a bundle-shaped folder, so both models are scored through the same code path
    shutil.copyfile(fp32, ref_dir / manifest.model_file)
    manifest.save(ref_dir)
    return Shared(fp32, bundle, torch_out, fp32_parity, exporter.gate_model(ref_dir, manifest), manifest)


def export_model(exporter: ModelExporter, out: Path, key: str | Path | None = None) -> Path:
    """The export skeleton: ONNX, parity vs torch, then per variant quantize, op check, release gate and golden
    pairs; with a cascade the teacher too (one variant, the default mode) and the escalation rule; manifest,
    seal, self-test of every model and an all-or-nothing publish of `out` (+ out.tar.gz).
    Raises GateError when any model is refused."""
    prof, opts = exporter.profile, exporter.options
    modes = exporter.modes
    if opts.cascade is not None and not exporter.supports_cascade:
        raise ConfigError(f"--cascade: {exporter.kind} runs cannot carry a cascade yet (sensor runs can)")
    with staging(out, opts.overwrite) as tmp:
        bundle = tmp / "bundle"
        bundle.mkdir()
        shared = convert_fp32(exporter, tmp / "student", bundle)
        manifest = shared.base
        variants = [_export_variant(exporter, shared, mode, modes) for mode in modes]

        default = variants[0]
        manifest.model_file, manifest.golden, manifest.threshold = (
            default.model_file,
            default.golden,
            default.threshold,
        )
        manifest.quantization = default.quantization
        if len(variants) > 1:
            manifest.variants = variants
        manifest.reference = exporter.reference(bundle, manifest)
        report = exporter.run.report()
        manifest.metrics = {
            "teacher": report.get("teacher"),
            "distilled": report.get(exporter.report_row),
            **default.metrics,
            **exporter.extra_metrics(),
        }
        target = exporter.escalation_target()
        if target.severe_classes:
            manifest.metrics["severe_recall_gate"] = severe_gate(exporter, (bundle, manifest), target, report)
        if opts.cascade is not None:
            teacher_dir, teacher_view, teacher = _export_teacher(exporter, tmp, bundle, modes[0])
            manifest.cascade, manifest.metrics["cascade"] = cascade_rule(
                exporter, (bundle, manifest), (teacher_dir, teacher_view), target
            )
            manifest.cascade.mode = opts.cascade
            manifest.cascade.teacher = teacher if opts.cascade == "local" else None
        manifest.provenance = provenance(
            exporter.run.path,
            exporter.provenance_files,
            {
                "source_model": exporter.source_model,
                "exporter": exporter.converter,
                "opset": model_opset(bundle / manifest.model_file),
                **opts.extra_provenance,
            },
        )
        seal(bundle, manifest, key)
        for name in manifest.variant_names():
            self_test(bundle, manifest.for_variant(name), prof)
        if manifest.cascade is not None and manifest.cascade.teacher is not None:
            self_test(bundle, manifest.for_cascade_teacher(), prof)
        publish(bundle, out, opts.overwrite)
    log.info(
        "wrote %s bundle %s (%s, %s) and %s.tar.gz", exporter.kind, out, prof.name, ", ".join(modes), out.name
    )
    return out


def _export_variant(
    exporter: ModelExporter, shared: Shared, mode: str, modes: list[str], stem: str = "model"
) -> Variant:
    """Convert, check and gate one variant, and write its golden pairs into the staged bundle."""
    prof, bundle = exporter.profile, shared.bundle
    quantizer = QUANTIZERS.get(mode)
    model_file, golden_file = variant_files(mode, modes[0], stem)
    model = bundle / model_file
    calib = exporter.calibration() if quantizer.needs_calibration else None
    settings = quantize(mode, shared.fp32, model, prof.quantization, calib, exporter.input_name)
    check_model(model)
    ops = check_ops(model, prof)
    cand_parity = compare(shared.torch_out, exporter.onnx_outputs(model), exporter.parity_threshold)
    view = replace(
        shared.base,
        model_file=model_file,
        golden=Golden(golden_file, atol=quantizer.golden_atol, rtol=quantizer.golden_rtol),
    )
    cand = None if mode == "fp32" else exporter.gate_model(bundle, view)
    gate = release_gate(
        shared.ref,
        cand,
        exporter.metric,
        prof,
        mode,
        latency_runs=exporter.options.latency_runs,
        device_decides=mode != "fp32" and "fp32" in modes,
    )
    candidate = gate.pop("candidate")
    exporter.finish(bundle, view, candidate)
    write_golden(bundle, view, **exporter.golden(bundle, view))
    metrics = {
        "test": candidate,
        "parity": {
            "fp32_vs_torch": shared.fp32_parity.to_dict(),
            "bundle_vs_torch": cand_parity.to_dict(),
            "atol": prof.gate.parity_atol,
        },
        "gate": gate,
        "opcheck": ops.to_dict(),
    }
    return Variant(mode, mode, model_file, view.golden, view.threshold, settings, metrics)


def _export_teacher(
    exporter: ModelExporter, tmp: Path, bundle: Path, mode: str
) -> tuple[Path, Manifest, Variant]:
    """The run's teacher through the same steps as the student (ONNX, parity, quantize in the bundle's default
    mode, op check, release gate vs its FP32, golden pairs): into the bundle for a local cascade; for a remote
    one into a folder beside it that is not shipped (the rule is chosen on its outputs all the same).
    Returns (its folder, its manifest view, its Variant named "teacher")."""
    teacher = exporter.for_model("teacher")
    where = bundle if exporter.options.cascade == "local" else tmp / "remote-teacher"
    where.mkdir(exist_ok=True)
    shared = convert_fp32(teacher, tmp / "teacher", where)
    v = _export_variant(teacher, shared, mode, [mode], stem="teacher")
    view = replace(
        shared.base,
        model_file=v.model_file,
        golden=v.golden,
        threshold=v.threshold,
        quantization=v.quantization,
    )
    return where, view, replace(v, name="teacher")
