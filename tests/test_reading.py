"""DiffVel+'s notes reading, the score's clock and the centred residual (model/reading.py, model/loudness.py)."""
import json
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from bench import reading as bench_reading
from maestro_layout import _short
from model.loudness import centred_on_notes, floored_on_notes, loudness_roll, note_weights
from model.normalization import log_mel
from model.note_pooling import note_ids
from model.reading import LINES, audio_frames, features, key_partials
from test_loudness import FRAMES, NOTES, TINY, score, waveform
from utils.conventions import FRAMES_PER_SECOND, PAPER_TEST_FPS, UNCONDITIONAL_SPEC_VALUE
from utils.data.smd import corrected_segments, paper_segments, write_excerpt
from utils.evaluation.excerpts import estimate_segments
from utils.training.machinery import build_model

NOTES_READING = TINY + ["model.args.loudness_residual=true", "model.args.loudness_reading=notes"]


def test_the_fixed_notes_line_is_the_fitted_one():
    fit = json.loads(open("pretrained/note_reading.json").read())
    weights, intercept = LINES["notes"]
    assert fit["features"] == ["energy", "partials", "chord"]
    assert tuple(round(w, 2) for w in fit["weights"]) == weights and round(fit["intercept"], 2) == intercept


def test_each_key_reads_its_own_harmonics(compose):
    mel = build_model(compose("spec_roll", TINY)).mel_layer
    partials = key_partials(mel.mel_scale.fb, mel.sample_rate)  # (88, n_mels)
    freqs = torch.linspace(0, mel.sample_rate / 2, mel.mel_scale.fb.shape[0], dtype=torch.float64)
    centres = freqs[mel.mel_scale.fb.argmax(0)]
    assert partials.shape == (88, 229) and torch.all(partials.sum(1) >= 1)
    a4 = centres[partials[48] > 0]  # key 48 = MIDI 69, 440 Hz
    for harmonic in (440.0, 880.0, 1320.0, 1760.0):
        assert torch.any((a4 - harmonic).abs() / harmonic < 0.05), harmonic
    assert not torch.any((a4 - 660.0).abs() / 660.0 < 0.03)  # a fifth above is no harmonic of A4


def test_the_chord_feature_counts_notes_starting_within_one_frame():
    starts = torch.zeros(1, 88, 40, dtype=torch.bool)
    starts[0, [3, 10, 20], 5] = True  # a three-note chord
    starts[0, 30, 6] = True  # one frame later: counted with it
    starts[0, 40, 20] = True  # alone
    values = features(torch.zeros(1, 229, 40), starts, kind="notes", partials=torch.ones(88, 229))
    chord = values[0, 2]  # (88, T)
    assert chord[3, 5] == pytest.approx(math.log(4)) and chord[40, 20] == 0.0


def test_the_score_clock_maps_score_frames_to_the_audios_time():
    assert audio_frames(640, 641, FRAMES_PER_SECOND, "cpu")[0].tolist() == list(range(640))
    paper = audio_frames(640, 641, PAPER_TEST_FPS, "cpu")[0]
    assert paper[310].item() == 312 and paper[620].item() == 625  # 20 s: frame 620 at 31 fps, 625 at 31.25
    per_item = audio_frames(640, 641, torch.tensor([31.25, 31.0]), "cpu")
    assert torch.equal(per_item[0], audio_frames(640, 641, FRAMES_PER_SECOND, "cpu")[0]) and torch.equal(per_item[1], paper)


def test_a_note_on_the_paper_clock_reads_the_onset_it_sounds_at(compose):
    spec = log_mel(build_model(compose("spec_roll", TINY)).mel_power(waveform()))  # (1, 229, T)
    on_paper = [(10, 600, 610)]  # at 31 fps frame 600 is 19.35 s, i.e. frame 605 of the audio
    at_audio = [(10, 605, 615)]
    model = build_model(compose("spec_roll", NOTES_READING))
    for kind in ("onset", "notes"):
        partials = model.partials if kind == "notes" else None
        drifted = loudness_roll(spec, score(on_paper), kind, PAPER_TEST_FPS, partials)[0, 10, 600]
        aligned = loudness_roll(spec, score(at_audio), kind, FRAMES_PER_SECOND, partials)[0, 10, 605]
        unmapped = loudness_roll(spec, score(on_paper), kind, FRAMES_PER_SECOND, partials)[0, 10, 600]
        assert drifted == aligned and drifted != unmapped, kind


