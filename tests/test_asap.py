"""ASAP performances split by work (utils/synth/asap.py), on a small fake checkout. No network."""
import pytest

from utils.synth import asap


@pytest.mark.parametrize("folder, work", [
    ("Beethoven/Piano_Sonatas/21-1", "Beethoven/Piano_Sonatas/21"),
    ("Beethoven/Piano_Sonatas/21-1_no_repeat", "Beethoven/Piano_Sonatas/21"),
    ("Schumann/Toccata_repeat", "Schumann/Toccata"),
    ("Bach/Fugue/bwv_846", "Bach/Fugue/bwv_846"),
    ("Liszt/Gran_Etudes_de_Paganini/2_La_campanella", "Liszt/Gran_Etudes_de_Paganini/2_La_campanella"),
])
def test_movements_and_repeat_variants_belong_to_one_work(folder, work):
    assert asap.work_of(folder) == work


def test_held_out_works_go_to_neither_side_and_the_split_is_fixed():
    assert {asap.split_of(w) for w in asap.HELDOUT_WORKS} == {"heldout"}
    works = [f"Composer/Piece_{i}" for i in range(400)]
    val = [w for w in works if asap.split_of(w) == "val"]
    assert 0.08 < len(val) / len(works) < 0.18  # about one in VAL_SHARE
    assert val == [w for w in works if asap.split_of(w) == "val"]  # the same every time


def _checkout(root, rows):
    root.mkdir()
    lines = ["composer,folder,midi_performance"]
    for folder, performer in rows:
        path = root / folder / f"{performer}.mid"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"MThd {folder} {performer}".encode())
        lines.append(f"X,{folder},{folder}/{performer}.mid")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def test_prepare_copies_each_work_whole_to_one_side_and_leaves_held_out_works_out(tmp_path):
    val_work = next(f"A/{i}" for i in range(100) if asap.split_of(f"A/{i}") == "val")
    train_work = next(f"A/P_{i}" for i in range(100) if asap.split_of(f"A/P_{i}") == "train")
    rows = [(f"{val_work}-1", "Ann01"), (f"{val_work}-2_no_repeat", "Bob02"), (train_work, "Cy03M"),
            ("Beethoven/Piano_Sonatas/21-1", "Sekino05M")]
    root = _checkout(tmp_path / "asap", rows)
    written = asap.prepare(root, tmp_path / "out")
    assert {k: len(v) for k, v in written.items()} == {"train": 1, "val": 2, "heldout": 1}
    val = sorted(p.name for p in (tmp_path / "out" / "val").iterdir())
    assert val == [f"{val_work.replace('/', '__')}-1__Ann01.mid", f"{val_work.replace('/', '__')}-2_no_repeat__Bob02.mid"]
    assert (tmp_path / "out" / "train" / f"{train_work.replace('/', '__')}__Cy03M.mid").read_bytes() == \
        (root / train_work / "Cy03M.mid").read_bytes()
    assert not any("Sekino" in p.name for p in (tmp_path / "out").rglob("*.mid"))
    sources = (tmp_path / "out" / "SOURCES.md").read_text()
    assert "1 performances of Beethoven/Piano_Sonatas/21" in sources and f"of 1 works: {val_work}." in sources


def test_a_missing_metadata_file_or_performance_is_a_one_line_error(tmp_path, capsys):
    assert asap.main(["--asap", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'metadata.csv'}: not found (is --asap an ASAP checkout?)"
    root = _checkout(tmp_path / "asap", [("A/B", "C01")])
    (root / "A" / "B" / "C01.mid").unlink()
    assert asap.main(["--asap", str(root), "--out", str(tmp_path / "out2")]) == 2
    assert "A/B/C01.mid: listed in metadata.csv but missing" in capsys.readouterr().err
    assert not (tmp_path / "out2" / "SOURCES.md").exists()
