"""Radioactive decay between instants, decay correction and frame averaging.

All functions take the half-life in seconds; get it from
:func:`immunopet.physics.nuclide`. Nothing else in immunopet decays activity.

A(t) = A(t0) · 2^(−(t − t0)/T½). The frame-average factor is the mean of
the activity over a frame of duration Δ relative to the activity at the frame
start: (1 − e^(−λΔ))/(λΔ), λ = ln 2/T½ (e.g. Bailey DL et al., Positron
Emission Tomography, Springer 2005, ch. 5).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from immunopet.errors import TimingError

#: Largest |elapsed time| in half-lives for which 2^(±t/T½) is a finite, non-zero double.
_MAX_HALF_LIVES = 1000.0

__all__ = [
    "decay_correction_factor",
    "decay_factor",
    "decay_factor_between",
    "frame_average_decay_factor",
    "frame_effective_offset_s",
    "seconds_between",
]


def _check_half_life(half_life_s: float) -> float:
    value = float(half_life_s)
    if not math.isfinite(value) or value <= 0.0:
        raise TimingError(f"half-life must be a positive number of seconds, got {half_life_s!r}")
    return value


def seconds_between(start: datetime, end: datetime) -> float:
    """Return ``end − start`` in seconds (negative when ``end`` is earlier).

    Raises
    ------
    TimingError
        If one datetime carries a time zone and the other does not.

    """
    if (start.tzinfo is None) != (end.tzinfo is None):
        raise TimingError(
            f"cannot compare a time-zone-aware and a naive datetime ({start.isoformat()} vs "
            f"{end.isoformat()})",
            hint="give both with a UTC offset or both without",
        )
    if start.tzinfo is not None:
        # Elapsed time, not wall-clock difference: compare in UTC (daylight-saving changes).
        return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()
    return (end - start).total_seconds()


def decay_factor(half_life_s: float, elapsed_s: float) -> float:
    """Fraction of activity remaining after ``elapsed_s`` seconds, 2^(−t/T½).

    Negative ``elapsed_s`` gives the inverse (activity earlier was larger).

    Examples
    --------
    >>> round(decay_factor(78.41 * 3600, 78.41 * 3600), 12)
    0.5

    """
    half_lives = float(elapsed_s) / _check_half_life(half_life_s)
    if not math.isfinite(half_lives) or abs(half_lives) > _MAX_HALF_LIVES:
        raise TimingError(
            f"{elapsed_s!r} s is {half_lives:.3g} half-lives: the activity is beyond floating-point range",
            hint="check the dates and the nuclide",
        )
    return float(2.0**-half_lives)


def decay_factor_between(half_life_s: float, start: datetime, end: datetime) -> float:
    """Fraction of the activity at ``start`` that remains at ``end``."""
    return decay_factor(half_life_s, seconds_between(start, end))


def decay_correction_factor(
    half_life_s: float, measured_at: datetime, reference: datetime
) -> float:
    """Factor that turns an activity measured at ``measured_at`` into the activity at ``reference``.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> t0, t1 = datetime(2026, 1, 1, 9), datetime(2026, 1, 4, 9)  # 72 h later
    >>> round(decay_correction_factor(78.41 * 3600, t1, t0), 6)  # Zr-89, back to t0
    1.889822

    """
    return 1.0 / decay_factor_between(half_life_s, reference, measured_at)


def frame_average_decay_factor(half_life_s: float, duration_s: float) -> float:
    """Mean activity over a frame of ``duration_s`` relative to the activity at its start.

    (1 − e^(−λΔ))/(λΔ); 1 for a zero-length frame.

    Examples
    --------
    >>> round(frame_average_decay_factor(6586.2, 6586.2), 6)  # one half-life long frame
    0.721348

    """
    duration = float(duration_s)
    if not math.isfinite(duration) or duration < 0.0:
        raise TimingError(f"frame duration must be >= 0 s, got {duration_s!r}")
    x = math.log(2.0) * duration / _check_half_life(half_life_s)
    if x == 0.0:
        return 1.0
    return -math.expm1(-x) / x


def frame_effective_offset_s(half_life_s: float, duration_s: float) -> float:
    """Instant within a frame, seconds after its start, at which the activity equals the frame mean.

    This is the time to which a frame-averaged, non-decay-corrected value
    belongs: t_eff = −ln(F)/λ with F the frame-average factor. It tends to
    Δ/2 for frames much shorter than the half-life.

    Examples
    --------
    >>> round(frame_effective_offset_s(1.0e9, 600.0), 3)
    300.0

    """
    factor = frame_average_decay_factor(half_life_s, duration_s)
    return -math.log(factor) * _check_half_life(half_life_s) / math.log(2.0)
