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
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from immunopet.pipeline import AnalysisOptions, analyze_study
from immunopet.simulate import draw_cohort, load_scenario
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