def test_the_centred_correction_has_mean_zero_on_the_notes_and_leaves_other_cells():
    correction = torch.randn(2, 1, 30, 88)
    notes = torch.zeros(2, 1, 30, 88, dtype=torch.bool)
    notes[0, 0, 3:9, 5] = notes[0, 0, 10:12, 50] = notes[1, 0, 0:30, 7] = True
    centred = centred_on_notes(correction, notes)
    for item in (0, 1):
        assert centred[item][notes[item]].mean().abs() < 1e-6
    assert torch.equal(centred[~notes], correction[~notes])
    assert torch.equal(centred_on_notes(correction, torch.zeros_like(notes)), correction)


def _stand_in_x0(compose, overrides, std):
    """x0 (T, 88) of a residual model with random weights (a trained network's stand-in: a fresh one outputs
    zeros) on the NOTES score, and the notes reading (T, 88) it corrects."""
    torch.manual_seed(0)
    model = build_model(compose("spec_roll", NOTES_READING + overrides)).eval()
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=std)
    frame_roll, onset_roll = (score(NOTES)[:, part].transpose(1, 2)[:, None] for part in (slice(0, 88), slice(88, None)))
    with torch.no_grad():
        x0 = model(torch.randn(1, 1, FRAMES, 88), waveform(), frame_roll, torch.tensor([50]), onset_roll=onset_roll)[0]
    reading = loudness_roll(log_mel(model.mel_power(waveform()))[..., :FRAMES], score(NOTES), "notes",
                            partials=model.partials)[0].T
    return x0[0, 0], reading


def test_the_centred_residual_moves_notes_but_not_the_readings_level(compose):
    x0, reading = _stand_in_x0(compose, ["model.args.residual_centred=true"], std=0.3)
    notes = score(NOTES)[0, :88].T > 0  # (T, 88)
    assert not torch.allclose(x0[notes], reading[notes])  # the network moved notes
    assert (x0[notes] - reading[notes]).mean().abs() < 1e-5  # and kept their mean level


def test_note_weights_make_every_note_weigh_one_whatever_its_length():
    frame, onset = torch.zeros(1, 88, 30), torch.zeros(1, 88, 30)
    frame[0, 5, 2:12] = onset[0, 5, 2] = onset[0, 5, 8] = 1.0  # a re-struck key: notes of 6 and 4 cells
    frame[0, 40, 20] = onset[0, 40, 20] = 1.0  # a one-cell note
    weights = note_weights(note_ids(frame, onset))
    assert weights[0, 5, 2:8].tolist() == [pytest.approx(1 / 6)] * 6 and weights[0, 5, 8:12].tolist() == [0.25] * 4
    assert weights[0, 40, 20] == 1.0 and weights.sum() == pytest.approx(3.0)
    correction = torch.zeros(1, 1, 30, 88)
    correction[0, 0, 2:8, 5], correction[0, 0, 8:12, 5], correction[0, 0, 20, 40] = 3.0, 0.0, 0.0
    centred = centred_on_notes(correction, weights.transpose(1, 2)[:, None])
    assert centred[0, 0, 2, 5] == pytest.approx(2.0) and centred[0, 0, 20, 40] == pytest.approx(-1.0)  # notes, not cells
    assert centred[0, 0, 0, 0] == 0.0


def test_no_note_ends_below_velocity_one_and_other_cells_keep_their_value():
    x0 = torch.tensor([-0.2, 0.001, 0.5, -0.3]).view(1, 1, 1, 4)
    notes = torch.tensor([True, True, True, False]).view(1, 1, 1, 4)
    assert floored_on_notes(x0, notes).flatten().tolist() == pytest.approx([1 / 128, 1 / 128, 0.5, -0.3])


def test_the_notes_reading_reads_the_full_mel_while_the_network_hears_the_bands(compose):
    full = build_model(compose("spec_roll", NOTES_READING))
    heard_bands = build_model(compose("spec_roll", NOTES_READING + ["model.args.mel_bands=1"]))
    bands_only = build_model(compose("spec_roll", TINY + ["model.args.loudness_residual=true", "model.args.mel_bands=1"]))
    spec = heard_bands.spectrogram(waveform())  # (1, n_mels, T)
    assert torch.equal(spec, full.spectrogram(waveform()))  # what the reading reads
    heard = heard_bands.heard(spec)
    assert torch.allclose(heard, bands_only.spectrogram(waveform()), atol=1e-4)  # what the blocks hear: one band
    assert torch.allclose(heard, heard[:, :1].expand_as(heard)) and not torch.allclose(spec, spec[:, :1].expand_as(spec))
    assert torch.equal(full.heard(spec), spec)
    unconditional = torch.full_like(spec, UNCONDITIONAL_SPEC_VALUE)  # classifier-free guidance's "no audio"
    both = heard_bands.heard(torch.cat([spec, unconditional]))
    assert torch.equal(both[1:], unconditional) and torch.allclose(both[:1], heard, atol=1e-6)


