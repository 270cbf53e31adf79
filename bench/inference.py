"""Per-segment inference time of DiffVel: the published loop against every fast path.

    python -m bench.inference --model both --threads 2 [--steps-to-time 4] [--out bench.md]
    python -m bench.inference --model full --key-only     # published loop vs the sampling=fast config

Each setting is timed through `task.sampling.sample_velocity` on random weights and random inputs
(speed does not depend on the weights). The published loop (2 full passes per step, spectrogram
recomputed in each) is timed for --steps-to-time steps and extrapolated linearly to 200; the fast
paths are timed at k = 1 and 1 + --steps-to-time steps, fitted as setup + k * per-step, and every other
k is measured directly when one run fits in --direct-budget seconds, else extrapolated from the fit.
The table says which. Times are the minimum over --repeats runs (the machine is shared); the 1-minute
load average is printed beside each row. Prints a Markdown table to paste into docs/speed.md.

OMP_WAIT_POLICY defaults to PASSIVE here (set it to ACTIVE to override; see bench/measure.py).
"""
import os

from bench.measure import (PeakMemory, _sync, compose_config, emit_table, load_1min, load_text,  # isort: skip
                           machine_peaks)

import argparse  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from bench.workload import PAPER_STEPS, make_model, network_flops, random_segments  # noqa: E402
from task.sampling import sample_velocity  # noqa: E402
from utils import tables  # noqa: E402
from utils.precision import native_bf16, resolve_precision  # noqa: E402

FAST_KS = (1, 2, 5, 10, 20, 50)
@dataclass(frozen=True)
class Setting:
    """One way of sampling; `batch` segments go through the sampler together."""

    label: str
    sampler: str = "ddim_x0"
    exact_savings: bool = True
    batch: int = 1
    precision: str = "fp32"
    compile: bool = False
    w: float = 0.0


@dataclass
class Row:
    model: str
    setting: Setting
    steps: int
    seconds: float  # per segment
    how: str
    flops: int  # per segment
    peak_mb: float
    load: float


def time_run(model, setting: Setting, steps: int, repeats: int, device: torch.device) -> float:
    """Best wall time (s) per segment of sampling one batch with `steps` visited steps."""
    waveform, score = random_segments(setting.batch)
    best = float("inf")
    for _ in range(repeats):
        generators = [torch.Generator().manual_seed(i) for i in range(setting.batch)]
        _sync(device)
        start = time.perf_counter()
        sample_velocity(
            model, waveform, score, sampler=setting.sampler, w=setting.w, steps=steps, generator=generators,
            exact_savings=setting.exact_savings, precision=setting.precision, compile=setting.compile,
        )
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best / setting.batch


def warm_up(model, setting: Setting, device: torch.device) -> float:
    """One 1-step run (allocations, oneDNN kernels, torch.compile); returns its wall time."""
    start = time.perf_counter()
    time_run(model, setting, 1, 1, device)
    return time.perf_counter() - start


def measure_curve(model, setting, ks, probe, repeats, budget, device):
    """Seconds per segment for each k in ks: {k: (seconds, how)} from a setup + k * step fit.

    The probe step counts are always measured; another k is measured when one batch run is predicted
    to take at most `budget` seconds, else extrapolated.
    """
    measured = {k: time_run(model, setting, k, repeats, device) for k in probe}
    slope = (measured[probe[1]] - measured[probe[0]]) / (probe[1] - probe[0])
    setup = measured[probe[0]] - slope * probe[0]
    result = {}
    for k in ks:
        predicted = setup + slope * k
        if k not in measured and predicted * setting.batch <= budget:
            measured[k] = time_run(model, setting, k, repeats, device)
        if k in measured:
            result[k] = (measured[k], "measured")
        else:
            result[k] = (predicted, f"extrapolated (fit of k={probe[0]},{probe[1]})")
    return result


