"""An output folder that appears complete or not at all: write beside it, then swap it in.

:func:`atomic_output_folder` does for a run's whole output what
:func:`immunopet.io._atomic.atomic_directory` does for one new series folder, plus what that
helper refuses: a ``--out`` that already holds the previous run. (It is a separate function
because the temporary names carry host and process id, so a later run can remove what a killed
one left, and because it copies kept files and marks the folder.) The previous output stays
untouched until the new one is complete, and is then replaced by it:

* **Linux**: one ``renameat2(RENAME_EXCHANGE)`` system call swaps the two folders atomically
  (Linux ≥ 3.15 on ext4, XFS, Btrfs, tmpfs …); the previous output, now in the temporary
  name, is deleted afterwards. A reader sees either the old folder or the new one.
* **Elsewhere** (macOS, Windows, file systems without the exchange, e.g. NFS): two renames,
  ``out → .out.previous`` then ``.out.tmp-… → out``. A process killed between the two renames
  leaves ``out`` missing for an instant; the next :func:`atomic_output_folder` on the same
  folder renames ``.out.previous`` back (the killed run counts as failed).

A killed run cannot clean up after itself: its temporary folder
(``.<name>.tmp-<host>-<pid>-<random>``, hidden, beside ``out``) is removed by the next run on
the same host once that process no longer exists.

Before the swap every file is flushed to disk (``fsync``), so a power cut after the swap does
not leave a new folder with empty files.

Safety: an existing, non-empty ``out`` is replaced only if a previous run marked it as an
immunopet output (file ``.immunopet-output``); ``--out`` pointing at a folder of scans or
anything else is refused instead of deleted. Two runs writing the same ``out`` at the same time
are not supported (the last to finish wins).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import os
import shutil
import socket
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from immunopet.errors import InputError

__all__ = ["OUTPUT_MARKER", "atomic_output_folder"]

OUTPUT_MARKER = ".immunopet-output"
"""File written into every output folder; only a folder holding it is ever replaced."""

_OUT_FIELD = "--out"
_SQLITE_COMPANIONS = ("", "-journal", "-wal")
"""A kept SQLite database travels with its rollback journal or write-ahead log, if any."""

# Linux ABI (<fcntl.h>, <linux/fs.h>): the current directory as ``dirfd``; swap both names.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 1 << 1


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _backup(target: Path) -> Path:
    return target.with_name(f".{target.name}.previous")


def _process_exists(pid: int) -> bool:
    if os.name != "posix" or pid == os.getpid():
        return True  # no safe probe (os.kill would terminate on Windows): keep the folder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(target: Path) -> None:
    """Finish what a killed run left: restore the previous output, remove its temporaries."""
    backup = _backup(target)
    if backup.is_dir():
        if not os.path.lexists(target):
            os.rename(backup, target)  # killed between the two renames: keep the old output
        else:
            shutil.rmtree(backup, ignore_errors=True)  # killed after the swap
    host = socket.gethostname()
    prefix = _temporary_prefix(target)
    for stale in target.parent.glob(glob.escape(prefix) + "*"):
        owner, _, pid = stale.name[len(prefix) :].rpartition("-")[0].rpartition("-")
        if owner == host and pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _check_replaceable(target: Path) -> None:
    if not os.path.lexists(target):
        return
    if not target.is_dir():
        raise InputError(
            f"{target} exists and is not a folder",
            field=_OUT_FIELD,
            hint="choose a new or empty folder for --out",
        )
    if (target / OUTPUT_MARKER).is_file() or not any(target.iterdir()):
        return
    raise InputError(
        f"{target} exists and is not an immunopet output folder (no {OUTPUT_MARKER}); "
        "refusing to replace what it holds",
        field=_OUT_FIELD,
        hint="choose a new or empty folder for --out",
    )


def _carry(target: Path, temporary: Path, name: str) -> None:
    if not name or Path(name).name != name or name in {".", ".."}:
        raise ValueError(f"keep names files directly inside the output folder, not {name!r}")
    for companion in (name + ending for ending in _SQLITE_COMPANIONS):
        source = target / companion
        if source.is_file():
            shutil.copy2(source, temporary / companion)


def _fsync(path: str, *, directory: bool = False) -> None:
    if directory and os.name != "posix":
        return  # directories cannot be opened for fsync on Windows
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(folder: Path) -> None:
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                _fsync(path)
        _fsync(directory, directory=True)


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where the system cannot."""
    if sys.platform != "linux":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no such C library function (glibc < 2.28, musl)
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    status = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if status == 0:
        return True
    code = ctypes.get_errno()
    if code in {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}:  # kernel or file system lacks it
        return False
    raise OSError(code, os.strerror(code), str(second))


def _swap_in(temporary: Path, target: Path) -> None:
    """Put ``temporary`` at ``target``; remove what ``target`` held before."""
    if not os.path.lexists(target):
        os.rename(temporary, target)
    elif _exchange(temporary, target):
        shutil.rmtree(temporary, ignore_errors=True)  # the previous output, now at temporary
    else:
        backup = _backup(target)
        os.rename(target, backup)
        try:
            os.rename(temporary, target)
        except BaseException:
            os.rename(backup, target)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    _fsync(str(target.parent), directory=True)


@contextlib.contextmanager
def atomic_output_folder(
    out_dir: str | os.PathLike[str], *, keep: Iterable[str] = ()
) -> Iterator[Path]:
    r"""Yield a new, temporary output folder; swap it into ``out_dir`` when the block succeeds.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The output folder (``--out``). It may not exist yet (its parents are created), be
        empty, or hold a previous immunopet output, which is replaced as a whole. Symbolic
        links in the path are resolved: the folder is replaced where it really is.
    keep : iterable of str
        Names of files in the previous output to copy into the new folder before the block
        runs, e.g. the default results database (``immunopet.db``) so that the studies saved
        by earlier runs stay in it; a kept SQLite database brings its ``-journal``/``-wal``.

    Yields
    ------
    pathlib.Path
        The temporary folder (beside ``out_dir``) to write everything into.

    Raises
    ------
    InputError
        ``out_dir`` is a file, or a non-empty folder without immunopet's output marker
        (field ``--out``).

    Notes
    -----
    If the block raises, or the process is killed, ``out_dir`` is left exactly as it was
    (see the module notes for the instant between two renames where no atomic exchange
    exists).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as parent:
    ...     out = Path(parent, "out")
    ...     with atomic_output_folder(out) as folder:
    ...         _ = (folder / "table.csv").write_text("a\n1\n")
    ...     with atomic_output_folder(out) as folder:
    ...         _ = (folder / "table.csv").write_text("a\n2\n")
    ...     (out / "table.csv").read_text(), sorted(p.name for p in Path(parent).iterdir())
    ('a\n2\n', ['out'])

    """
    target = Path(os.path.realpath(out_dir))
    if target.parent == target:
        raise InputError(
            f"{target} is a file-system root", field=_OUT_FIELD, hint="choose a folder for --out"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target)
    _check_replaceable(target)
    owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    temporary = target.with_name(_temporary_prefix(target) + owner)
    temporary.mkdir()
    try:
        for name in keep:
            _carry(target, temporary, name)
        (temporary / OUTPUT_MARKER).write_text(
            "This folder was written by immunopet; a new run may replace it as a whole.\n",
            encoding="utf-8",
        )
        yield temporary
        _fsync_tree(temporary)
        _swap_in(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
