"""immunopet's dose engine against published dose coefficients of [¹⁸F]FDG in adults.

Inputs, all in ``data/fdg_biokinetics.toml`` with source and confidence:

* Brain: Ã/A₀ = 0.220 h (READ, human value quoted in Cancer Biother Radiopharm,
  doi:10.1089/cbr.2010.0836, abstract).
* Urinary excretion: 20 % of the injected activity in adults (READ, J Nucl Med, OSTI 381135,
  abstract), about 10 % by 70 min (READ, Bach-Gansmo et al., Acta Radiol Open 2012;1(8)); a
  mono-exponential excretion through both gives a half-time of 70 min (COMPUTED).
* Whole body, A(t)/A₀ = [(1 − f_u) + f_u e^(−λ_u t)] e^(−λ_p t), integrated by the analysis
  path's integrator (:func:`immunopet.dosimetry.time_integrated_activity_bq_s`, sampled every
  2 min to 12 h): Ã/A₀ = 2.317 h outside the bladder (voided variant below; 2.639 h
  retained). Rest of body = whole body − brain.
* Not separated (no FDG-specific value could be read): heart wall, lungs, liver, kidneys; they
  receive the rest-of-body activity. The ICRP 106/128 FDG model (organ fractions and
  half-times) and its organ-dose table could not be retrieved (only values quoted in open
  papers, listed in the data file).

Urinary bladder (``data/urinary_bladder.toml``, :mod:`immunopet.dosimetry._bladder`): the
excreted activity collects in the bladder contents (the ``urinary_bladder_contents`` source, a
200 g sphere of urine; wall dose by the ICRP 30 surface convention plus the photons a 2.8 mm wall
shell absorbs) and is voided on the schedule of each published model: ICRP 53/80/106 every 3.5 h
(first void at 3.5 h, ASSUMED), Kamp 2023 at 45 min and then every 3.75 h (READ). Contents Ã/A₀:
0.1955 h (ICRP schedule), 0.1232 h (Kamp's); 0.3223 h never voided. Two variants:

* *voided*: the model above (excretion into the bladder, voided every 3.5 h);
* *retained*: nothing is excreted; the activity stays spread through the rest of the body (an
  upper bound on every tissue but the bladder wall).

Model (sex-averaged ICRP 103, ICRP-107 ¹⁸F) vs published, per MBq:

==================================  ========  ========  ======================================
quantity                            voided    retained  published (READ)
==================================  ========  ========  ======================================
effective dose, mSv/MBq             0.0172    0.0148    0.0159 ICRP 106 kinetics, ICRP/ICRU
                                                        phantoms, ICRP 103 (Andersson 2014);
                                                        0.017 revised model, ICRP 103 (Kamp
                                                        2023); 0.0141 ± 0.0018 measured, 10
                                                        volunteers (total-body PET 2021);
                                                        0.019 ICRP 106/80 (ICRP 60 weights)
  male / female                     0.0161 /  0.0136 /  0.0166 / 0.0153 (Andersson 2014)
                                    0.0184    0.0160
  with Kamp's voiding schedule      0.0156    —         0.017 (Kamp 2023)
urinary bladder wall, mGy/MBq       0.106     0.0145    0.13 ICRP 106; 0.16 ICRP 80 (3.5 h
                                                        voiding); 0.12 Mejia; 0.31 ± 0.18
                                                        Deloar; 0.059 ± 0.024 total-body PET
                                                        2021 (8 h, 2 voids)
  with Kamp's voiding schedule      0.0712    —         0.075 Kamp 2023
brain, mGy/MBq                      0.042     0.042     none read (not asserted)
highest-dose organ                  bladder   brain     urinary bladder wall
                                    wall
voided E + w_bladder·(published     —         —         0.0160 vs 0.017 (Kamp 2023, −6 %);
bladder − model bladder)                                0.0153 vs 0.0141 (2021, +9 %)
==================================  ========  ========  ======================================

Bladder wall, stated honestly: with the ICRP 3.5 h schedule the model gives 0.106 mGy/MBq,
−18 % against ICRP 106, −34 % against ICRP 80 and −12 % against Mejia; with Kamp's schedule
0.0712, −5 % against Kamp 2023's 0.075. It lies inside the published spread (0.059–0.31) and the
wall is the highest-dose organ, as in every publication. Asserted: within ±35 % of each ICRP-type
model value whose voiding schedule is known (ICRP 106, ICRP 80, Kamp 2023). Why ±35 %: ICRP 80
and ICRP 106 use the same phantom (MIRD stylised) and the same 3.5 h voiding yet differ by 23 %
through their biokinetics alone; the inputs here are not theirs (20 % excreted with one 70 min
half-time, from two abstracts, where the ICRP model's fractions could not be read); and the
bladder of this engine is a fixed 200 g sphere (no filling and emptying of the volume, which the
dynamic model of MIRD Pamphlet 14 revised follows; its abstract says it "tends to give a higher"
wall dose than the constant-volume model, the rest of that sentence unread). The measured
biokinetics (total-body PET 2021, Deloar) are not asserted beyond the spread: their voiding times
were not read. The SNMMI/ICRP 80 footnote "approximately linear with the voiding interval" (2 h:
× 2/3.5 = 0.571) is checked on the contents' part of the wall dose: 0.619, +8 % (±15 %).

Effective dose: both variants are within 13 % of both ICRP-103-era values (voided +8 % Andersson,
+1 % Kamp; retained −7 %, −13 %); with Kamp's voiding schedule −8 % of Kamp. Against the measured
total-body PET mean the retained variant is within one patient SD and the voided one +22 %
(1.7 SD): that study's bladder wall dose is half the model's (dynamic bladder, 2 voids in 8 h);
putting the published bladder term in the voided E gives +9 % (within one SD). The per-sex split
does not agree: the engine gives the female 14 % (voided) / 18 % (retained) more than the male
(same Ã in a lighter body), the ICRP/ICRU phantoms 8 % less (not explained here).

Tolerance ±20 % on the effective dose: the same ICRP 106 kinetics give 0.019 mSv/MBq in the
MIRD stylised phantom and 0.0150 in the ICRP/ICRU voxel phantoms (both ICRP 60 weights,
Andersson 2014: −21 %), so a phantom change alone moves FDG's effective dose by ~20 %, and the
engine's body is a sphere (cruder than either); the measured spread between volunteers is 13 %
(1 SD, total-body PET 2021). ±10 % for the bladder-closed comparison, whose only remaining
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
    URINARY_BLADDER_CONTENTS,
    DoseEstimate,
    bladder_contents_tiac_s,
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
WALL = "urinary_bladder"

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


def _schedule_s(name: str) -> tuple[float, float]:
    """(first void, interval), s, of a published model's voiding schedule."""
    row = _table()["voiding"][name]
    return float(row["first_void_h"]) * S_PER_HOUR, float(row["interval_h"]) * S_PER_HOUR


