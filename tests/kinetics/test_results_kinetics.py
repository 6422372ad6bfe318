"""Curves, blood input and kinetics from a results document whose values are the vector model.

Truth: :class:`immunopet.tracers.TwoTissueVectorModel` (the simulator's model) for a ⁸⁹Zr-IgG
(see ``results_document.py``): every concentration the document holds is the model's, so
``curves_from_results`` must give it back exactly, and the Patlak K_i of the lesion must be the
model's tumour K_i up to the known bias of sparse late scans (+1.3 % noise-free on days 3, 5, 7
with the label loss known and the injection anchor; tests/kinetics/test_patlak.py).
"""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.kinetics import (
    blood_input,
    curves_from_results,
    injections_from_results,
    kinetics_from_results,
    load_results_document,
    point_sd,
)
from immunopet.result import results_schema, write_result_files
from kinetics.results_document import (
    HAEMATOCRIT,
    INJECTED_BQ,
    SCAN_DAYS,
    VOIS,
    ZR89_HALF_LIFE_S,
    build_document,
    decay_corrected_bq_per_ml,
    model,
    plasma_volume_ml,
    true_ki_ml_per_g_per_s,
    with_changes,
)

DAY = 86400.0
TIMES_S = np.array(SCAN_DAYS) * DAY


@pytest.fixture(scope="module")
def document() -> dict:
    return build_document()


# -- curves ---------------------------------------------------------------------------------------
def test_injections_group_scans_by_tracer_and_injection(document: dict) -> None:
    injections = injections_from_results(document)
    igg = [i for i in injections if i.tracer == "caix_igg"]
    fdg = [i for i in injections if i.tracer == "fdg"]
    assert len(igg) == 1
    assert len(fdg) == 3
    (zr,) = igg
    assert zr.time_s == pytest.approx(TIMES_S, rel=1e-12)
    assert zr.timepoint_ids == ("TP01", "TP02", "TP03")
    assert zr.half_life_s == pytest.approx(ZR89_HALF_LIFE_S, rel=1e-4)  # ICRP-107 78.41 h
    assert all(i.time_s.tolist() == [3600.0] for i in fdg)


@pytest.mark.parametrize("correction", ["START", "ADMIN"])
def test_curves_give_back_the_model(correction: str) -> None:
    document = build_document(decay_correction=correction)
    curves = {
        c.voi_id: c
        for c in curves_from_results(document, decay_corrected=True)
        if c.injection.tracer == "caix_igg"
    }
    assert next(iter(curves)) == "L001"  # lesions first
    for voi, (tissue, volume) in VOIS.items():
        expected = decay_corrected_bq_per_ml(tissue, TIMES_S)
        assert curves[voi].concentration_bq_per_ml == pytest.approx(expected, rel=1e-9)
        assert curves[voi].activity_bq == pytest.approx(expected * volume, rel=1e-9)
        assert curves[voi].time_s == pytest.approx(TIMES_S, rel=1e-12)
    physical = {
        c.voi_id: c
        for c in curves_from_results(document, decay_corrected=False, voi_type="organ")
        if c.injection.tracer == "caix_igg"
    }
    assert "L001" not in physical
    decay = 2.0 ** (-TIMES_S / ZR89_HALF_LIFE_S)
    liver = decay_corrected_bq_per_ml("liver", TIMES_S) * decay
    # Half-life of the nuclide database vs the literal of results_document: within 1e-4.
    assert physical["liver"].concentration_bq_per_ml == pytest.approx(liver, rel=1e-4)
    assert not physical["liver"].decay_corrected


def test_curve_uncertainty_and_point_sd(document: dict) -> None:
    (lesion,) = [
        c
        for c in curves_from_results(document)
        if c.voi_id == "L001" and c.injection.tracer == "caix_igg"
    ]
    # The document's count-statistics SE is 2 % of each value; immuno-PET wCV 10 % added.
    assert lesion.concentration_se_bq_per_ml == pytest.approx(
        0.02 * lesion.concentration_bq_per_ml, rel=1e-9
    )
    assert point_sd(lesion) == pytest.approx(
        math.hypot(0.02, 0.10) * lesion.concentration_bq_per_ml, rel=1e-9
    )
    payload = json.loads(json.dumps(lesion.to_dict(), allow_nan=False))
    assert payload["voi_id"] == "L001"
    assert len(payload["time_s"]) == 3


