"""utils.training.average and export: slim checkpoints, the weight mean, and one-line refusals."""
import pytest
import torch

from _estimate_fixtures import tiny_checkpoint
from model import load_diffvel
from utils.training import average, export
from utils.training.checkpoint import load_checkpoint


def _scaled(compose, path, scale: float, step: int, lr: float = 1e-4):
    """A tiny DiffVel+ checkpoint whose every float weight is `scale` x the seeded one."""
    tiny_checkpoint(compose, path)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["state_dict"] = {k: v * scale for k, v in checkpoint["state_dict"].items()}
    checkpoint["hyper_parameters"]["lr"] = lr
    checkpoint["optimizer_states"] = [{"state": {}}]
    torch.save({**checkpoint, "global_step": step, "epoch": step // 10}, path)
    return path


def test_the_average_is_the_key_wise_mean_and_loads_like_any_checkpoint(compose, tmp_path):
    sources = [_scaled(compose, tmp_path / f"s{i}.ckpt", scale, step, lr)
               for i, (scale, step, lr) in enumerate([(1.0, 10, 1e-4), (2.0, 30, 1e-4), (6.0, 20, 5e-5)])]
    out = tmp_path / "mean.ckpt"
    assert average.main([str(out), *map(str, sources)]) == 0
    written, first = load_checkpoint(out), load_checkpoint(sources[0])
    for key, value in first["state_dict"].items():
        torch.testing.assert_close(written["state_dict"][key], value * 3.0)  # mean of 1x, 2x and 6x
    assert written["global_step"] == 30 and written["epoch"] == 3 and written["hyper_parameters"]["lr"] == 1e-4
    assert [entry["global_step"] for entry in written["averaged_from"]] == [10, 30, 20]
    assert "optimizer_states" not in written
    model = load_diffvel(out)
    assert torch.equal(model.output_projection.weight, written["state_dict"]["output_projection.weight"])


def test_another_model_is_refused_naming_the_file_and_key(compose, tmp_path, capsys):
    plus = _scaled(compose, tmp_path / "plus.ckpt", 1.0, 10)
    paper = tiny_checkpoint(compose, tmp_path / "paper.ckpt", absolute=False)
    out = tmp_path / "mean.ckpt"
    assert average.main([str(out), str(plus), str(paper)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {paper}: hyperparameter ") and "\n" not in error
    assert not out.exists()


def test_a_mis_shaped_parameter_is_refused(compose, tmp_path):
    first = _scaled(compose, tmp_path / "a.ckpt", 1.0, 10)
    second = _scaled(compose, tmp_path / "b.ckpt", 1.0, 20)
    checkpoint = torch.load(second, weights_only=False)
    checkpoint["state_dict"]["output_projection.bias"] = torch.zeros(3)
    torch.save(checkpoint, second)
    with pytest.raises(Exception, match=r"b\.ckpt: parameter output_projection\.bias has shape \(3,\)"):
        average.average([first, second], tmp_path / "mean.ckpt")


def test_overwriting_a_source_or_a_single_source_is_refused(compose, tmp_path, capsys):
    first = _scaled(compose, tmp_path / "a.ckpt", 1.0, 10)
    second = _scaled(compose, tmp_path / "b.ckpt", 2.0, 20)
    before = first.read_bytes()
    assert average.main([str(first), str(first), str(second)]) == 2
    assert "would overwrite one of its sources" in capsys.readouterr().err
    assert first.read_bytes() == before
    assert average.main([str(tmp_path / "m.ckpt"), str(first)]) == 2
    assert "at least two checkpoints" in capsys.readouterr().err
    assert average.main([str(tmp_path / "m.ckpt"), str(first), str(second), str(tmp_path / "." / "a.ckpt")]) == 2
    assert f"{tmp_path / 'a.ckpt'}: given twice" in capsys.readouterr().err
    assert not (tmp_path / "m.ckpt").exists()


def test_export_keeps_weights_and_step_and_drops_training_state(compose, tmp_path, capsys):
    source = _scaled(compose, tmp_path / "run.ckpt", 2.0, 42)
    out = tmp_path / "slim.ckpt"
    assert export.main([str(source), str(out)]) == 0
    assert "step 42" in capsys.readouterr().out
    written, original = load_checkpoint(out), load_checkpoint(source)
    assert set(written) == {"state_dict", "hyper_parameters", "global_step", "epoch"}
    for key, value in original["state_dict"].items():
        assert torch.equal(written["state_dict"][key], value)
    assert export.main([str(out), str(out)]) == 2
    assert "overwrite its source" in capsys.readouterr().err


def test_exporting_an_average_keeps_its_sources(compose, tmp_path):
    sources = [_scaled(compose, tmp_path / f"s{i}.ckpt", 1.0 + i, 10 * (i + 1)) for i in range(2)]
    average.average(sources, tmp_path / "mean.ckpt")
    export.export(tmp_path / "mean.ckpt", tmp_path / "shipped.ckpt")
    assert load_checkpoint(tmp_path / "shipped.ckpt")["averaged_from"] == [
        {"file": "s0.ckpt", "global_step": 10}, {"file": "s1.ckpt", "global_step": 20}]


def test_an_average_with_an_exported_source_has_no_step(compose, tmp_path):
    stepped = _scaled(compose, tmp_path / "run.ckpt", 1.0, 40)
    exported = tiny_checkpoint(compose, tmp_path / "exported.ckpt")  # no global_step, no epoch
    written = average.average([stepped, exported], tmp_path / "mean.ckpt")
    assert "global_step" not in written and "epoch" not in written
    assert [entry["global_step"] for entry in written["averaged_from"]] == [40, None]
