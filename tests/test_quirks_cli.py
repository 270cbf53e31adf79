"""The quirk ablation's command line (python -m utils.analysis.quirks) on hand-built demo folders."""
import csv
import io

import pytest

from test_quirks import realistic_excerpt
from utils.analysis.quirks import TABLE_COLUMNS, main
from utils.analysis.quirks_inputs import QuirksInputError, load_demo_pairs
from utils.analysis.quirks_variants import VARIANTS
from utils.evaluation.metrics import paper_metrics
from utils.evaluation.pairs import save_pairs
from utils.evaluation.protocols import CORRECTED, PAPER


def write_demo(root, excerpts=("a", "b"), corrected=True, corrected_segments=2):
    """A demo folder with hand-built paper and corrected pair files."""
    excerpt = realistic_excerpt()
    for name in excerpts:
        save_pairs(root / "pairs" / f"{name}_pair_0_2026-01-01_00-00-00", *excerpt.pairs[PAPER])
        if corrected:
            outputs, targets = excerpt.pairs[CORRECTED]
            save_pairs(root / "pairs" / "corrected" / f"{name}_pair_0_2026-01-01_00-00-01",
                       outputs[:corrected_segments], targets[:corrected_segments])
    return excerpt


def test_cli_writes_markdown_and_csv(tmp_path, capsys):
    excerpt = write_demo(tmp_path)
    assert main(["--demo-out", str(tmp_path)]) == 0
    report = (tmp_path / "quirks.md").read_text()
    assert "| variant | what changes | notes |" in report and "not measured (no checkpoint" in report
    lines = list(csv.reader(io.StringIO((tmp_path / "quirks.csv").read_text())))
    assert tuple(lines[0]) == TABLE_COLUMNS
    assert len(lines) == 1 + len(VARIANTS) - 1  # 5b skipped without .h5 files
    paper_row = lines[1]
    expected = paper_metrics(*excerpt.pairs[PAPER])  # both excerpts are identical: the pooled MAE is the same
    assert paper_row[1] == "paper" and int(paper_row[3]) == 2 * expected["n_notes"]
    assert float(paper_row[4]) == pytest.approx(expected["frame_max_error"], rel=1e-9)
    assert "| paper |" in capsys.readouterr().out


def test_cli_errors_name_the_missing_or_mismatched_file(tmp_path, capsys):
    write_demo(tmp_path / "one", excerpts=("a",), corrected=False)
    (tmp_path / "one" / "pairs" / "corrected").mkdir()
    save_pairs(tmp_path / "one" / "pairs" / "corrected" / "other_pair_0_2026-01-01_00-00-01",
               *realistic_excerpt().pairs[CORRECTED])
    assert main(["--demo-out", str(tmp_path / "one")]) == 2
    assert "a (shift 0) has no corrected pair file" in capsys.readouterr().err
    write_demo(tmp_path / "two", excerpts=("a",), corrected_segments=1)
    with pytest.raises(QuirksInputError, match="a_pair_0_2026-01-01_00-00-00.npy: 2 segments but its corrected"):
        load_demo_pairs(tmp_path / "two")
    assert main(["--demo-out", str(tmp_path / "missing")]) == 2
    assert "pair directory not found" in capsys.readouterr().err


def test_cli_reads_the_paper_model_folder_of_todays_demo_layout(tmp_path):
    old = write_demo(tmp_path / "plain", excerpts=("a",))
    tagged = tmp_path / "tagged"
    write_demo(tagged / "pairs" / "diffvel_tmp", excerpts=("a",))
    (tagged / "pairs" / "diffvel_tmp" / "pairs").rename(tagged / "pairs" / "diffvel")
    (tagged / "pairs" / "diffvel_tmp").rmdir()
    by_shift = load_demo_pairs(tagged)  # pairs/diffvel/, the default model tag
    assert [e.name for e in by_shift["0"]] == ["a"]
    assert len(by_shift["0"][0].pairs[PAPER][0]) == len(old.pairs[PAPER][0])
    assert main(["--demo-out", str(tagged)]) == 0 and (tagged / "quirks.md").is_file()
    with pytest.raises(FileNotFoundError, match=r"tagged/pairs: no pair files"):
        load_demo_pairs(tagged, "diffvel_plus")  # no such model folder: falls back to pairs/, which has none
