import pytest

from edgekit.errors import ConfigError
from edgekit.profiles import list_profiles, load_profile

REQUIRED = {
    "raspberry-pi-4",
    "raspberry-pi-5",
    "jetson-orin-nano",
    "jetson-xavier-nx",
    "nxp-imx8m-plus",
    "x86-gateway",
}


def test_all_shipped_profiles_load():
    names = set(list_profiles())
    assert names >= REQUIRED
    for name in names:
        prof = load_profile(name)
        assert prof.latency.budget_ms > 0 and prof.execution_providers


def test_jetson_uses_tensorrt_fp16_with_engine_cache():
    p = load_profile("jetson-orin-nano")
    assert p.quantization.mode == "fp16" and p.provider_names[0] == "TensorrtExecutionProvider"
    assert p.execution_providers[0].options["trt_engine_cache_enable"] is True


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("name: x\nthreads: {intra_op: two}\n", "field 'threads.intra_op' must be an integer"),
        ("name: x\nquantization: {mode: int4}\n", "field 'quantization.mode' must be one of"),
        (
            "name: x\nlatency: {budget_ms: -1}\n",
            "field 'latency.budget_ms' must be > 0 and <= 3600000; got -1",
        ),
        (
            "name: x\nexecution_providers: [{name: GPUExecutionProvider}]\n",
            r"field 'execution_providers\[0\].name' must be one of CPUExecutionProvider, .*; got 'GPUExecutionProvider'",
        ),
        ("name: x\nthreadz: 1\n", "field 'threadz' is not a known setting"),
        ("name: x\nopset: [\n", "invalid YAML"),
    ],
)
def test_bad_profile_names_field_and_file(tmp_path, yaml_text, message):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message) as exc:
        load_profile(p)
    assert "bad.yaml" in str(exc.value)


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ConfigError, match="raspberry-pi-4"):
        load_profile("toaster")