def _urine_per_s() -> float:
    return math.log(2.0) / (_input("urine_excretion_half_time_min") * S_PER_MIN)


def _body_fraction(times_s: np.ndarray, variant: Variant) -> np.ndarray:
    """Activity in the body outside the bladder per activity injected (not decay-corrected)."""
    decay = np.exp(-PHYSICAL_PER_S * times_s)
    if variant == "retained":
        return decay
    urine = _input("urine_fraction_total")
    return ((1.0 - urine) + urine * np.exp(-_urine_per_s() * times_s)) * decay


@cache
def _contents_tiac_s(schedule: str) -> float:
    first_s, interval_s = _schedule_s(schedule)
    return bladder_contents_tiac_s(
        _input("urine_fraction_total"),
        _input("urine_excretion_half_time_min") * S_PER_MIN,
        half_life_s=HALF_LIFE_S["F-18"],
        voiding_interval_s=interval_s,
        first_void_s=first_s,
    )


@cache
def _tiac_s(variant: Variant, schedule: str = "icrp") -> dict[str, float]:
    """Ã/A₀ per source region, s: body integrated by the analysis path's integrator."""
    body_s = time_integrated_activity_bq_s(
        SAMPLE_TIMES_S,
        _body_fraction(SAMPLE_TIMES_S, variant),
        half_life_s=HALF_LIFE_S["F-18"],
        tail="physical",
    )
    brain_s = _input("brain_tiac_h") * S_PER_HOUR
    tiac = {"brain": brain_s, REST_OF_BODY: body_s - brain_s}
    if variant == "voided":
        tiac[URINARY_BLADDER_CONTENTS] = _contents_tiac_s(schedule)
    return tiac


@cache
def _estimate(variant: Variant, schedule: str = "icrp") -> DoseEstimate:
    return estimate_dose(_tiac_s(variant, schedule), "F-18")


@cache
def _no_contents_estimate() -> DoseEstimate:
    """The voided body without the bladder contents (excretion leaves at once)."""
    tiac = {k: v for k, v in _tiac_s("voided").items() if k != URINARY_BLADDER_CONTENTS}
    return estimate_dose(tiac, "F-18")


def _effective_msv_per_mbq(variant: Variant, schedule: str = "icrp") -> float:
    return _estimate(variant, schedule).effective_dose_sv / PER_BQ_IN_ONE_PER_MBQ


