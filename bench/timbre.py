"""Spectral shape of piano voices: how far apart they sound, and how their brightness follows velocity.

    python -m bench.timbre [--voice NAME=PATH ...] [--pitches 33 39 ...] [--velocities 40 96] [--out timbre.md]

Each voice (a SoundFont, a TiMidity++ .cfg or a sample folder, as `utils.synth --soundfont` takes
them) plays isolated notes over a grid of pitches at two velocities. The first 200 ms of each note
go through the model's mel spectrogram (config spec); a note's shape is its dB per mel band minus its
level (dB of the summed power), so it says how the power is spread, not how loud the note is. Two
tables, at a few bands (with their centre frequencies):

- shape of each voice minus the first voice's, averaged over pitches and both velocities;
- brightening of each voice: its shape at the higher velocity minus its shape at the lower one.

Default voices: the training voices of docs/synth.md that this machine has. These figures set the
range of DiffVel+'s random EQ (`model.args.eq_db`, docs/experiments.md "Run E").
"""

from bench.measure import emit_table  # isort: skip  (sets OMP_WAIT_POLICY before torch is imported)

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402

from utils import tables  # noqa: E402
from utils.demo import spectrogram_args  # noqa: E402
from utils.synth.loudness import note_window  # noqa: E402
from utils.synth.render import RendererUnavailable  # noqa: E402
from utils.synth.timidity import voice_renderer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRAINING_VOICES = {
    "MuseScore General": "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "TimGM6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "csound sf_GMbank": "/usr/share/sounds/sf2/sf_GMbank.sf2",
    "freepats": "/etc/timidity/freepats.cfg",
    "tonejs grand (sampler)": str(REPO / "data" / "samples" / "tonejs_piano"),
}
DEFAULT_PITCHES = tuple(range(33, 100, 6))
DEFAULT_BANDS = (20, 60, 100, 130, 160, 190, 220)


def note_shapes(renderer, pitches, velocities, mel) -> np.ndarray:
    """(pitches, velocities, n_mels) shape in dB of each isolated note's first 200 ms (note_window)."""
    shapes = []
    for pitch in pitches:
        for velocity in velocities:
            window = note_window(renderer, pitch, velocity)  # (n,)
            with torch.inference_mode():
                power = mel(torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32))).mean(-1)  # (n_mels,)
            shapes.append(band_shape(power.numpy()))
    return np.array(shapes).reshape(len(pitches), len(velocities), -1)


def band_shape(power: np.ndarray) -> np.ndarray:
    """(n_mels,) dB per band minus the dB of the summed power."""
    power = np.maximum(power.astype(np.float64), 1e-12)
    return 10 * np.log10(power) - 10 * np.log10(power.sum())


def band_hz(bands, spec_args: dict) -> list[float]:
    """Centre frequency (Hz) of mel bands: the peak of each of torchaudio's mel filters."""
    filters = torchaudio.functional.melscale_fbanks(
        spec_args["n_fft"] // 2 + 1, float(spec_args.get("f_min", 0.0)),
        float(spec_args.get("f_max") or spec_args["sample_rate"] / 2), spec_args["n_mels"], spec_args["sample_rate"])
    hz = torch.linspace(0, spec_args["sample_rate"] / 2, filters.shape[0])  # (n_freqs,)
    return [float(hz[filters[:, b].argmax()]) for b in bands]


def tables_of(shapes: dict, bands, hz) -> tuple[str, str]:
    """(shape against the first voice, brightening) Markdown tables of {voice: note_shapes}."""
    header = ("voice", *(f"{f:.0f} Hz" for f in hz), "largest |dB|")
    reference = next(iter(shapes.values())).mean((0, 1))

    def row(name, curve):
        return [name, *(f"{curve[b]:+.1f}" for b in bands), f"{np.abs(curve[list(bands)]).max():.1f}"]
    against = [row(name, s.mean((0, 1)) - reference) for name, s in shapes.items()]
    brighter = [row(name, (s[:, -1] - s[:, 0]).mean(0)) for name, s in shapes.items()]
    align = "l" + "r" * (len(bands) + 1)
    return tables.markdown_table(header, against, align), tables.markdown_table(header, brighter, align)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voice", action="append", default=[], metavar="NAME=PATH",
                        help="a voice (repeatable; the first is the reference); default: the training voices found")
    parser.add_argument("--pitches", type=int, nargs="+", default=list(DEFAULT_PITCHES))
    parser.add_argument("--velocities", type=int, nargs=2, default=[40, 96], metavar=("LOW", "HIGH"))
    parser.add_argument("--bands", type=int, nargs="+", default=list(DEFAULT_BANDS), help="mel bands to print")
    parser.add_argument("--out", type=Path, help="also write the Markdown tables to this file")
    return parser.parse_args(argv)


def voices_of(items: list[str]) -> dict:
    """{name: path} of --voice items, or the training voices present; ValueError in one line."""
    if not items:
        found = {name: path for name, path in TRAINING_VOICES.items() if Path(path).exists()}
        if not found:
            raise ValueError("no --voice given and none of the training voices is installed (make system-deps)")
        return found
    bad = [item for item in items if "=" not in item]
    if bad:
        raise ValueError(f"--voice {bad[0]}: give NAME=PATH")
    return dict(item.split("=", 1) for item in items)


def main(argv=None) -> int:
    args = parse_args(argv)
    spec_args = spectrogram_args()
    try:
        voices = voices_of(args.voice)
        if not all(0 <= b < spec_args["n_mels"] for b in args.bands):
            raise ValueError(f"--bands: each must be in 0..{spec_args['n_mels'] - 1}")
        renderers = {name: voice_renderer(path, spec_args["sample_rate"]) for name, path in voices.items()}
    except (ValueError, RendererUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    mel = torchaudio.transforms.MelSpectrogram(**spec_args)
    shapes = {name: note_shapes(r, args.pitches, args.velocities, mel) for name, r in renderers.items()}
    against, brighter = tables_of(shapes, args.bands, band_hz(args.bands, spec_args))
    low, high = args.velocities
    emit_table(f"Shape minus {next(iter(shapes))}'s, dB (mean over pitches and velocities {low} and {high}):\n\n"
               f"{against}\n\nBrightening, dB (shape at velocity {high} minus shape at {low}):\n\n{brighter}", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
