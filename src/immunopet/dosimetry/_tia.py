"""Time-integrated activity of a source region from sampled activities.

Ã = ∫₀^∞ A(t) dt (Bq·s, the number of decays; MIRD Pamphlet 21: Bolch WE et al.,
J Nucl Med 2009;50:477–484) is split into three parts:

* **0 → t₁ (head).** Before the first sample the curve is unknown. ``head="constant"``
  (default) holds the first sample back to the injection, A(t) = A(t₁): for blood-pool and
  perfused organs the activity is present from the start, and for slowly filling organs it
  overestimates, which errs on the side of a higher dose. ``head="linear"`` rises linearly
  from A(0) = 0 (an uptake organ).
* **t₁ → tₙ (samples).** Trapezoids between the samples.
* **tₙ → ∞ (tail).** ``tail="physical"`` (default) assumes no biological clearance after the
  last sample, only physical decay: A(tₙ)/λₚ. This is the conservative choice recommended
  when later points are missing, because it never underestimates. ``tail="exponential"``
  continues the mono-exponential through the last two samples (effective decay constant,
  never slower than physical decay). ``tail="none"`` stops at the last sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from immunopet.errors import InputError, TimingError

__all__ = ["time_integrated_activity_bq_s"]

Head = Literal["constant", "linear"]
Tail = Literal["physical", "exponential", "none"]


def time_integrated_activity_bq_s(
    times_s: Sequence[float] | np.ndarray,
    activity_bq: Sequence[float] | np.ndarray,
    *,
    half_life_s: float,
    tail: Tail = "physical",
    head: Head = "constant",
) -> float:
    """Return the time-integrated activity Ã of a sampled time–activity curve.

    Parameters
    ----------
    times_s : sequence of float, shape (N,)
        Sample times after administration, s; strictly increasing, ≥ 0.
    activity_bq : sequence of float, shape (N,)
        Activity in the region at each time (not decay-corrected), Bq; ≥ 0.
    half_life_s : float
        Physical half-life of the nuclide, s (``immunopet.physics.nuclide(name).half_life_s``).
    tail : {"physical", "exponential", "none"}
        Extrapolation after the last sample (module docstring).
    head : {"constant", "linear"}
        Assumption between the administration and the first sample (module docstring).

    Returns
    -------
    float
        Ã in Bq·s (number of decays).

    Raises
    ------
    InputError
        If the arrays differ in length, are empty, or hold negative or non-finite activity.
    TimingError
        If the times are negative or not strictly increasing, or the half-life is not positive.

    Examples
    --------
    One sample of 1 MBq at t = 0 with physical decay only gives A₀·T½/ln 2:

    >>> round(time_integrated_activity_bq_s([0.0], [1e6], half_life_s=3600.0) / 1e6, 1)
    5193.7

    """
    if tail not in ("physical", "exponential", "none"):
        raise InputError(f"tail must be 'physical', 'exponential' or 'none', got {tail!r}")
    if head not in ("constant", "linear"):
        raise InputError(f"head must be 'constant' or 'linear', got {head!r}")
    times = np.asarray(times_s, dtype=float)
    activity = np.asarray(activity_bq, dtype=float)
    if times.ndim != 1 or activity.ndim != 1 or times.size != activity.size or times.size == 0:
        raise InputError(
            f"times_s and activity_bq must be 1-D and of equal non-zero length, got "
            f"{times.shape} and {activity.shape}",
            field="activity_bq",
        )
    if not np.all(np.isfinite(activity)) or np.any(activity < 0.0):
        raise InputError(
            "activity_bq must be finite and non-negative", field="activity_bq", hint=f"{activity}"
        )
    if not np.all(np.isfinite(times)) or times[0] < 0.0 or np.any(np.diff(times) <= 0.0):
        raise TimingError(
            "times_s must be finite, non-negative and strictly increasing",
            field="times_s",
            hint=f"got {times.tolist()}",
        )
    if not math.isfinite(half_life_s) or half_life_s <= 0.0:
        raise TimingError(f"half_life_s must be a positive number of seconds, got {half_life_s!r}")
    decay_constant_per_s = math.log(2.0) / half_life_s

    first = float(times[0] * activity[0])
    if head == "linear":
        first *= 0.5
    samples = float(np.sum(0.5 * (activity[1:] + activity[:-1]) * np.diff(times)))
    return first + samples + _tail_bq_s(times, activity, decay_constant_per_s, tail)


def _tail_bq_s(times: np.ndarray, activity: np.ndarray, physical_per_s: float, tail: Tail) -> float:
    last = float(activity[-1])
    if tail == "none" or last == 0.0:
        return 0.0
    rate_per_s = physical_per_s
    if tail == "exponential" and times.size >= 2 and activity[-2] > 0.0:
        fitted_per_s = math.log(float(activity[-2]) / last) / float(times[-1] - times[-2])
        rate_per_s = max(fitted_per_s, physical_per_s)
    return last / rate_per_s
