"""The ablation of the published evaluation quirks (python -m utils.analysis.quirks).

`quirks.py` (the CLI), `quirks_variants.py` (one variant per quirk, on the evaluation primitives),
`quirks_facts.py` (the quirks that leave the MAE unchanged, measured), `quirks_inputs.py` (the demo's
pair files and key-down labels), `quirks_report.py` (the Markdown report).
"""
