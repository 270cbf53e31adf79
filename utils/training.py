"""Helpers that turn the paper's Hydra config into Lightning objects (trainer, loaders, run name)."""
import logging

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

log = logging.getLogger(__name__)

WORKER_ONLY_LOADER_KEYS = ("prefetch_factor", "persistent_workers")


def trainer_kwargs(trainer_cfg: DictConfig) -> dict:
    """Lightning 2.x Trainer arguments from the config, mapping the paper's `gpus` onto accelerator/devices.

    Explicit `accelerator`/`devices` win. Otherwise gpus > 0 selects that many GPUs, or the CPU with one
    warning when no GPU is present; gpus = 0 selects the CPU. Null entries are left to Lightning's defaults.
    """
    kwargs = {k: v for k, v in OmegaConf.to_container(trainer_cfg, resolve=True).items() if v is not None}
    gpus = int(kwargs.pop("gpus", 0) or 0)
    if "accelerator" not in kwargs and "devices" not in kwargs:
        if gpus > 0 and torch.cuda.is_available():
            kwargs.update(accelerator="gpu", devices=min(gpus, torch.cuda.device_count()))
        else:
            if gpus > 0:
                log.warning("gpus=%d requested but no GPU is available: training on the CPU", gpus)
            kwargs.update(accelerator="cpu", devices=1)
    kwargs.setdefault("accelerator", "auto")
    kwargs.setdefault("devices", "auto")
    return kwargs


def run_name(cfg: DictConfig) -> str:
    """The paper's run folder name, e.g. ClassifierFreeDiffRoll-L15-C512-beta0.02-x_0-cfdg_ddpm_x0-w=0-p=0-k=9-dia=2-4-MAESTRO."""
    args, task = cfg.model.args, cfg.task
    return (
        f"{cfg.model.name}-L{args.residual_layers}-C{args.residual_channels}-beta{task.beta_end}-"
        f"{task.training.mode}-{task.sampling.type}-w={task.sampling.w}-p={args.spec_dropout}-"
        f"k={args.kernel_size}-dia={args.dilation_base}-{args.dilation_bound}-{cfg.dataset.name}"
    )


def make_loader(dataset, loader_cfg: DictConfig, sampler=None) -> DataLoader:
    """A DataLoader from a `dataloader.<split>` config; worker-only options are dropped without workers.

    A `sampler` (e.g. the training set's EpochCropSampler, which draws new crops every epoch)
    replaces `shuffle`.
    """
    kwargs = OmegaConf.to_container(loader_cfg, resolve=True)
    if sampler is not None:
        kwargs.pop("shuffle", None)
        kwargs["sampler"] = sampler
    if kwargs.get("num_workers", 0) == 0:
        for key in WORKER_ONLY_LOADER_KEYS:
            kwargs.pop(key, None)
    if kwargs.get("pin_memory") and not torch.cuda.is_available():
        kwargs["pin_memory"] = False  # pinning without a GPU only costs time and warns
    return DataLoader(dataset, **kwargs)


def build_model(cfg: DictConfig):
    """`model.<name>(**cfg.model.args, spec_args=cfg.spec.args, **cfg.task)`, as the paper's scripts do."""
    import model as models

    if not hasattr(models, cfg.model.name):
        raise ValueError(f"model.name {cfg.model.name!r} is not a model of this project")
    return getattr(models, cfg.model.name)(**cfg.model.args, spec_args=cfg.spec.args, **cfg.task)
