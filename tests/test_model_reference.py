"""The network, schedule, normalisation and sampler step equal the published implementation."""

import numpy as np
import pytest
import torch

from task.update_rules import ddpm_x0_step, guided_x0

RTOL = 1e-5


def relative_error(actual: torch.Tensor, expected: np.ndarray) -> float:
    return float(np.abs(actual.detach().numpy() - expected).max() / np.abs(expected).max())


@pytest.fixture(scope="module")
def io(reference_dir):
    return dict(np.load(reference_dir / "model_io.npz"))


@pytest.fixture(scope="module")
def inputs(io):
    return (torch.from_numpy(io["x_t"]), torch.from_numpy(io["waveform"]), torch.from_numpy(io["frame_roll"]))


def test_state_dict_names_and_shapes_equal_published(reference_model, reference_dir):
    published = np.load(reference_dir / "model_state_dict.npz")
    ours = reference_model.state_dict()
    assert sorted(ours) == sorted(published.files)
    assert all(tuple(ours[k].shape) == published[k].shape for k in published.files)


def test_forward_equals_published(reference_model, io, inputs):
    x_t, waveform, frame_roll = inputs
    with torch.no_grad():
        x0_pred, spec = reference_model(x_t, waveform, frame_roll, torch.from_numpy(io["t"]))
    assert relative_error(x0_pred, io["x0_pred"]) < RTOL
    assert relative_error(spec, io["spec"]) < RTOL
    # the second item is silent for its first 100000 samples: the spectrogram must see that
    assert spec.shape == (2, 229, 640)


def test_unconditional_forward_equals_published(reference_model, io, inputs):
    x_t, waveform, frame_roll = inputs
    with torch.no_grad():
        x0_uncond, spec = reference_model(
            x_t, torch.zeros_like(waveform), frame_roll, torch.from_numpy(io["t"]), sampling=True
        )
    assert relative_error(x0_uncond, io["x0_pred_uncond"]) < RTOL
    assert torch.all(spec == -1)


@pytest.mark.parametrize("w", [0.0, 0.5])
@pytest.mark.parametrize("t", [199, 100, 1, 0])
def test_cfdg_ddpm_x0_step_equals_published(reference_model, io, inputs, w, t):
    x_t, waveform, frame_roll = inputs
    steps = torch.full((2,), t, dtype=torch.long)
    with torch.no_grad():
        x0_cond, _ = reference_model(x_t, waveform, frame_roll, steps)
        x0_uncond, _ = reference_model(x_t, torch.zeros_like(waveform), frame_roll, steps, sampling=True)
        z = torch.from_numpy(io[f"step_w{w}_t{t}_z"])
        nxt = ddpm_x0_step(reference_model.schedule, x_t, guided_x0(x0_cond, x0_uncond, w), t, t - 1, z)
    assert relative_error(nxt, io[f"step_w{w}_t{t}_next"]) < RTOL


def test_forward_diffusion_equals_published(reference_model, io):
    xt = reference_model.schedule.q_sample(
        torch.from_numpy(io["q_x0"]), torch.from_numpy(io["q_t"]), torch.from_numpy(io["q_noise"])
    )
    assert relative_error(xt, io["q_xt"]) < RTOL


def test_schedule_is_linear_200_steps(reference_model):
    betas = reference_model.schedule.betas
    assert betas.shape == (200,)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)


def test_imagewise_normalisation_equals_published(reference_model, io):
    out = reference_model.normalize(torch.from_numpy(io["norm_in"]))
    np.testing.assert_allclose(out.numpy(), io["norm_out"], rtol=RTOL, atol=1e-7)


def test_empty_roll_normalises_to_low_not_nan(reference_model):
    out = reference_model.normalize(torch.zeros(2, 640, 88))
    assert torch.all(out == 0)


@pytest.mark.parametrize(
    "shapes, message",
    [
        (((2, 1, 640, 88), (2, 327680), (2, 1, 600, 88)), "frame_roll must be"),
        (((2, 1, 640, 88), (327680,), (2, 1, 640, 88)), "waveform must be"),
        (((2, 1, 640, 88), (2, 16000), (2, 1, 640, 88)), "fewer than the 640 frames"),
        (((2, 640, 88), (2, 327680), (2, 1, 640, 88)), "x_t must be"),
    ],
)
def test_wrong_input_shapes_are_named(reference_model, shapes, message):
    x_t, waveform, frame_roll = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=message):
        reference_model(x_t, waveform, frame_roll, torch.zeros(x_t.shape[0], dtype=torch.long))
