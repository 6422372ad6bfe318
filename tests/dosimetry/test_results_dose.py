"""The dose table of an analysed study: time integration, organ and lesion doses, published doses.

The study is ``tests/kinetics/results_document.py``: a ⁸⁹Zr-IgG (37 MBq) imaged on days 3, 5
and 7, with the simulator's vector model as truth. Expected values are computed here from the
model, ICRP 89 masses (literals of data/reference_organs.toml) and ICRP-107 data.

Published comparison (data/published_doses.toml, READ): effective dose of ⁸⁹Zr-trastuzumab
0.48 ± 0.06 mSv/MBq (range 0.38–0.57; O'Donoghue JA et al. J Nucl Med 2018;59:161) and
0.47 mSv/MBq (Laforest R et al. Mol Imaging Biol 2016;18:952), ⁸⁹Zr-girentuximab
0.57 ± 0.08 mSv/MBq (Merkx RIJ et al. EJNMMI 2021;48:3277); liver 1.32 mGy/MBq (range
0.90–1.75, O'Donoghue), the highest organ dose in all three; heart wall 1.12 (O'Donoghue) and
1.45 mGy/MBq (Merkx). With the published whole-body
retention half-life of ⁸⁹Zr-trastuzumab (median 370 h, O'Donoghue) this study's dose table
gives 0.565 mSv/MBq (ratios 1.18, 1.20, 0.99) and a liver dose of 1.18 mGy/MBq, within
O'Donoghue's range, and a heart dose of 1.31 mGy/MBq (the heart with its blood, from the
blood-pool sphere; the table's highest); the total-body dose is +27 % (spherical body: the bias documented in
tests/validation/test_published_doses.py). Without a retention half-life (no excretion, the
default upper bound) the effective dose is 0.703 mSv/MBq. Tolerance asserted: effective dose
−10 %/+30 % of each published mean with the retention half-life; liver within the range.
Note the vector model's IgG blood and whole-body kinetics were themselves set from O'Donoghue
2018 (data/vector_pk.toml), so this checks the engine and the results path, not the model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunopet.dosimetry import (
    REST_OF_BODY,
    URINARY_BLADDER_CONTENTS,
    dose_from_results,
    estimate_dose,
    lesion_absorbed_dose_gy,
    published_doses,
    time_integrated_activity_bq_s,
)
from immunopet.physics._nuclides import _icrp107_record
from kinetics.results_document import (
    INJECTED_BQ,
    SCAN_DAYS,
    VOIS,
    build_document,
    physical_bq,
)
from phantoms import HALF_LIFE_S

DAY = 86400.0
TIMES_S = np.array(SCAN_DAYS) * DAY
ZR89_S = HALF_LIFE_S["Zr-89"]
MSV_PER_MBQ = 1.0e-9  # Sv/Bq in one mSv/MBq
# Mean of the ICRP 89 male and female organ volumes (mass / 1.00 g/mL), mL.
REFERENCE_VOLUME_ML = {
    "liver": (1800 + 1400) / 2,
    "spleen": (150 + 130) / 2,
    "kidneys": (310 + 275) / 2,
    "muscle": (29000 + 17500) / 2,
    "heart": (840 + 620) / 2,  # heart with its blood: the blood-pool sphere stands in
}
#: Source region → the document's VOI (data/kinetics_analysis.toml [dose.substitutes]).
REGION_VOI = {"liver": "liver", "spleen": "spleen", "kidneys": "kidneys", "muscle": "muscle"}
REGION_VOI["heart"] = "blood_pool_reference"


@pytest.fixture(scope="module")
def table() -> dict:
    section = dose_from_results(build_document())
    assert section is not None
    (injection,) = section["injections"]  # FDG: one scan per injection, no dose table
    return injection


def test_source_organ_time_integrated_activity(table: dict) -> None:
    regions = {row["region"]: row for row in table["source_regions"]}
    assert set(regions) == set(REFERENCE_VOLUME_ML)  # the lesion is not a region
    assert regions["heart"]["voi_id"] == "blood_pool_reference"
    for organ, volume in REFERENCE_VOLUME_ML.items():
        activity = physical_bq(VOIS[REGION_VOI[organ]][0], TIMES_S) * volume
        # First value held back to the injection, trapezoids, physical decay after the last.
        head = TIMES_S[0] * activity[0]
        middle = np.sum(0.5 * (activity[1:] + activity[:-1]) * np.diff(TIMES_S))
        tail = activity[-1] * ZR89_S / math.log(2.0)
        assert regions[organ]["tia_bq_s"] == pytest.approx(head + middle + tail, rel=2e-4)
        assert regions[organ]["tiac_s"] == pytest.approx(
            regions[organ]["tia_bq_s"] / INJECTED_BQ, rel=1e-12
        )
    whole_body = INJECTED_BQ * ZR89_S / math.log(2.0)  # no excretion: physical decay only
    assert table["whole_body_tia_bq_s"] == pytest.approx(whole_body, rel=1e-4)
    in_organs = sum(row["tia_bq_s"] for row in regions.values())
    assert table["rest_of_body_tia_bq_s"] == pytest.approx(whole_body - in_organs, rel=1e-9)
    assert table["method"]["head"] == "constant"
    assert table["method"]["tail"] == "physical"


def test_organ_doses_are_the_mird_engine_of_those_activities(table: dict) -> None:
    tia = {row["region"]: row["tia_bq_s"] for row in table["source_regions"]}
    expected = estimate_dose({**tia, REST_OF_BODY: table["rest_of_body_tia_bq_s"]}, "Zr-89")
    assert table["effective_dose_sv"] == pytest.approx(expected.effective_dose_sv, rel=1e-12)
    assert table["absorbed_dose_gy"]["liver"] == pytest.approx(
        expected.organ_doses_gy["liver"], rel=1e-12
    )
    assert table["effective_dose_sv_per_bq"] == pytest.approx(
        table["effective_dose_sv"] / INJECTED_BQ, rel=1e-12
    )
    assert {entry["key"] for entry in table["published"]} >= {"odonoghue2018_trastuzumab"}


def test_lesion_dose_by_local_deposition(table: dict) -> None:
    (lesion,) = table["lesions"]
    assert lesion["voi_id"] == "L001"
    assert lesion["volume_ml"] == VOIS["L001"][1]
    # An upper and a lower bound from the raw ICRP-107 record: all positron and electron energy
    # absorbed (lower: no photons; upper: all photons absorbed too).
    emissions = _icrp107_record("Zr-89")["emissions"]
    j_per_mev = 1.602176634e-13  # CODATA 2018, exact
    photon_kinds = ("gamma", "X", "annihilation")
    total = j_per_mev * sum(
        e * y for kind, rows in emissions.items() if kind != "b-spectra" for e, y in rows
    )
    photons = j_per_mev * sum(e * y for kind in photon_kinds for e, y in emissions[kind])
    electrons = total - photons
    mass_kg = VOIS["L001"][1] / 1000.0
    low = lesion["tia_bq_s"] * electrons / mass_kg
    high = lesion["tia_bq_s"] * (electrons + photons) / mass_kg
    assert low < lesion["absorbed_dose_gy"] < low + 0.1 * (high - low)
    assert lesion["absorbed_dose_gy"] == pytest.approx(
        lesion_absorbed_dose_gy(lesion["tia_bq_s"], VOIS["L001"][1], "Zr-89"), rel=1e-12
    )


def test_effective_and_liver_dose_against_published_zr89_antibodies() -> None:
    section = dose_from_results(build_document(), whole_body_half_life_s=370.0 * 3600.0)
    assert section is not None
    (injection,) = section["injections"]
    effective = injection["effective_dose_sv_per_bq"] / MSV_PER_MBQ
    assert effective == pytest.approx(0.565, abs=0.005)
    for entry in published_doses("Zr-89"):
        ratio = effective / (entry.effective_dose_sv_per_bq / MSV_PER_MBQ)
        assert 0.9 <= ratio <= 1.3, (entry.key, ratio)
    liver = injection["absorbed_dose_gy"]["liver"] / INJECTED_BQ / MSV_PER_MBQ
    assert 0.90 <= liver <= 1.75  # O'Donoghue 2018 patient range
    # Heart (with its blood, from the blood-pool sphere): 1.31 mGy/MBq against the published
    # heart wall 1.12 (O'Donoghue mean) and 1.45 (Merkx); published dosimetry puts the liver
    # first, this table the heart (1.31 vs 1.18): within 20 % of each other in both.
    heart = injection["absorbed_dose_gy"]["heart"] / INJECTED_BQ / MSV_PER_MBQ
    assert 1.12 * 0.9 <= heart <= 1.45 * 1.1
    assert injection["highest_dose_organ"] in ("heart", "liver")
    # The default (no excretion) is an upper bound.
    default = dose_from_results(build_document())
    assert default is not None
    assert default["injections"][0]["effective_dose_sv_per_bq"] / MSV_PER_MBQ > effective


def test_whole_body_voi_replaces_the_assumption() -> None:
    document = build_document()
    for row in [m for m in document["measurements"] if m["voi_id"] == "liver"]:
        body = dict(row)
        body["voi_id"] = "whole_body"
        body["volume_ml"] = 70000.0
        body["total_uptake_bq"] = INJECTED_BQ * 0.5  # half the injected activity, at each scan
        document["measurements"].append(body)
    section = dose_from_results(document)
    assert section is not None
    injection = section["injections"][0]
    times = injection["time_s"]
    # Activity at the acquisition: 0.5 A0 decay-corrected to the scan start, i.e. physical then.
    activity = [0.5 * INJECTED_BQ] * 3
    expected = time_integrated_activity_bq_s(times, activity, half_life_s=ZR89_S)
    assert injection["whole_body_tia_bq_s"] == pytest.approx(expected, rel=1e-4)
    assert "whole-body VOI" in injection["method"]["whole_body"]


def test_no_dose_table_without_repeated_scans() -> None:
    assert dose_from_results(build_document(scan_days=(4.0,))) is None
    with pytest.raises(ValueError, match="whole_body_half_life_s"):
        dose_from_results(build_document(), whole_body_half_life_s=-1.0)


def _with_bladder_voi(urine_bq_per_ml: float) -> dict:
    """The study plus a urinary bladder VOI holding ``urine_bq_per_ml`` at every ⁸⁹Zr scan."""
    document = build_document()
    for row in [m for m in document["measurements"] if m["voi_id"] == "liver"]:
        bladder = dict(row)
        bladder.update(
            voi_id="urinary_bladder",
            volume_ml=140.0,  # eroded VOI: smaller than the contents
            mean_bq_per_ml=urine_bq_per_ml,
            mean_bq_per_ml_se=0.02 * urine_bq_per_ml,
            total_uptake_bq=urine_bq_per_ml * 140.0,
        )
        document["measurements"].append(bladder)
    return document


def test_bladder_voi_is_the_contents_source_not_the_wall() -> None:
    """The imaged bladder is urine: a contents source of 200 mL, the wall is its target."""
    urine_bq_per_ml = 2000.0  # at each acquisition (START decay correction)
    section = dose_from_results(_with_bladder_voi(urine_bq_per_ml))
    assert section is not None
    (injection,) = section["injections"]
    regions = {row["region"]: row for row in injection["source_regions"]}
    assert "urinary_bladder" not in regions  # never the wall region
    contents = regions[URINARY_BLADDER_CONTENTS]
    assert contents["voi_id"] == "urinary_bladder"
    assert contents["reference_volume_ml"] == 200.0  # data/urinary_bladder.toml, both sexes
    activity = np.full(TIMES_S.size, urine_bq_per_ml * 200.0)
    head = TIMES_S[0] * activity[0]
    middle = np.sum(0.5 * (activity[1:] + activity[:-1]) * np.diff(TIMES_S))
    tail = activity[-1] * ZR89_S / math.log(2.0)
    assert contents["tia_bq_s"] == pytest.approx(head + middle + tail, rel=1e-9)
    # The contents leave the rest of body.
    without = dose_from_results(build_document())
    assert without is not None
    assert injection["rest_of_body_tia_bq_s"] == pytest.approx(
        without["injections"][0]["rest_of_body_tia_bq_s"] - contents["tia_bq_s"], rel=1e-9
    )
    # Doses are the engine's with the contents source.
    tia = {row["region"]: row["tia_bq_s"] for row in injection["source_regions"]}
    expected = estimate_dose({**tia, REST_OF_BODY: injection["rest_of_body_tia_bq_s"]}, "Zr-89")
    wall = injection["absorbed_dose_gy"]["urinary_bladder"]
    assert wall == pytest.approx(expected.organ_doses_gy["urinary_bladder"], rel=1e-12)
    assert "urinary bladder contents" in injection["method"]["bladder"]
    # The mistake of putting the same decays on the 50 g / 40 g wall region gives them 7.4 times
    # more wall dose here (non-penetrating part: 1/m_W against 0.5/m_C, 2·200/45 = 8.9; ⁸⁹Zr's
    # photons: a 45 g sphere absorbs more than the 2.8 mm shell). Before this change the VOI was
    # not a source at all: its decays were spread over the rest of the body.
    wrong_tia = {k: v for k, v in tia.items() if k != URINARY_BLADDER_CONTENTS}
    wrong_tia["urinary_bladder"] = contents["tia_bq_s"]
    wrong = estimate_dose({**wrong_tia, REST_OF_BODY: injection["rest_of_body_tia_bq_s"]}, "Zr-89")
    baseline = without["injections"][0]["absorbed_dose_gy"]["urinary_bladder"]
    ratio = (wrong.organ_doses_gy["urinary_bladder"] - baseline) / (wall - baseline)
    assert 5.0 < ratio < 15.0
