"""Velocity inference on an SMD-style .h5 test set (python run_test.py [hydra overrides]).

For every .h5 under SMD_data_root and every shift in unaligned_shift, writes as the paper did:
  <pair_pkl_dir>/<excerpt>_pair_<shift>_<time>.npy            estimate / ground-truth pair lists
  <inference_result_path>/<excerpt>_<shift>_<time>.npy        note error profile (list of dicts)
  <inference_result_path>/diffvel_baseline/diffvel_base_shift_<shift>-<time>.csv   one row per excerpt
(folder and stem: `result_folder`, `result_name`; the published header) and, added, beside that CSV:
an error histogram, a scatter and an error-by-velocity plot (PNG) and a summary CSV. The corrected
protocol writes its pairs under <pair_pkl_dir>/corrected and `<result_name>_corrected_shift_...csv`
with clearer column names. See README, "Inference".
"""
import datetime
import io
import logging
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from model import load_diffvel
from utils.evaluation import RUN_TEST_COLUMNS, evaluate

# the corrected protocol adds the share of detected notes and mir_eval's velocity-aware note scores
CORRECTED_COLUMNS = ("note_recall", "velocity_precision", "velocity_recall", "velocity_f1")
from utils.atomic import atomic_write_bytes
from utils.checkpoint import config_differences, report_config_differences
from utils.inference import estimate_segments, load_segments, noise_check, pair_dicts
from utils.pairs import load_pairs, save_pairs
from utils.precision import apply_matmul_precision, resolve_precision
from utils.published import RUN_TEST_HEADER
from utils.report import format_table, summary_row, write_csv, write_plots, write_summary_csv
from utils.smd import list_excerpts

log = logging.getLogger("run_test")


def pick_device(gpus: int) -> torch.device:
    """The GPU when asked for and present, else the CPU (the published script never left the CPU)."""
    if gpus and torch.cuda.is_available():
        return torch.device("cuda")
    if gpus:
        log.warning("gpus=%d requested but no GPU is available: running on the CPU", gpus)
    return torch.device("cpu")


def load_model(cfg: DictConfig, device: torch.device):
    """The checkpoint with the paper's overrides (frame_threshold=0.5, sampling=cfg.task.sampling).

    As the published script (load_from_checkpoint), the network and its variant come from the
    checkpoint's own hyperparameters; where `model.name`/`model.args` say otherwise one warning names
    each difference (checkpoint_config_check=true refuses a different variant or architecture).
    """
    model = load_diffvel(cfg.comp_modelckpt, map_location=device, frame_threshold=0.5, sampling=cfg.task.sampling)
    config_args = OmegaConf.to_container(cfg.model.args, resolve=True)
    differences = config_differences(dict(model.hparams), config_args, cfg.model.name, type(model).__name__)
    report_config_differences(cfg.comp_modelckpt, differences, refuse=cfg.checkpoint_config_check)
    return model.eval()


def published_error_profile(notes: list[dict]) -> list[dict]:
    """Notes in the published error-profile layout (keys of evaluation.gt_to_note_list)."""
    return [
        {
            "pitch": n["pitch"], "duration": np.array([n["start"], n["end"]]), "note_error": n["error"],
            "ground truth": n["velocity"], "estimation": n["estimate"], "pedal_check": n.get("pedal"),
            "simultaneous_notes": n.get("simultaneous_notes"), "classification_check": n["detected"],
        }
        for n in notes
    ]


def save_object_npy(path: Path, content) -> None:
    """np.save(..., allow_pickle=True) of a list of dicts, written atomically."""
    buffer = io.BytesIO()
    array = np.empty(len(content), dtype=object)
    array[:] = content
    np.save(buffer, array, allow_pickle=True)
    atomic_write_bytes(path, buffer.getvalue())


def existing_pair(pair_dir: Path, excerpt: str, shift) -> Path | None:
    """The newest pair file of this excerpt and shift from an earlier run, if any."""
    found = sorted(pair_dir.glob(f"{excerpt}_pair_{shift}_*.npy"))
    return found[-1] if found else None


