"""Training side: torch -> ONNX, quantization, op checks, the release gate and the bundle writer.

Entry point: `edgekit.export.pipeline.export_run`. Nothing here is imported by the device side.
"""
