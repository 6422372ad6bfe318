"""immunopet's dose engine against published dose coefficients of [¹⁸F]FDG in adults.

Inputs, all in ``data/fdg_biokinetics.toml`` with source and confidence:

* Brain: Ã/A₀ = 0.220 h (READ, human value quoted in Cancer Biother Radiopharm,
  doi:10.1089/cbr.2010.0836, abstract).
* Urinary excretion: 20 % of the injected activity in adults (READ, J Nucl Med, OSTI 381135,
  abstract), about 10 % by 70 min (READ, Bach-Gansmo et al., Acta Radiol Open 2012;1(8)); a
  mono-exponential excretion through both gives a half-time of 70 min (COMPUTED).
* Whole body, A(t)/A₀ = [(1 − f_u) + f_u e^(−λ_u t)] e^(−λ_p t), integrated by the analysis
  path's integrator (:func:`immunopet.dosimetry.time_integrated_activity_bq_s`, sampled every
  2 min to 12 h): Ã/A₀ = 2.317 h (voided variant below; 2.639 h retained). Rest of body =
  whole body − brain.
* Not separated (no FDG-specific value could be read): heart wall, lungs, liver, kidneys; they
  receive the rest-of-body activity. The ICRP 106/128 FDG model (organ fractions and
  half-times) and its organ-dose table could not be retrieved (only values quoted in open
  papers, listed in the data file).

Two variants bound what the engine can represent, because it has **no urinary-bladder-content
source and no voiding model** (its ``urinary_bladder`` region is the 50 g / 40 g wall):

* *voided*: excreted activity leaves the body as it reaches the bladder (no bladder dose);
* *retained*: nothing is excreted; the activity stays spread through the rest of the body.

Putting the bladder-content activity (never voided: 0.322 h) on the wall region instead would
give a bladder wall dose of 1.23 mGy/MBq, 9.5 × ICRP 106's 0.13: the region is not a content
source, so that variant is not used.

Model (sex-averaged ICRP 103, ICRP-107 ¹⁸F) vs published, per MBq:

==================================  ========  ========  ======================================
quantity                            voided    retained  published (READ)
==================================  ========  ========  ======================================
effective dose, mSv/MBq             0.0129    0.0148    0.0159 ICRP 106 kinetics, ICRP/ICRU
                                                        phantoms, ICRP 103 (Andersson 2014);
                                                        0.017 revised model, ICRP 103 (Kamp
                                                        2023); 0.0141 ± 0.0018 measured, 10
                                                        volunteers (total-body PET 2021);
                                                        0.019 ICRP 106/80 (ICRP 60 weights)
  male / female                     0.0119 /  0.0136 /  0.0166 / 0.0153 (Andersson 2014)
                                    0.0140    0.0160
urinary bladder wall, mGy/MBq       0.0127    0.0145    0.13 ICRP 106; 0.16 ICRP 80 (3.5 h
                                                        voiding); 0.075 Kamp 2023; 0.059 ±
                                                        0.024 total-body PET 2021
brain, mGy/MBq                      0.041     0.042     none read (not asserted)
highest-dose organ                  brain     brain     urinary bladder wall
voided E + w_bladder·(published     —         —         0.0154 vs 0.017 (Kamp 2023, −9 %);
bladder − model bladder)                                0.0148 vs 0.0141 (2021, +5 %)
==================================  ========  ========  ======================================

Agreement stated honestly: the retained variant is within 13 % of every ICRP-103-era effective
dose (−7 % Andersson, −13 % Kamp, +5 % total-body PET) and the voided variant lies below every
published value, 8 % under the lowest — as it must, since it drops the bladder-content dose.
Replacing the model's bladder-wall dose by a published one (same source as the effective dose)
closes the gap to −9 % / +5 %: the missing term is the bladder, not the rest of the engine.
The per-sex split does not agree: the engine gives the female 18 % more than the male (same Ã
in a lighter body), the ICRP/ICRU phantoms 8 % less (not explained here; the bladder source,
next to testes and prostate, is the likely part). The bladder wall itself cannot be
represented — 5 to 10 times too low without a content source, 9.5 times too high with the
content on the wall — so its agreement is recorded as an expected failure, not as a loose bound.

Tolerance ±20 % on the effective dose: the same ICRP 106 kinetics give 0.019 mSv/MBq in the
MIRD stylised phantom and 0.0150 in the ICRP/ICRU voxel phantoms (both ICRP 60 weights,
Andersson 2014: −21 %), so a phantom change alone moves FDG's effective dose by ~20 %, and the
engine's body is a sphere (cruder than either); the measured spread between volunteers is 13 %
(1 SD, total-body PET 2021). ±15 % for the bladder-closed comparison, whose only remaining
difference is the biokinetics and phantom of the non-bladder tissues.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any, Literal

import numpy as np
import pytest

from immunopet.data import read_toml
from immunopet.dosimetry import (
    REST_OF_BODY,
    DoseEstimate,
    dose_budget,
    effective_dose_sv,
    estimate_dose,
    time_integrated_activity_bq_s,
    tissue_weights,
)
from phantoms import HALF_LIFE_S

S_PER_MIN = 60.0
S_PER_HOUR = 3600.0
#: Sv/Bq in one mSv/MBq (and Gy/Bq in one mGy/MBq).
PER_BQ_IN_ONE_PER_MBQ = 1.0e-9
BQ_PER_MBQ = 1.0e6

PHYSICAL_PER_S = math.log(2.0) / HALF_LIFE_S["F-18"]
SAMPLE_TIMES_S = np.arange(0.0, 12.0 * S_PER_HOUR + 1.0, 2.0 * S_PER_MIN)

Variant = Literal["voided", "retained"]


def _table() -> dict[str, Any]:
    return read_toml("fdg_biokinetics.toml")


def _input(name: str) -> float:
    return float(_table()["biokinetics"][name]["value"])


def _published(key: str) -> dict[str, Any]:
    (entry,) = [row for row in _table()["published"] if row["key"] == key]
    return dict(entry)


def _urine_per_s() -> float:
    return math.log(2.0) / (_input("urine_excretion_half_time_min") * S_PER_MIN)


def _body_fraction(times_s: np.ndarray, variant: Variant) -> np.ndarray:
    """Activity in the body per activity injected (not decay-corrected)."""
    decay = np.exp(-PHYSICAL_PER_S * times_s)
    if variant == "retained":
        return decay
    urine = _input("urine_fraction_total")
    return ((1.0 - urine) + urine * np.exp(-_urine_per_s() * times_s)) * decay


@cache
def _tiac_s(variant: Variant) -> dict[str, float]:
    """Ã/A₀ per source region, s: body integrated by the analysis path's integrator."""
    body_s = time_integrated_activity_bq_s(
        SAMPLE_TIMES_S,
        _body_fraction(SAMPLE_TIMES_S, variant),
        half_life_s=HALF_LIFE_S["F-18"],
        tail="physical",
    )
    brain_s = _input("brain_tiac_h") * S_PER_HOUR
    return {"brain": brain_s, REST_OF_BODY: body_s - brain_s}


