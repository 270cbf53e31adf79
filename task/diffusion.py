"""The diffusion task as a LightningModule: x0 objective, L2 loss, Adam, and velocity sampling.

The network (model/diffvel.py) subclasses this and provides the methods of `DiffVelNetwork`.
"""
import logging
from typing import Protocol

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, ListConfig, OmegaConf

from task.sampling import sample_velocity
from task.schedule import LinearSchedule

log = logging.getLogger(__name__)

LOSSES = {"l1": F.l1_loss, "l2": F.mse_loss, "huber": F.smooth_l1_loss}


class DiffVelNetwork(Protocol):
    """The network's contract with the task: what `SpecRollDiffusion.step` and task/sampling.py call.

    A network subclasses `SpecRollDiffusion` and implements these (model/diffvel.py does). Shapes:
    B segments, 640 frames, 88 keys, L residual layers; rolls are (B, 1, 640, 88).
    """

    def normalize(self, roll: torch.Tensor) -> torch.Tensor:
        """Min-max normalise a (B, 640, 88) velocity or score roll per item (training targets and score)."""

    def forward(self, x_t: torch.Tensor, waveform: torch.Tensor, frame_roll: torch.Tensor,
                diffusion_step: torch.Tensor, sampling: bool = False,
                onset_roll: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0 prediction (B, 1, 640, 88), spectrogram (B, n_mels, T)) from x_t, audio (B, L), score, t (B,).

        `sampling=True`: the unconditional pass of classifier-free guidance (the published loop).
        `onset_roll`: the score's onsets, read by DiffVelPlus only.
        """

    def spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """The normalised log-mel spectrogram (B, n_mels, T) of audio (B, samples)."""

    def film(self, frame_roll: torch.Tensor) -> torch.Tensor:
        """FiLM features (B, 2L) of the score roll (B, 1, 640, 88): one gamma and beta per layer."""

    def score_features(self, frame_roll: torch.Tensor, onset_roll: torch.Tensor | None = None):
        """Dense score features for the conditioners (DiffVelPlus); None for the paper's network."""

    def conditioners(self, spectrogram: torch.Tensor, score=None) -> list[torch.Tensor]:
        """The per-layer 1x1 projections of a spectrogram (B, n_mels, 640) (and of `score_features`),
        computed once per segment."""

    def denoise(self, x_t: torch.Tensor, diffusion_step: torch.Tensor, film_feat: torch.Tensor,
                conditioners: list[torch.Tensor]) -> torch.Tensor:
        """One network pass with cached conditions: the x0 prediction (B, 1, 640, 88)."""

    def finish_x0(self, x0: torch.Tensor, score=None) -> torch.Tensor:
        """The x0 prediction (B, 1, 640, 88) as the loss and the sampler use it, given `score_features`
        (DiffVelPlus can pool it per note); the network's own for the paper's network."""


def plain(value):
    """OmegaConf containers -> plain dicts/lists (checkpoints then need no omegaconf to load)."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


class SpecRollDiffusion(pl.LightningModule):
    """Task arguments as in the published `SpecRollDiffusion` (the `task` config group).

    `loss_keys`, `frame_threshold`, `debug` and `generation_filter` are accepted and stored only so
    that the published configs and checkpoints load (run_test.py passes frame_threshold=0.5, as the
    paper did); nothing here reads them. Subclasses implement `DiffVelNetwork`.
    """

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
        import matplotlib

        matplotlib.use("Agg")  # at the first logged image, not at import
        import matplotlib.pyplot as plt

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
