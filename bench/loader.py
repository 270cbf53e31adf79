"""Training throughput on this machine: data-loader crops per second and small-model training steps per second.

    python -m bench.loader --root data/synth [--workers 0 2] [--crops 48] [--train-steps 10] [--threads 2]

The loader is the one training uses (MAESTRO dataset of the `dataset` config, EpochSampler,
`dataloader.train` options of experiment=cpu_small with num_workers replaced), read from a MAESTRO-layout
folder such as the synthetic corpus (`python -m utils.synth --out DIR --tiny`). Epochs are chained
(set_epoch) until --crops crops were delivered; the first batch (worker start-up) is timed apart.
Training steps are forward + backward + Adam on one fixed batch of --batch-size crops, so they measure
compute only. Prints a Markdown table.
"""
from bench.measure import PeakMemory, compose_config, emit_table, load_1min, load_text  # isort: skip

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from utils.checks import report_error  # noqa: E402
from utils.data.datasets import build_dataset  # noqa: E402
from utils.training.machinery import EpochSampler, build_model, make_loader  # noqa: E402


def training_config(root: Path, cache_dir: Path | None, batch_size: int):
    """The cpu_small training config pointed at `root`."""
    overrides = ["experiment=cpu_small", f"data_root={root.resolve()}", f"dataloader.train.batch_size={batch_size}"]
    if cache_dir is not None:
        overrides.append(f"dataset.train.cache_dir={cache_dir.resolve()}")
    return compose_config("spec_roll", overrides)


def loader_throughput(dataset, loader_cfg, workers: int, crops: int) -> dict:
    """Crops per second of the training loader with `workers` workers over chained epochs."""
    loader_cfg = OmegaConf.merge(loader_cfg, {"num_workers": workers})
    sampler = EpochSampler(dataset, seed=0)
    loader = make_loader(dataset, loader_cfg, sampler=sampler)
    delivered, epoch, first_batch = 0, 0, None
    start = time.perf_counter()
    with PeakMemory(torch.device("cpu")) as memory:
        while delivered < crops:
            sampler.set_epoch(epoch)
            for batch in loader:
                if first_batch is None:
                    first_batch = time.perf_counter() - start
                    steady_start, steady_crops = time.perf_counter(), 0
                else:
                    steady_crops += batch["audio"].shape[0]
                delivered += batch["audio"].shape[0]
                if delivered >= crops:
                    break
            epoch += 1
        steady = time.perf_counter() - steady_start
    return {"first_batch_s": first_batch, "crops": delivered,
            "crops_per_s": steady_crops / steady if steady_crops else float("nan"),
            "peak_mb": memory.peak / 2**20, "load": load_1min()}


def training_throughput(cfg, batch: dict, steps: int) -> dict:
    """Steps per second of forward + backward + Adam of the configured model on one fixed batch."""
    torch.manual_seed(0)
    model = build_model(cfg).train()
    optimizer = model.configure_optimizers()

    def train_step():
        loss, _ = model.step(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train_step()  # warm-up
    with PeakMemory(torch.device("cpu")) as memory:
        start = time.perf_counter()
        for _ in range(steps):
            train_step()
        seconds = time.perf_counter() - start
    parameters = sum(p.numel() for p in model.parameters())
    return {"steps_per_s": steps / seconds, "parameters": parameters, "peak_mb": memory.peak / 2**20,
            "load": load_1min()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("data/synth"), help="MAESTRO-layout folder")
    parser.add_argument("--cache-dir", type=Path, help="resampled-audio/label cache (default: beside the data)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--crops", type=int, default=48, help="crops to load per worker setting")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = training_config(args.root, args.cache_dir, args.batch_size)
    try:
        dataset = build_dataset(cfg.dataset, "train")
    except (FileNotFoundError, ValueError) as error:
        return report_error(error)
    print(f"{args.root}: {len(dataset)} training pieces, {torch.get_num_threads()} threads, "
          f"load {load_text()}", flush=True)
    lines = ["| measurement | value | first batch s | peak RSS MB | load 1 min |", "|---|---:|---:|---:|---:|"]
    for workers in args.workers:
        r = loader_throughput(dataset, cfg.dataloader.train, workers, args.crops)
        lines.append(f"| loader, {workers} workers, batch {args.batch_size} ({r['crops']} crops) | "
                     f"{r['crops_per_s']:.1f} crops/s | {r['first_batch_s']:.2f} | {r['peak_mb']:.0f} | {r['load']:.2f} |")
        print(lines[-1], flush=True)
    batch = next(iter(make_loader(dataset, OmegaConf.merge(cfg.dataloader.train, {"num_workers": 0}))))
    r = training_throughput(cfg, batch, args.train_steps)
    lines.append(f"| training, small model ({r['parameters'] / 1e6:.2f} M parameters), batch {args.batch_size}, "
                 f"forward+backward+Adam | {r['steps_per_s']:.2f} steps/s ({r['steps_per_s'] * args.batch_size:.1f} "
                 f"crops/s) | | {r['peak_mb']:.0f} | {r['load']:.2f} |")
    emit_table("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
