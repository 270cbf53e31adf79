"""bf16 only where native (AVX-512 BF16 / AMX on CPU), fp32 elsewhere with the reason; matmul precision key."""
import logging

import pytest
import torch

from utils.precision import apply_matmul_precision, cpu_flags, native_bf16, resolve_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize("flags, native", [({"avx2", "fma"}, False), ({"avx512f", "avx512bw"}, False),
                                           ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16", "amx_tile"}, True)])
def test_native_bf16_needs_avx512_bf16_or_amx(flags, native):
    assert native_bf16(CPU, flags)[0] is native


def test_auto_falls_back_to_fp32_with_the_reason(caplog):
    with caplog.at_level(logging.INFO, logger="utils.precision"):
        assert resolve_precision("auto", CPU, {"avx2"}) == "fp32"
    (message,) = [r.getMessage() for r in caplog.records]
    assert "neither avx512_bf16 nor amx_bf16" in message and "fp32 (fallback)" in message
    assert resolve_precision("auto", CPU, {"amx_bf16"}) == "bf16"


def test_explicit_precisions_are_honoured_and_unknown_ones_named(caplog):
    assert resolve_precision("fp32", CPU, {"amx_bf16"}) == "fp32"
    with caplog.at_level(logging.WARNING, logger="utils.precision"):
        assert resolve_precision("bf16", CPU, {"avx2"}) == "bf16"
    assert "emulated" in caplog.records[0].getMessage()
    with pytest.raises(ValueError, match="precision 'fp16' is not one of"):
        resolve_precision("fp16", CPU)


def test_cpu_flags_reads_the_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_matmul_precision_key():
    try:
        apply_matmul_precision("high")
        assert torch.get_float32_matmul_precision() == "high"
        with pytest.raises(ValueError, match="float32_matmul_precision 'tf32'"):
            apply_matmul_precision("tf32")
    finally:
        apply_matmul_precision("highest")
    assert torch.get_float32_matmul_precision() == "highest"


def test_config_defaults(compose):
    assert compose("inference").precision == "fp32"  # the paper's sampler: exact fp32
    assert compose("inference", ["sampling=fast"]).precision == "auto"  # bf16 where native
    assert compose("inference", ["sampling=fast", "precision=fp32"]).precision == "fp32"
    assert compose("inference").float32_matmul_precision == "highest"
    assert compose("spec_roll").float32_matmul_precision == "highest"
