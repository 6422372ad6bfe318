"""Time-integrated activity of the urinary bladder contents with a fixed voiding schedule.

The bladder collects the activity the kidneys excrete and empties completely at each void: at
the first void t₁ and every Δ after it (``data/urinary_bladder.toml``: Δ = 3.5 h, the interval
of the ICRP Publication 53/80/106 dose coefficients, READ in the SNMMI guideline table quoting
ICRP 80; t₁ = Δ, ASSUMED). With U(t) the cumulative fraction of the administered activity
excreted in urine by t, corrected for decay (a fraction of the administered atoms), the
contents hold between voids v_k ≤ t < v_{k+1}

    q(t)/A₀ = e^(−λt) · [U(t) − U(v_k)],

λ the physical decay constant, so Ã_C/A₀ = Σ_k ∫_{v_k}^{v_{k+1}} q(t)/A₀ dt, each interval in
closed form:

* **Exponential excretion** U(t) = Σ_j f_j (1 − e^(−λ_j t)) (fraction f_j with biological
  half-time T_j = ln 2/λ_j): with κ_j = λ + λ_j, the first interval gives
  f_j [(1 − e^(−λt₁))/λ − (1 − e^(−κ_j t₁))/κ_j] and the later ones a geometric series of ratio
  e^(−κ_j Δ), summed exactly:
  f_j e^(−κ_j t₁) [(1 − e^(−λΔ))/λ − (1 − e^(−κ_j Δ))/κ_j] / (1 − e^(−κ_j Δ)).
  Without voiding (t₁ → ∞) this is f_j λ_j/(λ κ_j), the contents of a bladder never emptied.
* **A sampled curve** U(tᵢ) (e.g. the urinary output of a pharmacokinetic model): U linear
  between samples, from U(0) = 0 and constant after the last sample (no input after it); each
  linear piece between sample and void times is integrated exactly.

Physical decay only acts in the bladder (the urine is not reabsorbed); the volume of the
contents is the fixed reference volume of the dose model (:mod:`._mird`), not followed with
filling and emptying (the dynamic model of MIRD Pamphlet No. 14 revised, Thomas et al., J Nucl
Med 1999;40:102S, does). The comparison with published FDG bladder-wall doses is in
``tests/validation/test_fdg_dose.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

import numpy as np

from immunopet.data import read_toml
from immunopet.errors import InputError, TimingError
from immunopet.units import S_PER_HOUR

__all__ = [
    "bladder_contents_tiac_from_curve_s",
    "bladder_contents_tiac_s",
    "default_voiding_schedule_s",
]

_TABLE = "urinary_bladder.toml"
#: Below this λh the segment integral uses its series (avoids cancellation).
_SERIES_LIMIT = 1.0e-4


@cache
def default_voiding_schedule_s() -> tuple[float, float]:
    """Reference voiding interval and first-void time, s (``data/urinary_bladder.toml``).

    Examples
    --------
    >>> default_voiding_schedule_s()  # 3.5 h, first void 3.5 h after administration
    (12600.0, 12600.0)

    """
    table = read_toml(_TABLE)["voiding"]
    return (
        float(table["interval_h"]["value"]) * S_PER_HOUR,
        float(table["first_void_h"]["value"]) * S_PER_HOUR,
    )


def _schedule(voiding_interval_s: float | None, first_void_s: float | None) -> tuple[float, float]:
    interval_default, first_default = default_voiding_schedule_s()
    interval = interval_default if voiding_interval_s is None else float(voiding_interval_s)
    if first_void_s is None:
        first = first_default if voiding_interval_s is None else interval
    else:
        first = float(first_void_s)
    if not (math.isfinite(interval) and interval > 0.0):
        raise TimingError(
            f"voiding_interval_s must be a positive number of seconds, got {voiding_interval_s!r}",
            field="voiding_interval_s",
        )
    if not (math.isfinite(first) and first > 0.0):
        raise TimingError(
            f"first_void_s must be a positive number of seconds, got {first_void_s!r}",
            field="first_void_s",
        )
    return interval, first


def _decay_constant_per_s(half_life_s: float) -> float:
    if not (math.isfinite(half_life_s) and half_life_s > 0.0):
        raise TimingError(
            f"half_life_s must be a positive number of seconds, got {half_life_s!r}",
            field="half_life_s",
        )
    return math.log(2.0) / half_life_s


def _decayed_integral(rate_per_s: float, duration_s: float) -> float:
    """∫₀^h e^(−λt) dt = (1 − e^(−λh))/λ."""
    return -math.expm1(-rate_per_s * duration_s) / rate_per_s


def bladder_contents_tiac_s(
    urine_fraction: float | Sequence[float],
    excretion_half_time_s: float | Sequence[float],
    *,
    half_life_s: float,
    voiding_interval_s: float | None = None,
    first_void_s: float | None = None,
) -> float:
    """Ã/A₀ of the bladder contents for exponential urinary excretion and regular voiding.

    Closed form per voiding interval, summed exactly (module docstring).

    Parameters
    ----------
    urine_fraction : float or sequence of float, shape (J,)
        Fraction f_j of the administered activity excreted in urine by each component (decay
        corrected; Σ f_j ≤ 1).
    excretion_half_time_s : float or sequence of float, shape (J,)
        Biological half-time T_j of each component's excretion, s (> 0).
    half_life_s : float
        Physical half-life of the nuclide, s.
    voiding_interval_s : float, optional
        Time between voids Δ, s. Default ``data/urinary_bladder.toml`` (3.5 h).
    first_void_s : float, optional
        Time of the first void after administration, s. Default: the data file's (3.5 h), or
        Δ when only ``voiding_interval_s`` is given.

    Returns
    -------
    float
        Time-integrated activity coefficient of the contents, s (Bq·s per Bq administered).

    Raises
    ------
    InputError
        If the fractions and half-times differ in number or a fraction is outside [0, 1].
    TimingError
        If a half-life, half-time or voiding time is not a positive number of seconds.

    Examples
    --------
    [¹⁸F]FDG, 20 % excreted with a 70 min half-time, voided every 3.5 h (hours):

    >>> round(bladder_contents_tiac_s(0.20, 70 * 60.0, half_life_s=6586.2) / 3600.0, 4)
    0.1955

    A bladder never emptied holds f·λ_u/(λ·(λ + λ_u)) = 0.3223 h:

    >>> never = bladder_contents_tiac_s(0.20, 4200.0, half_life_s=6586.2, voiding_interval_s=1e9)
    >>> round(never / 3600.0, 4)
    0.3223

    """
    fractions = np.atleast_1d(np.asarray(urine_fraction, dtype=float))
    half_times = np.atleast_1d(np.asarray(excretion_half_time_s, dtype=float))
    if fractions.ndim != 1 or fractions.shape != half_times.shape:
        raise InputError(
            f"urine_fraction and excretion_half_time_s must match, got {fractions.shape} and "
            f"{half_times.shape}",
            field="urine_fraction",
        )
    if not np.all(np.isfinite(fractions)) or np.any(fractions < 0.0) or fractions.sum() > 1.0:
        raise InputError(
            f"urine fractions must be ≥ 0 and sum to ≤ 1, got {fractions.tolist()}",
            field="urine_fraction",
        )
    if not np.all(np.isfinite(half_times)) or np.any(half_times <= 0.0):
        raise TimingError(
            f"excretion half-times must be positive numbers of seconds, got {half_times.tolist()}",
            field="excretion_half_time_s",
        )
    physical = _decay_constant_per_s(half_life_s)
    interval, first = _schedule(voiding_interval_s, first_void_s)
    total = 0.0
    for fraction, half_time in zip(fractions.tolist(), half_times.tolist(), strict=True):
        kappa = physical + math.log(2.0) / half_time
        first_interval = _decayed_integral(physical, first) - _decayed_integral(kappa, first)
        later = (
            math.exp(-kappa * first)
            * (_decayed_integral(physical, interval) - _decayed_integral(kappa, interval))
            / -math.expm1(-kappa * interval)
        )
        total += fraction * (first_interval + later)
    return total


def _linear_piece_integral(
    rate_per_s: float, start_s: np.ndarray, end_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """∫ e^(−λt) dt and ∫ (t − a) e^(−λt) dt over [a, b], element-wise."""
    length = end_s - start_s
    x = rate_per_s * length
    decay = np.exp(-rate_per_s * start_s)
    constant = decay * -np.expm1(-x) / rate_per_s
    small = x < _SERIES_LIMIT
    # 1 − e^(−x)(1 + x) = x²/2 − x³/3 + x⁴/8 − …
    ramp_factor = np.where(
        small,
        x**2 / 2.0 - x**3 / 3.0 + x**4 / 8.0,
        -np.expm1(-x) - x * np.exp(-x),
    )
    ramp = decay * ramp_factor / rate_per_s**2
    return constant, ramp


def bladder_contents_tiac_from_curve_s(
    times_s: Sequence[float] | np.ndarray,
    cumulative_urine_fraction: Sequence[float] | np.ndarray,
    *,
    half_life_s: float,
    voiding_interval_s: float | None = None,
    first_void_s: float | None = None,
) -> float:
    """Ã/A₀ of the bladder contents for a sampled cumulative urinary excretion.

    U is linear between the samples, starts from U(0) = 0 and stays at its last value after
    the last sample (no more input); the contents are integrated until the first void after
    the last sample, piece by piece in closed form (module docstring).

    Parameters
    ----------
    times_s : sequence of float, shape (N,)
        Times after administration, s; strictly increasing, ≥ 0.
    cumulative_urine_fraction : sequence of float, shape (N,)
        Decay-corrected fraction of the administered activity excreted in urine by each time;
        non-decreasing, in [0, 1].
    half_life_s : float
        Physical half-life of the nuclide, s.
    voiding_interval_s, first_void_s : float, optional
        Voiding schedule, s (defaults as :func:`bladder_contents_tiac_s`).

    Returns
    -------
    float
        Time-integrated activity coefficient of the contents, s.

    Raises
    ------
    InputError
        If the arrays differ in length, are empty, or U is not a non-decreasing fraction.
    TimingError
        If the times are not increasing and ≥ 0, or a half-life or voiding time is not positive.

    Examples
    --------
    Half the activity excreted at once at t = 0 (a step, sampled at 0 and 1 s), voided after
    1 h: the contents decay for an hour, Ã/A₀ = 0.5·(1 − e^(−λ·1 h))/λ:

    >>> tiac = bladder_contents_tiac_from_curve_s(
    ...     [1e-9, 1.0], [0.5, 0.5], half_life_s=6586.2, voiding_interval_s=3600.0
    ... )
    >>> round(tiac / 3600.0, 4)
    0.4162

    """
    times = np.asarray(times_s, dtype=float)
    cumulative = np.asarray(cumulative_urine_fraction, dtype=float)
    if times.ndim != 1 or times.shape != cumulative.shape or times.size == 0:
        raise InputError(
            f"times_s and cumulative_urine_fraction must be 1-D and of equal non-zero length, "
            f"got {times.shape} and {cumulative.shape}",
            field="cumulative_urine_fraction",
        )
    if not np.all(np.isfinite(times)) or times[0] < 0.0 or np.any(np.diff(times) <= 0.0):
        raise TimingError(
            "times_s must be finite, non-negative and strictly increasing",
            field="times_s",
            hint=f"got {times.tolist()}",
        )
    if (
        not np.all(np.isfinite(cumulative))
        or np.any(cumulative < 0.0)
        or np.any(cumulative > 1.0)
        or np.any(np.diff(cumulative) < 0.0)
    ):
        raise InputError(
            "cumulative_urine_fraction must be a non-decreasing fraction in [0, 1]",
            field="cumulative_urine_fraction",
            hint=f"got {cumulative.tolist()}",
        )
    physical = _decay_constant_per_s(half_life_s)
    interval, first = _schedule(voiding_interval_s, first_void_s)
    if times[0] > 0.0:
        times = np.concatenate(([0.0], times))
        cumulative = np.concatenate(([0.0], cumulative))
    last_s = float(times[-1])
    n_later = max(0, math.ceil((last_s - first) / interval))
    voids = np.concatenate(([0.0], first + interval * np.arange(n_later + 1)))
    knots = np.unique(np.concatenate((times, voids)))
    knots = knots[knots <= voids[-1]]
    start, end = knots[:-1], knots[1:]
    at_start = np.interp(start, times, cumulative)
    slope = (np.interp(end, times, cumulative) - at_start) / (end - start)
    last_void = voids[np.searchsorted(voids, start, side="right") - 1]
    emptied = np.interp(last_void, times, cumulative)
    constant, ramp = _linear_piece_integral(physical, start, end)
    return float(np.sum((at_start - emptied) * constant + slope * ramp))
