"""Urinary bladder contents: voiding model and the contents source of the MIRD engine.

Expected values come from a brute-force time-stepped bladder (input, decay, voids: not the
closed form under test), from Monte Carlo photon paths, from analytic limits, or from the
invariants of the engine's module docstring (uniform activity, energy bookkeeping, the ICRP 30
surface convention for the wall).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunopet.dosimetry import (
    REST_OF_BODY,
    URINARY_BLADDER_CONTENTS,
    absorbed_doses_gy,
    bladder_contents_tiac_from_curve_s,
    bladder_contents_tiac_s,
    default_voiding_schedule_s,
    effective_dose_tissues,
    energy_per_decay,
    estimate_dose,
    reference_phantom,
    shell_absorbed_fraction,
    sphere_absorbed_fraction,
)
from immunopet.dosimetry._effective import SEXES
from immunopet.errors import InputError, TimingError
from phantoms import HALF_LIFE_S, path_to_sphere_surface

F18_S = HALF_LIFE_S["F-18"]
HOUR = 3600.0
WALL = "urinary_bladder"


def _stepped_contents_tiac_s(
    fractions: list[float],
    half_times_s: list[float],
    half_life_s: float,
    first_void_s: float,
    interval_s: float,
    horizon_s: float = 30.0 * HOUR,
    step_s: float = 2.0,
) -> float:
    """Bladder filled step by step (midpoint input, exact decay), emptied at each void."""
    physical = math.log(2.0) / half_life_s
    rates = [math.log(2.0) / t for t in half_times_s]
    decay = math.exp(-physical * step_s)
    content, total, time = 0.0, 0.0, 0.0
    next_void = first_void_s
    for _ in range(round(horizon_s / step_s)):
        middle = time + 0.5 * step_s
        arriving = sum(
            f * k * math.exp(-(k + physical) * middle)
            for f, k in zip(fractions, rates, strict=True)
        )
        before = content
        content = content * decay + arriving * step_s * math.exp(-physical * 0.5 * step_s)
        total += 0.5 * (before + content) * step_s
        time += step_s
        if time >= next_void - 1e-9:
            content = 0.0
            next_void += interval_s
    return total


# ---------------------------------------------------------------- voiding model


@pytest.mark.parametrize(
    ("fractions", "half_times_h", "first_h", "interval_h"),
    [
        ([0.20], [70.0 / 60.0], 3.5, 3.5),  # FDG-like, ICRP schedule
        ([0.20], [70.0 / 60.0], 0.75, 3.75),  # Kamp 2023 schedule
        ([0.5, 0.3], [0.3, 4.0], 1.0, 2.0),  # two components
    ],
)
def test_closed_form_matches_a_stepped_bladder(
    fractions: list[float], half_times_h: list[float], first_h: float, interval_h: float
) -> None:
    half_times_s = [h * HOUR for h in half_times_h]
    closed = bladder_contents_tiac_s(
        fractions,
        half_times_s,
        half_life_s=F18_S,
        voiding_interval_s=interval_h * HOUR,
        first_void_s=first_h * HOUR,
    )
    stepped = _stepped_contents_tiac_s(
        fractions, half_times_s, F18_S, first_h * HOUR, interval_h * HOUR
    )
    assert closed == pytest.approx(stepped, rel=2e-4)


def test_limits_of_the_voiding_model() -> None:
    physical = math.log(2.0) / F18_S
    urine = math.log(2.0) / (70.0 * 60.0)
    never = bladder_contents_tiac_s(0.2, 4200.0, half_life_s=F18_S, voiding_interval_s=1e12)
    assert never == pytest.approx(0.2 * urine / (physical * (physical + urine)), rel=1e-9)
    # Voided every second: almost nothing stays (mean content ≈ input rate × 0.5 s).
    often = bladder_contents_tiac_s(0.2, 4200.0, half_life_s=F18_S, voiding_interval_s=1.0)
    assert often < 1e-3 * never
    assert bladder_contents_tiac_s(0.0, 4200.0, half_life_s=F18_S) == 0.0
    # Two components = the sum of each alone (linearity).
    both = bladder_contents_tiac_s([0.1, 0.2], [1000.0, 9000.0], half_life_s=F18_S)
    alone = bladder_contents_tiac_s(0.1, 1000.0, half_life_s=F18_S) + bladder_contents_tiac_s(
        0.2, 9000.0, half_life_s=F18_S
    )
    assert both == pytest.approx(alone, rel=1e-12)


def test_reference_schedule_is_the_icrp_3_5_hours() -> None:
    interval_s, first_s = default_voiding_schedule_s()
    assert interval_s == pytest.approx(3.5 * HOUR)
    assert first_s == pytest.approx(3.5 * HOUR)
    default = bladder_contents_tiac_s(0.2, 4200.0, half_life_s=F18_S)
    explicit = bladder_contents_tiac_s(
        0.2, 4200.0, half_life_s=F18_S, voiding_interval_s=3.5 * HOUR, first_void_s=3.5 * HOUR
    )
    assert default == explicit
    # FDG (20 %, 70 min, ¹⁸F): hand value 0.2·[(1 − e^(−λ·3.5 h))/λ − (1 − e^(−κ·3.5 h))/κ]
    # = 0.1890 h for the first interval, plus 0.0065 h after it.
    assert default / HOUR == pytest.approx(0.1955, abs=1e-4)


def test_sampled_curve_reproduces_the_closed_form() -> None:
    times_s = np.linspace(0.0, 40.0 * HOUR, 12001)
    urine = math.log(2.0) / 4200.0
    cumulative = 0.2 * -np.expm1(-urine * times_s)
    sampled = bladder_contents_tiac_from_curve_s(times_s, cumulative, half_life_s=F18_S)
    closed = bladder_contents_tiac_s(0.2, 4200.0, half_life_s=F18_S)
    assert sampled == pytest.approx(closed, rel=1e-5)


def test_sampled_curve_is_exact_for_piecewise_linear_input() -> None:
    """Constant input rate r between 0 and 2 h, voided at 1.5 h and 3 h (hand integral)."""
    physical = math.log(2.0) / F18_S
    rate = 0.1 / (2.0 * HOUR)  # fraction per s
    tiac = bladder_contents_tiac_from_curve_s(
        [2.0 * HOUR], [0.1], half_life_s=F18_S, voiding_interval_s=1.5 * HOUR
    )

    def ramp(a: float, b: float) -> float:  # ∫_a^b (t − a) e^(−λt) dt
        x = physical * (b - a)
        return math.exp(-physical * a) * (1.0 - math.exp(-x) * (1.0 + x)) / physical**2

    def flat(a: float, b: float) -> float:  # ∫_a^b e^(−λt) dt
        return (math.exp(-physical * a) - math.exp(-physical * b)) / physical

    first = rate * ramp(0.0, 1.5 * HOUR)
    second = rate * ramp(1.5 * HOUR, 2.0 * HOUR) + rate * 0.5 * HOUR * flat(2.0 * HOUR, 3.0 * HOUR)
    assert tiac == pytest.approx(first + second, rel=1e-9)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: bladder_contents_tiac_s(1.2, 4200.0, half_life_s=F18_S), InputError),
        (lambda: bladder_contents_tiac_s([0.1, 0.1], [1.0], half_life_s=F18_S), InputError),
        (lambda: bladder_contents_tiac_s(0.1, 0.0, half_life_s=F18_S), TimingError),
        (lambda: bladder_contents_tiac_s(0.1, 1.0, half_life_s=-1.0), TimingError),
        (
            lambda: bladder_contents_tiac_s(0.1, 1.0, half_life_s=F18_S, voiding_interval_s=0.0),
            TimingError,
        ),
        (
            lambda: bladder_contents_tiac_from_curve_s([0.0, 1.0], [0.2, 0.1], half_life_s=F18_S),
            InputError,
        ),
        (
            lambda: bladder_contents_tiac_from_curve_s([1.0, 1.0], [0.1, 0.2], half_life_s=F18_S),
            TimingError,
        ),
    ],
)
def test_bad_inputs_are_refused(call: object, error: type[Exception]) -> None:
    assert callable(call)
    with pytest.raises(error):
        call()


# ---------------------------------------------------------------- wall shell photons


@pytest.mark.parametrize(("tau", "outer"), [(0.12, 1.077), (0.3, 1.2), (3.0, 1.5)])
def test_shell_absorbed_fraction_matches_monte_carlo(tau: float, outer: float) -> None:
    n = 200_000
    to_inner = path_to_sphere_surface(np.random.default_rng(20262), n)
    to_outer = path_to_sphere_surface(np.random.default_rng(20262), n, outer)
    absorbed = np.exp(-tau * to_inner) - np.exp(-tau * to_outer)
    expected, error = absorbed.mean(), absorbed.std() / math.sqrt(n)
    assert shell_absorbed_fraction(tau, 1.0, outer) == pytest.approx(expected, abs=4 * error)


def test_shell_absorbed_fraction_limits() -> None:
    # Thin shell, thin sphere: (3/2)·μt.
    assert shell_absorbed_fraction(1e-3, 1.0, 1.001) == pytest.approx(1.5e-6, rel=0.01)
    assert shell_absorbed_fraction(0.5, 2.0, 2.0) == 0.0
    # A thick shell takes all that escapes the sphere: φ_sphere + φ_shell → 1.
    total = sphere_absorbed_fraction(0.5, 2.0) + shell_absorbed_fraction(0.5, 2.0, 60.0)
    assert total == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(InputError):
        shell_absorbed_fraction(0.1, 2.0, 1.0)


# ---------------------------------------------------------------- contents in the MIRD engine


def test_uniform_activity_with_contents_is_uniform_except_the_wall_surface_term() -> None:
    """Every tissue gets the uniform dose; the wall in addition 0.5·c·E_np (ICRP 30)."""
    total_bq_s = 1.0e13
    for sex in SEXES:
        phantom = reference_phantom(sex)
        contents_bq_s = total_bq_s * phantom.bladder_contents_g / phantom.total_body_g
        doses = absorbed_doses_gy(
            {URINARY_BLADDER_CONTENTS: contents_bq_s, REST_OF_BODY: total_bq_s - contents_bq_s},
            "F-18",
            sex=sex,
        )
        uniform = absorbed_doses_gy({REST_OF_BODY: total_bq_s}, "F-18", sex=sex)["total_body"]
        for tissue in effective_dose_tissues(sex):
            if tissue != WALL:
                assert doses[tissue] == pytest.approx(uniform, rel=1e-9), tissue
        body_kg = phantom.total_body_g / 1000.0
        surface = 0.5 * energy_per_decay("F-18").non_penetrating_j * total_bq_s / body_kg
        assert doses[WALL] == pytest.approx(uniform + surface, rel=1e-9)
        assert URINARY_BLADDER_CONTENTS not in doses  # not a tissue


def test_energy_from_the_contents_is_the_body_share_plus_the_surface_convention() -> None:
    tia_bq_s = 1.0e12
    phantom = reference_phantom("male")
    body_kg = phantom.total_body_g / 1000.0
    contents = absorbed_doses_gy({URINARY_BLADDER_CONTENTS: tia_bq_s}, "F-18", sex="male")
    uniform = absorbed_doses_gy({REST_OF_BODY: tia_bq_s}, "F-18", sex="male")
    excess_j = (
        0.5
        * energy_per_decay("F-18").non_penetrating_j
        * tia_bq_s
        * phantom.region_mass_g[WALL]
        / phantom.bladder_contents_g
    )
    absorbed_j = contents["total_body"] * body_kg
    assert absorbed_j == pytest.approx(uniform["total_body"] * body_kg + excess_j, rel=1e-9)


def test_electrons_of_the_contents_give_the_wall_half_their_equilibrium_dose() -> None:
    """Y-90 (β−, photon yield ~0): wall dose = 0.5·Ã·E_β/m_contents."""
    tia_bq_s = 1.0e12
    phantom = reference_phantom("female")
    doses = absorbed_doses_gy({URINARY_BLADDER_CONTENTS: tia_bq_s}, "Y-90", sex="female")
    expected = 0.5 * tia_bq_s * energy_per_decay("Y-90").non_penetrating_j
    assert doses[WALL] == pytest.approx(expected / (phantom.bladder_contents_g / 1000.0), rel=1e-3)
    assert doses["muscle"] < 1e-3 * doses[WALL]


def test_photons_of_the_contents_reach_the_wall_through_its_shell() -> None:
    """F-18 wall S-value from the contents: electrons 0.5/m_C plus the shell photon fraction."""
    phantom = reference_phantom("male")
    energy = energy_per_decay("F-18")
    doses = absorbed_doses_gy({URINARY_BLADDER_CONTENTS: 1.0}, "F-18", sex="male")
    electrons_gy = 0.5 * energy.non_penetrating_j / (phantom.bladder_contents_g / 1000.0)
    photons_gy = doses[WALL] - electrons_gy
    # 511 keV: μ_en/ρ = 0.0327 cm²/g (NIST, soft tissue); 200 mL inside 250 mL.
    inner_cm = (3.0 * 200.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    outer_cm = (3.0 * 250.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    fraction = shell_absorbed_fraction(0.0327, inner_cm, outer_cm)
    expected_gy = energy.penetrating_j * fraction / (phantom.region_mass_g[WALL] / 1000.0)
    assert photons_gy == pytest.approx(expected_gy, rel=0.02)  # 0.0327 vs the interpolated μ_en
    # The photon part is a fifth of the wall dose from the contents for ¹⁸F.
    assert 0.15 < photons_gy / doses[WALL] < 0.30


def test_an_explicit_wall_source_at_the_rest_of_body_concentration_changes_nothing() -> None:
    phantom = reference_phantom("male")
    rest_bq_s, contents_bq_s = 5.0e12, 1.0e11
    implicit = absorbed_doses_gy(
        {URINARY_BLADDER_CONTENTS: contents_bq_s, REST_OF_BODY: rest_bq_s}, "Zr-89", sex="male"
    )
    rest_g = phantom.total_body_g - phantom.bladder_contents_g
    wall_bq_s = rest_bq_s * phantom.region_mass_g[WALL] / rest_g
    explicit = absorbed_doses_gy(
        {
            URINARY_BLADDER_CONTENTS: contents_bq_s,
            WALL: wall_bq_s,
            REST_OF_BODY: rest_bq_s - wall_bq_s,
        },
        "Zr-89",
        sex="male",
    )
    for tissue, dose in implicit.items():
        assert explicit[tissue] == pytest.approx(dose, rel=1e-12), tissue


def test_contents_are_never_the_highest_dose_organ_and_are_accepted_by_the_estimate() -> None:
    estimate = estimate_dose({URINARY_BLADDER_CONTENTS: 1.0e11, REST_OF_BODY: 1.0e11}, "F-18")
    assert estimate.highest_dose_organ == WALL
    assert URINARY_BLADDER_CONTENTS not in estimate.organ_doses_gy
