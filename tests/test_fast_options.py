"""Speed options of the sampler: bf16 autocast, torch.compile and batching change no result beyond rounding."""
import gc
import shutil
import weakref

import numpy as np
import pytest
import torch

from conftest import load_reference_model
from task.sampling import compiled_denoise, sample_velocity

# bf16 keeps ~3 significant digits; on the reference model the largest change of a velocity in the
# model's [0, 1] scale is about 0.002 (0.26 MIDI velocity). 0.01 = 1.3 MIDI velocity.
BF16_MAX_ABS_ERROR = 0.01


@pytest.fixture(scope="module")
def segments(reference_dir):
    """Four distinct segments: the two reference ones and two made from them (reversed audio, shifted score)."""
    io = np.load(reference_dir / "model_io.npz")
    waveform = torch.from_numpy(io["waveform"])  # (2, 327680)
    score = torch.from_numpy(io["frame_roll"][:, 0])  # (2, 640, 88)
    waveform = torch.cat([waveform, waveform.flip(-1)])  # (4, 327680)
    score = torch.cat([score, score.roll(37, dims=1)])  # (4, 640, 88)
    return waveform, score


def _generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def _sample(model, waveform, score, seeds, **kwargs):
    return sample_velocity(model, waveform, score, generator=_generators(seeds), **kwargs)


@pytest.mark.parametrize("exact_savings", [True, False])
def test_bf16_is_close_to_fp32_but_not_equal(reference_model, segments, exact_savings):
    waveform, score = (t[:2] for t in segments)
    kwargs = dict(sampler="cfdg_ddpm_x0", steps=5, exact_savings=exact_savings)
    fp32 = _sample(reference_model, waveform, score, [0, 1], **kwargs)
    bf16 = _sample(reference_model, waveform, score, [0, 1], precision="bf16", **kwargs)
    assert bf16.dtype == torch.float32  # the sampler arithmetic and the output stay float32
    error = (bf16 - fp32).abs().max().item()
    assert 0 < error <= BF16_MAX_ABS_ERROR, f"bf16 max abs error {error}"


def test_bf16_passes_through_model_sample(reference_model, segments):
    waveform, score = (t[:1] for t in segments)
    direct = _sample(reference_model, waveform, score, [4], sampler="ddim_x0", steps=2, precision="bf16")
    via_model = reference_model.sample(waveform, score, generator=_generators([4]), type="ddim_x0", steps=2,
                                       precision="bf16")
    assert torch.equal(direct, via_model)


def test_unknown_precision_is_refused(reference_model, segments):
    waveform, score = (t[:1] for t in segments)
    with pytest.raises(ValueError, match=r"precision 'fp16' is not one of \('fp32', 'bf16'\)"):
        _sample(reference_model, waveform, score, [0], precision="fp16", steps=1)


def test_compile_is_refused_for_the_published_loop(reference_model, segments):
    waveform, score = (t[:1] for t in segments)
    with pytest.raises(ValueError, match="published loop"):
        _sample(reference_model, waveform, score, [0], compile=True, exact_savings=False, steps=1)


def _compile_unavailable() -> str:
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile (dynamo) is not supported on this Python/platform"
    if not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
        return "torch.compile on CPU needs a C++ compiler; none on PATH"
    return ""


@pytest.mark.skipif(bool(_compile_unavailable()), reason=_compile_unavailable() or "available")
def test_compile_equals_eager_and_is_cached_per_model(reference_dir, segments):
    model = load_reference_model(reference_dir)  # its own instance: the compiled function is cached on it
    waveform, score = (t[:2] for t in segments)
    kwargs = dict(sampler="ddim_x0", steps=3)
    eager = _sample(model, waveform, score, [2, 3], **kwargs)
    compiled = _sample(model, waveform, score, [2, 3], compile=True, **kwargs)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    assert compiled_denoise(model) is compiled_denoise(model)
    other = load_reference_model(reference_dir)
    assert compiled_denoise(other) is not compiled_denoise(model)
    # the cache must not keep a model alive
    model_ref = weakref.ref(model)
    del model
    gc.collect()
    assert model_ref() is None


def test_batching_four_segments_equals_one_by_one(reference_model, segments):
    """Per-item generators: a segment's estimate does not depend on what it is batched with."""
    waveform, score = segments
    seeds = [10, 11, 12, 13]
    kwargs = dict(sampler="cfdg_ddpm_x0", steps=6)  # ancestral: fresh noise at every step
    batched = _sample(reference_model, waveform, score, seeds, **kwargs)  # (4, 1, 640, 88)
    single = torch.cat([_sample(reference_model, waveform[i:i + 1], score[i:i + 1], [s], **kwargs)
                        for i, s in enumerate(seeds)])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)
    # and the four segments really differ, so the comparison is not trivially true
    assert not torch.allclose(batched[0], batched[2]) and not torch.allclose(batched[1], batched[3])