# -- blood input -------------------------------------------------------------------------------
def test_blood_input_is_the_model_plasma_with_the_injection_anchor(document: dict) -> None:
    (injection,) = [i for i in injections_from_results(document) if i.tracer == "caix_igg"]
    blood = blood_input(document, injection)
    assert blood.blood_voi == "blood_pool_reference"
    assert blood.haematocrit == HAEMATOCRIT
    assert blood.haematocrit_source == "manifest"
    # Cp(0) = A0 / V_plasma; the reference adult of 73 kg has the model's plasma volume.
    assert blood.anchor_plasma_bq_per_ml == pytest.approx(
        INJECTED_BQ / plasma_volume_ml(), rel=1e-9
    )
    plasma = model().plasma_percent_id_per_ml(TIMES_S) * INJECTED_BQ / 100.0
    assert blood.plasma.concentration(TIMES_S) == pytest.approx(plasma, rel=1e-9)
    assert blood.plasma.times_s.tolist() == [0.0, *TIMES_S.tolist()]
    assert blood.n_image_points == 3
    assert blood.n_samples == 0


def test_blood_samples_take_precedence_and_are_decay_corrected(document: dict) -> None:
    (injection,) = [i for i in injections_from_results(document) if i.tracer == "caix_igg"]
    hour = 3600.0
    plasma_1h = float(model().plasma_percent_id_per_ml(np.array([hour]))[0]) * INJECTED_BQ / 100.0
    measured = plasma_1h * (1.0 - HAEMATOCRIT) * 2.0 ** (-hour / ZR89_HALF_LIFE_S)
    changed = with_changes(
        document,
        blood_samples=[
            {
                "tracer": "caix_igg",
                "datetime": None,
                "time_after_injection_s": hour,
                "bq_per_ml": measured,
                "kind": "whole_blood",
            },
            {
                "tracer": "fdg",
                "datetime": None,
                "time_after_injection_s": hour,
                "bq_per_ml": 1.0,
                "kind": "plasma",
            },
        ],
    )
    blood = blood_input(changed, injection)
    assert blood.n_samples == 1
    assert blood.anchor_plasma_bq_per_ml is None  # a sample precedes the first scan
    assert float(blood.plasma.concentration([hour])[0]) == pytest.approx(plasma_1h, rel=1e-4)
    # A sample given by date-time after the injection is found the same way.
    (first,) = [tp for tp in changed["timepoints"] if tp["timepoint_id"] == "TP01"]
    injected = first["scans"][0]["injection_datetime"]
    by_date = with_changes(
        document,
        blood_samples=[
            {
                "tracer": "caix_igg",
                "datetime": injected.replace("T10:00", "T11:00"),
                "time_after_injection_s": None,
                "bq_per_ml": measured,
                "kind": "whole_blood",
            }
        ],
    )
    assert blood_input(by_date, injection).plasma.times_s.tolist() == blood.plasma.times_s.tolist()


def test_reference_haematocrit_is_assumed_with_a_warning(document: dict) -> None:
    (injection,) = [i for i in injections_from_results(document) if i.tracer == "caix_igg"]
    blood = blood_input(with_changes(document, hematocrit=None), injection)
    assert blood.haematocrit == 0.47  # ICRP 89 reference adult male (data/vector_pk.toml)
    assert any("haematocrit 0.47 assumed" in w for w in blood.warnings)


# -- kinetics ------------------------------------------------------------------------------------
def test_patlak_recovers_the_model_ki(document: dict) -> None:
    section = kinetics_from_results(document)
    assert section is not None
    (patlak,) = section["patlak"]
    assert patlak["vector_format"] == "igg"
    # Residualising 89Zr: loss half-life 300 h of data/vector_pk.toml.
    assert patlak["loss_rate_per_s"] == pytest.approx(math.log(2) / (300 * 3600.0), rel=1e-12)
    results = {r["voi_id"]: r for r in patlak["results"]}
    assert "blood_pool_reference" not in results
    lesion = results["L001"]
    bias = lesion["ki_ml_per_g_per_s"] / true_ki_ml_per_g_per_s() - 1.0
    assert 0.0 < bias < 0.03  # measured +1.7 %: +1.3 % of the plot, the rest the anchor chord
    low, high = lesion["ki_ci_ml_per_g_per_s"]
    assert low < true_ki_ml_per_g_per_s() < high
    assert lesion["se_method"] == "propagated"
    assert lesion["dof"] == 1
    liver_truth = model().parameters.ki_ml_per_g_per_s["liver"]
    assert results["liver"]["ki_ml_per_g_per_s"] == pytest.approx(liver_truth, rel=0.15)
    assert section["skipped"] == []  # FDG scans are single scans after their injections
    json.dumps(section, allow_nan=False)


