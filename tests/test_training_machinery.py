"""The resumable-training pieces of utils/training/machinery.py in process, and train_spec_roll.train(cfg)."""
import math
import random

import numpy as np
import pytest
import torch

RUN_NAME = "ClassifierFreeDiffRoll-L2-C8-beta0.02-x_0-cfdg_ddpm_x0-w=0-p=0.1-k=9-dia=2-4-MAESTRO"
TINY = [
    "experiment=cpu_small", "model.args.residual_channels=8", "model.args.residual_layers=2",
    "dataloader.train.num_workers=0", "dataloader.train.batch_size=1", "dataloader.val.batch_size=1",
    "dataloader.test.num_workers=0", "dataloader.val.num_workers=0", "trainer.enable_progress_bar=false",
]


def _load(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # no safe-globals context: plain contents


def test_train_is_importable_and_runs_a_fast_dev_run(compose, corpus, tmp_path, monkeypatch):
    from train_spec_roll import train

    monkeypatch.chdir(tmp_path)
    cfg = compose("spec_roll", [*TINY, f"data_root={corpus}", "trainer.fast_dev_run=true", f"log_dir={tmp_path / 'runs'}"])
    trainer = train(cfg)
    assert trainer.global_step == 1 and trainer.fast_dev_run
    assert math.isfinite(float(trainer.callback_metrics["Test/diffusion_loss"]))
    assert not (tmp_path / "runs").exists()  # fast_dev_run writes no run folder


def test_epoch_sampler_orders_by_seed_and_epoch_shards_and_skips(monkeypatch):
    from utils.training import machinery as training

    class Items(list):
        epoch = None

        def set_epoch(self, epoch):
            self.epoch = epoch

    items = Items(range(5))
    sampler = training.EpochSampler(items, seed=3)
    sampler.set_epoch(1)
    first = list(sampler)
    assert sorted(first) == [0, 1, 2, 3, 4] and items.epoch == 1
    again = training.EpochSampler(Items(range(5)), seed=3)
    again.set_epoch(1)
    assert list(again) == first  # no global RNG: the same order in any process, before or after a resume
    again.set_epoch(2)
    assert sorted(again) == [0, 1, 2, 3, 4] and list(again) != first
    sampler.resume(1, consumed=2)
    assert list(sampler) == first[2:] and list(sampler) == first  # the skip applies once
    sampler.resume(1, consumed=2)
    sampler.set_epoch(2)  # another epoch cancels the skip
    assert len(list(sampler)) == 5
    assert list(training.EpochSampler(items, shuffle=False)) == [0, 1, 2, 3, 4]

    monkeypatch.setattr(training, "_rank_and_world_size", lambda: (1, 2))
    sharded = training.EpochSampler(items, shuffle=False)
    assert list(sharded) == [1, 3, 0] and len(sharded) == 3  # padded by repetition, as DistributedSampler


def test_rng_states_survive_a_weights_only_checkpoint(tmp_path):
    from utils.training.machinery import _capture_rng_states, _restore_rng_states

    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.randn()  # leaves a cached Gaussian in NumPy's state
    torch.save({"rng": _capture_rng_states()}, tmp_path / "state.ckpt")
    expected = (torch.rand(3), np.random.randn(3), random.random())
    _restore_rng_states(_load(tmp_path / "state.ckpt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.randn(3), expected[1]) and random.random() == expected[2]


def test_atomic_checkpoint_io_keeps_the_old_file_when_saving_fails(tmp_path):
    from utils.training.machinery import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(1)}, path)
    with pytest.raises(Exception):
        AtomicCheckpointIO().save_checkpoint({"step": lambda: None}, path)  # unpicklable
    assert _load(path)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_resume_folder_and_kept_metrics(tmp_path):
    from utils.training.machinery import keep_previous_metrics, resume_run_dir

    run_dir = tmp_path / "runs" / RUN_NAME / "version_3"
    (run_dir / "checkpoints").mkdir(parents=True)
    assert resume_run_dir(run_dir / "checkpoints" / "last.ckpt") == run_dir
    assert resume_run_dir(tmp_path / "elsewhere" / "last.ckpt") is None
    assert keep_previous_metrics(run_dir) is None
    for text in ("first", "second"):
        (run_dir / "metrics.csv").write_text(text)
        keep_previous_metrics(run_dir)
    assert (run_dir / "metrics.1.csv").read_text() == "first" and (run_dir / "metrics.2.csv").read_text() == "second"
    assert not (run_dir / "metrics.csv").exists()