def _bladder_wall_mgy_per_mbq(variant: Variant, schedule: str = "icrp") -> float:
    return _estimate(variant, schedule).organ_doses_gy[WALL] / PER_BQ_IN_ONE_PER_MBQ


def _icrp103_keys() -> list[str]:
    return [row["key"] for row in _table()["published"] if row["weights"] == "ICRP 103"]


def _scheduled_bladder_keys() -> list[str]:
    return [row["key"] for row in _table()["published"] if "voiding" in row]


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


def test_bladder_contents_time_integrated_activity() -> None:
    """Contents Ã/A₀: 0.1955 h voided every 3.5 h, 0.1232 h on Kamp's schedule (< 0.3223 h)."""
    assert _contents_tiac_s("icrp") / S_PER_HOUR == pytest.approx(0.1955, abs=1e-4)
    assert _contents_tiac_s("kamp2023") / S_PER_HOUR == pytest.approx(0.1232, abs=1e-4)
    # Never voided: f·λ_u/(λ_p(λ_p + λ_u)) = 0.3223 h, an upper bound on both.
    never_s = (
        _input("urine_fraction_total")
        * _urine_per_s()
        / (PHYSICAL_PER_S * (PHYSICAL_PER_S + _urine_per_s()))
    )
    assert never_s / S_PER_HOUR == pytest.approx(0.3223, abs=1e-4)
    assert _contents_tiac_s("kamp2023") < _contents_tiac_s("icrp") < never_s


@pytest.mark.parametrize("key", _scheduled_bladder_keys())
def test_bladder_wall_within_35_percent_of_icrp_type_models(key: str) -> None:
    """ICRP 106 −18 %, ICRP 80 −34 % (3.5 h voiding); Kamp 2023 −5 % (its own schedule)."""
    published = _published(key)
    assert published["confidence"] == "READ"
    model = _bladder_wall_mgy_per_mbq("voided", str(published["voiding"]))
    ratio = model / float(published["urinary_bladder_wall_mgy_per_mbq"])
    assert ratio == pytest.approx(1.0, abs=0.35)


def test_bladder_wall_observed_values_and_rank() -> None:
    """The observed values of the module table, kept as a regression guard."""
    assert _bladder_wall_mgy_per_mbq("voided") == pytest.approx(0.106, abs=0.001)
    assert _bladder_wall_mgy_per_mbq("voided", "kamp2023") == pytest.approx(0.0712, abs=0.001)
    assert _bladder_wall_mgy_per_mbq("retained") == pytest.approx(0.0145, abs=0.001)
    # The bladder wall is the highest-dose organ in every publication, and in the model.
    assert _estimate("voided").highest_dose_organ == WALL
    assert _estimate("voided", "kamp2023").highest_dose_organ == WALL
    # Inside the published spread of adult FDG bladder-wall doses (0.059 to 0.31 mGy/MBq).
    published = [
        float(row["urinary_bladder_wall_mgy_per_mbq"])
        for row in _table()["published"]
        if "urinary_bladder_wall_mgy_per_mbq" in row
    ]
    assert min(published) < _bladder_wall_mgy_per_mbq("voided") < max(published)


def test_bladder_wall_follows_the_voiding_interval_about_linearly() -> None:
    """ICRP 80 footnote (G80): 2 h instead of 3.5 h scales the wall dose by about 2/3.5.

    Checked on the contents' part of the wall dose (the rest-of-body part does not depend on
    voiding): 0.619 against 0.571, +8 %; ±15 % for "approximately".
    """
    rule = _table()["voiding"]["linear_rule"]
    short_s = float(rule["interval_h"]) * S_PER_HOUR
    reference_s = float(rule["reference_interval_h"]) * S_PER_HOUR
    no_contents_gy = _no_contents_estimate().organ_doses_gy[WALL]
    contents_part = []
    for interval_s in (short_s, reference_s):
        tiac = dict(_tiac_s("voided"))
        tiac[URINARY_BLADDER_CONTENTS] = bladder_contents_tiac_s(
            _input("urine_fraction_total"),
            _input("urine_excretion_half_time_min") * S_PER_MIN,
            half_life_s=HALF_LIFE_S["F-18"],
            voiding_interval_s=interval_s,
        )
        contents_part.append(estimate_dose(tiac, "F-18").organ_doses_gy[WALL] - no_contents_gy)
    ratio = contents_part[0] / contents_part[1]
    assert ratio == pytest.approx(0.619, abs=0.002)
    assert ratio / (short_s / reference_s) == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("variant", ["voided", "retained"])
