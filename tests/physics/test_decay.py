"""Decay arithmetic: published fixtures, composition and inversion (property tests)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunopet.errors import TimingError
from immunopet.physics import (
    decay_correction_factor,
    decay_factor,
    decay_factor_between,
    frame_average_decay_factor,
    frame_effective_offset_s,
    nuclide,
)

# Remaining fractions computed with radioactivedecay 0.6.1 (ICRP-107),
# shared/reference/DOMAIN_NUMBERS.md §1.2.
PUBLISHED_REMAINING = [
    ("F-18", 60 * 60, 0.684633),
    ("Zr-89", 72 * 3600, 0.529150),
    ("Zr-89", 144 * 3600, 0.280000),
    ("Zr-89", 168 * 3600, 0.226474),
    ("Ga-68", 60 * 60, 0.541063),
    ("Cu-64", 24 * 3600, 0.269851),
    ("I-124", 96 * 3600, 0.514822),
    ("In-111", 48 * 3600, 0.610013),
    ("Lu-177", 168 * 3600, 0.481929),
    ("Tc-99m", 6 * 3600, 0.500865),
]


@pytest.mark.parametrize(("name", "seconds", "expected"), PUBLISHED_REMAINING)
def test_remaining_fraction_matches_reference_table(
    name: str, seconds: float, expected: float
) -> None:
    assert decay_factor(nuclide(name).half_life_s, seconds) == pytest.approx(expected, abs=1e-6)


def test_correction_factor_between_datetimes_across_days() -> None:
    # Zr-89 scanned 72 h after injection: correction back to injection 1.889822 (DOMAIN_NUMBERS §1.2).
    injection = datetime(2026, 3, 2, 9, 0)
    scan = injection + timedelta(hours=72)
    factor = decay_correction_factor(nuclide("Zr-89").half_life_s, scan, injection)
    assert factor == pytest.approx(1.889822, abs=1e-6)


half_lives = st.floats(min_value=1.0, max_value=1.0e9, allow_nan=False)
# Elapsed times as multiples of the half-life, within what a double can hold (±1000 T½).
multiples = st.floats(min_value=-400.0, max_value=400.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(half_lives, multiples, multiples)
def test_decay_composes(half_life_s: float, m1: float, m2: float) -> None:
    t1, t2 = m1 * half_life_s, m2 * half_life_s
    combined = decay_factor(half_life_s, t1 + t2)
    assert decay_factor(half_life_s, t1) * decay_factor(half_life_s, t2) == pytest.approx(
        combined, rel=1e-9
    )


@settings(max_examples=200, deadline=None)
@given(half_lives, multiples)
def test_correction_inverts_decay(half_life_s: float, multiple: float) -> None:
    seconds = min(max(multiple * half_life_s, -1.0e9), 1.0e9)  # within datetime's range
    start = datetime(2026, 1, 1)
    end = start + timedelta(seconds=seconds)
    forward = decay_factor_between(half_life_s, start, end)
    back = decay_correction_factor(half_life_s, end, start)
    assert forward * back == pytest.approx(1.0, rel=1e-12)


def test_frame_average_matches_numerical_integral() -> None:
    half_life_s, duration_s = 6586.2, 1800.0
    steps = 200_000
    lam = math.log(2) / half_life_s
    mean = sum(math.exp(-lam * (i + 0.5) * duration_s / steps) for i in range(steps)) / steps
    assert frame_average_decay_factor(half_life_s, duration_s) == pytest.approx(mean, rel=1e-9)
    offset = frame_effective_offset_s(half_life_s, duration_s)
    assert math.exp(-lam * offset) == pytest.approx(mean, rel=1e-12)
    assert 0.0 < offset < duration_s / 2  # decay skews the effective time towards the frame start


def test_zero_length_frame_and_bad_inputs() -> None:
    assert frame_average_decay_factor(100.0, 0.0) == 1.0
    with pytest.raises(TimingError):
        frame_average_decay_factor(100.0, -1.0)
    with pytest.raises(TimingError):
        decay_factor(0.0, 1.0)
    with pytest.raises(TimingError, match="half-lives"):
        decay_factor(1.0, 1.0e6)  # a million half-lives: dates are wrong


def test_mixing_aware_and_naive_datetimes_is_refused() -> None:
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(TimingError, match="time-zone"):
        decay_factor_between(100.0, datetime(2026, 1, 1), aware)


def test_elapsed_time_across_a_daylight_saving_change() -> None:
    # Europe/Amsterdam moved from UTC+1 to UTC+2 on 2026-03-29: 09:00 to 09:00 four days later
    # is 95 h of decay, not 96 h.
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Amsterdam")
    injection = datetime(2026, 3, 27, 9, 0, tzinfo=zone)
    scan = datetime(2026, 3, 31, 9, 0, tzinfo=zone)
    half_life = nuclide("Zr-89").half_life_s
    assert decay_factor_between(half_life, injection, scan) == pytest.approx(
        2 ** (-95 * 3600 / half_life), rel=1e-12
    )
