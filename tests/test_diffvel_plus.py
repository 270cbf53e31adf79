"""DiffVel+ (model/diffvel_plus.py): built from the config, rebuilt from its checkpoints by variant,
the dense score conditioner reads the onset roll, absolute targets, note-cell loss weighting; and the
training machinery it relies on (crops_per_epoch, last.ckpt when fitting ends)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model import ClassifierFreeDiffRoll, DiffVelPlus, load_diffvel
from model.diffvel_plus import rising_edges
from utils.training.machinery import build_model

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = ["model=DiffVelPlus", "model.args.residual_channels=8", "model.args.residual_layers=2",
        "model.args.kernel_size=3"]


@pytest.fixture(scope="module")
def plus(compose):
    torch.manual_seed(0)
    return build_model(compose("spec_roll", TINY)).eval()


def _save(model, path: Path, **changes) -> Path:
    hparams = {**dict(model.hparams), **changes}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams}, path)
    return path


def _inputs(batch=1, frames=640):
    generator = torch.Generator().manual_seed(1)
    frame = (torch.rand(batch, frames, 88, generator=generator) < 0.05).float()
    onset = frame * (torch.rand(batch, frames, 88, generator=generator) < 0.5).float()
    return torch.randn(batch, 327680, generator=generator) * 0.1, frame, onset


def test_config_builds_the_variant_with_its_hyperparameters(plus):
    assert isinstance(plus, DiffVelPlus)
    assert plus.hparams["variant"] == "DiffVelPlus"
    assert plus.hparams["score_conditioner"] and plus.hparams["absolute_velocity"]
    assert len(plus.score_projections) == 2


def test_checkpoint_rebuilds_the_variant_without_a_config(plus, tmp_path):
    loaded = load_diffvel(_save(plus, tmp_path / "plus.ckpt")).eval()
    assert type(loaded) is DiffVelPlus
    waveform, frame, onset = _inputs()
    kwargs = {"type": "ddim_x0", "steps": 2, "onset_roll": onset}
    first = plus.sample(waveform, frame, generator=torch.Generator().manual_seed(0), **kwargs)
    second = loaded.sample(waveform, frame, generator=torch.Generator().manual_seed(0), **kwargs)
    assert torch.equal(first, second)


def test_unknown_variant_is_refused_in_one_line(plus, tmp_path):
    from utils.training.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=r"bad\.ckpt: unknown model variant 'Nope'"):
        load_diffvel(_save(plus, tmp_path / "bad.ckpt", variant="Nope"))


def test_paper_checkpoint_stays_the_paper_network(compose, tmp_path):
    paper = build_model(compose("spec_roll", ["model.args.residual_channels=8", "model.args.residual_layers=2"]))
    loaded = load_diffvel(_save(paper, tmp_path / "paper.ckpt"))
    assert type(loaded) is ClassifierFreeDiffRoll and "variant" not in loaded.hparams


def test_dense_score_conditioner_reads_the_onset_roll(compose):
    torch.manual_seed(0)
    plus = build_model(compose("spec_roll", TINY)).eval()
    torch.nn.init.normal_(plus.output_projection.weight)  # zero at initialisation, as DiffWave's
    waveform, frame, onset = _inputs()
    spec = plus.spectrogram(waveform)[..., :640]
    x = torch.randn(1, 1, 640, 88)
    step = torch.tensor([5])
    film = plus.film(frame.unsqueeze(1))

    def denoised(onset_roll):
        return plus.denoise(x, step, film, plus.conditioners(spec, plus.score_features(frame, onset_roll)))

    assert not torch.allclose(denoised(onset), denoised(torch.zeros_like(onset)))


def test_without_score_conditioner_the_onset_roll_is_ignored(compose):
    model = build_model(compose("spec_roll", TINY + ["model.args.score_conditioner=false"])).eval()
    assert model.score_projections is None and model.score_features(torch.zeros(1, 640, 88)) is None


def test_absolute_targets_keep_velocity_over_128_while_the_paper_normalises(plus, compose):
    velocity = torch.zeros(2, 640, 88)
    velocity[0, 10:20, 40] = 64 / 128
    velocity[1, 5:9, 3] = 32 / 128
    assert torch.equal(plus.velocity_target(velocity), velocity)
    paper = build_model(compose("spec_roll", ["model.args.residual_channels=8", "model.args.residual_layers=2"]))
    assert paper.velocity_target(velocity).flatten(1).max(1).values.tolist() == [1.0, 1.0]


def test_note_cells_are_weighted_in_the_loss(compose):
    model = build_model(compose("spec_roll", TINY + ["model.args.note_loss_weight=9"]))
    label, prediction = torch.zeros(1, 1, 4, 88), torch.zeros(1, 1, 4, 88)
    frame = torch.zeros(1, 1, 4, 88)
    frame[..., 0, 0] = 1
    prediction[..., 0, 0] = 1.0  # error 1 on the one note cell
    prediction[..., 1, 1] = 1.0  # error 1 on one silent cell
    weights = 4 * 88 - 1 + 10
    assert model.diffusion_loss(label, prediction, frame).item() == pytest.approx((10 + 1) / weights)


def test_rising_edges_mark_the_first_frame_of_each_run():
    frame = torch.tensor([[[0, 1, 1, 0, 1, 1]]], dtype=torch.float32)  # (1, 1 key, 6 frames)
    assert rising_edges(frame).tolist() == [[[0, 1, 0, 0, 1, 0]]]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plus_corpus")
    subprocess.run([sys.executable, "-m", "utils.synth", "--out", str(root), "--tiny", "--renderer", "additive"],
                   cwd=REPO_ROOT, check=True, capture_output=True, timeout=240)
    return root


def test_crops_per_epoch_makes_several_distinct_crops_of_each_piece(tiny_corpus):
    from utils.data.maestro import MAESTRO

    one, three = MAESTRO(tiny_corpus), MAESTRO(tiny_corpus, crops_per_epoch=3)
    assert len(three) == 3 * len(one)
    starts = {three.crop_begin(i) for i in range(0, len(three), len(one))}  # the crops of piece 0
    assert len(starts) == 3
    assert three[len(one)]["path"] == one[0]["path"]
    with pytest.raises(ValueError, match="crops_per_epoch=0"):
        MAESTRO(tiny_corpus, crops_per_epoch=0)


def test_training_writes_last_ckpt_when_max_steps_ends_it_before_any_validation(tiny_corpus, tmp_path):
    command = [sys.executable, str(REPO_ROOT / "train_spec_roll.py"), "experiment=plus_cpu", *TINY,
               f"data_root={tiny_corpus}", f"log_dir={tmp_path / 'runs'}", "val_freq=1000",
               "save_every_n_steps=null", "trainer.max_steps=3", "dataloader.train.num_workers=0",
               "dataloader.train.batch_size=1", "trainer.enable_progress_bar=false",
               f"hydra.run.dir={tmp_path / 'hydra'}"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    (last,) = (tmp_path / "runs").glob("DiffVelPlus-*/version_0/checkpoints/last.ckpt")
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 3
    assert checkpoint["hyper_parameters"]["variant"] == "DiffVelPlus"