@pytest.mark.slow
def test_patlak_bias_and_coverage_through_the_results_path() -> None:
    """Acceptance through the document: 300 noisy studies, 3 timepoints, bias and coverage.

    Noise 10 % per VOI value (lesion, organs and blood pool), the SDs the fit assumes (count SE
    2 % ⊕ wCV 10 %). Measured with this seed: mean K_i bias −0.8 % (Monte Carlo SE 1.1 %),
    95 % interval coverage 95.7 %, empirical SD 18.8 % of the truth against a mean propagated SE
    of 19.1 %.
    """
    rng = np.random.default_rng(20260311)
    truth = true_ki_ml_per_g_per_s()
    estimates, covered = [], 0
    for _ in range(300):
        section = kinetics_from_results(build_document(0.10, rng, counts=False), models=("patlak",))
        assert section is not None
        (lesion,) = [r for r in section["patlak"][0]["results"] if r["voi_id"] == "L001"]
        estimates.append(lesion["ki_ml_per_g_per_s"])
        low, high = lesion["ki_ci_ml_per_g_per_s"]
        covered += low <= truth <= high
    assert abs(np.mean(estimates) / truth - 1.0) <= 0.05
    assert 0.90 <= covered / 300 <= 0.98


def test_two_tissue_model_is_reported_not_identifiable_with_three_points(document: dict) -> None:
    section = kinetics_from_results(document, models=("2tc",))
    assert section is not None
    assert "patlak" not in section
    (compartment,) = section["compartment"]
    lesion = next(r for r in compartment["results"] if r["voi_id"] == "L001")
    assert lesion["n_points"] == 3
    assert lesion["blood_fraction"] == 0.05
    assert lesion["identifiable"] is False  # 3 points, 3 free parameters
    assert lesion["dof"] == 0


def test_cell_kinetics_of_the_typical_patient(document: dict) -> None:
    section = kinetics_from_results(document, models=("stein2019",))
    assert section is not None
    (cells,) = section["cell_kinetics"]
    assert cells["source"] == "qpcr"
    assert cells["value_unit"] == "copies/ug"
    # Stein 2019 Table 1 typical curve: the MAP estimate is the truth.
    assert cells["tmax_d"]["value"] == pytest.approx(9.3, rel=1e-3)
    assert cells["cmax"]["value"] == pytest.approx(24000.0, rel=1e-3)
    assert cells["cmax"]["ci_low"] < 24000.0 < cells["cmax"]["ci_high"]
    assert cells["non_expansion"] is False
    assert cells["relative_sd"] == 0.25  # qPCR acceptance CV (data/kinetics_analysis.toml)


def test_flat_counts_are_flagged_and_short_series_skipped(document: dict) -> None:
    flat = [
        {"day": d, "value": 40.0, "unit": "cells_per_ul", "source": "flow"}
        for d in (1.0, 4.0, 7.0, 10.0, 14.0, 28.0)
    ]
    short = [
        {"day": d, "value": 100.0, "unit": "copies_per_ug", "source": "qpcr"} for d in (3.0, 9.0)
    ]
    section = kinetics_from_results(
        with_changes(document, car_t_counts=flat + short), models=("stein2019",)
    )
    assert section is not None
    (cells,) = section["cell_kinetics"]
    assert cells["source"] == "flow"
    assert cells["prior"] == "stein2019_shape"
    assert cells["non_expansion"] is True
    (skip,) = section["skipped"]
    assert skip["source"] == "qpcr"
    assert "needs >= 3" in skip["reason"]


def test_tracers_that_are_not_residualising_antibodies_are_skipped(document: dict) -> None:
    changed = json.loads(json.dumps(document))
    for timepoint in changed["timepoints"]:
        for scan in timepoint["scans"]:
            if scan["tracer"] == "caix_igg":
                scan["agent"] = "[124I]I-girentuximab"  # an IgG with a non-residualising label
                scan["nuclide"] = "I-124"
    section = kinetics_from_results(changed, models=("patlak",))
    assert section is None
    changed_cells = kinetics_from_results(changed)
    assert changed_cells is not None
    assert changed_cells["patlak"] == []
    (skip,) = changed_cells["skipped"]
    assert "not residualising" in skip["reason"]
    for timepoint in changed["timepoints"]:
        for scan in timepoint["scans"]:
            scan["agent"] = (
                "[89Zr]Zr-unknown-mAb" if scan["tracer"] == "caix_igg" else scan["agent"]
            )
    (skip,) = kinetics_from_results(changed)["skipped"]  # type: ignore[index]
    assert "not in the tracer knowledge base" in skip["reason"]


def test_no_kinetics_without_repeated_scans_or_counts() -> None:
    document = build_document(scan_days=(4.0,), counts=False)
    assert kinetics_from_results(document) is None
    with pytest.raises(InputError, match="unknown kinetic model"):
        kinetics_from_results(document, models=("srtm",))  # type: ignore[arg-type]


