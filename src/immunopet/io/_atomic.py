"""Atomic file writing: a temporary file beside the target, then ``os.replace``.

A failed or interrupted write leaves the target as it was and no partial file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path"]


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
