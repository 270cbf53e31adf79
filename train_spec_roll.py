"""Train DiffVel (python train_spec_roll.py [hydra overrides]); see README, "Training"."""
import logging

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from utils.datasets import build_dataset
from utils.maestro import EpochCropSampler
from utils.training import build_model, make_loader, run_name, trainer_kwargs

log = logging.getLogger("train_spec_roll")


@hydra.main(config_path="config", config_name="spec_roll", version_base="1.3")
def main(cfg: DictConfig) -> None:
    pl.seed_everything(cfg.seed, workers=True)
    train_set = build_dataset(cfg.dataset, "train")
    val_set = build_dataset(cfg.dataset, "val")
    model = build_model(cfg)

    name = run_name(cfg)
    tensorboard = TensorBoardLogger(save_dir=cfg.log_dir, name=name)
    csv = CSVLogger(save_dir=cfg.log_dir, name=name, version=tensorboard.version)
    checkpoint = ModelCheckpoint(**cfg.modelcheckpoint, dirpath=f"{tensorboard.log_dir}/checkpoints")
    trainer = pl.Trainer(
        **trainer_kwargs(cfg.trainer),
        logger=[tensorboard, csv],
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="step")],
    )
    log.info("run folder: %s", tensorboard.log_dir)
    trainer.fit(
        model,
        make_loader(train_set, cfg.dataloader.train, sampler=EpochCropSampler(train_set)),
        make_loader(val_set, cfg.dataloader.val),
        ckpt_path=cfg.ckpt_path,
    )
    if cfg.test_after_fit and not trainer.interrupted:
        test_set = build_dataset(cfg.dataset, "test")
        trainer.test(model, make_loader(test_set, cfg.dataloader.test), ckpt_path=None)


if __name__ == "__main__":
    main()
