"""train_spec_roll.py end to end, in subprocesses, on a tiny synthetic corpus with a tiny model:
fast_dev_run, outputs of a short run (checkpoints, metrics, TensorBoard images), exact resume after a
kill, DDP with two CPU processes, and the paper's gpus=1 on a machine without GPU."""
import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "train_spec_roll.py"
RUN_NAME = "ClassifierFreeDiffRoll-L2-C8-beta0.02-x_0-cfdg_ddpm_x0-w=0-p=0.1-k=9-dia=2-4-MAESTRO"
TINY = [
    "experiment=cpu_small", "model.args.residual_channels=8", "model.args.residual_layers=2",
    "dataloader.train.num_workers=0", "dataloader.train.batch_size=1", "dataloader.val.batch_size=1",
    "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "val_freq=1",
]
STEPS_PER_EPOCH = 2  # the tiny corpus has 2 training pieces; batch size 1
SUBPROCESS_TIMEOUT = 240


def _command(corpus: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(SCRIPT), *TINY, f"data_root={corpus}", *overrides]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _train(cwd: Path, corpus: Path, *overrides: str) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(_command(corpus, *overrides), cwd=cwd, env=_env(), capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _run_dirs(log_dir: Path) -> list[Path]:
    return sorted((log_dir / RUN_NAME).glob("version_*"))


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # no safe-globals context: plain contents


def _metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def fast_dev_run_with_gpus_1(corpus, tmp_path_factory) -> subprocess.CompletedProcess:
    """One fast_dev_run with the paper's gpus=1 (no GPU here)."""
    cwd = tmp_path_factory.mktemp("fast_dev_run")
    return _train(cwd, corpus, "gpus=1", "trainer.fast_dev_run=true")


@pytest.fixture(scope="module")
def full_run(corpus, tmp_path_factory) -> Path:
    """An uninterrupted 2-epoch run: the outputs under test and the reference for resumed runs."""
    cwd = tmp_path_factory.mktemp("full_run")
    _train(cwd, corpus, "epochs=2", "test_after_fit=false", "snapshot_every_n_steps=2")
    return cwd


def test_fast_dev_run_trains_validates_and_tests_one_batch_on_cpu(fast_dev_run_with_gpus_1, tmp_path_factory):
    result = fast_dev_run_with_gpus_1
    log = result.stdout + result.stderr
    assert "Running in `fast_dev_run` mode: will run the requested loop using 1 batch(es)" in log
    assert "`Trainer.fit` stopped: `max_steps=1` reached." in log
    assert "fast_dev_run: one batch per stage, no logs or checkpoints are written" in log
    assert "process 0 of 1: fit ended at epoch 1, step 1" in log
    test_loss = [line for line in log.splitlines() if "Test/diffusion_loss" in line]
    assert test_loss and math.isfinite(float(test_loss[-1].split()[-1]))
    assert not list(Path(tmp_path_factory.getbasetemp()).glob("fast_dev_run*/runs/*"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU fallback")
def test_gpus_1_without_gpu_trains_on_cpu_with_one_warning(fast_dev_run_with_gpus_1):
    log = fast_dev_run_with_gpus_1.stdout + fast_dev_run_with_gpus_1.stderr
    gpu_warnings = [line for line in log.splitlines() if "no GPU is available" in line]
    assert len(gpu_warnings) == 1 and "gpus=1 requested" in gpu_warnings[0] and "WARNING" in gpu_warnings[0]
    assert "GPU available: False, used: False" in log


def test_short_run_writes_checkpoints_metrics_hparams_and_validation_images(full_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run_dir,) = _run_dirs(full_run / "runs")
    checkpoint = _load(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 2 * STEPS_PER_EPOCH and checkpoint["epoch"] == 1
    assert checkpoint["hyper_parameters"]["residual_channels"] == 8 and checkpoint["optimizer_states"]
    assert set(checkpoint["diffvel_resume"]) == {"rng", "epoch", "consumed", "world_size"}
    assert len(list((run_dir / "checkpoints").glob("*e-diffusion_loss*.ckpt"))) == 2  # save_top_k=2
    snapshots = sorted((run_dir / "checkpoints" / "snapshots").glob("*.ckpt"))
    assert [path.name for path in snapshots] == ["step000002.ckpt", "step000004.ckpt"]  # every 2 steps, all kept
    assert _load(snapshots[0])["global_step"] == 2
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(_load(snapshots[-1])["state_dict"][key], value), key  # the last is the final weights

    rows = _metrics(run_dir)
    train = [float(r["Train/diffusion_loss"]) for r in rows if r["Train/diffusion_loss"]]
    val = [(int(r["epoch"]), float(r["Val/diffusion_loss"])) for r in rows if r["Val/diffusion_loss"]]
    assert len(train) == 2 * STEPS_PER_EPOCH and all(0 < v < 1 for v in train)
    assert [epoch for epoch, _ in val] == [0, 1] and all(0 < v < 1 for _, v in val)
    assert "residual_channels: 8" in (run_dir / "hparams.yaml").read_text()
    assert "residual_channels: 8" in (run_dir / "config.yaml").read_text()

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0}).Reload()
    images = events.Tags()["images"]
    for tag in ("Val/spec", "Val/score_roll", "Val/label_roll", "Val/pred_roll"):
        assert tag in images
        assert [e.step for e in events.Images(tag)] == [0, 0, 1]  # sanity check, then epochs 0 and 1
        assert events.Images(tag)[-1].encoded_image_string.startswith(b"\x89PNG")
    assert len(events.Scalars("Train/diffusion_loss")) == 2 * STEPS_PER_EPOCH


def _start(cwd: Path, corpus: Path, *overrides: str) -> tuple[subprocess.Popen, Path]:
    """Start a training run in the background, its output going to cwd/train.log."""
    log_path = cwd / "train.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(_command(corpus, *overrides), cwd=cwd, env=_env(), stdout=log_file,
                                   stderr=subprocess.STDOUT)
    return process, log_path


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path} was not written"