@cache
def _estimate(variant: Variant) -> DoseEstimate:
    return estimate_dose(_tiac_s(variant), "F-18")


def _effective_msv_per_mbq(variant: Variant) -> float:
    return _estimate(variant).effective_dose_sv / PER_BQ_IN_ONE_PER_MBQ


def _bladder_wall_mgy_per_mbq(variant: Variant) -> float:
    return _estimate(variant).organ_doses_gy["urinary_bladder"] / PER_BQ_IN_ONE_PER_MBQ


def _icrp103_keys() -> list[str]:
    return [row["key"] for row in _table()["published"] if row["weights"] == "ICRP 103"]


def _all_keys() -> list[str]:
    return [str(row["key"]) for row in _table()["published"]]


def test_excretion_half_time_follows_from_the_read_fractions() -> None:
    table = _table()["biokinetics"]
    early = table["urine_fraction_early"]
    total = _input("urine_fraction_total")
    half_time_min = (
        float(early["time_min"]) * math.log(2.0) / math.log(total / (total - early["value"]))
    )
    assert half_time_min == pytest.approx(_input("urine_excretion_half_time_min"), rel=1e-9)
    assert table["urine_excretion_half_time_min"]["confidence"] == "COMPUTED"
    for name in ("brain_tiac_h", "urine_fraction_total", "urine_fraction_early"):
        assert table[name]["confidence"] == "READ"


def test_analysis_integrator_reproduces_the_closed_form() -> None:
    """Trapezoids every 2 min plus a physical tail equal the analytic integral (≤ 0.01 %)."""
    urine = _input("urine_fraction_total")
    closed_voided_s = (1.0 - urine) / PHYSICAL_PER_S + urine / (PHYSICAL_PER_S + _urine_per_s())
    body_voided_s = _tiac_s("voided")[REST_OF_BODY] + _tiac_s("voided")["brain"]
    body_retained_s = _tiac_s("retained")[REST_OF_BODY] + _tiac_s("retained")["brain"]
    assert body_voided_s == pytest.approx(closed_voided_s, rel=1e-4)
    assert body_retained_s == pytest.approx(1.0 / PHYSICAL_PER_S, rel=1e-4)
    # Hand values: T½/ln 2 = 109.77 min/ln 2 = 2.639 h; with 20 % excreted (T = 70 min) 2.317 h.
    assert body_retained_s / S_PER_HOUR == pytest.approx(2.639, abs=1e-3)
    assert body_voided_s / S_PER_HOUR == pytest.approx(2.317, abs=1e-3)


