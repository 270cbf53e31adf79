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
import io
import logging
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from model import load_diffvel
from utils.atomic import atomic_write_bytes
from utils.checks import check_inference_options, exit_on_error
from utils.evaluation.excerpts import (NonFiniteOutputError, check_excerpts, estimate_segments, load_segments,
                                       noise_check, pair_dicts)
from utils.evaluation.metrics import evaluate
from utils.evaluation.pairs import load_pairs, save_pairs
from utils.evaluation.protocols import (error_profile_name, pair_dir as protocol_pair_dir, pair_file_name,
                                        pair_file_pattern, run_test_columns, run_test_header, run_test_prefix,
                                        run_test_result_dir, run_test_stem, run_test_summary_name, run_timestamp)
from utils.evaluation.provenance import matching_result, pair_provenance, run_settings, write_sidecar
from utils.evaluation.report import format_table, summary_row, write_csv, write_plots, write_summary_csv
from utils.data.smd import list_excerpts
from utils.precision import apply_matmul_precision, resolve_precision
from utils.training.checkpoint import config_differences, report_config_differences

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
    each difference (checkpoint_config_check=true refuses a different variant or output-changing key).
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


def existing_pairs(pair_dir: Path, excerpt: str, shift) -> list[Path]:
    """The pair files of this excerpt and shift from earlier runs."""
    return sorted(pair_dir.glob(pair_file_pattern(excerpt, shift)))


def reusable_pairs(cfg, h5_path: Path, shift, pair_dir: Path, provenance: dict) -> Path | None:
    """An earlier pair file made from the same checkpoint, settings and .h5 content, if any (not with overwrite)."""
    if cfg.overwrite:
        return None
    previous = matching_result(existing_pairs(pair_dir, h5_path.stem, shift), provenance, f"{h5_path.name} shift {shift}")
    if previous is not None:
        log.info("%s: reusing %s, same checkpoint, settings and .h5 (overwrite=true recomputes)",
                 h5_path.name, previous.name)
    return previous


def excerpt_pairs(cfg, model, h5_path: Path, shift, pair_dir: Path, stamp: str, settings: dict):
    """(output_dicts, target_dicts, pair file) of one excerpt: from a matching earlier pair file, or by sampling.
    A new pair file gets its provenance (utils/evaluation/provenance.py) in a JSON sidecar; the network runs
    at the resolved precision the settings record (fp32 or bf16)."""
    provenance = pair_provenance(settings, h5_path, shift)
    previous = reusable_pairs(cfg, h5_path, shift, pair_dir, provenance)
    if previous is not None:
        return (*load_pairs(previous), previous)
    segments = load_segments(h5_path, shift, cfg.protocol, cfg.frames_per_second)
    try:
        outputs = estimate_segments(model, segments, h5_path.stem, shift, seed=cfg.seed,
                                    batch_segments=cfg.batch_segments, precision=settings["precision"],
                                    compile=cfg.compile)
    except NonFiniteOutputError as error:
        raise NonFiniteOutputError(f"{cfg.comp_modelckpt}: {error}") from None
    output_dicts, target_dicts = pair_dicts(segments, outputs, cfg.protocol)
    path = save_pairs(pair_dir / pair_file_name(h5_path.stem, shift, stamp), output_dicts, target_dicts)
    write_sidecar(path, provenance)
    return output_dicts, target_dicts, path


def run(cfg: DictConfig) -> list[dict]:
    """Infer, evaluate and write every output; returns the summary rows (one per shift)."""
    shifts = check_inference_options(cfg)  # options and output folders, before any work
    h5_files = list_excerpts(cfg.SMD_data_root)
    check_excerpts(h5_files, shifts)
    device = pick_device(cfg.gpus)
    torch.manual_seed(cfg.seed)
    apply_matmul_precision(cfg.float32_matmul_precision)
    precision = resolve_precision(cfg.precision, device)
    model = load_model(cfg, device)
    settings = {**run_settings(cfg), "precision": precision}  # what ran (precision=auto resolves per machine)
    result_dir = Path(cfg.inference_result_path)
    pair_dir = protocol_pair_dir(cfg.pair_pkl_dir, cfg.protocol)
    pair_dir.mkdir(parents=True, exist_ok=True)
    csv_dir = run_test_result_dir(cfg.inference_result_path, cfg.result_folder)
    stamp = run_timestamp(pair_dir, result_dir, csv_dir)
    log.info("%d excerpts, protocol %s, sampler %s, %s on %s", len(h5_files), cfg.protocol,
             dict(cfg.task.sampling), precision, device)

    columns, header = run_test_columns(cfg.protocol), run_test_header(cfg.protocol)  # metric keys, CSV header
    stem = run_test_stem(cfg.result_name, cfg.protocol)
    summary = []
    for shift in shifts:
        prefix = run_test_prefix(cfg.result_name, cfg.protocol, shift, stamp)
        csv_path = csv_dir / f"{prefix}.csv"
        rows, notes, sources = [], [], []
        for h5_path in tqdm(h5_files, desc=f"excerpts (shift {shift})", unit="file"):
            output_dicts, target_dicts, pair_path = excerpt_pairs(cfg, model, h5_path, shift, pair_dir, stamp, settings)
            sources.append({"pair_file": str(pair_path), **pair_provenance({}, h5_path, shift)})
            metrics = evaluate(output_dicts, target_dicts, cfg.protocol)
            means, stds = noise_check(output_dicts)
            rows.append([means, stds, h5_path.name] + [metrics[c] for c in columns[3:]])
            write_csv(csv_path, header, rows)  # rewritten after each excerpt: always complete
            write_sidecar(csv_path, {**settings, "shift": float(shift), "excerpts": sources})
            save_object_npy(result_dir / error_profile_name(h5_path.stem, shift, stamp), published_error_profile(metrics["notes"]))
            notes.extend(metrics["notes"])
            log.info("%s: %d notes, MAE %.2f", h5_path.name, metrics["n_notes"], metrics["frame_max_error"])
        true, estimate = [n["velocity"] for n in notes], [n["estimate"] for n in notes]
        summary.append(summary_row(cfg.protocol, f"{stem} shift={shift}", true, estimate,
                                   [n["detected"] for n in notes]))
        write_plots(csv_dir, prefix, true, estimate)
    write_summary_csv(csv_dir / run_test_summary_name(cfg.result_name, cfg.protocol, stamp), summary)
    print(format_table(summary))
    return summary


@hydra.main(config_path="config", config_name="inference", version_base="1.3")
def main(cfg: DictConfig) -> None:
    exit_on_error(run, cfg)  # an input error is one line on stderr and exit status 2


if __name__ == "__main__":
    main()
