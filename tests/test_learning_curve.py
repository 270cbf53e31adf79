"""bench.learning_curve: MAE against training steps from a run's checkpoints, with both baselines."""
import torch

from _estimate_fixtures import tiny_checkpoint
from bench import learning_curve


def _at_step(compose, path, step: int, scale: float):
    tiny_checkpoint(compose, path)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["state_dict"]["output_projection.weight"] *= scale
    torch.save({**checkpoint, "global_step": step}, path)
    return path


def test_rows_per_step_in_order_with_baselines_and_a_plot(compose, corpus, tmp_path, capsys):
    late = _at_step(compose, tmp_path / "late.ckpt", 40, 0.2)
    early = _at_step(compose, tmp_path / "early.ckpt", 8, 1.0)
    table, plot = tmp_path / "curve.md", tmp_path / "curve.png"
    code = learning_curve.main([str(late), str(early), "--sets", f"tiny={corpus / 'smd_h5'}",
                                "--baseline-root", str(corpus), "--out", str(table), "--plot", str(plot)])
    assert code == 0
    lines = [line for line in table.read_text().splitlines() if line.startswith("| tiny")]
    assert [line.split("|")[3].strip() for line in lines] == ["8", "40", "", ""]
    assert "baseline: training mean" in lines[2] and "baseline: loudness regression" in lines[3]
    step_maes = [float(line.split("|")[5]) for line in lines[:2]]
    assert step_maes[0] != step_maes[1]  # the two checkpoints' weights differ, so do their errors
    assert len({line.split("|")[4].strip() for line in lines}) == 1  # every row on the same notes
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_exported_checkpoint_without_a_step_is_refused_in_one_line(compose, corpus, tmp_path, capsys):
    exported = tiny_checkpoint(compose, tmp_path / "exported.ckpt")
    assert learning_curve.main([str(exported), "--sets", f"tiny={corpus / 'smd_h5'}",
                                "--baseline-root", str(corpus)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {exported}: no global_step (an exported checkpoint?); "
                                               "give the run's Lightning checkpoints")
