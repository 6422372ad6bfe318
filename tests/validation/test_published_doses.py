"""immunopet's planning-grade dose model against published ⁸⁹Zr-antibody dosimetry in patients.

Biodistribution of a ⁸⁹Zr-IgG, built only from READ published numbers:

* Whole body: 100 % of the activity at injection, cleared with the whole-body biological
  retention half-life of ⁸⁹Zr-trastuzumab, median 370 h (O'Donoghue JA et al., J Nucl Med
  2018;59:161, abstract). Ã_WB/A₀ = 1/(λ_phys + λ_bio) = 93.3 h.
* Liver: "retention of ~12 % of the injected dose" (Laforest R et al., Mol Imaging Biol
  2016;18:952, abstract), held from injection with physical decay only (residualising ⁸⁹Zr):
  Ã_liver/A₀ = 0.12/λ_phys = 13.6 h.
* Rest of body: the difference (79.8 h). Heart contents, lungs, spleen, kidneys and marrow are
  not separated: no per-organ residence times of a ⁸⁹Zr-antibody could be read.

Model vs published (ICRP-107 ⁸⁹Zr; sex-averaged ICRP 103 effective dose):

====================================  ===========  =======================================
quantity                              model        published (READ)
====================================  ===========  =======================================
effective dose, mSv/MBq               0.490        0.48 ± 0.06, range 0.38–0.57 (O'Donoghue)
                                                   0.47 (Laforest), 0.57 ± 0.08 (Merkx 2021,
                                                   ⁸⁹Zr-girentuximab)
liver, mGy/MBq                        1.62         1.32 ± 0.24, range 0.90–1.75 (O'Donoghue);
                                                   1.54 (Laforest, female model)
total body, mGy/MBq                   0.47         0.37 ± 0.06, range 0.28–0.46 (O'Donoghue)
====================================  ===========  =======================================

Agreement stated honestly: the effective dose agrees within 4 % with both ⁸⁹Zr-trastuzumab
studies and is 14 % below ⁸⁹Zr-girentuximab (a different antibody with kidney uptake). This
closeness is partly a cancellation: the spherical 60–73 kg body absorbs more photon energy
than an anthropomorphic phantom (total-body dose 27 % above O'Donoghue's mean, above their
range), while the two-region biodistribution leaves out the blood pool, spleen and marrow
concentrations that raise the published heart, lung and marrow doses. The published values
also use other phantoms and, for OLINDA/EXM 1.x, ICRP 60 weights. So the tolerance asserted
is ±25 % on the effective dose (the published patient-to-patient spread: SD 12–14 %,
min–max −21 %/+19 % around the mean), the liver within the published patient range, and the
total-body overestimate asserted as a known bias (between +10 % and +50 %).
"""

from __future__ import annotations

import math

import pytest

from immunopet.dosimetry import (
    REST_OF_BODY,
    PublishedDose,
    dose_budget,
    estimate_dose,
    published_doses,
)
from phantoms import HALF_LIFE_S

S_PER_HOUR = 3600.0
MSV_PER_MBQ = 1.0e-3 / 1.0e6  # Sv/Bq in one mSv/MBq (and Gy/Bq in one mGy/MBq)

PHYSICAL_PER_S = math.log(2.0) / HALF_LIFE_S["Zr-89"]
BIOLOGICAL_PER_S = math.log(2.0) / (370.0 * S_PER_HOUR)  # O'Donoghue 2018, median
LIVER_FRACTION = 0.12  # Laforest 2016

WHOLE_BODY_TIAC_S = 1.0 / (PHYSICAL_PER_S + BIOLOGICAL_PER_S)
LIVER_TIAC_S = LIVER_FRACTION / PHYSICAL_PER_S
IGG_TIAC_S = {"liver": LIVER_TIAC_S, REST_OF_BODY: WHOLE_BODY_TIAC_S - LIVER_TIAC_S}

# O'Donoghue 2018 Table 2 (READ): mean and patient range, mGy/MBq.
ODONOGHUE_LIVER_RANGE = (0.90, 1.75)
ODONOGHUE_TOTAL_BODY_MEAN = 0.37


def _model_per_mbq() -> dict[str, float]:
    estimate = estimate_dose(IGG_TIAC_S, "Zr-89")
    return {
        "effective": estimate.effective_dose_sv / MSV_PER_MBQ,
        "liver": estimate.organ_doses_gy["liver"] / MSV_PER_MBQ,
        "total_body": estimate.organ_doses_gy["total_body"] / MSV_PER_MBQ,
    }


def test_biodistribution_inputs() -> None:
    assert pytest.approx(93.3, abs=0.1) == WHOLE_BODY_TIAC_S / S_PER_HOUR
    assert pytest.approx(13.6, abs=0.1) == LIVER_TIAC_S / S_PER_HOUR


@pytest.mark.parametrize("entry", published_doses("Zr-89"), ids=lambda entry: entry.key)
def test_effective_dose_within_25_percent_of_published(entry: PublishedDose) -> None:
    published = entry.effective_dose_sv_per_bq / MSV_PER_MBQ
    model = _model_per_mbq()["effective"]
    assert entry.confidence == "READ"
    assert model / published == pytest.approx(1.0, abs=0.25)


def test_effective_dose_of_trastuzumab_within_4_percent() -> None:
    """The observed agreement, kept as a regression guard (see the module docstring)."""
    model = _model_per_mbq()["effective"]
    for key in ("odonoghue2018_trastuzumab", "laforest2016_trastuzumab"):
        (entry,) = [e for e in published_doses("Zr-89") if e.key == key]
        assert model / (entry.effective_dose_sv_per_bq / MSV_PER_MBQ) == pytest.approx(
            1.0, abs=0.05
        )


def test_liver_is_the_highest_dose_organ_within_the_published_range() -> None:
    model = _model_per_mbq()
    assert estimate_dose(IGG_TIAC_S, "Zr-89").highest_dose_organ == "liver"
    assert all(entry.highest_dose_organ == "liver" for entry in published_doses("Zr-89"))
    low, high = ODONOGHUE_LIVER_RANGE
    assert low <= model["liver"] <= high


def test_total_body_dose_is_overestimated_by_the_spherical_body() -> None:
    ratio = _model_per_mbq()["total_body"] / ODONOGHUE_TOTAL_BODY_MEAN
    assert 1.10 <= ratio <= 1.50


def test_budget_of_a_car_t_schedule() -> None:
    """Four 37 MBq scans (baseline, CRS window, response, surveillance): about 4 × 18 mSv."""
    schedule = [("baseline", 37e6), ("CRS window", 37e6), ("response", 37e6)]
    schedule.append(("surveillance", 37e6))
    budget = dose_budget(schedule, IGG_TIAC_S, "Zr-89")
    per_scan_msv = budget.scans[0].effective_dose_sv * 1e3
    assert per_scan_msv == pytest.approx(18.1, abs=0.2)
    assert budget.total_effective_dose_sv * 1e3 == pytest.approx(4 * per_scan_msv)
    assert {entry.key for entry in budget.published} >= {"odonoghue2018_trastuzumab"}
