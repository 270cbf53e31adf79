"""Inference on test excerpts, evaluation under both protocols, post-processing and reports.

`protocols.py` (the one place for protocol names, CSV columns, pair/result file names and folders, the
run timestamp), `excerpts.py` (sampling whole excerpts into pair dicts), `pairs.py` (the pair-file
format), `rolls.py` (reading stored rolls), `notes.py` (which notes are scored and their estimates, one
switch per quirk), `metrics.py` (the paper and corrected protocols), `postprocess.py` (Gaussian-noise
removal), `report.py` (summary rows, CSVs, plots), `baselines.py` (training-mean and loudness baselines),
`provenance.py` (the JSON sidecar of each pair file and CSV: checkpoint, settings and .h5 content hashes).
"""