def bench_model(kind: str, args, device: torch.device, notes: list) -> list[Row]:
    """All rows of one model: the published loop, then each fast path."""
    model = make_model(kind, device)
    flops = network_flops(model, device)
    n = min(args.steps_to_time, PAPER_STEPS)
    probe = (1, 1 + args.steps_to_time)
    rows = []

    def add(setting, results, peak):
        for k, (seconds, how) in results.items():
            rows.append(Row(kind, setting, k, seconds, how, flops.per_segment(setting, k),
                            peak / 2**20, load_1min()))

    published = Setting("published loop (2 passes, spectrogram per pass)", "cfdg_ddpm_x0", exact_savings=False)
    warm_up(model, published, device)
    with PeakMemory(device) as mem:
        per_step = time_run(model, published, n, args.repeats, device) / n
    how = "measured" if n == PAPER_STEPS else f"extrapolated x{PAPER_STEPS}/{n} (timed {n} steps)"
    add(published, {PAPER_STEPS: (per_step * PAPER_STEPS, how)}, mem.peak)

    families = [(Setting("exact savings, strided DDPM", "cfdg_ddpm_x0"), FAST_KS + (PAPER_STEPS,)),
                (Setting("exact savings, DDIM"), FAST_KS),
                (Setting(f"batched x{args.batch}, strided DDPM", "cfdg_ddpm_x0", batch=args.batch), (10, PAPER_STEPS)),
                (Setting(f"batched x{args.batch}, DDIM", batch=args.batch), (10,)),
                (Setting("bf16 autocast, DDIM", precision="bf16"), (10,)),
                (Setting(f"bf16 autocast, batched x{args.batch}, DDIM", precision="bf16", batch=args.batch), (10,))]
    if not args.skip_compile:
        families += [(Setting("torch.compile, DDIM", compile=True), (10,)),
                     (Setting("torch.compile + bf16, DDIM", compile=True, precision="bf16"), (10,))]
    for setting, ks in families:
        first = warm_up(model, setting, device)
        if setting.compile:
            notes.append(f"{kind}: first call of '{setting.label}' (compilation) took {first:.1f} s, excluded")
        with PeakMemory(device) as mem:
            results = measure_curve(model, setting, ks, probe, args.repeats, args.direct_budget, device)
        add(setting, results, mem.peak)
    return rows


def key_comparison(kind: str, args, device: torch.device) -> list[Row]:
    """The published loop against the `sampling=fast` config, both timed directly (no fit)."""
    model = make_model(kind, device)
    flops = network_flops(model, device)
    fast_cfg = compose_config("inference", ["sampling=fast"])
    precision = resolve_precision(fast_cfg.precision, device)  # bf16 only where native, as run_test.py
    fast_cfg = fast_cfg.task.sampling
    fast = Setting(f"sampling=fast config, batched x{args.batch}, {precision}", fast_cfg.type, batch=args.batch,
                   w=float(fast_cfg.w), precision=precision)
    published = Setting("published loop (2 passes, spectrogram per pass)", "cfdg_ddpm_x0", exact_savings=False)
    n = min(args.steps_to_time, PAPER_STEPS)
    rows = []
    for setting, steps in ((published, n), (fast, int(fast_cfg.steps))):
        warm_up(model, setting, device)
        with PeakMemory(device) as mem:
            seconds = time_run(model, setting, steps, args.repeats, device)
        if setting is published:
            seconds, how, steps = seconds / n * PAPER_STEPS, f"extrapolated x{PAPER_STEPS}/{n} (timed {n} steps)", PAPER_STEPS
        else:
            how = "measured"
        rows.append(Row(kind, setting, steps, seconds, how, flops.per_segment(setting, steps),
                        mem.peak / 2**20, load_1min()))
    return rows


def interleaved_options(kind: str, args, device: torch.device) -> list[Row]:
    """fp32 / bf16 / compile / compile + bf16 on the DDIM path, timed in interleaved rounds.

    Round r times every option once, so load from other processes hits all options alike; each
    option keeps its best round. Steps: 1 + --steps-to-time, batch 1 and --batch.
    """
    model = make_model(kind, device)
    flops = network_flops(model, device)
    steps = 1 + args.steps_to_time
    options = [Setting(f"DDIM, {label}, batch {batch}", precision=precision, compile=compiled, batch=batch)
               for batch in (1, args.batch)
               for label, precision, compiled in (("fp32", "fp32", False), ("bf16", "bf16", False),
                                                  ("compile", "fp32", True), ("compile + bf16", "bf16", True))
               if compiled is False or not args.skip_compile]
    for setting in options:
        warm_up(model, setting, device)
    best = {setting: float("inf") for setting in options}
    for _ in range(args.repeats):
        for setting in options:
            best[setting] = min(best[setting], time_run(model, setting, steps, 1, device))
    return [Row(kind, setting, steps, best[setting], f"interleaved, best of {args.repeats} rounds",
                flops.per_segment(setting, steps), float("nan"), load_1min()) for setting in options]


