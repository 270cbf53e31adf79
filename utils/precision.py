"""Numeric precision of inference: bfloat16 only where the processor runs it natively, fp32 elsewhere.

`precision=auto` (the `sampling=fast` preset) picks bf16 on a CUDA GPU with native bf16, or on a CPU
with AVX-512 BF16 or AMX (oneDNN's bf16 kernels); anywhere else it runs fp32 and logs why. An
explicit `precision=bf16` is honoured everywhere (with a warning where it is emulated, hence slow).
`float32_matmul_precision` is torch.set_float32_matmul_precision (TF32 on NVIDIA GPUs for 'high').
"""
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PRECISION_CHOICES = ("fp32", "bf16", "auto")
MATMUL_PRECISIONS = ("highest", "high", "medium")
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The instruction-set flags the kernel reports for the first CPU (empty where unreadable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device: torch.device, flags: set[str] | None = None) -> tuple[bool, str]:
    """(whether `device` runs bfloat16 natively, the reason in words)."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{torch.cuda.get_device_name(device)} supports bf16 natively"
        return False, f"{torch.cuda.get_device_name(device)} has no native bf16"
    if device.type != "cpu":
        return False, f"no bf16 check for device type {device.type!r}"
    found = sorted((cpu_flags() if flags is None else flags) & set(NATIVE_BF16_CPU_FLAGS))
    if found:
        return True, f"the CPU has {' and '.join(found)}"
    capability = torch.backends.cpu.get_cpu_capability()
    return False, f"the CPU has neither {' nor '.join(NATIVE_BF16_CPU_FLAGS)} (torch CPU capability {capability})"


def resolve_precision(requested: str, device: torch.device, flags: set[str] | None = None) -> str:
    """'fp32' or 'bf16' for a requested precision ('fp32' | 'bf16' | 'auto'), logging the choice."""
    if requested not in PRECISION_CHOICES:
        raise ValueError(f"precision {requested!r} is not one of {PRECISION_CHOICES}")
    if requested == "fp32":
        return "fp32"
    native, reason = native_bf16(device, flags)
    if requested == "bf16":
        if not native:
            log.warning("precision=bf16 on %s: %s, so bf16 is emulated and likely slower than fp32", device, reason)
        return "bf16"
    log.info("precision=auto on %s: %s, using %s", device, reason, "bf16" if native else "fp32 (fallback)")
    return "bf16" if native else "fp32"


def apply_matmul_precision(value: str) -> None:
    """torch.set_float32_matmul_precision(value); 'highest' (the default) is torch's own default."""
    if value not in MATMUL_PRECISIONS:
        raise ValueError(f"float32_matmul_precision {value!r} is not one of {MATMUL_PRECISIONS}")
    torch.set_float32_matmul_precision(value)
    if value != "highest":
        log.info("float32_matmul_precision=%s: float32 matmuls may use TF32/bf16 internally (numbers change)", value)
