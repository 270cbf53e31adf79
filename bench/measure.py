"""Machine measurements shared by the benchmarks: load, peak memory, matmul peak, FLOP counts, output.

Import this module before torch in a benchmark script: it sets OMP_WAIT_POLICY=PASSIVE (override by
setting it): on a shared machine, spinning OpenMP threads that wait for a busy core made 2-thread
timings up to 60x slower and erratic.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the first torch import

import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from utils.atomic import atomic_write_bytes  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def compose_config(config_name: str, overrides) -> DictConfig:
    """A config of config/ with overrides, as the entry scripts compose it."""
    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def load_1min() -> float:
    return os.getloadavg()[0]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak resident memory (bytes) of this process while the block runs, sampled every 5 ms.

    On CUDA it reports the peak allocated device memory instead. Without /proc (not Linux) it
    falls back to the process-wide ru_maxrss, which never decreases.
    """

    def __init__(self, device: torch.device):
        self.device, self.peak, self._stop = device, 0, threading.Event()
        self._proc = os.path.exists("/proc/self/statm")

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(0.005)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self._proc:
            self.peak = _rss_bytes()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        elif self._proc:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())
        else:
            import resource

            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return False


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gflops(device: torch.device, dtype=torch.float32, sizes=(1024, 2048), repeats: int = 8) -> float:
    """The machine's practical peak: best GFLOP/s of square matmuls in `dtype` over sizes and repeats."""
    best = 0.0
    for n in sizes:
        a = torch.randn((n, n), device=device).to(dtype)
        b = torch.randn((n, n), device=device).to(dtype)
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            torch.mm(a, b)
            _sync(device)
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def machine_peaks(device: torch.device) -> dict:
    """Matmul peak GFLOP/s per precision ("fp32", "bf16")."""
    return {"fp32": peak_gflops(device), "bf16": peak_gflops(device, torch.bfloat16)}


def count_flops(fn) -> int:
    """Floating-point operations (multiply-add = 2) of fn() by torch's FLOP counter (FFTs not counted)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def load_text() -> str:
    """The 1, 5 and 15 minute load averages, e.g. '1.46 2.10 2.30'."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def emit_table(table: str, out=None) -> None:
    """Print a Markdown result table and, if `out` is given, write it there atomically."""
    print()
    print(table)
    if out:
        atomic_write_bytes(out, (table + "\n").encode())
