"""The shipped checkpoints in pretrained/: size, safe loading and what the model card says they are."""
from pathlib import Path

import torch

from model.diffvel import load_diffvel
from utils.training.checkpoint import load_checkpoint

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"
MAX_BYTES = 25 * 1000 * 1000  # the limit per shipped file


def test_shipped_diffvel_plus_is_the_documented_mean_and_loads_safely():
    path = PRETRAINED / "diffvel_plus.ckpt"
    assert path.stat().st_size <= MAX_BYTES
    checkpoint = load_checkpoint(path)
    assert "optimizer_states" not in checkpoint  # weights and hyperparameters only
    assert [entry["global_step"] for entry in checkpoint["averaged_from"]] == [4251, 4709]  # runs L and H
    model = load_diffvel(path).eval()
    args = checkpoint["hyper_parameters"]
    assert type(model).__name__ == "DiffVelPlus" and args["absolute_level"] and args["note_pooling"]
    assert (args["residual_channels"], args["residual_layers"], args["kernel_size"]) == (128, 8, 9)  # as the card says
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
