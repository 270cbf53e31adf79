"""Building blocks of the DiffVel network (after LMNT's DiffWave): step embedding and residual block."""
from math import sqrt

import torch
import torch.nn as nn
import torch.nn.functional as F


def kaiming_conv1d(*args, **kwargs) -> nn.Conv1d:
    """A Conv1d with Kaiming-normal weights, DiffWave's initialisation."""
    layer = nn.Conv1d(*args, **kwargs)
    nn.init.kaiming_normal_(layer.weight)
    return layer


class DiffusionEmbedding(nn.Module):
    """Sinusoidal embedding of the diffusion step t, then two SiLU-activated projections to 512."""

    def __init__(self, max_steps: int):
        super().__init__()
        self.register_buffer("embedding", self._table(max_steps), persistent=False)  # (T, 128)
        self.projection1 = nn.Linear(128, 512)
        self.projection2 = nn.Linear(512, 512)

    @staticmethod
    def _table(max_steps: int) -> torch.Tensor:
        steps = torch.arange(max_steps).unsqueeze(1)  # (T, 1)
        dims = torch.arange(64).unsqueeze(0)  # (1, 64)
        table = steps * 10.0 ** (dims * 4.0 / 63.0)  # (T, 64)
        return torch.cat([torch.sin(table), torch.cos(table)], dim=1)  # (T, 128)

    def forward(self, diffusion_step: torch.Tensor) -> torch.Tensor:
        # diffusion_step (B,) integer steps
        x = self.embedding[diffusion_step.long()]  # (B, 128)
        x = F.silu(self.projection1(x))
        return F.silu(self.projection2(x))  # (B, 512)


class ResidualBlockWithFiLM(nn.Module):
    """Dilated gated residual block conditioned on the spectrogram (1x1 conv) and the score (FiLM).

    The spectrogram conditioner is projected by `project_conditioner`, kept separate so that a
    sampler can compute it once per segment instead of once per diffusion step.
    """

    def __init__(self, n_mels: int, residual_channels: int, dilation: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 == 0:  # the padding below keeps the length only for odd kernels
            raise ValueError(f"model.args.kernel_size={kernel_size}: must be odd (an even kernel changes the sequence length)")
        padding = ((kernel_size - 1) * (dilation - 1) + kernel_size - 1) // 2
        self.dilated_conv = kaiming_conv1d(
            residual_channels, 2 * residual_channels, kernel_size, padding=padding, dilation=dilation
        )
        self.diffusion_projection = nn.Linear(512, residual_channels)
        self.conditioner_projection = kaiming_conv1d(n_mels, 2 * residual_channels, 1)
        self.output_projection = kaiming_conv1d(residual_channels, 2 * residual_channels, 1)

    def project_conditioner(self, spectrogram: torch.Tensor) -> torch.Tensor:
        # spectrogram (B, n_mels, T) -> (B, 2C, T)
        return self.conditioner_projection(spectrogram)

    def forward(self, x, step_embedding, gamma, beta, conditioner):
        # x (B, C, T); step_embedding (B, 512); gamma, beta (B,); conditioner (B, 2C, T), projected
        y = x + self.diffusion_projection(step_embedding).unsqueeze(-1)  # (B, C, T)
        y = self.dilated_conv(y) + conditioner  # (B, 2C, T)
        y = y * gamma[:, None, None] + beta[:, None, None]  # FiLM from the score roll
        gate, filt = torch.chunk(y, 2, dim=1)
        y = self.output_projection(torch.sigmoid(gate) * torch.tanh(filt))  # (B, 2C, T)
        residual, skip = torch.chunk(y, 2, dim=1)
        return (x + residual) / sqrt(2.0), skip
