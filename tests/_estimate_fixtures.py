"""Inputs for the estimate_velocity tests: a tiny random DiffVel+ checkpoint and a rendered piece.

The piece is a type 1 MIDI file written with mido from a synthetic performance (utils.synth):
track 0 the tempo map (two tempo changes) and a time signature; track 1 the piano (program change,
volume CC7, sustain CC64, notes with known velocities, half of them ended by a zero-velocity note_on); track 2 a drum note on channel 10 and a note
above the keyboard (pitch 110). Its audio is rendered from the same file by the additive renderer.
"""
from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pretty_midi
import soundfile
import torch

from utils.data.audio_io import resample_to_mono
from utils.conventions import SAMPLE_RATE
from utils.synth import generate_performance, make_renderer

TICKS_PER_BEAT = 480
TEMPI = [(0.0, 500000), (3.0, 600000), (7.0, 450000)]  # (seconds, microseconds per beat)
TINY_OVERRIDES = ["model=DiffVelPlus", "model.args.residual_channels=8", "model.args.residual_layers=2",
                  "model.args.kernel_size=3"]


def tiny_checkpoint(compose, path: Path, absolute: bool = True) -> Path:
    """A random-weight 2x8 DiffVel+ (or, absolute=False, the paper's network) saved Lightning-style."""
    import model as models

    overrides = TINY_OVERRIDES if absolute else TINY_OVERRIDES[1:]
    cfg = compose("spec_roll", overrides)
    torch.manual_seed(0)
    net = getattr(models, cfg.model.name)(**cfg.model.args, spec_args=cfg.spec.args, **cfg.task)
    torch.nn.init.normal_(net.output_projection.weight, std=0.3)  # zero-initialised: outputs would all be 0
    torch.save({"state_dict": net.state_dict(), "hyper_parameters": dict(net.hparams)}, path)
    return path


def reloaded_without(compose, path: Path, key: str):
    """A tiny DiffVel+ checkpoint whose hyperparameters lack `key` (one from before that option), loaded."""
    from model import load_diffvel

    checkpoint = torch.load(tiny_checkpoint(compose, path), weights_only=False)
    checkpoint["hyper_parameters"].pop(key, None)
    torch.save(checkpoint, path)
    return load_diffvel(path)


def _to_ticks(seconds: float) -> int:
    """Seconds -> ticks under TEMPI."""
    ticks = 0.0
    for (start, tempo), (end, _) in zip(TEMPI, TEMPI[1:] + [(np.inf, 0)]):
        if seconds <= start:
            break
        ticks += (min(seconds, end) - start) * 1e6 / tempo * TICKS_PER_BEAT
    return int(round(ticks))


def _track(events: list[tuple[int, mido.Message]]) -> mido.MidiTrack:
    """Absolute-tick events -> a track with delta times (stable order for equal ticks)."""
    track, now = mido.MidiTrack(), 0
    for tick, message in sorted(events, key=lambda e: e[0]):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def piece_midi(seconds: float = 14.0, seed: int = 3) -> mido.MidiFile:
    """The type 1 test file (see the module docstring); piano velocities from the synthetic performance."""
    piano = generate_performance(seconds, seed).midi.instruments[0]
    tempo = [(_to_ticks(t), mido.MetaMessage("set_tempo", tempo=v)) for t, v in TEMPI]
    tempo.append((0, mido.MetaMessage("time_signature", numerator=3, denominator=4)))
    events = [(0, mido.Message("program_change", channel=0, program=0)),
              (0, mido.Message("control_change", channel=0, control=7, value=100))]
    for i, n in enumerate(piano.notes):  # every other note ends with a zero-velocity note_on
        events.append((_to_ticks(n.start), mido.Message("note_on", channel=0, note=n.pitch, velocity=n.velocity)))
        off = mido.Message("note_on", channel=0, note=n.pitch, velocity=0) if i % 2 else \
            mido.Message("note_off", channel=0, note=n.pitch, velocity=64)
        events.append((_to_ticks(n.end), off))
    for c in piano.control_changes:
        events.append((_to_ticks(c.time), mido.Message("control_change", channel=0, control=c.number, value=c.value)))
    extra = [(_to_ticks(1.0), mido.Message("note_on", channel=9, note=38, velocity=90)),
             (_to_ticks(1.1), mido.Message("note_on", channel=9, note=38, velocity=0)),
             (_to_ticks(2.0), mido.Message("note_on", channel=1, note=110, velocity=70)),
             (_to_ticks(2.5), mido.Message("note_off", channel=1, note=110, velocity=0))]
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.extend([_track(tempo), _track(events), _track(extra)])
    return midi


