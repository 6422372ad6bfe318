"""Errors raised by immunopet.

Every error names what is wrong and, where possible, the file and the field
that hold the problem and what the user can do about it. Each package error
subclasses a built-in error so callers can catch it the ordinary way
(``except ValueError``) as well as by its own name.

The command line turns any :class:`ImmunopetError` into one line on stderr and
exit code 2.
"""

from __future__ import annotations

from os import PathLike

__all__ = [
    "GeometryError",
    "ImmunopetError",
    "InputError",
    "NuclideError",
    "TimingError",
    "UnsupportedInputError",
]


class ImmunopetError(Exception):
    """Base class of every error immunopet raises on purpose.

    Parameters
    ----------
    message : str
        What is wrong, in one sentence.
    path : str or os.PathLike, optional
        The file or folder the problem was found in.
    field : str, optional
        The attribute, tag or option that is missing or wrong, e.g.
        ``"RadiopharmaceuticalStartDateTime (0018,1078)"``.
    hint : str, optional
        What the user can do, e.g. ``"pass --injection-datetime"``.

    """

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.field = field
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return the error as one line: ``path: field: message; hint``."""
        parts = [p for p in (self.path, self.field) if p]
        text = ": ".join([*parts, self.message])
        if self.hint:
            text = f"{text}; {self.hint}"
        return " ".join(text.split())


class InputError(ImmunopetError, ValueError):
    """An input file or option is missing a fact or holds an impossible value."""


class UnsupportedInputError(InputError):
    """The input is valid but is not something immunopet reads (e.g. an MR series)."""


class TimingError(InputError):
    """Injection, acquisition or decay-reference times are missing or inconsistent."""


class NuclideError(ImmunopetError, ValueError):
    """A radionuclide name cannot be resolved, or its data are missing."""


class GeometryError(ImmunopetError, ValueError):
    """An affine, a grid or a slice stack is degenerate, non-orthogonal or inconsistent."""
