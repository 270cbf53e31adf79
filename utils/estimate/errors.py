"""The error every bad input raises: one line, naming the file and the problem."""


class EstimateError(ValueError):
    """A bad input of estimate_velocity.py; its message is `<file>: <problem>` on one line."""
