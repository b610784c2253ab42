"""Writing files so that a kill or a full disk never leaves a truncated file in place of a good one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def partial_path(path: Path, pid: int | str) -> Path:
    """The hidden file beside ``path`` that process ``pid`` writes before renaming it to ``path``; it keeps
    the ending, so writers that choose a format by it (Pillow) write the right one."""
    return path.with_name(f".{path.stem}.partial-{pid}{path.suffix}")


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """Yields :func:`partial_path` of ``path`` to write; when the block succeeds the file is flushed to
    disk and renamed over ``path`` in one step (``os.replace``), and the rename is flushed too; when it
    fails, the partial file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path, os.getpid())
    try:
        yield partial
        with open(partial, "rb") as file:
            os.fsync(file.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
