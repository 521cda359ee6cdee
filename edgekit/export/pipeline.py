"""`edgekit export`: RUN_DIR (from `edgekit distill`) + target profile -> verified, gated, signed bundle.

`export_run` reads the run folder and picks the kind's `ModelExporter`; `export_model` is the one skeleton
every kind goes through (optimum's `main_export` -> `onnx_export_from_model` is the model for this shape).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from pathlib import Path

from edgekit.bundle.install import self_test
from edgekit.bundle.manifest import Golden, Manifest
from edgekit.errors import ConfigError
from edgekit.export.exporter import ExportOptions, ModelExporter, model_id_for, provenance
from edgekit.export.gate import release_gate
from edgekit.export.onnx import check_model, compare, model_opset, require_parity
from edgekit.export.opcheck import check_ops
from edgekit.export.package import publish, seal, staging, write_golden
from edgekit.export.quantize import QUANTIZERS, quantize
from edgekit.export.sensor import SensorExporter
from edgekit.export.text import TextExporter
from edgekit.profiles import TargetProfile, load_profile
from edgekit.run import load_run

__all__ = ["EXPORTERS", "ExportOptions", "export_model", "export_run"]

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
    prof = profile if isinstance(profile, TargetProfile) else load_profile(profile)
    run = load_run(run_dir)
    return export_model(EXPORTERS[run.kind](run, prof, opts), Path(out), key)


def export_model(exporter: ModelExporter, out: Path, key: str | Path | None = None) -> Path:
    """The export skeleton: ONNX, parity vs torch, quantize, op check, release gate, manifest, golden pairs,
    seal, self-test and an all-or-nothing publish of `out` (+ out.tar.gz). Raises GateError on a refusal."""
    prof, opts = exporter.profile, exporter.options
    mode = prof.quantization.mode
    quantizer = QUANTIZERS.get(mode)
    with staging(out, opts.overwrite) as tmp:
        work, bundle, ref_dir = tmp / "work", tmp / "bundle", tmp / "fp32"
        for d in (work, bundle, ref_dir):
            d.mkdir()
        fp32 = exporter.to_onnx(work)
        torch_out = exporter.torch_outputs()
        fp32_parity = compare(torch_out, exporter.onnx_outputs(fp32), exporter.parity_threshold)
        require_parity(fp32_parity, prof.gate.parity_atol, f"{exporter.model_name} (fp32 ONNX vs torch)")

        model = bundle / "model.onnx"
        calib = exporter.calibration() if quantizer.needs_calibration else None
        settings = quantize(mode, fp32, model, prof.quantization, calib, exporter.input_name)
        check_model(model)
        ops = check_ops(model, prof)
        cand_parity = compare(torch_out, exporter.onnx_outputs(model), exporter.parity_threshold)

        manifest = Manifest(
            model_id=opts.model_id or model_id_for(exporter.run.info.dataset, exporter.model_name),
            model_version=opts.version,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            profile=prof.name,
            golden=Golden(atol=quantizer.golden_atol, rtol=quantizer.golden_rtol),
            **exporter.manifest_fields(),
        )
        manifest.save(bundle)
        # the FP32 reference as a bundle-shaped folder, so both models are scored through the same code path
        shutil.copyfile(fp32, ref_dir / manifest.model_file)
        manifest.save(ref_dir)
        ref = exporter.gate_model(ref_dir, manifest)
        cand = None if mode == "fp32" else exporter.gate_model(bundle, manifest)
        gate = release_gate(ref, cand, exporter.metric, prof, mode, latency_runs=opts.latency_runs)
        candidate = gate.pop("candidate")

        exporter.finish(bundle, manifest, candidate)
        write_golden(bundle, manifest, **exporter.golden(bundle, manifest))
        report = exporter.run.report()
        manifest.quantization = settings
        manifest.metrics = {
            "teacher": report.get("teacher"),
            "distilled": report.get(exporter.report_row),
            "test": candidate,
            "parity": {
                "fp32_vs_torch": fp32_parity.to_dict(),
                "bundle_vs_torch": cand_parity.to_dict(),
                "atol": prof.gate.parity_atol,
            },
            "gate": gate,
            "opcheck": ops.to_dict(),
            **exporter.extra_metrics(),
        }
        manifest.provenance = provenance(
            exporter.run.path,
            exporter.provenance_files,
            {
                "source_model": exporter.source_model,
                "exporter": exporter.converter,
                "opset": model_opset(model),
                **opts.extra_provenance,
            },
        )
        seal(bundle, manifest, key)
        self_test(bundle, manifest, prof)
        publish(bundle, out, opts.overwrite)
    log.info("wrote %s bundle %s (%s, %s) and %s.tar.gz", exporter.kind, out, prof.name, mode, out.name)
    return out