def excerpt_pairs(cfg, model, h5_path: Path, shift, pair_dir: Path, stamp: str, precision: str = "fp32"):
    """(output_dicts, target_dicts) of one excerpt: from an earlier run's pair file, or by sampling."""
    previous = existing_pair(pair_dir, h5_path.stem, shift)
    if previous is not None and not cfg.overwrite:
        log.info("%s: reusing %s (overwrite=true recomputes)", h5_path.name, previous.name)
        return load_pairs(previous)
    segments = load_segments(h5_path, shift, cfg.protocol, cfg.frames_per_second)
    outputs = estimate_segments(model, segments, h5_path.stem, shift, seed=cfg.seed, batch_segments=cfg.batch_segments,
                                precision=precision, compile=cfg.compile)
    output_dicts, target_dicts = pair_dicts(segments, outputs, cfg.protocol)
    save_pairs(pair_dir / f"{h5_path.stem}_pair_{shift}_{stamp}.npy", output_dicts, target_dicts)
    return output_dicts, target_dicts


def result_csv_layout(cfg: DictConfig) -> tuple[Path, str, tuple]:
    """(folder, file stem, header) of the per-excerpt CSV: the published ones in the paper protocol."""
    folder = Path(cfg.inference_result_path) / cfg.result_folder
    if cfg.protocol == "corrected":
        return folder, f"{cfg.result_name}_corrected", RUN_TEST_COLUMNS + CORRECTED_COLUMNS
    return folder, cfg.result_name, RUN_TEST_HEADER


def run(cfg: DictConfig) -> list[dict]:
    """Infer, evaluate and write every output; returns the summary rows (one per shift)."""
    device = pick_device(cfg.gpus)
    torch.manual_seed(cfg.seed)
    apply_matmul_precision(cfg.float32_matmul_precision)
    precision = resolve_precision(cfg.precision, device)
    model = load_model(cfg, device)
    h5_files = list_excerpts(cfg.SMD_data_root)
    result_dir = Path(cfg.inference_result_path)
    pair_dir = Path(cfg.pair_pkl_dir) / ("corrected" if cfg.protocol == "corrected" else "")
    pair_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    log.info("%d excerpts, protocol %s, sampler %s, %s on %s", len(h5_files), cfg.protocol,
             dict(cfg.task.sampling), precision, device)

    csv_dir, stem, header = result_csv_layout(cfg)
    columns = RUN_TEST_COLUMNS + (CORRECTED_COLUMNS if cfg.protocol == "corrected" else ())  # metric keys
    summary = []
    for shift in cfg.unaligned_shift:
        csv_path = csv_dir / f"{stem}_shift_{shift}-{stamp}.csv"
        rows, notes = [], []
        for h5_path in tqdm(h5_files, desc=f"excerpts (shift {shift})", unit="file"):
            output_dicts, target_dicts = excerpt_pairs(cfg, model, h5_path, shift, pair_dir, stamp, precision)
            metrics = evaluate(output_dicts, target_dicts, cfg.protocol)
            means, stds = noise_check(output_dicts)
            rows.append([means, stds, h5_path.name] + [metrics[c] for c in columns[3:]])
            write_csv(csv_path, header, rows)  # rewritten after each excerpt: always complete
            save_object_npy(result_dir / f"{h5_path.stem}_{shift}_{stamp}.npy", published_error_profile(metrics["notes"]))
            notes.extend(metrics["notes"])
            log.info("%s: %d notes, MAE %.2f", h5_path.name, metrics["n_notes"], metrics["frame_max_error"])
        true, estimate = [n["velocity"] for n in notes], [n["estimate"] for n in notes]
        summary.append(summary_row(cfg.protocol, f"{stem} shift={shift}", true, estimate,
                                   [n["detected"] for n in notes]))
        write_plots(csv_dir, f"{stem}_shift_{shift}-{stamp}", true, estimate)
    write_summary_csv(csv_dir / f"{stem}_summary-{stamp}.csv", summary)
    print(format_table(summary))
    return summary


@hydra.main(config_path="config", config_name="inference", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
