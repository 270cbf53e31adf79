"""Pair files: the authors' format round trip and the restricted loader's refusals."""
import os
import pickle

import numpy as np
import pytest
from numpy.lib import format as npy_format

from utils.evaluation.pairs import PairFileError, latest_pair_files, list_pair_files, load_pairs, save_pairs
from utils.evaluation.protocols import excerpt_name

TARGET_KEYS = ("onset_roll", "frame_roll", "velocity_roll", "pedal_frame_roll")


def reference_pairs(reference_dir, n_segments=2):
    """(output_dict_list, target_dict_list) for the first segments of eval_pairs.npz."""
    data = np.load(reference_dir / "eval_pairs.npz")
    outputs = [{"velocity_output": data[f"seg{i}_velocity_output"]} for i in range(n_segments)]
    targets = [{k: data[f"seg{i}_{k}"] for k in TARGET_KEYS} for i in range(n_segments)]
    return outputs, targets


def write_object_npy(path, payload: bytes, shape=(2, 1)):
    """A .npy file with an object-dtype header followed by the raw pickle `payload`."""
    with open(path, "wb") as fh:
        npy_format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": shape})
        fh.write(payload)


class RunsShellOnLoad:
    """Unpickling this calls os.system (what a malicious pair file would do)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class CallsEvalOnLoad:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_round_trip_and_authors_loader(reference_dir, tmp_path):
    outputs, targets = reference_pairs(reference_dir)
    path = save_pairs(tmp_path / "piece_pair_0_2024", outputs, targets)
    assert path.name == "piece_pair_0_2024.npy"
    assert [p.name for p in tmp_path.iterdir()] == ["piece_pair_0_2024.npy"]  # no temp file left

    loaded_outputs, loaded_targets = load_pairs(path)
    assert len(loaded_outputs) == len(loaded_targets) == 2
    for original, loaded in zip(outputs + targets, loaded_outputs + loaded_targets):
        assert original.keys() == loaded.keys()
        for key in original:
            np.testing.assert_array_equal(loaded[key], original[key])
            assert loaded[key].dtype == original[key].dtype

    authors = np.load(path, allow_pickle=True)  # how post_process_gnoise.py reads it
    assert authors.shape == (2, 2)
    np.testing.assert_array_equal(authors[0][1]["velocity_output"], outputs[1]["velocity_output"])
    np.testing.assert_array_equal(authors[1][0]["velocity_roll"], targets[0]["velocity_roll"])


def test_reads_file_written_like_run_test(reference_dir, tmp_path):
    outputs, targets = reference_pairs(reference_dir)
    outputs = [{"velocity_output": np.asarray([o["velocity_output"][0]]), "mean": np.float32(0.5)}
               for o in outputs]
    np.save(tmp_path / "x_pair_0_t", [outputs, targets], allow_pickle=True)  # run_test.py's call
    loaded_outputs, loaded_targets = load_pairs(tmp_path / "x_pair_0_t.npy")
    assert loaded_outputs[0]["mean"] == np.float32(0.5)
    np.testing.assert_array_equal(loaded_targets[1]["pedal_frame_roll"], targets[1]["pedal_frame_roll"])


def test_numpy1_module_paths_accepted(reference_dir, tmp_path):
    outputs, targets = reference_pairs(reference_dir, 1)
    array = np.empty((2, 1), dtype=object)
    array[0, 0], array[1, 0] = outputs[0], targets[0]
    payload = pickle.dumps(array, protocol=3)
    assert b"numpy._core.multiarray" in payload
    payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # numpy 1.x file
    write_object_npy(tmp_path / "old_pair_0_t.npy", payload)
    loaded_outputs, _ = load_pairs(tmp_path / "old_pair_0_t.npy")
    np.testing.assert_array_equal(loaded_outputs[0]["velocity_output"], outputs[0]["velocity_output"])


def test_shell_payload_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    array = np.empty((2, 1), dtype=object)
    array[0, 0] = {"velocity_output": RunsShellOnLoad(f"touch {marker}")}
    array[1, 0] = {"velocity_roll": np.zeros((1, 4, 88), np.float32)}
    path = tmp_path / "evil_pair_0_t.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(PairFileError, match=r"evil_pair_0_t\.npy: refused to unpickle forbidden global (posix|os|nt)\.system"):
        load_pairs(path)
    assert not marker.exists()


def test_builtin_eval_refused(tmp_path):
    write_object_npy(tmp_path / "e_pair_0_t.npy", pickle.dumps(CallsEvalOnLoad(), protocol=3))
    with pytest.raises(PairFileError, match=r"e_pair_0_t\.npy: .*forbidden global builtins\.eval"):
        load_pairs(tmp_path / "e_pair_0_t.npy")


def test_truncated_file(reference_dir, tmp_path):
    outputs, targets = reference_pairs(reference_dir)
    path = save_pairs(tmp_path / "cut_pair_0_t.npy", outputs, targets)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PairFileError, match=r"cut_pair_0_t\.npy: truncated or corrupt pickle payload"):
        load_pairs(path)
    path.write_bytes(data[:20])
    with pytest.raises(PairFileError, match=r"cut_pair_0_t\.npy: corrupt \.npy header"):
        load_pairs(path)


def test_not_npy_and_not_pairs(tmp_path):
    text = tmp_path / "notes_pair_0_t.npy"
    text.write_text("pitch,onset\n1,2\n")
    with pytest.raises(PairFileError, match=r"notes_pair_0_t\.npy: not a \.npy file"):
        load_pairs(text)
    plain = tmp_path / "plain_pair_0_t.npy"
    np.save(plain, np.zeros((2, 3), np.float32))
    with pytest.raises(PairFileError, match=r"plain_pair_0_t\.npy: not a pair file"):
        load_pairs(plain)
    lists = tmp_path / "lists_pair_0_t.npy"
    np.save(lists, np.array([1, 2, 3], dtype=object), allow_pickle=True)
    with pytest.raises(PairFileError, match=r"lists_pair_0_t\.npy: expected \[output_dict_list, target_dict_list\]"):
        load_pairs(lists)
    with pytest.raises(FileNotFoundError, match="missing_pair_0_t.npy: pair file not found"):
        load_pairs(tmp_path / "missing_pair_0_t.npy")


def test_pair_dir_listing(tmp_path):
    with pytest.raises(FileNotFoundError, match="pair directory not found"):
        list_pair_files(tmp_path / "nowhere")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="no pair files"):
        list_pair_files(tmp_path)
    (tmp_path / "b_pair_0_t.npy").write_bytes(b"")
    (tmp_path / "a_pair_0.5_t.npy").write_bytes(b"")
    assert [p.name for p in list_pair_files(tmp_path)] == ["a_pair_0.5_t.npy", "b_pair_0_t.npy"]
    assert excerpt_name("Bach_BWV849-01_001_20090916-SMD_pair_0_2023-05-01.npy") == "Bach_BWV849-01_001_20090916-SMD"
    with pytest.raises(PairFileError, match="not a pair file name"):
        excerpt_name("piece.npy")


def test_run_timestamp_is_never_one_already_used_in_the_output_folders(tmp_path):
    import datetime

    from utils.evaluation.protocols import TIMESTAMP_FORMAT, run_timestamp

    now = datetime.datetime.now()
    for seconds in range(3):  # the current second and the next two are taken
        stamp = (now + datetime.timedelta(seconds=seconds)).strftime(TIMESTAMP_FORMAT)
        (tmp_path / f"piece_pair_0_{stamp}.npy").write_bytes(b"")
    stamp = run_timestamp(tmp_path, tmp_path / "missing")
    assert not any(stamp in path.name for path in tmp_path.iterdir())
    assert datetime.datetime.strptime(stamp, TIMESTAMP_FORMAT) > now.replace(microsecond=0)


def test_latest_pair_files_keep_the_newest_run_of_each_excerpt_and_shift(tmp_path):
    names = ["a_pair_0_2026-11-26_23-28-25.npy", "a_pair_0_2026-11-27_01-46-31.npy", "a_pair_0.5_2026-11-26_23-28-25.npy",
             "b_pair_0_2026-11-26_09-00-00.npy"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in latest_pair_files(tmp_path)] == [names[2], names[1], names[3]]
