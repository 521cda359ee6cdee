"""`edgekit bench` of a multi-variant bundle: the device's chosen variant first, its other variants interleaved."""

from __future__ import annotations

import shutil

from edgekit.bench import BenchConfig, run_bench
from edgekit.runtime.tune import tune_release


def test_bench_compares_the_variants_a_bundle_carries(variant_bundle, tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(variant_bundle, bundle)
    tune_release(bundle, None, [1], variant="int8-dynamic", budget_s=0.02)  # as `device tune --variant`
    report = run_bench(
        BenchConfig(bundle=str(bundle), compare=["variant:all"], runs=30, warmup=5, plots=False)
    )
    rows = report["variants"]
    assert [r["name"] for r in rows] == ["b", "b:fp32", "b:int8-static-qdq"]
    assert [r["variant"] for r in rows] == ["int8-dynamic", "fp32", "int8-static-qdq"]
    assert [r["quantization"]["mode"] for r in rows] == ["int8-dynamic", "fp32", "int8-static-qdq"]
    one = run_bench(BenchConfig(bundle=str(bundle), compare=["variant:fp32"], runs=10, warmup=2, plots=False))
    assert [r["variant"] for r in one["variants"]] == ["int8-dynamic", "fp32"]
