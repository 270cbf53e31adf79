"""Average the weights of several checkpoints of one run (checkpoint averaging, as in SWA).

    python -m utils.training.average DST.ckpt SRC.ckpt SRC.ckpt [SRC.ckpt ...]

Late checkpoints of one training run scatter around a minimum; their uniform weight mean usually
lies nearer to it than any single one, and it removes the luck of picking one checkpoint. Every
source is read through the safe loader and must have the same parameters and the same
hyperparameters, apart from TRAINING_ONLY ones (taken from the first source). DST is a slim
checkpoint like `utils.training.export` writes, with `averaged_from` naming each source and its step,
and the latest source's step and epoch as its own (none where a source has none). It is written
atomically; a source is never overwritten.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from utils.checks import report_error
from utils.training.checkpoint import TRAINING_ONLY_KEYS, CheckpointError, load_checkpoint
from utils.training.export import slim_copy, summary, write_checkpoint

# hyperparameters that shape only the training loop: sources may differ in them (the model's training-only
# arguments and the task's)
TRAINING_ONLY = frozenset({*TRAINING_ONLY_KEYS, "lr", "inpainting_t", "inpainting_f", "debug"})


def check_compatible(path: Path, checkpoint: dict, first: dict) -> None:
    """Raise, naming `path` and the first differing key, unless `checkpoint` can be averaged with `first`."""
    hparams, wanted = checkpoint["hyper_parameters"], first["hyper_parameters"]
    for key in sorted(set(hparams) | set(wanted)):
        if key not in TRAINING_ONLY and hparams.get(key) != wanted.get(key):
            raise CheckpointError(f"{path}: hyperparameter {key}={hparams.get(key)!r} differs from the first "
                                  f"checkpoint's {wanted.get(key)!r}; only checkpoints of one model average")
    own, reference = checkpoint["state_dict"], first["state_dict"]
    if own.keys() != reference.keys():
        raise CheckpointError(f"{path}: its parameters differ from the first checkpoint's (not the same model)")
    for key, value in own.items():
        if value.shape != reference[key].shape:
            raise CheckpointError(f"{path}: parameter {key} has shape {tuple(value.shape)}, the first "
                                  f"checkpoint's {tuple(reference[key].shape)}")


def mean_state(states: list[dict], paths: list[Path]) -> dict:
    """Key-wise mean of floating-point tensors; any other tensor must be equal in every state."""
    averaged = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            averaged[key] = torch.stack([state[key].double() for state in states]).mean(0).to(value.dtype)
            continue
        for state, path in zip(states[1:], paths[1:]):
            if not torch.equal(state[key], value):
                raise CheckpointError(f"{path}: non-float entry {key} differs from the first checkpoint's")
        averaged[key] = value.clone()
    return averaged


def average(sources: list[Path], destination: Path) -> dict:
    """Write the weight mean of `sources` to `destination`; returns what was written."""
    if len(sources) < 2:
        raise ValueError("give at least two checkpoints to average")
    resolved = [source.resolve() for source in sources]
    if destination.resolve() in resolved:
        raise ValueError(f"{destination}: the average would overwrite one of its sources")
    repeated = next((source for source, path in zip(sources, resolved) if resolved.count(path) > 1), None)
    if repeated is not None:
        raise ValueError(f"{repeated}: given twice (it would count double in the mean)")
    checkpoints = [load_checkpoint(source) for source in sources]
    for source, checkpoint in zip(sources[1:], checkpoints[1:]):
        check_compatible(source, checkpoint, checkpoints[0])
    slim = slim_copy(checkpoints[0])
    slim["state_dict"] = mean_state([c["state_dict"] for c in checkpoints], sources)
    steps = [c.get("global_step") for c in checkpoints]
    for key in ("global_step", "epoch"):  # the latest source's; none when a source lacks it
        values = [c.get(key) for c in checkpoints]
        slim.pop(key, None)
        if all(value is not None for value in values):
            slim[key] = max(values)
    slim["averaged_from"] = [{"file": source.name, "global_step": step} for source, step in zip(sources, steps)]
    write_checkpoint(slim, destination)
    return slim


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("destination", type=Path, help="averaged checkpoint to write")
    parser.add_argument("sources", type=Path, nargs="+", help="checkpoints of one model (two or more)")
    args = parser.parse_args(argv)
    try:
        slim = average(args.sources, args.destination)
    except (FileNotFoundError, CheckpointError, ValueError, OSError) as error:
        return report_error(error)
    print(f"{summary(args.destination, slim)}, the mean of {len(args.sources)} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
