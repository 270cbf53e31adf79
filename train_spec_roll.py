"""Train DiffVel: python train_spec_roll.py [hydra overrides]; see docs/training.md.

Writes <log_dir>/<run name>/version_<n>/ (checkpoints, TensorBoard events, metrics.csv, hparams.yaml,
config.yaml). `ckpt_path=<.../checkpoints/last.ckpt>` resumes a run in its own folder; quote a path
holding '=' (as run names do): "ckpt_path='runs/.../last.ckpt'".
"""
import logging
import os
import signal
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.warnings import PossibleUserWarning

from utils.atomic import atomic_write_bytes
from utils.checks import check_training_options, exit_on_error
from utils.training.checkpoint import SAFE_GLOBALS, check_architecture, load_checkpoint, load_initial_weights
from utils.data.datasets import build_dataset
from utils.precision import apply_matmul_precision
from utils.training.machinery import (
    AtomicCheckpointIO,
    EpochSampler,
    ResumeState,
    SaveLastCheckpoint,
    build_model,
    keep_previous_metrics,
    make_loader,
    resume_run_dir,
    run_name,
    trainer_kwargs,
)

log = logging.getLogger("train_spec_roll")


def _first_process() -> bool:
    """True in the process that owns the run folder (global rank 0; also before DDP starts)."""
    return rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def _checked_resume_path(cfg: DictConfig) -> Path | None:
    """The checkpoint to resume from, after checking it exists, loads safely and fits the model config."""
    if cfg.ckpt_path is None:
        return None
    path = Path(cfg.ckpt_path)
    checkpoint = load_checkpoint(path)  # FileNotFoundError / CheckpointError with a one-line reason
    check_architecture(path, checkpoint["hyper_parameters"], OmegaConf.to_container(cfg.model.args, resolve=True))
    return path


def _loggers(cfg: DictConfig, resume_from: Path | None) -> tuple[TensorBoardLogger, CSVLogger]:
    """TensorBoard + CSV loggers of one run folder: the checkpoint's own folder when resuming from one."""
    run_dir = resume_run_dir(resume_from) if resume_from is not None else None
    if run_dir is not None:
        save_dir, name, version = run_dir.parent.parent, run_dir.parent.name, run_dir.name
        if _first_process():
            kept = keep_previous_metrics(run_dir)
            if kept is not None:
                log.info("resuming in %s; earlier metrics kept in %s", run_dir, kept.name)
    else:
        save_dir, name, version = cfg.log_dir, run_name(cfg), None
    tensorboard = TensorBoardLogger(save_dir=save_dir, name=name, version=version)
    csv = CSVLogger(save_dir=save_dir, name=name, version=tensorboard.version)
    return tensorboard, csv


def _snapshots(checkpoint_dir: Path, every_n_steps) -> list:
    """A callback keeping checkpoints/snapshots/step<N>.ckpt every N steps (for utils.training.average)."""
    if every_n_steps is None:
        return []
    return [ModelCheckpoint(dirpath=checkpoint_dir / "snapshots", filename="step{step:06d}", monitor=None,
                            save_top_k=-1, every_n_train_steps=int(every_n_steps), auto_insert_metric_name=False,
                            enable_version_counter=False)]


def train(cfg: DictConfig) -> pl.Trainer:
    """Fit (and test) the model of a composed `spec_roll` config; returns the Trainer. main() is its Hydra wrapper."""
    check_training_options(cfg)  # before any run folder is created
    pl.seed_everything(cfg.seed, workers=True)
    apply_matmul_precision(cfg.get("float32_matmul_precision", "highest"))
    resume_from = _checked_resume_path(cfg)
    train_set = build_dataset(cfg.dataset, "train")
    val_set = build_dataset(cfg.dataset, "val")
    model = build_model(cfg)
    if cfg.get("init_weights") is not None:
        load_initial_weights(cfg.init_weights, model, OmegaConf.to_container(cfg.model.args, resolve=True))
        log.info("weights from %s (fine-tuning: fresh optimizer, step 0)", cfg.init_weights)

    train_sampler = EpochSampler(train_set, seed=cfg.seed, shuffle=cfg.dataloader.train.get("shuffle", True))
    train_loader = make_loader(train_set, cfg.dataloader.train, sampler=train_sampler,
                               generator=torch.Generator().manual_seed(cfg.seed))
    val_loader = make_loader(val_set, cfg.dataloader.val,
                             sampler=EpochSampler(val_set, shuffle=False, crop_epochs=False))

    tensorboard, csv = _loggers(cfg, resume_from)
    checkpoint_dir = Path(tensorboard.log_dir) / "checkpoints"
    kwargs = trainer_kwargs(cfg.trainer)
    checkpointing = not kwargs.get("fast_dev_run")  # (ModelCheckpoint's save_last would still write at the end)
    checkpoint_callbacks = [
        ModelCheckpoint(**{"enable_version_counter": False, **cfg.modelcheckpoint}, dirpath=checkpoint_dir),
        SaveLastCheckpoint(checkpoint_dir, every_n_steps=cfg.get("save_every_n_steps")),
        *_snapshots(checkpoint_dir, cfg.get("snapshot_every_n_steps")),
    ] if checkpointing else []
    trainer = pl.Trainer(
        **kwargs,
        logger=[tensorboard, csv],
        enable_checkpointing=checkpointing,
        callbacks=[
            *checkpoint_callbacks,
            ResumeState(train_sampler, batch_size=cfg.dataloader.train.batch_size),
            LearningRateMonitor(logging_interval="step"),
        ],
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # EpochSampler shards the data itself (resumable, crop epochs)
    )
    if trainer.fast_dev_run:
        log.info("fast_dev_run: one batch per stage, no logs or checkpoints are written")
    elif _first_process():
        log.info("run folder: %s", tensorboard.log_dir)
        atomic_write_bytes(Path(tensorboard.log_dir) / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True).encode())
    if resume_from is not None:
        log.info("resuming from %s", resume_from)
        # EpochSampler resumes mid-epoch (ResumeState), which Lightning cannot see: drop its warning
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended",
                                category=PossibleUserWarning)

    try:
        # the same short allowlist as the pre-check (our own checkpoints need none of it)
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            trainer.fit(model, train_loader, val_loader, ckpt_path=resume_from, weights_only=True)
    except SIGTERMException:
        if trainer.is_global_zero:
            log.error("training stopped by SIGTERM at epoch %d, step %d; resume with \"ckpt_path='%s'\"",
                      trainer.current_epoch, trainer.global_step, checkpoint_dir / "last.ckpt")
        raise SystemExit(128 + signal.SIGTERM) from None
    log.info("process %d of %d: fit ended at epoch %d, step %d", trainer.global_rank, trainer.world_size,
             trainer.current_epoch, trainer.global_step)
    if cfg.test_after_fit and not trainer.interrupted:
        test_set = build_dataset(cfg.dataset, "test")
        test_loader = make_loader(test_set, cfg.dataloader.test,
                                  sampler=EpochSampler(test_set, shuffle=False, crop_epochs=False))
        trainer.test(model, test_loader, ckpt_path=None)
    return trainer


@hydra.main(config_path="config", config_name="spec_roll", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_error(train, cfg)  # an input error is one line on stderr and exit status 2


if __name__ == "__main__":
    main()
