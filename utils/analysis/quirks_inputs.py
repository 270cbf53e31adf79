"""The inputs of the quirk ablation: both pair sets of every excerpt of a demo run, and key-down labels."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils.conventions import PAPER_TEST_FPS, SEGMENT_SECONDS
from utils.evaluation.pairs import latest_pair_files, load_pairs
from utils.evaluation.protocols import CORRECTED, PAPER, excerpt_name, pair_dir, pair_shift


class QuirksInputError(ValueError):
    """Demo outputs that cannot be ablated (missing or mismatched pair files)."""


@dataclass
class ExcerptPairs:
    """Both pair sets of one excerpt and shift: (output_dict_list, target_dict_list) each."""

    name: str
    shift: str
    pairs: dict  # {PAPER: (outputs, targets), CORRECTED: (outputs, targets)}
    key_down_roll: np.ndarray | None = field(default=None)  # (T, 88) paper labels without pedal extension


def newest_pairs(folder: Path) -> dict[tuple[str, str], Path]:
    """{(excerpt, shift): newest pair file} of a folder."""
    return {(excerpt_name(path), pair_shift(path)): path for path in latest_pair_files(folder)}


def demo_model_dir(demo_out: Path, folder: str, model_tag: str) -> Path:
    """DIR/<folder>/<model tag> (the demo's layout, folder pairs or runs), or DIR/<folder> when that
    does not exist (demos older than the per-model folders)."""
    tagged = Path(demo_out) / folder / model_tag
    return tagged if tagged.is_dir() else Path(demo_out) / folder


def paper_key_down_roll(h5_path: Path, n_segments: int) -> np.ndarray:
    """(n_segments * 640, 88) paper velocity labels without the pedal extension (31 fps + 640 copy)."""
    from utils.data.smd import published_targets, read_excerpt
    from utils.data.target_processor import TargetProcessor

    excerpt = read_excerpt(h5_path)
    processor = TargetProcessor(SEGMENT_SECONDS, PAPER_TEST_FPS)
    rolls, start_time = [], 0  # start times accumulated from int 0, as in paper_segments
    for _ in range(n_segments):
        rolls.append(published_targets(processor, excerpt, start_time, extend_pedal=False)["velocity_roll"][0])
        start_time += SEGMENT_SECONDS
    return np.concatenate(rolls).astype(np.float64)


def load_demo_pairs(demo_out: Path, model_tag: str = "diffvel") -> dict[str, list[ExcerptPairs]]:
    """{shift: [ExcerptPairs]} from the model's pair folder and its corrected/ folder (see demo_model_dir;
    key-down rolls when the .h5 exist)."""
    demo_out = Path(demo_out)
    root = demo_model_dir(demo_out, "pairs", model_tag)
    paper_files = newest_pairs(pair_dir(root, PAPER))
    corrected_files = newest_pairs(pair_dir(root, CORRECTED))
    missing = sorted(set(paper_files) ^ set(corrected_files))
    if missing:
        name, shift = missing[0]
        side = CORRECTED if (name, shift) in paper_files else PAPER
        raise QuirksInputError(f"{root}: {name} (shift {shift}) has no {side} pair file")
    by_shift: dict[str, list[ExcerptPairs]] = {}
    for (name, shift), paper_path in sorted(paper_files.items()):
        pairs = {PAPER: load_pairs(paper_path), CORRECTED: load_pairs(corrected_files[(name, shift)])}
        n_paper, n_corrected = len(pairs[PAPER][0]), len(pairs[CORRECTED][0])
        if n_paper != n_corrected:
            raise QuirksInputError(
                f"{paper_path.name}: {n_paper} segments but its corrected pair file has {n_corrected}")
        h5_path = demo_out / "data" / "smd_h5" / f"{name}.h5"
        key_down = paper_key_down_roll(h5_path, n_paper) if h5_path.is_file() else None
        by_shift.setdefault(shift, []).append(ExcerptPairs(name, shift, pairs, key_down))
    return by_shift
