"""Guidance rules end to end: simulated patients, the real ingest and analysis, events.

One patient per rule family, drawn from a built-in scenario with a reduced scan schedule (only
the scans the rule needs, paired into as few visits as the clinic would: FDG and an immuno-PET
tracer on the same morning; 8 mm voxels, every lesion used is ≥ 4 cm) so that each runs in
about 15 s, simulated with counting
noise and analysed by :func:`immunopet.pipeline.analyze_study`. Expected events come from the
simulator's ground truth (``truth.json``: scenario events, true lesion activity
concentrations), never from the rules. ``benchmarks/events.py`` runs whole cohorts.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.pipeline import AnalysisOptions, analyze_study
from immunopet.simulate import draw_cohort, load_scenario, write_reader_vois
from immunopet.simulate._patient import simulate_patient
from immunopet.simulate._scenario import PatientTracer, Scan
from immunopet.tracers import VectorFormat

pytestmark = pytest.mark.slow


def _analyse(
    root: Path, patient: Any, seed: int, lesion_tracer: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    truth = simulate_patient(patient, root / "P", rng=np.random.default_rng(seed), voxel_mm=8.0)
    result = analyze_study(root / "P", AnalysisOptions(lesion_tracer=lesion_tracer))
    return truth, result.to_dict()


def _track_of(results: dict[str, Any], truth: dict[str, Any], name: str) -> str:
    """The tracking ID whose centroid lies within max(radius, 10 mm) of a truth lesion."""
    for tp in truth["timepoints"].values():
        centre = tp["lesion_centroids_lps_mm"].get(name)
        if centre is None:
            continue
        radius = tp["lesion_diameters_mm"][name] / 2.0
        for lesion in results["lesions"]:
            for state in lesion["timepoints"].values():
                found = state.get("centroid_lps_mm")
                if found and np.linalg.norm(np.subtract(found, centre)) <= max(radius, 10.0):
                    return str(lesion["tracking_id"])
    raise AssertionError(f"{name} was not found")


def _events(results: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in results["events"] if e["type"] == kind]


def test_lineage_switch_of_a_simulated_b_all(tmp_path: Path) -> None:
    # lineage_switch.yaml: CD19 8000 -> 200 per cell and CD33 0 -> 10000 in the marrow by day
    # 60. Two visits: day -9 (FDG, CD19 IgG 26 h) and day 59 (CD19 IgG 26 h, CD33 IgG 97 h).
    scenario = load_scenario("lineage_switch")
    patient = draw_cohort(scenario, 1, seed=3)[0]
    scanner = scenario.scans[0].scanner
    patient = dataclasses.replace(
        patient,
        scans=(
            Scan("fdg", -9.0, (1.0,), scanner),
            Scan("cd19_igg", -10.0, (26.0,), scanner),
            Scan("cd19_igg", 58.0, (26.0,), scanner),
            Scan("cd33_igg", 55.0, (97.0,), scanner),
        ),
    )
    truth, results = _analyse(tmp_path, patient, 3)
    marrow = _track_of(results, truth, "marrow_pelvis")
    switches = {e["voi_id"]: e for e in _events(results, "lineage_switch")}
    assert marrow in switches
    event = switches[marrow]
    assert event["day"] == pytest.approx(59.04, abs=0.01)  # the day-59 visit
    assert event["evidence"]["target"] == "CD33"
    assert event["evidence"]["lymphoid_loss"]["target"] == "CD19"
    # Truth: the marrow's CD19 IgG concentration fell, CD33 IgG is above the blood pool.
    cd19 = [s for s in truth["scans"] if s["tracer"] == "cd19_igg"]
    assert (
        cd19[1]["lesion_bq_per_ml"]["marrow_pelvis"] < cd19[0]["lesion_bq_per_ml"]["marrow_pelvis"]
    )
    (cd33,) = [s for s in truth["scans"] if s["tracer"] == "cd33_igg"]
    assert cd33["lesion_bq_per_ml"]["marrow_pelvis"] > cd33["organ_bq_per_ml"]["heart"]
    # Nothing outside the scenario's event types.
    assert {e["type"] for e in results["events"]} <= {ev["type"] for ev in truth["events"]}


def test_checkpoint_upregulation_and_activation_of_a_simulated_patient(tmp_path: Path) -> None:
    # t_cell_exhaustion.yaml: PD-L1 2000 -> 20000 per cell in the mesenteric mass by day 21
    # (pd_l1_per_cell, which the PD-L1 IgG binds). A granzyme B PET on day 7
    # (trogocytosis.yaml's tracer) shows the CAR T cells in the lesions.
    # Visits: day -13 (FDG, PD-L1 IgG 98 h), day 7 (granzyme B 1 h), day 25 (PD-L1 IgG 98 h).
    scenario = load_scenario("t_cell_exhaustion")
    # Seed 1: a patient whose CAR T cells expand (8.5e9 live cells in the mass on day 7).
    patient = draw_cohort(scenario, 1, seed=1)[0]
    granzyme = PatientTracer(
        "granzyme_b",
        "[68Ga]Ga-NOTA-GZP",
        VectorFormat("peptide"),
        "granzyme B",
        "Ga-68",
        150.0,
        None,
    )
    scanner = scenario.scans[0].scanner
    patient = dataclasses.replace(
        patient,
        tracers=(*patient.tracers, granzyme),
        scans=(
            Scan("fdg", -13.0, (1.0,), scanner),
            Scan("pd_l1_igg", -17.0, (98.0,), scanner),
            Scan("pd_l1_igg", 21.0, (98.0,), scanner),
            Scan("granzyme_b", 7.0, (1.0,), scanner),
        ),
    )
    truth, results = _analyse(tmp_path, patient, 1)
    mass = _track_of(results, truth, "mesenteric_mass")
    (event,) = [e for e in _events(results, "checkpoint_upregulation") if e["voi_id"] == mass]
    assert event["day"] == pytest.approx(25.08, abs=0.01)  # the day-25 visit
    assert event["evidence"]["target"] == "PD-L1"
    assert event["evidence"]["stratum_current"] in ("high", "low")
    pd_l1 = [s for s in truth["scans"] if s["tracer"] == "pd_l1_igg"]
    true_rise = (
        pd_l1[1]["lesion_bq_per_ml"]["mesenteric_mass"]
        / pd_l1[0]["lesion_bq_per_ml"]["mesenteric_mass"]
    )
    # The measured rise is beyond the threshold and below the true one: the lesion shrinks
    # (x0.82 by day 25) inside the VOI carried from the baseline FDG scan (partial volume).
    measured = event["evidence"]["current"] / event["evidence"]["baseline"]
    assert 1.0 + event["evidence"]["threshold"] < measured <= true_rise * 1.1
    activated = {e["voi_id"] for e in _events(results, "t_cell_activation")}
    (gzp,) = [s for s in truth["scans"] if s["tracer"] == "granzyme_b"]
    # Truth: CAR T cells carry granzyme B into the mass, well above the blood pool.
    true_ratio = gzp["lesion_bq_per_ml"]["mesenteric_mass"] / gzp["organ_bq_per_ml"]["heart"]
    assert true_ratio > 1.5
    assert mass in activated
    for e in _events(results, "t_cell_activation"):
        assert e["evidence"]["signature"] == "node_not_measured"  # no draining-node VOI


def test_on_target_off_tumor_of_a_simulated_patient(tmp_path: Path) -> None:
    # on_target_off_tumor.yaml: CAIX CAR T cells; CD8 minibody uptake of the liver x1.8 from
    # day 3 (T cells in the CAIX-positive bile ducts); FDG finds the lung metastasis.
    # Visits: day -3 (FDG 1 h, CD8 minibody 6 h), day 6 (CD8 minibody 6 h).
    scenario = load_scenario("on_target_off_tumor")
    patient = draw_cohort(scenario, 1, seed=7)[0]
    scanner = scenario.scans[0].scanner
    patient = dataclasses.replace(
        patient,
        scans=(
            Scan("fdg", -3.0, (1.0,), scanner),
            Scan("cd8_minibody", -3.0, (6.0,), scanner),
            Scan("cd8_minibody", 6.0, (6.0,), scanner),
        ),
    )
    _, results = _analyse(tmp_path, patient, 7)
    (event,) = _events(results, "on_target_off_tumor")
    assert (event["site"], event["day"]) == ("liver", pytest.approx(6.25))
    assert event["evidence"]["relative_change"] > event["evidence"]["threshold"] > 0
    # The CD8 minibody does not make negative homing calls (data/guidance.toml).
    assert not _events(results, "homing_failure")


def test_hypoxia_of_a_simulated_solid_tumour(tmp_path: Path) -> None:
    # hypoxic_solid_tumor.yaml: HER2 CAR T cells; CAIX (HIF-1 target) in the hypoxic core of the
    # thigh mass. One visit on day -13: FDG 1 h and 89Zr-girentuximab 97 h after injection.
    scenario = load_scenario("hypoxic_solid_tumor")
    patient = draw_cohort(scenario, 1, seed=11)[0]
    scanner = scenario.scans[0].scanner
    patient = dataclasses.replace(
        patient,
        scans=(Scan("fdg", -13.0, (1.0,), scanner), Scan("caix_igg", -17.0, (97.0,), scanner)),
    )
    truth, results = _analyse(tmp_path, patient, 11)
    mass = _track_of(results, truth, "thigh_mass")
    (event,) = _events(results, "hypoxia")
    assert (event["voi_id"], event["day"]) == (mass, pytest.approx(-12.96, abs=0.01))
    assert event["evidence"]["basis"] == "CAIX surrogate"
    (caix,) = [s for s in truth["scans"] if s["tracer"] == "caix_igg"]
    assert caix["lesion_bq_per_ml"]["thigh_mass"] > caix["organ_bq_per_ml"]["heart"]


# -- mice: reporter-gene homing and direct-label homing failure --------------------------------
# Patients drawn as benchmarks/events.py draws them (cohort seed 20260601 + the scenario's index
# among the built-in ones, simulation seed 20260601 + 1000 x that index + the patient's).


def _mouse(
    root: Path, name: str, index: int, patient_index: int = 0
) -> tuple[Path, dict[str, Any]]:
    cohort = draw_cohort(load_scenario(name), patient_index + 1, seed=20260601 + index)
    patient = cohort[patient_index]
    rng = np.random.default_rng(20260601 + 1000 * index + patient_index)
    truth = simulate_patient(patient, root / "M", rng=rng, voxel_mm=None)
    return root / "M", truth


def test_reporter_homing_of_a_simulated_mouse(tmp_path: Path) -> None:
    # reporter_homing.yaml: hNET CAR T cells imaged with [18F]MFBG on days -1, 1, 4, 7, 14; the
    # 8 mm flank tumour shows only once the cells are in it. The mouse's detection scale
    # (lesion_detection.toml [species.mouse]) finds it; its site is measured with the nearest
    # visit's VOI where the scan did not find it (lesion_found false), so the rise from the
    # pre-infusion scan is homing. The reader's organ VOIs exclude the heart, liver, kidneys
    # and bladder (MFBG's physiological uptake) and give the spleen for expansion.
    study, truth = _mouse(tmp_path, "reporter_homing", 9)
    with pytest.raises(InputError, match="no lesion VOI in the study's masks"):
        analyze_study(study, AnalysisOptions(lesion_tracer="mfbg", lesion_vois="masks"))
    write_reader_vois(study, truth)
    results = analyze_study(study, AnalysisOptions(lesion_tracer="mfbg")).to_dict()
    assert "0.38" in results["methods"]["detection_length_scale"]
    tumour = _track_of(results, truth, "flank_tumor")
    rows = [
        m for m in results["measurements"] if m["voi_type"] == "lesion" and m["voi_id"] == tumour
    ]
    assert len(rows) == len(results["timepoints"])  # every visit, found or not
    pre = next(m for m in rows if m["day"] < 0)
    assert pre["lesion_found"] is False
    assert "not found at this visit" in pre["voi_source"]
    homing = _events(results, "car_t_homing")
    assert [e["voi_id"] for e in homing] == [tumour]  # no organ called a homed lesion
    evidence = homing[0]["evidence"]
    assert evidence["baseline_day"] == pytest.approx(pre["day"])
    # Truth: the tumour's MFBG concentration per injected activity rose by more than the
    # rule's threshold between the two scans it compared.
    by_day = {round(s["day"], 2): s for s in truth["scans"]}
    before, after = by_day[round(pre["day"], 2)], by_day[round(homing[0]["day"], 2)]
    true_rise = (after["lesion_bq_per_ml"]["flank_tumor"] / after["injected_activity_bq"]) / (
        before["lesion_bq_per_ml"]["flank_tumor"] / before["injected_activity_bq"]
    ) - 1.0
    assert true_rise > evidence["threshold_relative_increase"]
    assert evidence["relative_change"] > evidence["threshold_relative_increase"]
    assert any(e["site"] == "spleen" for e in _events(results, "car_t_expansion"))
    # Inter-lesion spread counts only lesions found at the visit.
    spread_pre = [r for r in results["lesion_spread"] if r["timepoint_id"] == pre["timepoint_id"]]
    assert all(tumour not in r["lesions"] for r in spread_pre)


def test_homing_failure_of_a_simulated_mouse_with_the_readers_tumour_vois(tmp_path: Path) -> None:
    # poor_homing.yaml: 89Zr-oxine CAR T cells (2-10 % of typical homing) scanned 2 h to 6 d
    # after infusion; the tumour cannot be found on the cell scan, so the reader draws it (and
    # the organs) and the analysis uses the reader's lesion VOIs only. Weist 2018 measured a
    # 9-fold tumour-to-muscle ratio for homing PSCA CAR T cells; the rule calls failure when the
    # upper bound of the ratio is below 2, or the upper bound of the tumour's SUV below 1 (no
    # more labelled cells per gram than the body's average; data/guidance.toml [homing_failure]).
    # The third patient: 2.8 % of the simulator's typical homing (the scenario draws 2-10 %).
    study, truth = _mouse(tmp_path, "poor_homing", 8, patient_index=2)
    write_reader_vois(study, truth, lesions=True)
    results = analyze_study(
        study, AnalysisOptions(lesion_tracer="zr_oxine_cells", lesion_vois="masks")
    ).to_dict()
    (lesion,) = results["lesions"]
    first = next(s for s in lesion["timepoints"].values() if s["detection"])
    assert first["detection"]["method"] == "reader_voi"
    assert "flank_tumor" in first["detection"]["source"]
    (event,) = _events(results, "homing_failure")
    assert (event["voi_id"], event["day"]) == (lesion["tracking_id"], pytest.approx(2.0))
    assert event["evidence"]["upper_bound_ratio"] < 2.0
    assert event["evidence"]["upper_bound_suv"] < 1.0
    # Truth at that scan: the tumour holds far fewer cells per mL than a 9-fold homing would
    # give, fewer than the body's average (true SUV < 1: label per mL over the label in the body
    # per gram), and the measured values are below the true ones (partial volume of the 8 mm
    # tumour).
    scan = next(s for s in truth["scans"] if s["day"] == pytest.approx(2.0))
    true_ratio = scan["lesion_bq_per_ml"]["flank_tumor"] / scan["organ_bq_per_ml"]["muscle"]
    body_bq_per_g = (scan["cell_bound_bq"] + scan["free_label_bq"]) / (
        truth["patient"]["weight_kg"] * 1000.0
    )
    true_suv = scan["lesion_bq_per_ml"]["flank_tumor"] / body_bq_per_g
    assert true_ratio < 9.0
    assert true_suv < 1.0
    (tumour,) = [
        m
        for m in results["measurements"]
        if m["voi_id"] == lesion["tracking_id"] and m["day"] == pytest.approx(2.0)
    ]
    assert tumour["suv_mean"] < true_suv
    # The reader's muscle VOI, 3 mm from every other structure, reads the true muscle
    # concentration (the whole muscle label read 1.7 times it: spill-in from spleen and liver).
    (muscle,) = [
        m
        for m in results["measurements"]
        if m["voi_id"] == "muscle" and m["day"] == pytest.approx(2.0)
    ]
    assert muscle["mean_bq_per_ml"] == pytest.approx(scan["organ_bq_per_ml"]["muscle"], rel=0.06)


def test_a_readers_tumour_voi_replaces_the_detections_it_overlaps(tmp_path: Path) -> None:
    # reporter_homing with the reader's tumour VOI as well: in the default mode the detection
    # still runs, and where it finds the tumour (days 4 and 7 on the MFBG scan) the reader's
    # VOI takes its place: one track at the tumour, the reader's VOI at every visit, of the
    # tumour's true volume (pi/6 d^3 on the 0.5 mm label grid, resampled to the PET's).
    study, truth = _mouse(tmp_path, "reporter_homing", 9)
    write_reader_vois(study, truth, lesions=True)
    results = analyze_study(study, AnalysisOptions(lesion_tracer="mfbg")).to_dict()
    at_tumour = []
    for lesion in results["lesions"]:
        try:
            _track_of({"lesions": [lesion]}, truth, "flank_tumor")
        except AssertionError:
            continue
        at_tumour.append(lesion)
    (track,) = at_tumour
    states = list(track["timepoints"].values())
    assert len(states) == len(results["timepoints"])
    assert {state["detection"]["method"] for state in states} == {"reader_voi"}
    diameter_mm = next(iter(truth["timepoints"].values()))["lesion_diameters_mm"]["flank_tumor"]
    true_ml = math.pi / 6.0 * diameter_mm**3 / 1000.0
    for state in states:
        assert state["volume_ml"] == pytest.approx(true_ml, rel=0.15)
