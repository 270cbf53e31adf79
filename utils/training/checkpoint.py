"""Loading checkpoints safely: torch's weights-only unpickler plus a short allowlist.

The authors' Lightning 1.6.4 checkpoints store some hyperparameters as pickled omegaconf objects,
which torch's default `weights_only=True` loader refuses. We admit exactly those few types and
nothing else; a file that needs any other global is refused with a clear error.
"""
import collections
import logging
import pickle
import re
import typing
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.base import ContainerMetadata, Metadata
from omegaconf.nodes import AnyNode

# omegaconf containers and node metadata, typing.Any (their element type) and the builtin containers
# that protocol-2 pickles name as globals (`__builtin__ list`, ...)
SAFE_GLOBALS = [
    DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, typing.Any,
    collections.defaultdict, dict, list, int,
]

log = logging.getLogger(__name__)

# constructor arguments that fix parameter shapes: a config must agree with the checkpoint on these
ARCHITECTURE_KEYS = ("residual_channels", "residual_layers", "kernel_size", "n_mels", "dilation_base", "dilation_bound")

# `model.args` keys that only shape training (dropout, loss weights, augmentations of the training crops):
# every other key, and the variant, changes what a loaded model outputs (utils.training.average adds the
# task's training-only hyperparameters)
TRAINING_ONLY_KEYS = ("spec_dropout", "note_loss_weight", "tilt_db", "eq_db", "brightness_db", "level_shift_db",
                      "level_shift_rate")


def refusable(key: str) -> bool:
    """Whether checkpoint_config_check=true refuses to take `key` (model.name or model.args.*) from the
    checkpoint when the config says otherwise: the variant and every key that changes the model's outputs."""
    return key == "model.name" or (key.startswith("model.args.") and key.split(".", 2)[2] not in TRAINING_ONLY_KEYS)


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, unsafe, or does not fit the model config."""


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint file with the restricted unpickler; hyperparameters come back as plain dicts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(err))
        if unsafe:  # a well-formed pickle that names a global outside the allowlist
            raise CheckpointError(f"{path}: refused to load, it holds {unsafe.group(1)}, outside the allowlist") from None
        raise CheckpointError(f"{path}: corrupt or not a PyTorch checkpoint (unreadable pickle)") from None
    except (PermissionError, IsADirectoryError) as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({err.strerror})") from None
    except Exception as err:  # noqa: BLE001 - torch raises KeyError, RuntimeError, EOFError... on bad bytes
        # one line, without torch's advice to retry with weights_only=False (never safe for untrusted files)
        raise CheckpointError(f"{path}: corrupt or not a PyTorch checkpoint ({type(err).__name__})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict' entry)")
    hparams = checkpoint.get("hyper_parameters") or {}
    checkpoint["hyper_parameters"] = {
        key: OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
        for key, value in hparams.items()
    }
    return checkpoint


def check_architecture(path, checkpoint_args: dict, config_args: dict) -> None:
    """Raise if the config's architecture arguments differ from those the checkpoint was trained with."""
    for key in ARCHITECTURE_KEYS:
        if key in checkpoint_args and key in config_args and checkpoint_args[key] != config_args[key]:
            raise CheckpointError(
                f"{path}: checkpoint has {key}={checkpoint_args[key]} but the config asks for "
                f"{key}={config_args[key]} (override model.args.{key} or use a matching checkpoint)"
            )


def check_state_dict(path, model: torch.nn.Module, state_dict: dict, may_lack: tuple = ()) -> None:
    """Raise with the first missing, unexpected or mis-shaped parameter instead of a long torch error.
    Parameters whose names start with one of `may_lack` may be missing from `state_dict`."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.startswith(tuple(may_lack))]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: parameters do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for key, value in state_dict.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"{path}: parameter {key} has shape {tuple(value.shape)} in the checkpoint but "
                f"{tuple(own[key].shape)} in the model built from the config"
            )


def config_differences(hparams: dict, config_args: dict, config_name: str | None = None,
                       used_name: str | None = None) -> dict:
    """{key: (config value, value used)} for each `model.args` key the checkpoint sets differently.

    `hparams` are the hyperparameters the model was built with (the checkpoint's); `config_name` and
    `used_name` compare the variant too (`model.name` against the class the checkpoint selected).
    """
    differences = {f"model.args.{key}": (value, hparams[key]) for key, value in config_args.items()
                   if key in hparams and hparams[key] != value}
    if config_name is not None and used_name is not None and config_name != used_name:
        differences = {"model.name": (config_name, used_name), **differences}
    return differences


def _listed(items) -> str:
    """'key=used (config: wanted), ...' for (key, (wanted, used)) pairs."""
    return ", ".join(f"{key}={used!r} (config: {wanted!r})" for key, (wanted, used) in items)


def report_config_differences(path, differences: dict, refuse: bool) -> None:
    """One warning naming each differing key and the value used.

    With refuse=True a difference in the variant or in any key that changes the outputs (`refusable`)
    raises a CheckpointError instead; training-only keys (TRAINING_ONLY_KEYS) change nothing at
    inference and only warn.
    """
    refused = [(k, v) for k, v in differences.items() if refuse and refusable(k)]
    if refused:
        raise CheckpointError(f"{path}: the checkpoint differs from the config: {_listed(refused)} "
                              f"(set checkpoint_config_check=false to use the checkpoint's values)")
    if differences:
        log.warning("%s: the model is built from the checkpoint's hyperparameters, which differ from the config: "
                    "%s (checkpoint_config_check=true refuses a different variant or output-changing key)", path,
                    _listed(differences.items()))


def load_initial_weights(path, model: torch.nn.Module, config_args: dict) -> dict:
    """Fine-tuning (`init_weights=`): copy the weights of checkpoint `path` into `model` (a fresh optimizer
    and step 0 follow). The architecture and every parameter must match, except that modules the model
    declares zero-initialised (`ZERO_INITIALISED` name prefixes, e.g. DiffVel+'s loudness conditioner) may be
    absent from the checkpoint: they keep their zeros, so the model starts as the checkpoint. Returns the checkpoint."""
    path = Path(path)
    checkpoint = load_checkpoint(path)
    check_architecture(path, checkpoint.get("hyper_parameters", {}), config_args)
    added = tuple(getattr(model, "ZERO_INITIALISED", ()))
    check_state_dict(path, model, checkpoint["state_dict"], may_lack=added)
    absent = [k for k in model.state_dict() if k not in checkpoint["state_dict"]]
    model.load_state_dict(checkpoint["state_dict"], strict=not absent)
    if absent:
        log.info("%s: %d parameters not in the checkpoint start at zero (%s...)", path, len(absent), absent[0])
    return checkpoint
