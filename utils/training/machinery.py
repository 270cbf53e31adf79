"""Helpers that turn the paper's Hydra config into Lightning objects (trainer, loaders, run name), and
the pieces that make training resumable: EpochSampler, ResumeState, SaveLastCheckpoint, AtomicCheckpointIO."""
import io
import logging
import math
import os
import random
import re
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, Sampler

from utils.atomic import atomic_write_bytes

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
    """The paper's run folder name,
    e.g. ClassifierFreeDiffRoll-L15-C512-beta0.02-x_0-cfdg_ddpm_x0-w=0-p=0-k=9-dia=2-4-MAESTRO."""
    args, task = cfg.model.args, cfg.task
    return (
        f"{cfg.model.name}-L{args.residual_layers}-C{args.residual_channels}-beta{task.beta_end}-"
        f"{task.training.mode}-{task.sampling.type}-w={task.sampling.w}-p={args.spec_dropout}-"
        f"k={args.kernel_size}-dia={args.dilation_base}-{args.dilation_bound}-{cfg.dataset.name}"
    )


def make_loader(dataset, loader_cfg: DictConfig, sampler=None, generator: torch.Generator | None = None) -> DataLoader:
    """A DataLoader from a `dataloader.<split>` config; worker-only options are dropped without workers.

    A `sampler` (e.g. an EpochSampler, which also draws new crops every epoch) replaces `shuffle`.
    A `generator` draws the workers' base seed instead of the global RNG.
    """
    kwargs = OmegaConf.to_container(loader_cfg, resolve=True)
    if sampler is not None:
        kwargs.pop("shuffle", None)
        kwargs["sampler"] = sampler
    if generator is not None:
        kwargs["generator"] = generator
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


# ----- resumable training: sampler, extra checkpoint state, checkpoint writing, run folder -----


def _rank_and_world_size() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless torch.distributed is initialised (DDP)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 64-bit seed that depends only on (seed, epoch)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0])


class EpochSampler(Sampler):
    """Indices of one epoch for one process: resumable, reproducible, sharded for DDP.

    The order is a permutation seeded by (seed, epoch) (never the global RNG, so a resumed run draws
    the same order as an uninterrupted one) or, with shuffle=False, the dataset order. Under DDP each
    process takes every world_size-th index of the order, padded by repetition to equal lengths (as
    torch's DistributedSampler); Lightning's own sampler replacement must then be off
    (Trainer(use_distributed_sampler=False)). `set_epoch` (called by Lightning before each epoch) also
    moves a dataset with `set_epoch` (MAESTRO) to that epoch's crops when crop_epochs=True.
    `resume(epoch, consumed)` makes the next iteration of that epoch skip its first `consumed` indices.
    """

    def __init__(self, dataset, seed: int = 0, shuffle: bool = True, crop_epochs: bool = True):
        self.dataset = dataset
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.crop_epochs = bool(crop_epochs)
        self.epoch = 0
        self._skip = 0  # indices of self.epoch consumed before a resume

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) != self.epoch:
            self._skip = 0
        self.epoch = int(epoch)
        if self.crop_epochs and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)

    def resume(self, epoch: int, consumed: int) -> None:
        """Continue `epoch` after its first `consumed` indices (of this process's share)."""
        self.set_epoch(epoch)
        self._skip = int(consumed)

    def _indices(self) -> list[int]:
        rank, world_size = _rank_and_world_size()
        n = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
            order = torch.randperm(n, generator=generator).tolist()
        else:
            order = list(range(n))
        total = math.ceil(n / world_size) * world_size
        order = (order * math.ceil(total / n))[:total]
        return order[rank::world_size]

    def __iter__(self):
        skip, self._skip = self._skip, 0
        return iter(self._indices()[skip:])

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / _rank_and_world_size()[1])


def _capture_rng_states() -> dict:
    """The global RNG states (torch CPU/CUDA, NumPy, Python) as tensors and plain lists.

    Plain types keep checkpoints loadable with torch.load(weights_only=True).
    """
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": [int(version), list(internal), gauss_next],
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