@pytest.mark.parametrize("key", _icrp103_keys())
def test_effective_dose_within_20_percent_of_icrp103_values(key: str, variant: Variant) -> None:
    published = _published(key)
    assert published["confidence"] == "READ"
    ratio = _effective_msv_per_mbq(variant) / float(published["effective_dose_msv_per_mbq"])
    assert ratio == pytest.approx(1.0, abs=0.20)


def test_effective_dose_with_kamps_voiding_schedule() -> None:
    """Kamp 2023's own schedule (45 min, then every 3.75 h): 0.0156 against 0.017 (−8 %)."""
    published = float(_published("kamp2023")["effective_dose_msv_per_mbq"])
    model = _effective_msv_per_mbq("voided", "kamp2023")
    assert model == pytest.approx(0.0156, abs=2e-4)
    assert model / published == pytest.approx(1.0, abs=0.20)


def test_effective_dose_against_measured_biokinetics() -> None:
    """Total-body PET 2021 (10 volunteers): retained within 1 SD, voided within 2 SD (+1.7)."""
    published = _published("totalbody2021")
    mean = float(published["effective_dose_msv_per_mbq"])
    sd = float(published["effective_dose_sd_msv_per_mbq"])
    assert abs(_effective_msv_per_mbq("retained") - mean) <= sd
    assert abs(_effective_msv_per_mbq("voided") - mean) <= 2.0 * sd


def test_effective_doses_observed_values() -> None:
    """The observed values of the module table, kept as a regression guard."""
    assert _effective_msv_per_mbq("retained") == pytest.approx(0.0148, abs=2e-4)
    assert _effective_msv_per_mbq("voided") == pytest.approx(0.0172, abs=2e-4)
    # The bladder contents add 4.3 µSv/MBq, most of it the bladder term w_bladder·ΔD_wall.
    no_contents = _no_contents_estimate()
    added = _effective_msv_per_mbq("voided") - no_contents.effective_dose_sv / 1e-9
    wall_term = tissue_weights()[WALL] * (
        _bladder_wall_mgy_per_mbq("voided") - no_contents.organ_doses_gy[WALL] / 1e-9
    )
    assert added == pytest.approx(0.0043, abs=2e-4)
    assert wall_term < added < 1.25 * wall_term


@pytest.mark.parametrize("key", ["kamp2023", "totalbody2021"])
def test_published_bladder_term_closes_the_gap(key: str) -> None:
    """Voided E with the published bladder wall dose: −6 % (Kamp), +9 % (2021); within 10 %."""
    published = _published(key)
    replaced_msv = tissue_weights()[WALL] * (
        float(published["urinary_bladder_wall_mgy_per_mbq"]) - _bladder_wall_mgy_per_mbq("voided")
    )
    closed = _effective_msv_per_mbq("voided") + replaced_msv
    assert closed / float(published["effective_dose_msv_per_mbq"]) == pytest.approx(1.0, abs=0.10)


def test_sex_split_is_recorded_not_matched() -> None:
    """Engine: female above male (lighter body, same Ã); ICRP/ICRU phantoms: the reverse."""
    published = _published("andersson2014_icrp103")
    for variant, expected in (("retained", 1.18), ("voided", 1.14)):
        estimate = _estimate(variant)
        male = effective_dose_sv(estimate.organ_doses_gy_by_sex["male"], sex="male")
        female = effective_dose_sv(estimate.organ_doses_gy_by_sex["female"], sex="female")
        assert female / male == pytest.approx(expected, abs=0.02)
        assert 0.5 * (male + female) == pytest.approx(estimate.effective_dose_sv, rel=1e-12)
    assert (
        published["effective_dose_male_msv_per_mbq"]
        > published["effective_dose_female_msv_per_mbq"]
    )


def test_budget_of_an_adult_fdg_scan() -> None:
    """One 370 MBq scan through the planner's budget: linear in activity, ±20 % of ICRP 103."""
    activity_bq = float(_table()["administration"]["adult_activity_mbq"]["value"]) * BQ_PER_MBQ
    budget = dose_budget([("baseline FDG", activity_bq)], _tiac_s("voided"), "F-18")
    scan_sv = budget.scans[0].effective_dose_sv
    assert scan_sv == pytest.approx(activity_bq * _estimate("voided").effective_dose_sv)
    published_sv = (
        activity_bq
        * float(_published("andersson2014_icrp103")["effective_dose_msv_per_mbq"])
        * PER_BQ_IN_ONE_PER_MBQ
    )
    assert scan_sv / published_sv == pytest.approx(1.0, abs=0.20)
    assert scan_sv * 1.0e3 == pytest.approx(6.4, abs=0.1)  # mSv
    assert budget.scans[0].organ_doses_gy[WALL] * 1.0e3 == pytest.approx(39.2, abs=0.5)  # mGy
