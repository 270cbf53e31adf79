"""DiffVel+ note pooling (model/note_pooling.py): one output value per score note."""
import pytest
import torch

from model import load_diffvel
from model.note_pooling import note_ids, pool_notes
from test_diffvel_plus import TINY
from utils.training.machinery import build_model


def _score(frames=12):
    """Key 3: a note at 1..4 re-struck at 5 (no gap) until 7; key 4: a note at 2..3 with no onset marked."""
    frame, onset = torch.zeros(1, 88, frames), torch.zeros(1, 88, frames)
    frame[0, 3, 1:8] = 1
    onset[0, 3, [1, 5]] = 1
    frame[0, 4, 2:4] = 1
    return frame, onset


def test_notes_split_at_onsets_and_gaps_and_start_at_rising_edges():
    frame, onset = _score()
    ids = note_ids(frame, onset)
    assert ids[0, 3].tolist() == [0, 1, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0]
    assert ids[0, 4].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert ids[0, 5].abs().sum() == 0


def test_each_note_gets_its_mean_and_other_cells_are_kept():
    frame, onset = _score()
    x0 = torch.randn(1, 1, 12, 88, generator=torch.Generator().manual_seed(0))
    pooled = pool_notes(x0, torch.cat([frame, onset], dim=1))
    assert torch.allclose(pooled[0, 0, 1:5, 3], x0[0, 0, 1:5, 3].mean().expand(4))
    assert torch.allclose(pooled[0, 0, 5:8, 3], x0[0, 0, 5:8, 3].mean().expand(3))
    assert torch.allclose(pooled[0, 0, 2:4, 4], x0[0, 0, 2:4, 4].mean().expand(2))
    outside = (torch.cat([frame, onset], dim=1)[:, :88] == 0).transpose(1, 2).unsqueeze(1)  # (1, 1, T, 88)
    assert torch.equal(pooled[outside], x0[outside])


def test_pooling_keeps_items_of_a_batch_apart():
    frame, onset = _score()
    score = torch.cat([frame, onset], dim=1).repeat(2, 1, 1)
    x0 = torch.zeros(2, 1, 12, 88)
    x0[1, 0, 1:5, 3] = 1.0
    pooled = pool_notes(x0, score)
    assert pooled[0].abs().sum() == 0 and torch.allclose(pooled[1, 0, 1:5, 3], torch.ones(4))


def test_the_loss_gradient_reaches_every_cell_of_a_note_equally():
    frame, onset = _score()
    x0 = torch.randn(1, 1, 12, 88, requires_grad=True)
    pool_notes(x0, torch.cat([frame, onset], dim=1))[0, 0, 1, 3].backward()  # one cell of a 4-frame note
    assert torch.allclose(x0.grad[0, 0, 1:5, 3], torch.full((4,), 0.25))
    assert x0.grad.abs().sum() == pytest.approx(1.0)


def test_a_pooling_model_samples_one_value_per_score_note(compose, tmp_path):
    torch.manual_seed(0)
    model = build_model(compose("spec_roll", TINY + ["model.args.note_pooling=true"])).eval()
    torch.nn.init.normal_(model.output_projection.weight)  # zero at initialisation, as DiffWave's
    generator = torch.Generator().manual_seed(1)
    frame = torch.zeros(1, 640, 88)
    frame[0, 100:160, 40] = 1
    onset = torch.zeros(1, 640, 88)
    onset[0, 100, 40] = 1
    waveform = torch.randn(1, 327680, generator=generator) * 0.1
    roll = model.sample(waveform, frame, type="ddim_x0", steps=3, onset_roll=onset)  # (1, 1, 640, 88)
    note = roll[0, 0, 100:160, 40]
    assert torch.allclose(note, note[0].expand(60)) and roll[0, 0, 90:100, 40].std() > 0
    path = tmp_path / "pool.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    assert load_diffvel(path).note_pooling


def test_checkpoints_without_the_key_load_without_pooling(compose, tmp_path):
    model = build_model(compose("spec_roll", TINY))
    hparams = {k: v for k, v in dict(model.hparams).items() if k != "note_pooling"}
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams}, path)
    loaded = load_diffvel(path)
    x0 = torch.randn(1, 1, 640, 88)
    assert not loaded.note_pooling and torch.equal(loaded.finish_x0(x0, torch.ones(1, 176, 640)), x0)


def test_pooling_without_the_score_conditioner_is_refused(compose):
    with pytest.raises(ValueError, match="note_pooling=true needs model.args.score_conditioner=true"):
        build_model(compose("spec_roll", TINY + ["model.args.note_pooling=true", "model.args.score_conditioner=false"]))


def test_bf16_outputs_are_pooled_in_float32_and_keep_their_dtype():
    frame = torch.zeros(1, 88, 640)
    frame[0, 7, :600] = 1
    score = torch.cat([frame, torch.zeros_like(frame)], dim=1)
    x0 = torch.full((1, 1, 640, 88), 0.3).to(torch.bfloat16)
    x0[0, 0, 0, 7] = 0.9  # one larger cell: the note's mean is 0.301, lost in bfloat16 sums of 600 cells
    pooled = pool_notes(x0, score)
    expected = x0[0, 0, :600, 7].float().mean()
    assert pooled.dtype == torch.bfloat16
    assert pooled[0, 0, 0, 7].float() == pytest.approx(expected.item(), abs=2e-3)


def test_guided_sampling_pools_once_as_the_published_loop_pools_each_pass(compose):
    torch.manual_seed(0)
    model = build_model(compose("spec_roll", TINY + ["model.args.note_pooling=true"])).eval()
    torch.nn.init.normal_(model.output_projection.weight)
    frame, onset = torch.zeros(1, 640, 88), torch.zeros(1, 640, 88)
    frame[0, 100:160, 40] = 1
    onset[0, 100, 40] = 1
    waveform = torch.randn(1, 327680, generator=torch.Generator().manual_seed(1)) * 0.1
    rolls = [model.sample(waveform, frame, type="ddim_x0", steps=3, w=0.5, onset_roll=onset,
                          generator=torch.Generator().manual_seed(2), exact_savings=exact) for exact in (True, False)]
    assert torch.allclose(rolls[0], rolls[1], atol=1e-5)
    assert torch.allclose(rolls[0][0, 0, 100:160, 40], rolls[0][0, 0, 100, 40].expand(60))
