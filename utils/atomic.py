"""Atomic file writes: every output goes to a temporary file beside its target, then is renamed.

A run killed mid-write leaves either the previous file or none, never a truncated one. The file gets
the permissions a plain open() would give (0666 less the umask), not mkstemp's private 0600.
"""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _default_file_mode() -> int:
    """0666 less the process umask: the mode open(path, "w") gives a new file."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in `final`'s folder; it replaces `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(temporary, _default_file_mode())
    try:
        yield Path(temporary)
        os.replace(temporary, final)
    finally:
        Path(temporary).unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)
