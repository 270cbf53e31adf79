"""Log-mel levels of a corpus's 640-frame crops: where `model.normalization.LOG_MEL_REFERENCE` comes from.

    python -m bench.levels --root data/synth_demo_free [--split train] [--pieces N] [--out levels.md]

Reads the recordings of a MAESTRO-layout split (the first --pieces N of them, if given), computes the model's log-mel (config
spec, log(mel + 1e-6)) and cuts it into consecutive 640-frame crops. Prints the 1/10/50/90/99th
percentiles of each crop's maximum, minimum and median. The median crop maximum is the fixed map's
reference (DiffVel+ `absolute_level`); the minima show how often a crop reaches silence (-13.82).
"""

from bench.measure import emit_table  # isort: skip  (sets OMP_WAIT_POLICY before torch is imported)

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402

from model.normalization import log_mel  # noqa: E402
from utils import tables  # noqa: E402
from utils.checks import report_error  # noqa: E402
from utils.conventions import SEGMENT_FRAMES  # noqa: E402
from utils.data.audio_io import ensure_resampled  # noqa: E402
from utils.data.maestro import MaestroLayoutError, find_dataset_dir, read_metadata  # noqa: E402
from utils.demo import spectrogram_args  # noqa: E402

PERCENTILES = (1, 10, 50, 90, 99)


def crop_levels(audio: np.ndarray, mel) -> np.ndarray:
    """(crops, 3) max, min and median log-mel of each whole 640-frame crop of 16 kHz mono audio."""
    with torch.inference_mode():
        spec = log_mel(mel(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))))  # (n_mels, T)
    crops = [spec[:, i:i + SEGMENT_FRAMES] for i in range(0, spec.shape[1] - SEGMENT_FRAMES + 1, SEGMENT_FRAMES)]
    return np.array([[c.max().item(), c.min().item(), c.median().item()] for c in crops]).reshape(-1, 3)


def corpus_levels(root: Path, split: str, pieces: int) -> np.ndarray:
    """(crops, 3) levels of the first `pieces` recordings of a split; ValueError (one line) if it has none."""
    dataset_dir = find_dataset_dir(root)
    rows = [row for row in read_metadata(dataset_dir) if row["split"] == split][:pieces or None]
    if not rows:
        raise ValueError(f"{dataset_dir}: no {split!r} pieces")
    mel = torchaudio.transforms.MelSpectrogram(**spectrogram_args())
    levels = []
    for row in rows:
        audio, _ = soundfile.read(str(ensure_resampled(dataset_dir / row["audio_filename"])), dtype="float32")
        levels.append(crop_levels(audio.mean(axis=1) if audio.ndim == 2 else audio, mel))
    return np.concatenate(levels)


def markdown_table(levels: np.ndarray) -> str:
    header = ("crop statistic", "crops", *(f"p{p}" for p in PERCENTILES))
    rows = ([name, len(levels), *(f"{v:.2f}" for v in np.percentile(levels[:, i], PERCENTILES))]
            for i, name in enumerate(("max", "min", "median")))
    return tables.markdown_table(header, rows, "lr" + "r" * len(PERCENTILES))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="MAESTRO-layout corpus")
    parser.add_argument("--split", default="train")
    parser.add_argument("--pieces", type=int, default=0, help="the first N recordings (0: all)")
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    try:
        levels = corpus_levels(args.root, args.split, args.pieces)
    except (MaestroLayoutError, ValueError, OSError) as error:
        return report_error(error)
    emit_table(markdown_table(levels), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
