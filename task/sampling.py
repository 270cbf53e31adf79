"""The reverse-diffusion loop that turns noise into a velocity roll.

Two equivalent paths:
- `exact_savings=False`: the published loop, literally. Every step runs the full network twice
  (conditional, then unconditional with the spectrogram replaced by -1) and recomputes the
  mel spectrogram and the FiLM parameters inside each pass.
- `exact_savings=True` (default): the same numbers with less work. The spectrogram, FiLM parameters
  and per-layer conditioner projections are computed once per batch, and the unconditional pass is
  skipped when the guidance weight w is 0 (its weight in the output is then exactly zero).
Both draw random numbers in the same order, so the same generator seed gives the same output.

Two speed options, off by default (measured in docs/speed.md): `precision="bf16"` runs the network
passes under bfloat16 autocast while the sampler arithmetic stays float32, and `compile=True` runs
`model.denoise` through torch.compile (compiled once per model).
"""
import contextlib
import functools
import weakref

import torch
from tqdm.auto import tqdm

from task.update_rules import ddim_x0_step, ddpm_x0_step, guided_x0, step_schedule
from utils.conventions import N_KEYS, SEGMENT_FRAMES, UNCONDITIONAL_SPEC_VALUE

SAMPLERS = ("cfdg_ddpm_x0", "ddim_x0")
PRECISIONS = ("fp32", "bf16")

_compiled_denoise = weakref.WeakKeyDictionary()  # model -> torch.compile(type(model).denoise)


def compiled_denoise(model):
    """torch.compile of the model's `denoise`, unbound (call it as fn(model, ...)), cached per model.

    Unbound so that the cache holds no strong reference to the model, which can still be freed.
    """
    if model not in _compiled_denoise:
        _compiled_denoise[model] = torch.compile(type(model).denoise)
    return _compiled_denoise[model]


def network_precision(device: torch.device, precision: str):
    """Context for the network passes: nothing for fp32, bfloat16 autocast on `device` for bf16."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


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


def _x0_published(model, x, waveform, frame_roll, t, w, precision="fp32", onset_roll=None):
    """Both network passes exactly as the published `cfdg_ddpm_x0` runs them."""
    t_tensor = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    with network_precision(x.device, precision):
        x0_cond, _ = model(x, waveform, frame_roll, t_tensor, onset_roll=onset_roll)
        x0_uncond, _ = model(x, torch.zeros_like(waveform), frame_roll, t_tensor, sampling=True, onset_roll=onset_roll)
    return guided_x0(x0_cond.float(), x0_uncond.float(), w)


class _CachedConditions:
    """Spectrogram, FiLM and conditioner projections computed once for a batch of segments.

    The spectrogram is always float32; with precision="bf16" the network layers run under autocast
    and each x0 prediction is returned as float32.
    """

    def __init__(self, model, waveform, frame_roll, w, precision="fp32", compile=False, onset_roll=None):
        self.model, self.w, self.precision = model, w, precision
        self.denoise = functools.partial(compiled_denoise(model), model) if compile else model.denoise
        spec = model.spectrogram(waveform)[..., :SEGMENT_FRAMES]  # (B, n_mels, 640)
        with network_precision(waveform.device, precision):
            self.film = model.film(frame_roll)  # (B, 2L)
            self.score = model.score_features(frame_roll, onset_roll)  # None for the paper's network
            self.cond = model.conditioners(spec, self.score)
            unconditional = torch.full_like(spec, UNCONDITIONAL_SPEC_VALUE)
            self.uncond = model.conditioners(unconditional, self.score) if w != 0 else None

    def x0(self, x, t):
        t_tensor = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        with network_precision(x.device, self.precision):
            x0_cond = self.denoise(x, t_tensor, self.film, self.cond)
            x0_uncond = None if self.uncond is None else self.denoise(x, t_tensor, self.film, self.uncond)
        x0 = x0_cond.float() if x0_uncond is None else guided_x0(x0_cond.float(), x0_uncond.float(), self.w)
        return self.model.finish_x0(x0, self.score)  # guidance is linear, so pooling once equals pooling each pass


def sample_velocity(
    model, waveform, frame_roll, sampler="cfdg_ddpm_x0", w=0.0, steps=None, generator=None,
    exact_savings=True, progress=False, precision="fp32", compile=False, onset_roll=None,
):
    """Run the sampler; returns the velocity roll (B, 1, 640, 88) in the model's [0, 1] scale.

    waveform (B, 327680); frame_roll (B, 640, 88) or (B, 1, 640, 88), the score as given to the model
    (unnormalised, as the published inference passes it). `generator`: a torch.Generator, or one per
    item (see `_randn`). `steps` visits a subset of the diffusion
    steps (None = all 200); `ddim_x0` is deterministic after the initial noise.
    `precision` ("fp32" | "bf16") and `compile` (torch.compile of `model.denoise`; needs
    exact_savings=True) only change speed and rounding, never the sampler.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampling.type {sampler!r} is not one of {SAMPLERS}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if compile and not exact_savings:
        raise ValueError("compile=True compiles model.denoise, which the published loop (exact_savings=False) does not call")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    waveform, frame_roll = waveform.to(device, torch.float32), frame_roll.to(device, torch.float32)
    if onset_roll is not None:
        onset_roll = onset_roll.to(device, torch.float32)
    was_training = model.training
    model.eval()
    schedule = model.schedule
    visits = step_schedule(schedule.timesteps, steps)
    try:
        with torch.inference_mode():
            x = _randn((waveform.shape[0], 1, SEGMENT_FRAMES, N_KEYS), generator, device)
            cache = (_CachedConditions(model, waveform, frame_roll, w, precision, compile, onset_roll)
                     if exact_savings else None)
            for i, t in enumerate(tqdm(visits, desc="sampling", disable=not progress, leave=False)):
                t_prev = visits[i + 1] if i + 1 < len(visits) else -1
                if exact_savings:
                    x0 = cache.x0(x, t)
                else:
                    x0 = _x0_published(model, x, waveform, frame_roll, t, w, precision, onset_roll)
                if sampler == "ddim_x0":
                    x = ddim_x0_step(schedule, x, x0, t, t_prev)
                else:
                    noise = _randn(x.shape, generator, device) if t_prev >= 0 else None
                    x = ddpm_x0_step(schedule, x, x0, t, t_prev, noise)
    finally:
        model.train(was_training)
    return x
