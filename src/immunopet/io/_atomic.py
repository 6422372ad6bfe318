"""Atomic file writing: a temporary file beside the target, then ``os.replace``.

A failed or interrupted write leaves the target as it was and no partial file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_directory", "atomic_path"]


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, ending: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    ending : str, optional
        Ending the temporary name keeps (e.g. ``".nii.gz"`` so a writer that
        looks at the name still compresses); default: the last suffix of ``path``.

    """
    target = Path(path)
    suffix = target.suffix if ending is None else ending
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; rename it to ``path`` when the block succeeds.

    ``path`` must not exist, or be an empty folder (it is replaced). A failed or
    interrupted block removes the temporary folder and leaves ``path`` as it was,
    so a reader never finds a half-written series or patient.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    temporary.mkdir(parents=True)
    try:
        yield temporary
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
