"""Ship a trained model: a weights-and-hyperparameters-only copy of a training checkpoint.

    python -m utils.training.export SRC.ckpt DST.ckpt [--zero-output]

Reads SRC through the safe loader, keeps `state_dict`, `hyper_parameters`, the step/epoch it was
saved at and an average's `averaged_from` (for the model card), drops optimizer, loop and RNG state,
and writes DST atomically. The result loads like any checkpoint (`load_diffvel`,
`run_test.py comp_modelckpt=DST`). `--zero-output` also zeroes the network's output projection (the
last 1x1 convolution, `output_projection`), so that the copy outputs 0 everywhere: the start of a DiffVel+
`loudness_residual` fine-tuning, which then outputs the loudness regression's reading alone (model/loudness.py).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch

from utils.atomic import atomic_write_bytes
from utils.checks import report_error
from utils.training.checkpoint import CheckpointError, load_checkpoint

OUTPUT_PROJECTION = ("output_projection.weight", "output_projection.bias")  # the network's last layer
KEPT = ("state_dict", "hyper_parameters", "global_step", "epoch", "pytorch-lightning_version", "averaged_from")


def slim_copy(checkpoint: dict) -> dict:
    """The shippable part of a loaded checkpoint: KEPT entries, tensors detached and contiguous."""
    slim = {key: checkpoint[key] for key in KEPT if key in checkpoint}
    slim["state_dict"] = {key: value.detach().clone().contiguous() for key, value in slim["state_dict"].items()}
    return slim


def write_checkpoint(checkpoint: dict, destination: Path) -> None:
    """torch.save `checkpoint` to `destination` atomically (temp file, then rename)."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write_bytes(destination, buffer.getvalue())


def zero_output(slim: dict, source: Path) -> None:
    """Zero the network's output projection in `slim` (in place); CheckpointError naming `source` if it has none."""
    missing = [key for key in OUTPUT_PROJECTION if key not in slim["state_dict"]]
    if missing:
        raise CheckpointError(f"{source}: no {missing[0]} to zero (not a DiffVel network)")
    for key in OUTPUT_PROJECTION:
        slim["state_dict"][key].zero_()


def export(source: Path, destination: Path, zero: bool = False) -> dict:
    """Write the slim copy of `source` (its output projection zeroed if `zero`) to `destination`; returns it."""
    if source.resolve() == destination.resolve():
        raise ValueError(f"{destination}: the export would overwrite its source")
    slim = slim_copy(load_checkpoint(source))
    if zero:
        zero_output(slim, source)
    write_checkpoint(slim, destination)
    return slim


def summary(destination: Path, slim: dict) -> str:
    """'<file>: 1.23 M parameters, step N, 4.5 MB' for the command line."""
    n = sum(v.numel() for v in slim["state_dict"].values())
    return (f"{destination}: {n / 1e6:.2f} M parameters, step {slim.get('global_step')}, "
            f"{destination.stat().st_size / 1e6:.1f} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="training checkpoint (e.g. .../checkpoints/last.ckpt)")
    parser.add_argument("destination", type=Path, help="slim checkpoint to write (e.g. pretrained/diffvel_plus.ckpt)")
    parser.add_argument("--zero-output", action="store_true",
                        help="zero the output projection (the start of a loudness_residual fine-tuning)")
    args = parser.parse_args(argv)
    try:
        slim = export(args.source, args.destination, zero=args.zero_output)
    except (FileNotFoundError, CheckpointError, ValueError, OSError) as error:
        return report_error(error)
    print(summary(args.destination, slim))
    return 0


if __name__ == "__main__":
    sys.exit(main())