def test_document_with_sections_validates_against_the_schema(document: dict) -> None:
    import jsonschema

    from immunopet.dosimetry import dose_from_results

    full = dict(document)
    full["kinetics"] = kinetics_from_results(document)
    full["dosimetry"] = dose_from_results(document)
    jsonschema.validate(json.loads(json.dumps(full, allow_nan=False)), results_schema())


# -- files -----------------------------------------------------------------------------------------
def test_measurements_csv_with_and_without_results_json(document: dict, tmp_path: Path) -> None:
    # One lesion row marked as the site of a lesion not found at that visit (lesion_found).
    document = copy.deepcopy(document)
    marked = next(m for m in document["measurements"] if m["voi_type"] == "lesion")
    marked["lesion_found"] = False
    write_result_files(document, tmp_path)
    from_json = curves_from_results(load_results_document(tmp_path))
    table = load_results_document(tmp_path / "measurements.csv")
    read_back = [m.get("lesion_found") for m in table["measurements"]]
    assert read_back == [m.get("lesion_found") for m in document["measurements"]]
    assert read_back.count(False) == 1
    from_csv = curves_from_results(table)
    assert [c.voi_id for c in from_csv] == [c.voi_id for c in from_json]
    for a, b in zip(from_csv, from_json, strict=True):
        assert a.concentration_bq_per_ml == pytest.approx(b.concentration_bq_per_ml, rel=1e-12)
    # A table on its own needs the scan columns.
    alone = tmp_path / "alone"
    alone.mkdir()
    with (tmp_path / "measurements.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    _write(alone / "m.csv", rows)
    with pytest.raises(InputError, match="injection of each scan is unknown"):
        load_results_document(alone / "m.csv")
    scans = {
        (tp["timepoint_id"], scan["tracer"]): scan
        for tp in document["timepoints"]
        for scan in tp["scans"]
    }
    for row in rows:
        scan = scans[(row["timepoint_id"], row["tracer"])]
        for key in (
            "nuclide",
            "injected_activity_bq",
            "injection_datetime",
            "scan_datetime",
            "agent",
            "weight_kg",
        ):
            row[key] = scan[key]
    _write(alone / "m.csv", rows)
    standalone = load_results_document(alone / "m.csv")
    curves = curves_from_results(standalone)
    assert [c.voi_id for c in curves] == [c.voi_id for c in from_json]
    section = kinetics_from_results(standalone, models=("patlak",))
    assert section is not None  # the agent column finds the vector format
    reference = kinetics_from_results(document, models=("patlak",))
    assert reference is not None
    assert section["patlak"][0]["results"][0]["ki_ml_per_g_per_s"] == pytest.approx(
        reference["patlak"][0]["results"][0]["ki_ml_per_g_per_s"], rel=1e-9
    )


def test_counts_table_is_read(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    _write(
        path,
        [
            {"day": d, "value": v, "unit": "copies_per_ug", "source": "qpcr"}
            for d, v in ((1, 10.0), (7, 5000.0), (14, 2000.0), (28, 300.0))
        ],
    )
    document = load_results_document(path)
    assert len(document["clinical"]["car_t_counts"]) == 4
    section = kinetics_from_results(document, models=("stein2019",))
    assert section is not None
    assert section["cell_kinetics"][0]["tmax_d"]["value"] > 1.0


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("{not json", ".json", "not valid JSON"),
        ("[1, 2]", ".json", "expected a JSON object"),
        ("a,b\n1,2\n", ".csv", "columns"),
        ("x", ".dcm", "expected a results folder"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, content: str, suffix: str, message: str) -> None:
    path = tmp_path / f"input{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_results_document(path)
    with pytest.raises(InputError, match=r"no results\.json"):
        load_results_document(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        load_results_document(tmp_path / "missing.csv")


def test_malformed_documents_name_the_field(document: dict) -> None:
    broken = json.loads(json.dumps(document))
    del broken["timepoints"][0]["scans"][0]["injection_datetime"]
    with pytest.raises(InputError) as caught:
        curves_from_results(broken)
    assert caught.value.field == "timepoints[0].scans[0].injection_datetime"
    broken = json.loads(json.dumps(document))
    broken["measurements"][0]["timepoint_id"] = "TP09"
    with pytest.raises(InputError, match="no scan of the document"):
        curves_from_results(broken)
    broken = json.loads(json.dumps(document))
    broken["timepoints"][1]["scans"][0]["scan_datetime"] = "2024-12-29T10:00:00"
    broken["timepoints"][1]["scans"][0]["injection_datetime"] = "2024-12-30T10:00:00"
    broken["timepoints"][1]["scans"][0]["decay_correction"] = "START"
    with pytest.raises(InputError, match="must follow the injection"):
        curves_from_results(broken)


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
