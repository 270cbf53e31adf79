"""The ablation of the published evaluation quirks (python -m utils.analysis.quirks).

`quirks.py` (the variants and the CLI), `quirks_report.py` (its Markdown report).
"""