def markdown_table(rows: list[Row], peaks: dict) -> str:
    """One line per row; speed-up against the published loop of the same model in the same run."""
    # the published loop, or (interleaved mode) the fp32 eager batch-1 setting
    baseline = {r.model: r.seconds for r in rows if not r.setting.exact_savings}
    for r in rows:
        if r.model not in baseline and r.setting.precision == "fp32" and not r.setting.compile:
            baseline[r.model] = r.seconds
    header = ("model", "setting", "steps", "batch", "s / segment", "speed-up", "GFLOP/s", "% of peak", "peak RSS MB",
              "load 1 min", "how")
    cells = []
    for r in rows:
        gflops = r.flops / r.seconds / 1e9
        peak = peaks["bf16" if r.setting.precision == "bf16" else "fp32"]
        cells.append([r.model, r.setting.label, r.steps, r.setting.batch, f"{r.seconds:.3g}",
                      f"{baseline[r.model] / r.seconds:.1f}x", f"{gflops:.1f}", f"{100 * gflops / peak:.0f}%",
                      f"{r.peak_mb:.0f}", f"{r.load:.2f}", r.how])
    return tables.markdown_table(header, cells, "llrrrrrrrrl")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("full", "small", "both"), default="both")
    parser.add_argument("--steps-to-time", type=int, default=4,
                        help="steps of the published loop to time (extrapolated to 200); fits use k=1 and 1+N")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=2, help="runs per measurement; the minimum is kept")
    parser.add_argument("--batch", type=int, default=4, help="segments per batch in the batched settings")
    parser.add_argument("--direct-budget", type=float, default=8.0,
                        help="measure a step count directly when one batch run is predicted to take <= this (s)")
    parser.add_argument("--skip-compile", action="store_true", help="leave out the torch.compile settings")
    parser.add_argument("--key-only", action="store_true", help="only the published loop vs the sampling=fast config")
    parser.add_argument("--interleaved-options", action="store_true",
                        help="only fp32 / bf16 / compile / compile+bf16 (DDIM), timed in interleaved rounds; "
                             "speed-up is against fp32 eager batch 1")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    if args.steps_to_time < 1:
        parser.error("--steps-to-time must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kinds = ("full", "small") if args.model == "both" else (args.model,)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"load {load_text()}; bf16 native: {'yes' if native_bf16(device)[0] else 'no'} ({native_bf16(device)[1]})")
    peaks_before = machine_peaks(device)
    rows, notes = [], []
    for kind in kinds:
        start = time.perf_counter()
        if args.key_only:
            rows += key_comparison(kind, args, device)
        elif args.interleaved_options:
            rows += interleaved_options(kind, args, device)
        else:
            rows += bench_model(kind, args, device, notes)
        print(f"{kind}: benchmarked in {time.perf_counter() - start:.0f} s", flush=True)
    peaks_after = machine_peaks(device)  # measured twice: a busy moment must not lower the peak
    peaks = {key: max(peaks_before[key], peaks_after[key]) for key in peaks_before}
    print(f"peak matmul (best of 1024/2048 square, before / after): fp32 {peaks_before['fp32']:.0f} / "
          f"{peaks_after['fp32']:.0f} GFLOP/s, bf16 {peaks_before['bf16']:.0f} / {peaks_after['bf16']:.0f} GFLOP/s")
    emit_table(markdown_table(rows, peaks), args.out)
    for note in notes:
        print(f"- {note}")
    print(f"- times are the best of {args.repeats} runs; 'extrapolated' rows are setup + k x per-step from timed runs")
    print(f"- load average at the end: {load_text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
