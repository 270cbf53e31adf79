"""The paper's configs compose, keep the paper's values, and the paper's command line means what it meant."""
import logging

import pytest
import torch

from utils.training.machinery import build_model, make_loader, run_name, trainer_kwargs

PAPER_COMMAND = [
    "gpus=1", "model.args.kernel_size=9", "model.args.spec_dropout=0", "dataset=MAESTRO",
    "dataloader.train.num_workers=8", "epochs=2000", "download=False",
]


def test_training_config_has_paper_defaults(compose):
    cfg = compose("spec_roll")
    assert (cfg.gpus, cfg.val_freq, cfg.hop_length, cfg.sequence_length) == (1, 5, 512, 327680)
    assert (cfg.sampling_rate, cfg.min_midi, cfg.max_midi, cfg.learning_rate, cfg.epochs) == (16000, 21, 108, 1e-5, 2500)
    assert cfg.modelcheckpoint.monitor == "Val/diffusion_loss" and cfg.modelcheckpoint.save_top_k == 2
    assert cfg.modelcheckpoint.save_last is True
    assert cfg.dataloader.train.batch_size == 16 and cfg.dataloader.test.batch_size == 4
    assert dict(cfg.spec.args) == {
        "sample_rate": 16000, "n_fft": 2048, "hop_length": 512, "n_mels": 229, "f_min": 0, "f_max": 8000,
        "center": True, "normalized": True, "pad_mode": "reflect",
    }
    args = cfg.model.args
    assert (args.residual_channels, args.residual_layers, args.kernel_size) == (512, 15, 3)
    assert (args.dilation_base, args.dilation_bound, args.spec_dropout, args.condition) == (2, 4, 0.1, "fixed")
    assert list(args.norm_args) == [0, 1, "imagewise"]
    task = cfg.task
    assert (task.timesteps, task.loss_type, task.beta_start, task.beta_end) == (200, "l2", 1e-4, 0.02)
    assert (task.training.mode, task.sampling.type, task.sampling.w) == ("x_0", "cfdg_ddpm_x0", 0)


def test_inference_config_has_paper_keys(compose):
    cfg = compose("inference")
    assert list(cfg.unaligned_shift) == [0] and cfg.frames_per_second == 31
    for key in ("comp_modelckpt", "inference_result_path", "SMD_data_root", "pair_pkl_dir"):
        assert key in cfg
    assert cfg.task.sampling.type == "cfdg_ddpm_x0" and cfg.task.sampling.steps is None
    assert cfg.protocol == "paper"


def test_fast_sampling_is_one_override(compose):
    cfg = compose("inference", ["sampling=fast"])
    assert cfg.task.sampling.type == "ddim_x0" and cfg.task.sampling.steps >= 1


def test_paper_command_line_composes_and_names_the_run_as_published(compose):
    cfg = compose("spec_roll", PAPER_COMMAND)
    assert cfg.model.args.kernel_size == 9 and cfg.model.args.spec_dropout == 0
    assert cfg.trainer.max_epochs == 2000 and cfg.dataloader.train.num_workers == 8
    assert run_name(cfg) == "ClassifierFreeDiffRoll-L15-C512-beta0.02-x_0-cfdg_ddpm_x0-w=0-p=0-k=9-dia=2-4-MAESTRO"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU fallback")
def test_gpus_1_without_gpu_falls_back_to_cpu_with_one_warning(compose, caplog):
    cfg = compose("spec_roll", PAPER_COMMAND)
    with caplog.at_level(logging.WARNING):
        kwargs = trainer_kwargs(cfg.trainer)
    assert kwargs["accelerator"] == "cpu" and kwargs["devices"] == 1 and "gpus" not in kwargs
    warnings = [r for r in caplog.records if "no GPU" in r.getMessage()]
    assert len(warnings) == 1


def test_gpus_0_means_cpu_without_warning(compose, caplog):
    cfg = compose("spec_roll", ["gpus=0"])
    with caplog.at_level(logging.WARNING):
        kwargs = trainer_kwargs(cfg.trainer)
    assert kwargs["accelerator"] == "cpu" and not caplog.records


def test_trainer_options_beyond_the_paper_are_overrides(compose):
    cfg = compose(
        "spec_roll",
        ["trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.num_nodes=2",
         "trainer.precision=bf16-mixed", "trainer.limit_train_batches=3", "trainer.fast_dev_run=true"],
    )
    kwargs = trainer_kwargs(cfg.trainer)
    assert kwargs["strategy"] == "ddp" and kwargs["devices"] == 2 and kwargs["accelerator"] == "cpu"
    assert kwargs["num_nodes"] == 2 and kwargs["precision"] == "bf16-mixed"
    assert kwargs["limit_train_batches"] == 3 and kwargs["fast_dev_run"] is True