@pytest.mark.parametrize("key", _icrp103_keys())
def test_effective_dose_within_20_percent_of_icrp103_values(key: str) -> None:
    published = _published(key)
    assert published["confidence"] == "READ"
    ratio = _effective_msv_per_mbq("retained") / float(published["effective_dose_msv_per_mbq"])
    assert ratio == pytest.approx(1.0, abs=0.20)


def test_effective_dose_against_measured_biokinetics() -> None:
    """Total-body PET 2021 (10 volunteers): within one patient SD (13 %) of the mean."""
    published = _published("totalbody2021")
    mean = float(published["effective_dose_msv_per_mbq"])
    sd = float(published["effective_dose_sd_msv_per_mbq"])
    assert abs(_effective_msv_per_mbq("retained") - mean) <= sd


def test_effective_doses_observed_values() -> None:
    """The observed values of the module table, kept as a regression guard."""
    assert _effective_msv_per_mbq("retained") == pytest.approx(0.0148, abs=2e-4)
    assert _effective_msv_per_mbq("voided") == pytest.approx(0.0129, abs=2e-4)


@pytest.mark.parametrize("key", _all_keys())
def test_voided_variant_lies_below_every_published_value(key: str) -> None:
    """Dropping the bladder-content dose can only lower the effective dose."""
    published = float(_published(key)["effective_dose_msv_per_mbq"])
    assert _effective_msv_per_mbq("voided") < published


@pytest.mark.parametrize("key", ["kamp2023", "totalbody2021"])
def test_published_bladder_term_closes_the_gap(key: str) -> None:
    """Voided E + w_bladder × (published − model bladder wall) within 15 % of published E."""
    published = _published(key)
    missing_msv = tissue_weights()["urinary_bladder"] * (
        float(published["urinary_bladder_wall_mgy_per_mbq"]) - _bladder_wall_mgy_per_mbq("voided")
    )
    closed = _effective_msv_per_mbq("voided") + missing_msv
    assert closed / float(published["effective_dose_msv_per_mbq"]) == pytest.approx(1.0, abs=0.15)


def test_sex_split_is_recorded_not_matched() -> None:
    """Engine: female above male (lighter body, same Ã); ICRP/ICRU phantoms: the reverse."""
    estimate = _estimate("retained")
    male = effective_dose_sv(estimate.organ_doses_gy_by_sex["male"], sex="male")
    female = effective_dose_sv(estimate.organ_doses_gy_by_sex["female"], sex="female")
    published = _published("andersson2014_icrp103")
    assert female / male == pytest.approx(1.18, abs=0.02)
    assert (
        published["effective_dose_male_msv_per_mbq"]
        > published["effective_dose_female_msv_per_mbq"]
    )
    assert 0.5 * (male + female) == pytest.approx(estimate.effective_dose_sv, rel=1e-12)


@pytest.mark.xfail(
    reason="no urinary-bladder-content source or voiding model in immunopet.dosimetry: the "
    "bladder wall gets the rest-of-body dose (0.013 mGy/MBq, 5 to 10 times below the published)",
    strict=True,
)
@pytest.mark.parametrize("key", ["icrp106", "kamp2023", "totalbody2021"])
def test_urinary_bladder_wall_is_the_highest_dose_organ_at_the_published_dose(key: str) -> None:
    published = float(_published(key)["urinary_bladder_wall_mgy_per_mbq"])
    assert _estimate("voided").highest_dose_organ == "urinary_bladder"
    assert _bladder_wall_mgy_per_mbq("voided") / published == pytest.approx(1.0, abs=0.30)


def test_budget_of_an_adult_fdg_scan() -> None:
    """One 370 MBq scan through the planner's budget: linear in activity, ±20 % of ICRP 103."""
    activity_bq = float(_table()["administration"]["adult_activity_mbq"]["value"]) * BQ_PER_MBQ
    budget = dose_budget([("baseline FDG", activity_bq)], _tiac_s("retained"), "F-18")
    scan_sv = budget.scans[0].effective_dose_sv
    assert scan_sv == pytest.approx(activity_bq * _estimate("retained").effective_dose_sv)
    published_sv = (
        activity_bq
        * float(_published("andersson2014_icrp103")["effective_dose_msv_per_mbq"])
        * PER_BQ_IN_ONE_PER_MBQ
    )
    assert scan_sv / published_sv == pytest.approx(1.0, abs=0.20)
    assert scan_sv * 1.0e3 == pytest.approx(5.5, abs=0.1)  # mSv