def test_killed_run_resumes_exactly_where_an_uninterrupted_run_would_be(full_run, corpus, tmp_path):
    from model import load_diffvel

    # save every step, SIGKILL right after the first save (mid-epoch 0), resume to the same end
    process, log_path = _start(tmp_path, corpus, "epochs=2", "test_after_fit=false", "save_every_n_steps=1")
    last = tmp_path / "runs" / RUN_NAME / "version_0" / "checkpoints" / "last.ckpt"
    _wait_for(last, process)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=SUBPROCESS_TIMEOUT) == -signal.SIGKILL, log_path.read_text()[-3000:]
    assert _load(last)["global_step"] < 2 * STEPS_PER_EPOCH

    consumed = _load(last)["diffvel_resume"]["consumed"]
    result = _train(tmp_path, corpus, "epochs=2", "test_after_fit=false", f"ckpt_path='{last}'")
    log = result.stdout + result.stderr
    assert f"Restored all states from the checkpoint at {last}" in log
    assert "dataloader is not resumable" not in log
    assert not consumed or f"resuming inside epoch 0: its first {consumed} training items per process" in log
    assert _run_dirs(tmp_path / "runs") == [last.parent.parent]  # resumed in its own folder

    resumed = _load(last)
    reference = _load(_run_dirs(full_run / "runs")[0] / "checkpoints" / "last.ckpt")
    assert (resumed["global_step"], resumed["epoch"]) == (reference["global_step"], reference["epoch"])
    for key, value in reference["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key
    reference_adam = reference["optimizer_states"][0]["state"]
    for index, state in resumed["optimizer_states"][0]["state"].items():
        assert torch.equal(state["exp_avg_sq"], reference_adam[index]["exp_avg_sq"])
        assert state["step"] == reference_adam[index]["step"] == 2 * STEPS_PER_EPOCH

    model = load_diffvel(last)
    generator = torch.Generator().manual_seed(0)
    waveform = torch.randn(1, 327680, generator=generator) * 0.1
    score = (torch.rand(1, 640, 88, generator=generator) > 0.97).float()
    velocity = model.sample(waveform, score, type="ddim_x0", steps=2)
    assert velocity.shape == (1, 1, 640, 88) and torch.isfinite(velocity).all()


def test_sigterm_stops_mid_epoch_after_the_batch_and_saves_where_to_resume(corpus, tmp_path):
    # all 4 pieces as training data: 4 steps per epoch; SIGTERM at the first (step 1) save
    process, log_path = _start(tmp_path, corpus, "epochs=50", "test_after_fit=false", "save_every_n_steps=1",
                               "dataset.train.groups=[train,validation,test]")
    last = tmp_path / "runs" / RUN_NAME / "version_0" / "checkpoints" / "last.ckpt"
    _wait_for(last, process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=SUBPROCESS_TIMEOUT) == 128 + signal.SIGTERM, log_path.read_text()[-3000:]
    stopped = _load(last)
    resume = stopped["diffvel_resume"]
    assert stopped["epoch"] == resume["epoch"] == 0 and 0 < stopped["global_step"] < 4
    assert resume["consumed"] == stopped["global_step"]  # batch size 1: items of epoch 0 already trained on
    log = log_path.read_text()
    relative = last.relative_to(tmp_path)
    assert f"SIGTERM: saved {relative} at epoch 0, step {stopped['global_step']}" in log
    assert f"resume with \"ckpt_path='{relative}'\"" in log


def test_ddp_on_two_cpu_processes_trains_once_into_one_run_folder(corpus, tmp_path):
    result = _train(tmp_path, corpus, "trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
                    "epochs=1", "test_after_fit=false")
    (run_dir,) = _run_dirs(tmp_path / "runs")
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(names) == 2 and names[0].startswith("00e-diffusion_loss") and names[1] == "last.ckpt"
    checkpoint = _load(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 1  # 2 pieces over 2 processes: one batch each per epoch
    assert checkpoint["diffvel_resume"]["world_size"] == 2
    (hydra_dir,) = {p.parent for p in (tmp_path / "outputs").glob("*/*/*.log")}
    rank_logs = {p.name: p.read_text() for p in hydra_dir.glob("*.log")}
    assert set(rank_logs) == {"train_spec_roll.log", "train_ddp_process_1.log"}
    assert "process 0 of 2: fit ended at epoch 1, step 1" in rank_logs["train_spec_roll.log"]
    assert "process 1 of 2: fit ended at epoch 1, step 1" in rank_logs["train_ddp_process_1.log"]
    assert "run folder:" in rank_logs["train_spec_roll.log"]
    assert "run folder:" not in rank_logs["train_ddp_process_1.log"]
    assert len(list((tmp_path / "outputs").glob("*/*/.hydra"))) == 1
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr


def test_resume_checkpoint_is_checked_before_training(compose, full_run):
    from train_spec_roll import _checked_resume_path
    from utils.training.checkpoint import CheckpointError

    with pytest.raises(FileNotFoundError, match="nowhere/last.ckpt: checkpoint file not found"):
        _checked_resume_path(compose("spec_roll", ["ckpt_path=nowhere/last.ckpt"]))
    last = _run_dirs(full_run / "runs")[0] / "checkpoints" / "last.ckpt"
    tiny = [override for override in TINY if override.startswith(("experiment", "model"))]
    assert _checked_resume_path(compose("spec_roll", [*tiny, f"ckpt_path='{last}'"])) == last
    with pytest.raises(CheckpointError, match="checkpoint has residual_channels=8 but the config asks for"):
        _checked_resume_path(compose("spec_roll", [*tiny, "model.args.residual_channels=16", f"ckpt_path='{last}'"]))
