"""Is one estimator's MAE really below another's on the same notes? A paired bootstrap over excerpts.

The notes of one recording share its piano, level and piece, so their errors are not independent: the
resampling unit is the excerpt (all its notes, both estimators together), not the note.
"""
from __future__ import annotations

import numpy as np

RESAMPLES = 2000
COVERAGE = 0.95


def paired_excerpt_bootstrap(errors_a, errors_b, groups=None, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """errors_a, errors_b: per excerpt, the absolute errors of estimators a and b on the same notes;
    groups: a label per excerpt (None: each excerpt its own), so that the excerpts of one piece are
    resampled together.

    Returns "difference" (a's MAE - b's over all notes), "low" and "high" (the COVERAGE percentile interval
    of that difference over `resamples` draws of the groups with replacement), "better" (excerpts where
    a's MAE is lower), "excerpts" (those with notes) and "groups"."""
    groups = list(range(len(errors_a))) if groups is None else list(groups)
    pairs = [(np.asarray(a, dtype=float), np.asarray(b, dtype=float), g)
             for a, b, g in zip(errors_a, errors_b, groups, strict=True)]
    pairs = [(a, b, g) for a, b, g in pairs if a.size]
    if any(a.shape != b.shape for a, b, _ in pairs):
        raise ValueError("paired_excerpt_bootstrap: the two estimators must be scored on the same notes")
    if not pairs:
        return {"difference": float("nan"), "low": float("nan"), "high": float("nan"), "better": 0, "excerpts": 0,
                "groups": 0}
    labels = sorted({g for _, _, g in pairs}, key=str)
    sums = np.zeros((len(labels), 3))  # (groups, 3): a's and b's error sums, notes
    for a, b, g in pairs:
        sums[labels.index(g)] += (a.sum(), b.sum(), a.size)
    draws = np.random.default_rng(seed).integers(0, len(labels), size=(resamples, len(labels)))
    totals = sums[draws].sum(axis=1)  # (resamples, 3)
    differences = (totals[:, 0] - totals[:, 1]) / totals[:, 2]
    tail = 100 * (1 - COVERAGE) / 2
    return {"difference": float((sums[:, 0].sum() - sums[:, 1].sum()) / sums[:, 2].sum()),
            "low": float(np.percentile(differences, tail)), "high": float(np.percentile(differences, 100 - tail)),
            "better": int(sum(a.mean() < b.mean() for a, b, _ in pairs)), "excerpts": len(pairs), "groups": len(labels)}
