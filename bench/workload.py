"""What the inference benchmarks run: the full-size or small model on random weights, random inputs, FLOPs.

Import bench.measure first (it sets OMP_WAIT_POLICY before torch is imported).
"""
from bench.measure import compose_config, count_flops  # isort: skip

from dataclasses import dataclass  # noqa: E402

import torch  # noqa: E402

from utils.conventions import N_KEYS, SEGMENT_FRAMES, SEGMENT_SAMPLES  # noqa: E402
from utils.training.machinery import build_model  # noqa: E402

PAPER_STEPS = 200
MODEL_OVERRIDES = {
    # the paper's trained model: 15 layers x 512 channels, kernel 9 (config/model default is kernel 3)
    "full": ["model.args.kernel_size=9"],
    "small": ["experiment=cpu_small"],
}


def make_model(kind: str, device: torch.device, seed: int = 0):
    """The full-size or small CPU model with seeded random weights, in eval mode on `device`."""
    torch.manual_seed(seed)
    model = build_model(compose_config("spec_roll", MODEL_OVERRIDES[kind]))
    return model.to(device).eval()


def random_segments(batch: int, seed: int = 0):
    """Waveforms (B, 327680) and sparse score rolls (B, 640, 88) standing in for test segments."""
    g = torch.Generator().manual_seed(seed)
    waveform = 0.1 * torch.randn((batch, SEGMENT_SAMPLES), generator=g)
    score = (torch.rand((batch, SEGMENT_FRAMES, N_KEYS), generator=g) > 0.97).float()
    return waveform, score


@dataclass(frozen=True)
class NetworkFlops:
    """FLOPs of one segment's pieces: a full published forward, the cached setup, one denoise pass."""

    forward: int  # model.forward: mel + FiLM + conditioners + denoise
    setup: int  # spectrogram + FiLM + conditioner projections, once per segment when cached
    denoise: int  # one network pass with cached conditions

    def per_segment(self, setting, steps: int) -> int:
        """FLOPs of one segment under a bench.inference Setting (exact_savings, w) and a step count."""
        if not setting.exact_savings:
            return 2 * steps * self.forward
        passes_per_step = 1 if setting.w == 0 else 2  # the unconditional pass is skipped when w == 0
        return self.setup + passes_per_step * steps * self.denoise


def network_flops(model, device: torch.device) -> NetworkFlops:
    waveform, score = (t.to(device) for t in random_segments(1))
    x = torch.randn((1, 1, SEGMENT_FRAMES, N_KEYS), device=device)
    t = torch.tensor([PAPER_STEPS - 1], device=device)

    def setup():
        spec = model.spectrogram(waveform)[..., :SEGMENT_FRAMES]
        return model.film(score), model.conditioners(spec)

    with torch.no_grad():
        film, conditioners = setup()
    return NetworkFlops(
        forward=count_flops(lambda: model(x, waveform, score, t)),
        setup=count_flops(setup),
        denoise=count_flops(lambda: model.denoise(x, t, film, conditioners)),
    )