def test_the_per_note_residual_keeps_the_mean_over_notes_of_the_reading(compose):
    x0, reading = _stand_in_x0(compose, ["model.args.residual_centred=true", "model.args.residual_per_note=true"],
                               std=0.05)
    weights = note_weights(note_ids(score(NOTES)[:, :88], score(NOTES)[:, 88:]))[0].T  # (T, 88)
    notes = weights > 0
    assert torch.all(reading[notes] > 1 / 128) and torch.all(x0[notes] >= 1 / 128)
    moved = x0 - reading
    assert not torch.allclose(moved[notes], torch.zeros_like(moved[notes]))  # the network moved notes
    assert (moved * weights).sum().abs() < 1e-5  # and kept their mean over notes


@pytest.mark.parametrize("overrides, message", [
    (["model.args.loudness_reading=loud"], r"model.args.loudness_reading='loud': must be one of onset, notes"),
    (["model.args.residual_per_note=true"], r"model.args.residual_per_note=true needs model.args.residual_centred=true"),
])
def test_a_bad_reading_is_refused_naming_the_key(compose, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_model(compose("spec_roll", NOTES_READING + overrides))


def test_centring_without_the_residual_is_refused(compose):
    with pytest.raises(ValueError, match=r"model.args.residual_centred=true needs model.args.loudness_residual=true"):
        build_model(compose("spec_roll", TINY + ["model.args.residual_centred=true"]))


def test_training_items_carry_their_scores_clock(layout):
    assert {_short(layout)[0]["score_fps"].item()} == {FRAMES_PER_SECOND}
    paper = _short(layout, paper_label_prob=1.0)
    assert paper[0]["score_fps"].dtype == torch.float32 and paper[0]["score_fps"].item() == PAPER_TEST_FPS


def test_segments_carry_their_clock_and_sampling_reads_it_then_restores_the_default(compose, tmp_path):
    events = ["note_on channel=0 note=60 velocity=80 time=0", "note_on channel=0 note=60 velocity=0 time=0"]
    wave = (np.random.default_rng(0).standard_normal(16000 * 6) * 3000).astype(np.int16)
    h5 = write_excerpt(tmp_path / "p.h5", wave, events, [0.5, 1.0], 6.0)
    paper, corrected = list(paper_segments(h5)), list(corrected_segments(h5))
    assert paper[0].score_fps == PAPER_TEST_FPS and corrected[0].score_fps == FRAMES_PER_SECOND
    model = build_model(compose("spec_roll", NOTES_READING)).eval()
    seen = []
    model.denoise = lambda *args, real=model.denoise: seen.append(model.score_fps) or real(*args)
    estimate_segments(model, paper, "x", 0.0, progress=False, sampler="ddim_x0", steps=2)
    assert set(seen) == {PAPER_TEST_FPS} and model.score_fps == FRAMES_PER_SECOND


def test_the_fitted_line_recovers_a_known_line():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(500, 3))
    line = bench_reading.fit_line(values, values @ [10.0, 3.0, -14.0] + 85.0)
    assert np.allclose(line["weights"], [10.0, 3.0, -14.0]) and line["intercept"] == pytest.approx(85.0)


def test_the_readings_of_the_bench_are_the_models(compose):
    """bench.reading scores the line the model applies: its per-note estimates equal the model's roll."""
    model = build_model(compose("spec_roll", NOTES_READING))
    wave = waveform()[0].numpy()
    note_table = np.array([[start / FRAMES_PER_SECOND, end / FRAMES_PER_SECOND, key + 21, 64]
                           for key, start, end in NOTES if key != 40])  # no re-strike: one note per onset
    spec_args = OmegaConf.to_container(compose("spec_roll").spec.args, resolve=True)
    values, _ = bench_reading.NoteFeatures(spec_args)(wave, note_table)
    estimates = bench_reading.reading_estimates(values, "notes")
    roll = loudness_roll(log_mel(model.mel_power(waveform())), score(NOTES), "notes", partials=model.partials)[0]
    for (key, start, _), estimate in zip([n for n in NOTES if n[0] != 40], estimates):
        assert roll[key, start].item() * 128 == pytest.approx(estimate, abs=1e-3)