def test_small_cpu_experiment_builds_a_small_model(compose):
    cfg = compose("spec_roll", ["experiment=cpu_small"])
    model = build_model(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    assert cfg.model.args.residual_layers <= 6 and cfg.model.args.residual_channels <= 64
    assert n_params < 2_000_000
    assert cfg.gpus == 0


def test_loader_without_workers_drops_worker_options(compose):
    cfg = compose("spec_roll", ["dataloader.train.num_workers=0"])
    loader = make_loader(list(range(8)), cfg.dataloader.train)
    assert loader.num_workers == 0 and loader.batch_size == 16


def test_four_voice_fine_tuning_experiment_extends_the_cpu_recipe(compose):
    voices, cpu = compose("spec_roll", ["experiment=plus_voices"]), compose("spec_roll", ["experiment=plus_cpu"])
    assert voices.model == cpu.model and voices.model.name == "DiffVelPlus"  # same network, so init_weights fits
    assert voices.dataloader == cpu.dataloader and voices.gpus == 0
    assert (voices.data_root, voices.learning_rate, voices.val_freq) == ("data/synth_voices_big", 1e-4, 4)
    assert voices.dataset.train.crops_per_epoch == 1 and voices.trainer.limit_val_batches == 4
    assert voices.trainer.max_time == "00:01:14:00" and cpu.trainer.max_time is None


def test_note_pooling_experiment_changes_only_pooling_data_and_time(compose):
    pool, voices = compose("spec_roll", ["experiment=plus_pool"]), compose("spec_roll", ["experiment=plus_voices"])
    assert pool.model.args.note_pooling is True and voices.model.args.note_pooling is False
    pool.model.args.note_pooling = False  # otherwise the same network, so init_weights fits
    assert pool.model == voices.model and pool.dataloader == voices.dataloader
    assert (pool.data_root, pool.trainer.max_time) == ("data/synth_demo_free", "00:00:55:00")
    assert pool.learning_rate == voices.learning_rate and pool.dataset.train.crops_per_epoch == 1


def test_drift_experiment_adds_only_paper_timed_training_labels(compose):
    drift, pool = compose("spec_roll", ["experiment=plus_drift"]), compose("spec_roll", ["experiment=plus_pool"])
    assert drift.dataset.train.paper_label_prob == 0.5 and pool.dataset.train.paper_label_prob == 0.0
    assert drift.dataset.val.get("paper_label_prob", 0.0) == 0.0  # validation stays on the model's clock
    drift.dataset.train.paper_label_prob = 0.0
    assert drift.model == pool.model and drift.dataset == pool.dataset and drift.data_root == pool.data_root
    assert drift.trainer.max_time == "00:01:00:00"


def test_hannds_experiment_changes_only_the_corpus_and_log_folder(compose):
    hannds = compose("spec_roll", ["experiment=plus_hannds"])
    level = compose("spec_roll", ["experiment=plus_level", "data_root=data/synth_perf", "log_dir=runs/hannds"])
    assert hannds == level and hannds.data_root != compose("spec_roll", ["experiment=plus_level"]).data_root
    assert hannds.snapshot_every_n_steps == 200 and hannds.model.args.absolute_level is True


def test_two_voice_experiment_is_the_heard_recipe_on_its_corpus_at_a_lower_rate(compose):
    duo = compose("spec_roll", ["experiment=plus_duo"])
    heard = compose("spec_roll", ["experiment=plus_heard", "data_root=data/synth_duo", "log_dir=runs/duo",
                                  "learning_rate=3e-5", "trainer.max_time=00:01:00:00"])
    assert duo == heard and duo.learning_rate < compose("spec_roll", ["experiment=plus_heard"]).learning_rate
    args = duo.model.args
    assert (args.loudness_residual, args.loudness_reading, args.mel_bands, args.residual_per_note) == (True, "notes", 1, True)


def test_three_voice_experiment_is_the_two_voice_recipe_on_its_corpus_for_35_minutes(compose):
    trio = compose("spec_roll", ["experiment=plus_trio"])
    duo = compose("spec_roll", ["experiment=plus_duo", "data_root=data/synth_trio", "log_dir=runs/trio",
                                "trainer.max_time=00:00:35:00"])
    assert trio == duo and trio.data_root != compose("spec_roll", ["experiment=plus_duo"]).data_root


def test_free_velocity_experiment_is_the_two_voice_recipe_on_its_corpus_for_35_minutes(compose):
    free = compose("spec_roll", ["experiment=plus_free"])
    duo = compose("spec_roll", ["experiment=plus_duo", "data_root=data/synth_free", "log_dir=runs/free",
                                "trainer.max_time=00:00:35:00"])
    assert free == duo


def test_asap_experiment_is_the_two_voice_recipe_on_its_corpus_for_45_minutes(compose):
    asap = compose("spec_roll", ["experiment=plus_asap"])
    duo = compose("spec_roll", ["experiment=plus_duo", "data_root=data/synth_asap", "log_dir=runs/asap",
                                "trainer.max_time=00:00:45:00"])
    assert asap == duo and asap.learning_rate == 3e-5
