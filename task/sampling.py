"""The reverse-diffusion loop that turns noise into a velocity roll.

Two equivalent paths:
- `exact_savings=False`: the published loop, literally. Every step runs the full network twice
  (conditional, then unconditional with the spectrogram replaced by -1) and recomputes the
  mel spectrogram and the FiLM parameters inside each pass.
- `exact_savings=True` (default): the same numbers with less work. The spectrogram, FiLM parameters
  and per-layer conditioner projections are computed once per batch, and the unconditional pass is
  skipped when the guidance weight w is 0 (its weight in the output is then exactly zero).
Both draw random numbers in the same order, so the same generator seed gives the same output.
"""
import torch
from tqdm.auto import tqdm

from task.samplers import ddim_x0_step, ddpm_x0_step, guided_x0, step_schedule
from utils.conventions import N_KEYS, SEGMENT_FRAMES

SAMPLERS = ("cfdg_ddpm_x0", "ddim_x0")
UNCONDITIONAL_SPEC_VALUE = -1.0


def _randn(shape, generator, device):
    """Standard-normal noise drawn on CPU generators, so a seed means the same on every device.

    `generator` is one torch.Generator for the whole batch, or a list with one per batch item: then
    each item's noise depends only on its own generator, and batching segments changes no number.
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generator]).to(device)
    return torch.randn(shape, generator=generator).to(device)


def _x0_published(model, x, waveform, frame_roll, t, w):
    """Both network passes exactly as the published `cfdg_ddpm_x0` runs them."""
    t_tensor = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    x0_cond, _ = model(x, waveform, frame_roll, t_tensor)
    x0_uncond, _ = model(x, torch.zeros_like(waveform), frame_roll, t_tensor, sampling=True)
    return guided_x0(x0_cond, x0_uncond, w)


class _CachedConditions:
    """Spectrogram, FiLM and conditioner projections computed once for a batch of segments."""

    def __init__(self, model, waveform, frame_roll, w):
        self.model, self.w = model, w
        self.film = model.film(frame_roll)  # (B, 2L)
        spec = model.spectrogram(waveform)[..., :SEGMENT_FRAMES]  # (B, n_mels, 640)
        self.cond = model.conditioners(spec)
        self.uncond = model.conditioners(torch.full_like(spec, UNCONDITIONAL_SPEC_VALUE)) if w != 0 else None

    def x0(self, x, t):
        t_tensor = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x0_cond = self.model.denoise(x, t_tensor, self.film, self.cond)
        if self.uncond is None:
            return x0_cond
        return guided_x0(x0_cond, self.model.denoise(x, t_tensor, self.film, self.uncond), self.w)


def sample_velocity(
    model, waveform, frame_roll, sampler="cfdg_ddpm_x0", w=0.0, steps=None, generator=None,
    exact_savings=True, progress=False,
):
    """Run the sampler; returns the velocity roll (B, 1, 640, 88) in the model's [0, 1] scale.

    waveform (B, 327680); frame_roll (B, 640, 88) or (B, 1, 640, 88), the score as given to the model
    (unnormalised, as the published inference passes it). `generator`: a torch.Generator, or one per
    item (see `_randn`). `steps` visits a subset of the diffusion
    steps (None = all 200); `ddim_x0` is deterministic after the initial noise.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampling.type {sampler!r} is not one of {SAMPLERS}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    waveform, frame_roll = waveform.to(device, torch.float32), frame_roll.to(device, torch.float32)
    was_training = model.training
    model.eval()
    schedule = model.schedule
    visits = step_schedule(schedule.timesteps, steps)
    try:
        with torch.inference_mode():
            x = _randn((waveform.shape[0], 1, SEGMENT_FRAMES, N_KEYS), generator, device)
            cache = _CachedConditions(model, waveform, frame_roll, w) if exact_savings else None
            for i, t in enumerate(tqdm(visits, desc="sampling", disable=not progress, leave=False)):
                t_prev = visits[i + 1] if i + 1 < len(visits) else -1
                x0 = cache.x0(x, t) if exact_savings else _x0_published(model, x, waveform, frame_roll, t, w)
                if sampler == "ddim_x0":
                    x = ddim_x0_step(schedule, x, x0, t, t_prev)
                else:
                    noise = _randn(x.shape, generator, device) if t_prev >= 0 else None
                    x = ddpm_x0_step(schedule, x, x0, t, t_prev, noise)
    finally:
        model.train(was_training)
    return x
