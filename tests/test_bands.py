"""DiffVel+'s band view of the spectrogram (model.args.mel_bands, model/bands.py)."""
import pytest
import torch

from _estimate_fixtures import reloaded_without
from model import load_diffvel
from model.bands import MelBands
from utils.training.machinery import build_model

TINY = ["model=DiffVelPlus", "model.args.residual_channels=8", "model.args.residual_layers=2",
        "model.args.kernel_size=3", "model.args.absolute_level=true"]


def power() -> torch.Tensor:
    return torch.rand(3, 229, 7, generator=torch.Generator().manual_seed(0)) ** 4  # (B, n_mels, T)


@pytest.mark.parametrize("bands", [1, 4, 229])
def test_each_bin_holds_its_bands_mean_power(bands):
    x = power()
    pooled = MelBands(bands, 229)(x)
    sizes = MelBands(bands, 229).sizes
    assert len(sizes) == bands and sum(sizes) == 229 and max(sizes) - min(sizes) <= 1
    start = 0
    for size in sizes:
        band = pooled[:, start:start + size]
        assert torch.allclose(band, x[:, start:start + size].mean(1, keepdim=True).expand_as(band))
        start += size
    assert torch.allclose(pooled.sum(1), x.sum(1), rtol=1e-5)  # the frame's total power is kept
    if bands == 1:
        assert torch.equal(pooled, pooled[:, :1].expand_as(pooled))  # the level per frame only


def test_zero_bands_is_the_full_mel():
    x = power()
    assert MelBands(0, 229)(x) is x


@pytest.mark.parametrize("value", [-1, 230, 1.5, True])
def test_a_band_count_out_of_range_is_refused(compose, value):
    with pytest.raises(ValueError, match=r"model.args.mel_bands=.*: must be an integer from 0 \(off\) to 229"):
        build_model(compose("spec_roll", TINY + [f"model.args.mel_bands={value}"]))


def test_the_band_view_acts_in_inference_and_survives_the_checkpoint(compose, tmp_path):
    model = build_model(compose("spec_roll", TINY + ["model.args.mel_bands=1"])).eval()
    waveform = torch.randn(2, 16000, generator=torch.Generator().manual_seed(2))
    spec = model.spectrogram(waveform)  # (B, n_mels, T)
    assert torch.equal(spec, spec[:, :1].expand_as(spec))
    path = tmp_path / "bands.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    reloaded = load_diffvel(path).eval()
    assert reloaded.bands.bands == 1 and torch.equal(reloaded.spectrogram(waveform), spec)
    assert reloaded_without(compose, tmp_path / "old.ckpt", "mel_bands").bands.bands == 0


def test_the_bands_experiment_is_run_h_with_one_band_and_no_tilt(compose):
    bands, hannds = compose("spec_roll", ["experiment=plus_bands"]), compose("spec_roll", ["experiment=plus_hannds"])
    assert bands.model.args.mel_bands == 1 and hannds.model.args.mel_bands == 0
    assert bands.model.args.tilt_db == 0.0 and hannds.model.args.tilt_db == 6.0
    bands.model.args.mel_bands, bands.model.args.tilt_db = 0, 6.0
    assert bands.model == hannds.model and bands.data_root == hannds.data_root and bands.log_dir == "runs/bands"