def render(midi_path: Path) -> np.ndarray:
    """(2, samples) float32 stereo at 44.1 kHz of the file's piano notes (additive renderer)."""
    performance = pretty_midi.PrettyMIDI(str(midi_path))
    performance.instruments = [i for i in performance.instruments if not i.is_drum]
    for instrument in performance.instruments:
        instrument.notes = [n for n in instrument.notes if n.pitch <= 108]
    return make_renderer("additive", 44100).render(performance)


def write_inputs(folder: Path, seconds: float = 14.0, seed: int = 3) -> dict[str, Path]:
    """piece.mid, stereo 44.1 kHz 16-bit piece.wav and its 16 kHz mono version piece_16k.wav."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"midi": folder / "piece.mid", "stereo": folder / "piece.wav", "mono": folder / "piece_16k.wav"}
    piece_midi(seconds, seed).save(paths["midi"])
    soundfile.write(paths["stereo"], render(paths["midi"]).T, 44100, subtype="PCM_16")
    data, rate = soundfile.read(paths["stereo"], dtype="float32", always_2d=True)
    soundfile.write(paths["mono"], resample_to_mono(data, rate, SAMPLE_RATE), SAMPLE_RATE, subtype="FLOAT")
    return paths


_INPUTS: dict[Path, dict[str, Path]] = {}


def shared_inputs(tmp_path_factory, compose) -> dict[str, Path]:
    """write_inputs + "ckpt", a tiny checkpoint, made once per test session (rendering takes seconds)."""
    root = tmp_path_factory.getbasetemp() / "estimate_inputs"
    if root not in _INPUTS:
        _INPUTS[root] = write_inputs(root, seconds=12.0)
        _INPUTS[root]["ckpt"] = tiny_checkpoint(compose, root / "tiny.ckpt")
    return dict(_INPUTS[root])


def estimated_velocities(compose, inputs: dict, out: Path, *overrides) -> np.ndarray:
    """estimate_velocity.py's new velocities of the estimated notes of `inputs` (the tiny checkpoint unless
    overridden), writing `out`."""
    from estimate_velocity import estimate

    cfg = compose("estimate", [f"audio={inputs['mono']}", f"midi={inputs['midi']}", f"out={out}",
                               f"ckpt={inputs['ckpt']}", "progress=false", "csv=false", *overrides])
    (result,) = estimate(cfg)
    return np.array([r.new_velocity for r in result.estimated])


def accuracy_table(compose, corpus: Path, tmp_path: Path, *flags) -> tuple[str, dict]:
    """bench.accuracy with the tiny checkpoint on the corpus's smd_h5, corrected protocol: (header line,
    {method: row cells})."""
    from bench import accuracy

    model = tiny_checkpoint(compose, tmp_path / "plus.ckpt")
    table = tmp_path / "accuracy.md"
    assert accuracy.main(["--model", f"tiny={model}", "--sets", f"tiny={corpus / 'smd_h5'}", "--baseline-root",
                          str(corpus), "--protocols", "corrected", *flags, "--out", str(table)]) == 0
    lines = table.read_text().splitlines()
    return lines[0], {r[2]: r for r in ([c.strip() for c in line.split("|")[1:-1]] for line in lines[2:])}
