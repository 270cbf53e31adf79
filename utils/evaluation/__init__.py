"""Inference on test excerpts, evaluation under both protocols, post-processing and reports.

`excerpts.py` (sampling whole excerpts into pair dicts), `pairs.py` (the pair-file format),
`metrics.py` (the paper and corrected note metrics), `postprocess.py` (Gaussian-noise removal),
`report.py` (summary rows, CSVs, plots), `baselines.py` (training-mean and loudness baselines).
"""
