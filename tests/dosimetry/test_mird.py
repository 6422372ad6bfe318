"""Dosimetry invariants: time integration, energy bookkeeping, absorbed fractions, linearity.

Expected values are computed here from literals (ICRP-107 half-lives in tests/phantoms.py, the
CODATA electron volt) or from the raw ICRP-107 record, never from the engine under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunopet.dosimetry import (
    REST_OF_BODY,
    absorbed_doses_gy,
    dose_budget,
    effective_dose_sv,
    effective_dose_tissues,
    energy_per_decay,
    estimate_dose,
    published_doses,
    reference_phantom,
    sex_averaged_effective_dose_sv,
    sphere_absorbed_fraction,
    time_integrated_activity_bq_s,
    tissue_weights,
)
from immunopet.dosimetry._effective import SEXES, Sex
from immunopet.errors import InputError, NuclideError, TimingError
from immunopet.physics._nuclides import _icrp107_record
from phantoms import HALF_LIFE_S, path_to_sphere_surface

J_PER_MEV = 1.602176634e-13  # CODATA 2018, exact
ZR89_S = HALF_LIFE_S["Zr-89"]
LAMBDA_ZR89_PER_S = math.log(2.0) / ZR89_S

# ---------------------------------------------------------------- time-integrated activity


def test_trapezoid_plus_physical_tail_equals_analytic_integral() -> None:
    a0_bq = 37.0e6
    times_s = np.linspace(0.0, 2.0 * ZR89_S, 400)
    activity_bq = a0_bq * np.exp(-LAMBDA_ZR89_PER_S * times_s)
    tia = time_integrated_activity_bq_s(times_s, activity_bq, half_life_s=ZR89_S)
    assert tia == pytest.approx(a0_bq / LAMBDA_ZR89_PER_S, rel=1e-5)


def test_exponential_tail_follows_biological_clearance() -> None:
    a0_bq = 1.0e6
    effective_per_s = LAMBDA_ZR89_PER_S + math.log(2.0) / (370.0 * 3600.0)
    times_s = np.linspace(0.0, 7.0 * 86400.0, 600)
    activity_bq = a0_bq * np.exp(-effective_per_s * times_s)
    exact = a0_bq / effective_per_s
    fitted = time_integrated_activity_bq_s(
        times_s, activity_bq, half_life_s=ZR89_S, tail="exponential"
    )
    physical = time_integrated_activity_bq_s(times_s, activity_bq, half_life_s=ZR89_S)
    assert fitted == pytest.approx(exact, rel=1e-4)
    assert physical > exact  # physical decay only after the last point: conservative


def test_head_assumptions_before_the_first_sample() -> None:
    times_s, activity_bq = [3600.0, 7200.0], [10.0, 10.0]
    constant = time_integrated_activity_bq_s(times_s, activity_bq, half_life_s=1.0, tail="none")
    linear = time_integrated_activity_bq_s(
        times_s, activity_bq, half_life_s=1.0, tail="none", head="linear"
    )
    assert constant == pytest.approx(10.0 * 7200.0)
    assert linear == pytest.approx(10.0 * 3600.0 / 2 + 10.0 * 3600.0)


def test_exponential_tail_never_slower_than_physical_decay() -> None:
    # Rising last two points: fall back to physical decay.
    tia = time_integrated_activity_bq_s(
        [0.0, 3600.0], [1.0, 2.0], half_life_s=ZR89_S, tail="exponential", head="linear"
    )
    assert tia == pytest.approx(1.5 * 3600.0 + 2.0 / LAMBDA_ZR89_PER_S)


@pytest.mark.parametrize(
    ("times_s", "activity_bq", "error"),
    [
        ([0.0, 0.0], [1.0, 1.0], TimingError),
        ([1.0, 0.5], [1.0, 1.0], TimingError),
        ([-1.0], [1.0], TimingError),
        ([0.0, 1.0], [1.0], InputError),
        ([], [], InputError),
        ([0.0], [-1.0], InputError),
        ([0.0], [float("nan")], InputError),
    ],
)
def test_bad_curves_are_refused(
    times_s: list[float], activity_bq: list[float], error: type[Exception]
) -> None:
    with pytest.raises(error):
        time_integrated_activity_bq_s(times_s, activity_bq, half_life_s=ZR89_S)


# ---------------------------------------------------------------- energy per decay


@pytest.mark.parametrize(
    "name", ["Zr-89", "F-18", "Cu-64", "Y-90", "I-124", "I-131", "In-111", "Tc-99m", "Lu-177"]
)
def test_non_penetrating_plus_penetrating_is_the_record_total(name: str) -> None:
    emissions = _icrp107_record(name)["emissions"]
    total_j = J_PER_MEV * sum(
        e * y for kind, rows in emissions.items() if kind != "b-spectra" for e, y in rows
    )
    photons_j = J_PER_MEV * sum(
        e * y for kind in ("gamma", "X", "annihilation") for e, y in emissions[kind]
    )
    energy = energy_per_decay(name)
    assert energy.non_penetrating_j + energy.penetrating_j == pytest.approx(total_j, rel=1e-12)
    assert energy.total_j == pytest.approx(total_j, rel=1e-12)
    lines_j = sum(line.energy_kev * line.yield_per_decay for line in energy.photon_lines)
    assert lines_j * J_PER_MEV / 1000.0 == pytest.approx(photons_j, rel=1e-12)
    assert energy.penetrating_j == pytest.approx(photons_j, rel=1e-12)


def test_zr89_positron_kinetic_energy_is_non_penetrating() -> None:
    # ICRP-107: 0.22741 β+ per decay, mean 395.5 keV (DOMAIN_NUMBERS §1.1).
    energy = energy_per_decay("zr89")
    assert energy.by_kind_j["beta+"] == pytest.approx(0.22741 * 0.3955 * J_PER_MEV, rel=1e-3)
    assert energy.by_kind_j["annihilation"] == pytest.approx(0.4548 * 0.511 * J_PER_MEV, rel=1e-3)
    assert energy.non_penetrating_j < 0.1 * energy.penetrating_j


def test_alpha_emitters_are_refused_by_the_dose_model() -> None:
    assert energy_per_decay("Ac-225").high_let_j > 0.0
    with pytest.raises(NuclideError, match="α"):
        absorbed_doses_gy({REST_OF_BODY: 1.0}, "Ac-225", sex="male")


# ---------------------------------------------------------------- absorbed fractions


@pytest.mark.parametrize("tau", [0.005, 0.3, 1.0, 3.0])
def test_sphere_absorbed_fraction_matches_monte_carlo(tau: float) -> None:
    n = 200_000
    # Uniform points in the unit sphere, isotropic directions, distance to the surface.
    distance = path_to_sphere_surface(np.random.default_rng(20261), n)
    absorbed = 1.0 - np.exp(-tau * distance)
    expected, error = absorbed.mean(), absorbed.std() / math.sqrt(n)
    assert sphere_absorbed_fraction(tau, 1.0) == pytest.approx(expected, abs=4 * error + 1e-6)


def test_sphere_absorbed_fraction_limits() -> None:
    assert sphere_absorbed_fraction(0.0, 10.0) == 0.0
    assert sphere_absorbed_fraction(1e-6, 1.0) == pytest.approx(0.75e-6, rel=1e-5)
    # Thick sphere: P_esc → 3/(4τ) − 3/(8τ³) (e^(−2τ) negligible).
    tau = 100.0
    thick = 1.0 - 3.0 / (4.0 * tau) + 3.0 / (8.0 * tau**3)
    assert sphere_absorbed_fraction(tau, 1.0) == pytest.approx(thick, rel=1e-12)
    # The series and the closed form meet without a jump.
    below = sphere_absorbed_fraction(0.0099999, 1.0)
    above = sphere_absorbed_fraction(0.0100001, 1.0)
    assert above == pytest.approx(below, rel=1e-4)


# ---------------------------------------------------------------- MIRD model


def _trastuzumab_like_tia(scale: float = 1.0) -> dict[str, float]:
    whole_body = scale / (LAMBDA_ZR89_PER_S + math.log(2.0) / (370.0 * 3600.0))
    liver = 0.12 * scale / LAMBDA_ZR89_PER_S
    return {"liver": liver, "spleen": 0.01 * whole_body, REST_OF_BODY: 0.87 * whole_body}


def test_dose_grows_linearly_with_activity() -> None:
    one = estimate_dose(_trastuzumab_like_tia(37e6), "Zr-89")
    three = estimate_dose(_trastuzumab_like_tia(3 * 37e6), "Zr-89")
    assert three.effective_dose_sv == pytest.approx(3 * one.effective_dose_sv, rel=1e-12)
    for organ, dose in one.organ_doses_gy.items():
        assert three.organ_doses_gy[organ] == pytest.approx(3 * dose, rel=1e-12)
    budget = dose_budget(
        [("baseline", 37e6), ("CRS window", 74e6), ("response", 37e6)],
        _trastuzumab_like_tia(),
        "Zr-89",
    )
    first, second, third = budget.scans
    assert second.effective_dose_sv == pytest.approx(2 * first.effective_dose_sv, rel=1e-12)
    assert budget.total_effective_dose_sv == pytest.approx(4 * first.effective_dose_sv)
    assert third.cumulative_effective_dose_sv == budget.total_effective_dose_sv
    assert budget.effective_dose_sv_per_bq * 37e6 == pytest.approx(first.effective_dose_sv)


def test_activity_spread_through_the_body_gives_a_uniform_dose() -> None:
    whole_body = 37e6 / LAMBDA_ZR89_PER_S
    estimate = estimate_dose({REST_OF_BODY: whole_body}, "Zr-89")
    for sex in SEXES:
        doses = estimate.organ_doses_gy_by_sex[sex]
        for organ in effective_dose_tissues(sex):
            assert doses[organ] == pytest.approx(doses["total_body"], rel=1e-9)
    total_body = estimate.organ_doses_gy["total_body"]  # mean of the two reference adults
    assert estimate.effective_dose_sv == pytest.approx(total_body, rel=1e-9)
    # The same activity split between organs at the same concentration: still uniform.
    phantom = reference_phantom("male")
    share = {
        name: whole_body * phantom.region_mass_g[name] / phantom.total_body_g
        for name in ("liver", "lungs", "spleen", "kidneys", "red_marrow")
    }
    share[REST_OF_BODY] = whole_body - sum(share.values())
    doses = absorbed_doses_gy(share, "Zr-89", sex="male")
    male_uniform = estimate.organ_doses_gy_by_sex["male"]["total_body"]
    for organ in ("liver", "lungs", "muscle", "red_marrow", "brain"):
        assert doses[organ] == pytest.approx(male_uniform, rel=1e-9)


@pytest.mark.parametrize("source", ["liver", "lungs", "red_marrow", REST_OF_BODY])
def test_energy_absorbed_in_the_body_does_not_depend_on_the_source_organ(source: str) -> None:
    tia_bq_s = 1.0e12
    phantom = reference_phantom("female")
    doses = absorbed_doses_gy({source: tia_bq_s}, "Zr-89", sex="female")
    absorbed_j = doses["total_body"] * phantom.total_body_g / 1000.0
    uniform = absorbed_doses_gy({REST_OF_BODY: tia_bq_s}, "Zr-89", sex="female")
    assert absorbed_j == pytest.approx(uniform["total_body"] * phantom.total_body_g / 1000.0)
    energy = energy_per_decay("Zr-89")
    assert energy.non_penetrating_j * tia_bq_s < absorbed_j < energy.total_j * tia_bq_s


def test_non_penetrating_energy_stays_in_the_source_organ() -> None:
    # Y-90: pure β−, no photons but bremsstrahlung-free ICRP-107 lines (X/γ yields ~0).
    doses = absorbed_doses_gy({"liver": 1.0e12}, "Y-90", sex="male")
    liver_kg = reference_phantom("male").region_mass_g["liver"] / 1000.0
    electrons_j = energy_per_decay("Y-90").non_penetrating_j * 1.0e12
    assert doses["liver"] == pytest.approx(electrons_j / liver_kg, rel=1e-3)
    assert doses["muscle"] < 1e-3 * doses["liver"]


def test_unknown_or_negative_sources_are_refused() -> None:
    with pytest.raises(InputError, match="unknown source regions"):
        estimate_dose({"tumour": 1.0}, "Zr-89")
    with pytest.raises(InputError, match="unknown source regions"):
        estimate_dose({"ovaries": 1.0}, "Zr-89")  # the reference male has none
    with pytest.raises(InputError, match="≥ 0"):
        estimate_dose({"liver": -1.0}, "Zr-89")
    with pytest.raises(InputError, match="positive"):
        dose_budget([("baseline", 0.0)], {"liver": 1.0}, "Zr-89")


# ---------------------------------------------------------------- ICRP 103


def test_tissue_weights_sum_to_one() -> None:
    weights = tissue_weights()
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-12)
    assert len(weights) == 15
    assert {weights[t] for t in ("red_marrow", "colon", "lungs", "stomach", "breast")} == {0.12}


@pytest.mark.parametrize("sex", [None, "male", "female"])
def test_uniform_one_gray_is_one_sievert(sex: Sex | None) -> None:
    doses = dict.fromkeys(effective_dose_tissues(), 1.0)
    assert effective_dose_sv(doses, sex) == pytest.approx(1.0, abs=1e-12)


def test_sex_averaging_and_remainder() -> None:
    male = dict.fromkeys(effective_dose_tissues("male"), 0.0)
    female = dict.fromkeys(effective_dose_tissues("female"), 0.0)
    male["prostate"] = 13.0  # one of 13 remainder tissues: remainder dose 1 Gy
    female["ovaries"] = 1.0
    assert effective_dose_sv(male, "male") == pytest.approx(0.12)
    assert effective_dose_sv(female, "female") == pytest.approx(0.08)
    assert sex_averaged_effective_dose_sv(male, female) == pytest.approx(0.5 * (0.12 + 0.08))
    del male["liver"]
    with pytest.raises(InputError, match="liver"):
        effective_dose_sv(male, "male")


def test_published_doses_are_in_canonical_units() -> None:
    entries = {entry.key: entry for entry in published_doses("Zr-89")}
    odonoghue = entries["odonoghue2018_trastuzumab"]
    assert odonoghue.effective_dose_sv_per_bq == pytest.approx(0.48e-3 / 1e6)
    assert odonoghue.highest_dose_organ == "liver"
    assert all(entry.confidence in ("READ", "RECALLED") for entry in published_doses())
    assert published_doses("F-18") == ()
