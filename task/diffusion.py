"""The diffusion task as a LightningModule: x0 objective, L2 loss, Adam, and velocity sampling.

The network (model/diffvel.py) subclasses this and provides `forward`, `spectrogram`, `film`,
`conditioners` and `denoise`.
"""
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from omegaconf import DictConfig, ListConfig, OmegaConf  # noqa: E402

from task.sampling import sample_velocity  # noqa: E402
from task.schedule import LinearSchedule  # noqa: E402

log = logging.getLogger(__name__)

LOSSES = {"l1": F.l1_loss, "l2": F.mse_loss, "huber": F.smooth_l1_loss}


def plain(value):
    """OmegaConf containers -> plain dicts/lists (checkpoints then need no omegaconf to load)."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


class SpecRollDiffusion(pl.LightningModule):
    """Task arguments as in the published `SpecRollDiffusion` (the `task` config group)."""

    def __init__(
        self,
        lr: float,
        timesteps: int,
        loss_type: str,
        loss_keys,
        beta_start: float,
        beta_end: float,
        frame_threshold: float,
        training,
        sampling,
        debug: bool = False,
        generation_filter: float = 0.0,
    ):
        super().__init__()
        training, sampling = plain(training), dict(plain(sampling))
        if training.get("mode") != "x_0":
            raise ValueError(f"training.mode {training.get('mode')!r} is not supported; DiffVel predicts x0 ('x_0')")
        if loss_type not in LOSSES:
            raise ValueError(f"loss_type {loss_type!r} is not one of {sorted(LOSSES)}")
        self.task_hparams = dict(
            lr=lr, timesteps=timesteps, loss_type=loss_type, loss_keys=list(plain(loss_keys)),
            beta_start=beta_start, beta_end=beta_end, frame_threshold=frame_threshold,
            training=training, sampling=sampling, debug=debug, generation_filter=generation_filter,
        )
        self.lr = lr
        self.loss_fn = LOSSES[loss_type]
        self.sampling_args = sampling
        self.schedule = LinearSchedule(beta_start, beta_end, timesteps)

    # ----- training -----

    def velocity_target(self, velocity):
        """The training target from the loader's velocity / 128 roll: the paper min-max normalises it."""
        return self.normalize(velocity)

    def diffusion_loss(self, label, prediction, frame_roll):
        """The configured loss over every cell, in the published argument order (label, prediction)."""
        return self.loss_fn(label, prediction)

    def step(self, batch):
        """One x0-objective step: noise the target velocity roll at a uniform t, predict x0."""
        roll = self.velocity_target(batch["velocity"]).unsqueeze(1)  # (B, 1, 640, 88) in [0, 1]
        frame_roll = self.normalize(batch["frame"]).unsqueeze(1)  # (B, 1, 640, 88)
        onset_roll = batch["onset"].unsqueeze(1) if "onset" in batch else None  # read by DiffVelPlus only
        t = torch.randint(0, self.schedule.timesteps, (roll.shape[0],), device=roll.device).long()
        x_t = self.schedule.q_sample(roll, t, torch.randn_like(roll))
        pred_roll, spec = self(x_t, batch["audio"], frame_roll, t, onset_roll=onset_roll)
        loss = self.diffusion_loss(roll, pred_roll, frame_roll)
        return loss, {"pred_roll": pred_roll, "label_roll": roll, "frame_roll": frame_roll, "spec": spec}

    def training_step(self, batch, batch_idx):
        loss, _ = self.step(batch)
        self.log("Train/diffusion_loss", loss, prog_bar=True, batch_size=batch["audio"].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        loss, tensors = self.step(batch)
        self.log("Val/diffusion_loss", loss, prog_bar=True, sync_dist=True, batch_size=batch["audio"].shape[0])
        if batch_idx == 0:
            self._log_images(tensors)
        return loss

    def test_step(self, batch, batch_idx):
        loss, _ = self.step(batch)
        self.log("Test/diffusion_loss", loss, sync_dist=True, batch_size=batch["audio"].shape[0])
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    def _log_images(self, tensors):
        """Spectrogram, score and predicted velocity roll of the first validation item, to TensorBoard."""
        experiment = getattr(self.logger, "experiment", None)
        if not hasattr(experiment, "add_figure"):
            return
        panels = [
            ("Val/spec", tensors["spec"][0]),  # (n_mels, T)
            ("Val/score_roll", tensors["frame_roll"][0, 0].T),  # (88, T)
            ("Val/label_roll", tensors["label_roll"][0, 0].T),
            ("Val/pred_roll", tensors["pred_roll"][0, 0].T),
        ]
        for tag, image in panels:
            fig, ax = plt.subplots(figsize=(8, 3))
            ax.imshow(image.detach().float().cpu(), aspect="auto", origin="lower")
            ax.set_xlabel("frame")
            experiment.add_figure(tag, fig, global_step=self.current_epoch)
            plt.close(fig)

    # ----- inference -----

    def sample(self, waveform, frame_roll, generator=None, exact_savings=True, progress=False,
               precision="fp32", compile=False, onset_roll=None, **overrides):
        """Estimate the velocity roll (B, 1, 640, 88) in [0, 1] scale for waveforms (B, L) and scores.

        `onset_roll` (B, [1,] 640, 88), the score's onsets, is read by DiffVelPlus only.

        Sampler settings come from the `sampling` hyperparameters (type, w, steps), overridable.
        `precision` ("fp32" | "bf16") and `compile` are the speed options of `sample_velocity`.
        """
        args = {**self.sampling_args, **overrides}
        return sample_velocity(
            self, waveform, frame_roll, sampler=args["type"], w=float(args.get("w", 0.0)),
            steps=args.get("steps"), generator=generator, exact_savings=exact_savings, progress=progress,
            precision=precision, compile=compile, onset_roll=onset_roll,
        )
