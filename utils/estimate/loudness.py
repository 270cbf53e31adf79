"""`method=loudness`: estimate_velocity.py's alternative to the network, the loudness regression.

velocity = slope x log-energy + intercept, where log-energy is log(total mel power) averaged over the
3 spectrogram frames from the note's onset (utils/evaluation/baselines.py, the model's spectrogram
settings, computed over the whole recording). It is the baseline of every accuracy table, shipped
with its fit in pretrained/loudness_regression.json. Refit it on any MAESTRO-layout corpus:

    python -m utils.estimate.loudness --corpus demo_out/data [--split train] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from utils.atomic import atomic_write_bytes
from utils.checks import report_error
from utils.conventions import FRAMES_PER_SECOND, HOP_LENGTH, SAMPLE_RATE
from utils.estimate.errors import EstimateError
from utils.evaluation.baselines import FrameLogEnergy, loudness_velocity, onset_features

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FIT = REPO_ROOT / "pretrained" / "loudness_regression.json"
FIT_KEYS = ("slope", "intercept", "n_notes", "fitted_on", "spec_args")


@dataclass(frozen=True)
class LoudnessRegression:
    """A fitted loudness regression; `velocities` plays the network's part in the estimate pipeline."""

    slope: float
    intercept: float
    n_notes: int  # training notes of the fit
    fitted_on: str  # the corpus and split it was fitted on
    spec_args: dict  # the mel spectrogram the fit was made with (torchaudio MelSpectrogram arguments)

    def velocities(self, waveform: np.ndarray, onsets: np.ndarray) -> np.ndarray:
        """(N,) MIDI velocities 1..127 of the notes starting at `onsets` (seconds) in `waveform` (16 kHz)."""
        energy = FrameLogEnergy(self.spec_args)(waveform)  # (T,)
        features = onset_features(energy, np.round(np.asarray(onsets) * FRAMES_PER_SECOND))
        return np.rint(loudness_velocity(features, self.slope, self.intercept)).astype(np.int64)


def load_fit(path=None) -> LoudnessRegression:
    """The fit stored at `path` (None: DEFAULT_FIT); EstimateError naming the file when unusable."""
    path = Path(path) if path is not None else DEFAULT_FIT
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EstimateError(f"{path}: loudness fit not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise EstimateError(f"{path}: unreadable loudness fit ({error})") from None
    missing = [key for key in FIT_KEYS if not isinstance(stored, dict) or key not in stored]
    if missing:
        raise EstimateError(f"{path}: loudness fit lacks {', '.join(missing)}")
    fit = LoudnessRegression(float(stored["slope"]), float(stored["intercept"]), int(stored["n_notes"]),
                             str(stored["fitted_on"]), dict(stored["spec_args"]))
    if not (math.isfinite(fit.slope) and math.isfinite(fit.intercept)):
        raise EstimateError(f"{path}: loudness fit has a non-finite slope or intercept")
    rate, hop = fit.spec_args.get("sample_rate"), fit.spec_args.get("hop_length")
    if (rate, hop) != (SAMPLE_RATE, HOP_LENGTH):
        raise EstimateError(f"{path}: loudness fit made at {rate} Hz with hop {hop}, not {SAMPLE_RATE} Hz "
                            f"with hop {HOP_LENGTH}")
    return fit


def fit_corpus(corpus, split: str, spec_args: dict) -> LoudnessRegression:
    """Fit on every note of a MAESTRO-layout split (what every accuracy table's baseline does)."""
    from utils.evaluation.baselines import fit_baselines

    fitted = fit_baselines(corpus, spec_args, split)
    return LoudnessRegression(fitted.slope, fitted.intercept, fitted.n_training_notes, f"{corpus} ({split} split)",
                              dict(spec_args))


def save_fit(fit: LoudnessRegression, path) -> None:
    atomic_write_bytes(Path(path), (json.dumps(asdict(fit), indent=2) + "\n").encode())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.estimate.loudness",
                                     description="Fit the loudness regression of estimate_velocity.py method=loudness.")
    parser.add_argument("--corpus", required=True, help="MAESTRO-layout folder (holds maestro-v2.0.0/)")
    parser.add_argument("--split", default="train", help="metadata split to fit on (default: train)")
    parser.add_argument("--out", default=str(DEFAULT_FIT), help=f"where to write the fit (default: {DEFAULT_FIT})")
    args = parser.parse_args(argv)
    from utils.demo import spectrogram_args

    try:
        fit = fit_corpus(args.corpus, args.split, spectrogram_args())
    except (FileNotFoundError, ValueError) as error:
        return report_error(error)
    save_fit(fit, args.out)
    print(f"{args.out}: velocity = {fit.slope:.3f} x log-energy + {fit.intercept:.2f} ({fit.n_notes} notes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
