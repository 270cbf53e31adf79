"""Datasets and their labels.

MAESTRO (training): `maestro.py` (the Dataset: layout, metadata, crops), `midi_labels.py` (training
labels: MIDI -> note table -> frame/onset/velocity rolls), `audio_io.py` (resampling cache, crop
reads), `download.py` (MAESTRO v2.0.0 download), `datasets.py` (the `dataset` config group).
SMD (test): `smd.py` (the .h5 reader/writer and the paper/corrected test segments), `smd_checks.py` (the
MIDI event and length checks behind smd.py's reader and writer), `target_processor.py`
(test labels: the paper's TargetProcessor and the corrected labels), `pack_smd.py` (.wav + .mid -> .h5).
"""
