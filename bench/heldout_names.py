"""The held-out set's excerpt names, <piece>_<NN> (bench/heldout.py writes them, bench/accuracy.py groups
by them). Kept apart from bench.heldout so that reading a name imports nothing heavy."""


def excerpt_name(piece: str, index: int) -> str:
    """The stem of a piece's index-th excerpt (.mid and .h5): <piece>_<NN>."""
    return f"{piece}_{index:02d}"


def piece_of(name: str) -> str:
    """The piece of an excerpt stem (excerpt_name's inverse); a stem without a _NN suffix is its own piece."""
    stem, _, index = name.rpartition("_")
    return stem if stem and len(index) == 2 and index.isdigit() else name
