"""bench.gain: every model and the loudness regression on the same notes at several recording gains."""
import numpy as np

from _estimate_fixtures import tiny_checkpoint
from bench import gain
from utils.data.smd import Segment


def test_scaling_multiplies_every_waveform_and_keeps_the_rest():
    segment = Segment(0, 0.0, np.full(4, 0.25, np.float32), {}, np.zeros((640, 88), np.float32))
    louder = gain.scaled({"x": [segment]}, 6.0)["x"][0]
    np.testing.assert_allclose(louder.waveform, 0.25 * 10 ** 0.3, rtol=1e-6)
    assert louder.waveform.dtype == np.float32 and louder.score_roll is segment.score_roll
    assert segment.waveform[0] == np.float32(0.25)  # the input is not changed in place


def test_rows_per_gain_on_the_same_notes_and_the_loudness_regression_follows_the_level(compose, corpus, tmp_path):
    model = tiny_checkpoint(compose, tmp_path / "plus.ckpt")
    table, plot = tmp_path / "gain.md", tmp_path / "gain.png"
    assert gain.main(["--model", f"tiny={model}", "--sets", f"tiny={corpus / 'smd_h5'}", "--baseline-root",
                      str(corpus), "--gains-db", "-6", "0", "6", "--out", str(table), "--plot", str(plot)]) == 0
    lines = [line.split("|") for line in table.read_text().splitlines() if line.startswith("| tiny")]
    assert [(cells[2].strip(), cells[3].strip()) for cells in lines] == [
        (g, m) for g in ("-6", "+0", "+6") for m in ("tiny", gain.LOUDNESS)]
    assert len({cells[4] for cells in lines}) == 1  # every row on the same notes
    loudness_bias = [float(cells[6]) for cells in lines if cells[3].strip() == gain.LOUDNESS]
    assert loudness_bias[0] < loudness_bias[1] < loudness_bias[2]  # louder audio, louder estimates
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_model_is_refused_in_one_line(corpus, tmp_path, capsys):
    missing = tmp_path / "none.ckpt"
    assert gain.main(["--model", f"x={missing}", "--sets", f"tiny={corpus / 'smd_h5'}"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {missing}: not found"
