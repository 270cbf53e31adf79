"""Markdown tables, the one writer behind every report and benchmark table."""
from __future__ import annotations

from typing import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence], align: str) -> str:
    """A Markdown table without a trailing newline; `align` has one letter per column, "l" or "r".

    Cells are written with str(); format numbers before passing them.
    """
    if len(align) != len(header):
        raise ValueError(f"{len(header)} columns but alignment {align!r}")
    lines = ["| " + " | ".join(header) + " |", "|" + "".join("---:|" if a == "r" else "---|" for a in align)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