class ResumeState(Callback):
    """Saves what Lightning does not (global RNG states, the train sampler's place in its epoch) into
    every checkpoint under "diffvel_resume", and restores it when training resumes from one.

    With it, a run stopped at any checkpoint and resumed continues the random stream (diffusion steps,
    noise, spec dropout), the crop positions and the sample order of an uninterrupted run. Under DDP all
    processes share one RNG stream (Lightning seeds them alike), so rank 0's states serve every rank.
    """

    KEY = "diffvel_resume"

    def __init__(self, sampler: EpochSampler, batch_size: int):
        self.sampler = sampler
        self.batch_size = int(batch_size)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        done = trainer.fit_loop.epoch_loop.batch_idx + 1  # training batches of the current epoch run so far
        finished = done >= trainer.num_training_batches
        checkpoint[self.KEY] = {
            "rng": _capture_rng_states(),
            "epoch": self.sampler.epoch + 1 if finished else self.sampler.epoch,
            "consumed": 0 if finished else done * self.batch_size,
            "world_size": _rank_and_world_size()[1],
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get(self.KEY)
        if state is None:
            log.warning("checkpoint has no %s entry (not written by train_spec_roll.py): the RNG streams and "
                        "crop positions restart instead of continuing", self.KEY)
            return
        _restore_rng_states(state["rng"])
        consumed = state["consumed"]
        if consumed and state["world_size"] != _rank_and_world_size()[1]:
            log.warning("resuming with %d processes from a checkpoint of %d: the unfinished epoch %d restarts "
                        "from its first batch", _rank_and_world_size()[1], state["world_size"], state["epoch"])
            consumed = 0
        self.sampler.resume(state["epoch"], consumed)
        if consumed:
            log.info("resuming inside epoch %d: its first %d training items per process are skipped",
                     state["epoch"], consumed)


class SaveLastCheckpoint(Callback):
    """Writes <dirpath>/last.ckpt every `every_n_steps` steps (None: never), when fitting ends for any
    reason, and on SIGTERM or Ctrl-C: it complements ModelCheckpoint, which writes it after validation."""

    def __init__(self, dirpath, every_n_steps: int | None = None):
        if every_n_steps is not None and int(every_n_steps) < 1:
            raise ValueError(f"save_every_n_steps must be a positive number of steps or null, got {every_n_steps}")
        self.dirpath = str(dirpath)
        self.every_n_steps = None if every_n_steps is None else int(every_n_steps)
        self._last_saved_step = -1

    @property
    def path(self) -> str:
        return os.path.join(self.dirpath, "last.ckpt")

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.dirpath = trainer.strategy.broadcast(self.dirpath)  # rank 0's run folder on every rank

    def _save(self, trainer) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.global_step == self._last_saved_step:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # the full training state (saving, not loading)
        self._last_saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and trainer.global_step > 0 and trainer.global_step % self.every_n_steps == 0:
            self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        # not when ModelCheckpoint(save_last) already wrote last.ckpt at this step, after validation
        if not any(getattr(c, "save_last", False) and getattr(c, "_last_global_step_saved", None)
                   == trainer.global_step for c in trainer.checkpoint_callbacks):
            self._save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, (SIGTERMException, KeyboardInterrupt)) and trainer.state.fn == "fit":
            self._save(trainer)
            if trainer.is_global_zero:
                reason = "SIGTERM" if isinstance(exception, SIGTERMException) else "Ctrl-C"
                log.warning("%s: saved %s at epoch %d, step %d", reason, self.path,
                            trainer.current_epoch, trainer.global_step)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save checkpoint writer, but via a temp file and os.replace: a run killed while
    saving leaves the previous checkpoint intact instead of a truncated one."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())


RUN_VERSION_PATTERN = re.compile(r"version_\d+")


def resume_run_dir(ckpt_path) -> Path | None:
    """The run folder <log_dir>/<run name>/version_<n> of a checkpoint in its checkpoints/, else None."""
    path = Path(ckpt_path)
    if path.parent.name == "checkpoints" and RUN_VERSION_PATTERN.fullmatch(path.parent.parent.name):
        return path.parent.parent
    return None


def keep_previous_metrics(run_dir) -> Path | None:
    """Rename <run_dir>/metrics.csv to the first free metrics.<k>.csv (Lightning's CSVLogger would delete it)."""
    metrics = Path(run_dir) / "metrics.csv"
    if not metrics.is_file():
        return None
    k = 1
    while (kept := metrics.with_name(f"metrics.{k}.csv")).exists():
        k += 1
    os.replace(metrics, kept)
    return kept
