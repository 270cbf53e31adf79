"""The linear-beta diffusion schedule and the forward process q(x_t | x_0)."""
import torch
import torch.nn as nn


class LinearSchedule(nn.Module):
    """Betas linear from beta_start to beta_end over `timesteps` steps, and derived terms.

    Held as non-persistent buffers: they follow the module to its device and are not part of the
    state dict, as in the published code (where they are plain attributes).
    """

    def __init__(self, beta_start: float, beta_end: float, timesteps: int):
        super().__init__()
        betas = torch.linspace(beta_start, beta_end, timesteps)  # (T,)
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        terms = {
            "betas": betas,
            "alphas": alphas,
            "alphas_cumprod": alphas_cumprod,
            "sqrt_alphas_cumprod": torch.sqrt(alphas_cumprod),
            "sqrt_one_minus_alphas_cumprod": torch.sqrt(1.0 - alphas_cumprod),
        }
        for name, value in terms.items():
            self.register_buffer(name, value, persistent=False)

    @property
    def timesteps(self) -> int:
        return self.betas.shape[0]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise.  x0, noise (B, 1, T, F); t (B,)."""
        mean_scale = self.sqrt_alphas_cumprod[t][:, None, None, None]
        noise_scale = self.sqrt_one_minus_alphas_cumprod[t][:, None, None, None]
        return mean_scale * x0 + noise_scale * noise
