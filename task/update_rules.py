"""Reverse-diffusion update rules for a network that predicts x0.

Each function maps (x_t, predicted x0) to the next, less noisy state. They are pure functions of the
schedule so that a sampling loop can call them with any network, batch or step subset.
"""
import torch

from task.schedule import LinearSchedule


def guided_x0(x0_cond: torch.Tensor, x0_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance on x0: (1 + w) * conditional - w * unconditional."""
    return (1 + w) * x0_cond - w * x0_uncond


def ddpm_x0_step(schedule: LinearSchedule, x_t, x0_pred, t: int, t_prev: int, noise):
    """One ancestral (DDPM) step from t to t_prev written in x0 form (the paper's `cfdg_ddpm_x0`).

    With t_prev = t - 1 this is exactly the published update; with a larger gap it is the same
    posterior on a strided schedule. At the last step from t = 0 the published code returns
    x0 / sqrt(abar_0) (a 0.005 % scale-up), and so does this function; a strided schedule that
    ends at t > 0 returns x0 itself (dividing by sqrt(abar_t) there would inflate it).
    """
    s = schedule
    if t_prev < 0:
        return x0_pred / s.sqrt_alphas_cumprod[0] if t == 0 else x0_pred
    # 1 - alpha_t of the (possibly strided) step; equals betas[t] for consecutive steps
    one_minus_alpha = 1 - s.alphas[t] if t_prev == t - 1 else 1 - s.alphas_cumprod[t] / s.alphas_cumprod[t_prev]
    sigma = s.sqrt_one_minus_alphas_cumprod[t_prev] / s.sqrt_one_minus_alphas_cumprod[t] * torch.sqrt(one_minus_alpha)
    eps = (x_t - s.sqrt_alphas_cumprod[t] * x0_pred) / s.sqrt_one_minus_alphas_cumprod[t]
    direction = torch.sqrt(1 - s.sqrt_alphas_cumprod[t_prev] ** 2 - sigma**2) * eps
    return s.sqrt_alphas_cumprod[t_prev] * x0_pred + direction + sigma * noise


def ddim_x0_step(schedule: LinearSchedule, x_t, x0_pred, t: int, t_prev: int):
    """One deterministic DDIM step (eta = 0) from t to any earlier t_prev; returns x0 at the end."""
    s = schedule
    if t_prev < 0:
        return x0_pred
    eps = (x_t - s.sqrt_alphas_cumprod[t] * x0_pred) / s.sqrt_one_minus_alphas_cumprod[t]
    return s.sqrt_alphas_cumprod[t_prev] * x0_pred + s.sqrt_one_minus_alphas_cumprod[t_prev] * eps


def step_schedule(timesteps: int, steps) -> list[int]:
    """Descending diffusion steps to visit: all of them (None), `steps` evenly spaced ending at t = 0
    (an int), or exactly the given steps (a list, e.g. [199, 120, 40, 0]: any subset)."""
    if isinstance(steps, (list, tuple)) or hasattr(steps, "__iter__"):
        visits = [int(t) for t in steps]
        if not visits or any(not 0 <= t < timesteps for t in visits) or visits != sorted(set(visits), reverse=True):
            raise ValueError(f"sampling.steps {list(visits)} must be distinct steps in 0..{timesteps - 1}, descending")
        return visits
    if steps is None or steps >= timesteps:
        return list(range(timesteps - 1, -1, -1))
    if steps < 1:
        raise ValueError(f"sampling.steps must be >= 1, got {steps}")
    picked = torch.linspace(timesteps - 1, 0, steps).round().long().tolist()
    return sorted(set(picked), reverse=True)
