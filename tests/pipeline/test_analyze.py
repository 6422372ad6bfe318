"""`immunopet analyze` end to end on a simulated patient: detection, tracking, measurement, outputs.

A small virtual cohort runs here (CI); ``benchmarks/detection.py`` runs the full one. The
patient comes from the built-in ``cd19_negative_relapse`` scenario with the clinical pairing
of the benchmark: at each visit FDG (1 h) and the ⁶⁴Cu-CD19 antibody (injected the day
before), one CT per visit, clinical activities and counting noise.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from immunopet.cli import main
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._patient import simulate_patient
from immunopet.simulate._scenario import Scan

VISITS = (-7.0, 28.0, 180.0)


def _patient(seed: int) -> Any:
    scenario = load_scenario("cd19_negative_relapse")
    patient = draw_cohort(scenario, 1, seed=seed)[0]
    scanner = scenario.scans[0].scanner
    scans = tuple(
        scan
        for day in VISITS
        for scan in (
            Scan("fdg", day, (1.0,), scanner),
            Scan("cd19_igg", day - 1.0, (26.0,), scanner),
        )
    )
    return dataclasses.replace(patient, scans=scans)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("analyze")
    truth = simulate_patient(
        _patient(4), root / "P0001", rng=np.random.default_rng(4), voxel_mm=6.0
    )
    out = root / "out"
    assert main(["analyze", str(root / "P0001"), "--out", str(out), "--quiet"]) == 0
    return root, out, truth


def _results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def _truth_lesions(truth: dict[str, Any], folder: str) -> dict[str, tuple[list[float], float]]:
    tp = truth["timepoints"][folder]
    return {
        name: (tp["lesion_centroids_lps_mm"][name], tp["lesion_diameters_mm"][name])
        for name in tp["lesion_diameters_mm"]
    }


def test_results_validate_against_the_schema(analysed: tuple[Path, Path, dict[str, Any]]) -> None:
    import jsonschema

    from immunopet.result import results_schema

    _, out, _ = analysed
    jsonschema.validate(_results(out), results_schema())
    assert {p.name for p in out.iterdir()} >= {
        "results.json",
        "measurements.csv",
        "lesions.csv",
        "immunopet.db",
    }


def test_lesions_of_15_mm_or_more_are_found_and_tracked(
    analysed: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, _, truth = analysed
    results = _results(analysed[1])
    folders = sorted(truth["timepoints"], key=lambda k: truth["timepoints"][k]["day"])
    assert [round(tp["day"], 2) for tp in results["timepoints"]] == [
        round(truth["timepoints"][f]["day"], 2) for f in folders
    ]
    false_positives = 0
    matched: dict[str, set[str]] = {}
    for tp, folder in zip(results["timepoints"], folders, strict=True):
        expected = _truth_lesions(truth, folder)
        found = [
            (lesion["tracking_id"], lesion["timepoints"][tp["timepoint_id"]])
            for lesion in results["lesions"]
            if lesion["timepoints"][tp["timepoint_id"]]["detected"]
        ]
        used = set()
        for name, (centre, diameter) in expected.items():
            near = [
                tid
                for tid, state in found
                if np.linalg.norm(np.subtract(state["centroid_lps_mm"], centre))
                <= max(diameter / 2.0, 10.0)
            ]
            if diameter >= 15.0:
                assert near, f"{name} ({diameter:.0f} mm) missed at {tp['timepoint_id']}"
            for tid in near:
                matched.setdefault(name, set()).add(tid)
                used.add(tid)
        false_positives += len({tid for tid, _ in found} - used)
    # <= 0.1 false lesions per scan over the 3 FDG scans: none here.
    assert false_positives == 0
    # One tracking ID per true lesion across timepoints.
    assert all(len(ids) == 1 for ids in matched.values()), matched


def test_suv_means_match_truth(analysed: tuple[Path, Path, dict[str, Any]]) -> None:
    _, out, truth = analysed
    results = _results(out)
    by_day = {round(s["day"], 2): s for s in truth["scans"] if s["tracer"] == "fdg"}
    tp_day = {tp["timepoint_id"]: round(tp["day"], 2) for tp in results["timepoints"]}
    checked = 0
    for m in results["measurements"]:
        if m["tracer"] != "fdg":
            continue
        scan = by_day[tp_day[m["timepoint_id"]]]
        if m["voi_type"] == "organ" and m["voi_id"] == "spleen":
            # Organ means within 5 % of the true SUV.
            assert m["suv_mean"] == pytest.approx(scan["suv_bw"]["spleen"], rel=0.05)
            checked += 1
    assert checked == len(VISITS)


def test_database_is_updated_not_duplicated(
    analysed: tuple[Path, Path, dict[str, Any]],
) -> None:
    from immunopet.store import default_url, load_results

    root, out, _ = analysed
    first = _results(out)
    assert main(["analyze", str(root / "P0001"), "--out", str(out), "--quiet"]) == 0
    stored = load_results(default_url(out), first["study"]["study_key"])
    assert len(stored["measurements"]) == len(first["measurements"])
    assert [m["suv_mean"] for m in stored["measurements"]] == [
        m["suv_mean"] for m in first["measurements"]
    ]


def test_seg_output_passes_strict_reading_and_highdicom(
    analysed: tuple[Path, Path, dict[str, Any]],
) -> None:
    import highdicom as hd
    import pydicom
    from pydicom import config

    _, out, _ = analysed
    segs = sorted(out.glob("*_vois_seg.dcm"))
    assert len(segs) == len(VISITS)
    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        for path in segs:
            ds = pydicom.dcmread(path)
            for element in ds.iterall():
                _ = element.value
    finally:
        config.settings.reading_validation_mode = previous
    seg = hd.seg.segread(segs[0])
    labels = {seg.get_segment_description(n).segment_label for n in seg.segment_numbers}
    assert "L001" in labels


def test_sr_reports_the_measurements_of_results_json(
    analysed: tuple[Path, Path, dict[str, Any]],
) -> None:
    import pydicom
    from pydicom import config

    from immunopet.io.dicom import read_measurement_report

    _, out, _ = analysed
    results = _results(out)
    reports = sorted(out.glob("*_measurements_sr.dcm"))
    assert len(reports) == len(VISITS)
    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        for path in reports:
            for element in pydicom.dcmread(path).iterall():
                _ = element.value
    finally:
        config.settings.reading_validation_mode = previous
    measured = {(m["timepoint_id"], m["voi_id"], m["tracer"]): m for m in results["measurements"]}
    uids: dict[str, set[str]] = {}
    compared = 0
    for path in reports:
        for row in read_measurement_report(path):
            m = measured[(row["timepoint_id"], row["tracking_id"], row["tracer"])]
            if row["measurement"] in m and m[row["measurement"]] is not None:
                assert row["value"] == pytest.approx(m[row["measurement"]], rel=1e-12)
                compared += 1
            uids.setdefault(row["tracking_id"], set()).add(row["tracking_uid"])
    assert compared > 50
    # One tracking UID per VOI across the timepoints' reports.
    assert all(len(found) == 1 for found in uids.values())
    assert "L001" in uids


@pytest.mark.slow
def test_killed_run_leaves_output_and_database_as_they_were(
    analysed: tuple[Path, Path, dict[str, Any]],
) -> None:
    import hashlib

    root, out, _ = analysed

    def digest(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    before = digest(out)
    command = [sys.executable, "-m", "immunopet", "analyze", str(root / "P0001"), "--out", str(out)]
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    # Kill it once it is past loading (registration or later): mid-run.
    deadline = time.monotonic() + 300
    for line in child.stderr:
        if line.startswith(("register", "measure")) or time.monotonic() > deadline:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert digest(out) == before


def test_antigen_escape_events_match_the_scenario(
    analysed: tuple[Path, Path, dict[str, Any]],
) -> None:
    # cd19_negative_relapse: the mediastinal mass loses 95 % of its CD19 by day 90 (flagged on
    # the day-180 visit, the first CD19 scan after it); a CD19-negative liver lesion appears on
    # day 150 (flagged on day 180). Nothing else is an antigen-escape event.
    _, out, truth = analysed
    results = _results(out)
    events = [(e["type"], e["voi_id"], round(e["day"])) for e in results["events"]]
    folder = max(truth["timepoints"], key=lambda k: truth["timepoints"][k]["day"])
    centres = truth["timepoints"][folder]["lesion_centroids_lps_mm"]

    def track_of(name: str) -> str:
        for lesion in results["lesions"]:
            for state in lesion["timepoints"].values():
                centre = state.get("centroid_lps_mm")
                if centre and np.linalg.norm(np.subtract(centre, centres[name])) < 10.0:
                    return str(lesion["tracking_id"])
        raise AssertionError(name)

    assert sorted(events) == sorted(
        [
            ("antigen_loss", track_of("mediastinal_mass"), 180),
            ("new_antigen_negative_lesion", track_of("liver_new"), 180),
        ]
    )
    for event in results["events"]:
        evidence = event["evidence"]
        assert evidence["tracer"] == "cd19_igg"
        assert evidence["relative_change"] < -evidence["threshold_relative_decrease"]
        assert 0.95 < event["confidence"] <= 1.0
    rows = (out / "events.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + len(events)


@pytest.fixture(scope="module")
def crs_analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    root = tmp_path_factory.mktemp("crs")
    patient = draw_cohort(load_scenario("crs"), 1, seed=2)[0]
    truth = simulate_patient(patient, root / "P0001", rng=np.random.default_rng(2), voxel_mm=6.0)
    out = root / "out"
    assert main(["analyze", str(root / "P0001"), "--out", str(out), "--quiet"]) == 0
    return truth, _results(out)


def test_crs_expansion_and_homing_events_match_the_scenario(
    crs_analysed: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    truth, results = crs_analysed
    found = {(e["type"], e.get("site") or e["voi_id"], round(e["day"])) for e in results["events"]}
    lesion = next(lesion["tracking_id"] for lesion in results["lesions"])
    # Scenario truth (crs.yaml): spleen and marrow FDG up x2.0 / x1.8 on the day-4 FDG scan;
    # CAR T cells expand in the spleen (first CD8 scan after infusion: day 6) and home to the
    # mediastinal mass. The liver (x1.3) is below FDG repeatability (+32 % at 95 %), and the
    # phantom's lymph nodes are not segmented: those two are not expected.
    assert {
        ("crs_inflammation", "spleen", 4),
        ("crs_inflammation", "bone_marrow", 4),
        ("car_t_expansion", "spleen", 6),
        ("car_t_homing", lesion, 6),
    } <= found
    assert {kind for kind, _, _ in found} <= {event["type"] for event in truth["events"]}
    for event in results["events"]:
        assert (
            event["evidence"]["relative_change"] > event["evidence"]["threshold_relative_increase"]
        )


def test_report_images_reproduce_the_measured_suvs(
    analysed: tuple[Path, Path, dict[str, Any]],
) -> None:
    """images/: each lesion's SUVmax and SUVmean recomputed from the written SUV volume and VOI map.

    The NIfTI SUV volumes are what the report shows; they must be the volumes measured.
    """
    import nibabel as nib

    from immunopet.image import Quantity
    from immunopet.io.nifti import read_nifti

    _, out, _ = analysed
    results = _results(out)
    index = json.loads((out / "images" / "index.json").read_text(encoding="utf-8"))
    assert index["lesion_tracer"] == results["study"]["lesion_tracer"] == "fdg"
    assert set(index["timepoints"]) == {tp["timepoint_id"] for tp in results["timepoints"]}
    checked = 0
    for m in results["measurements"]:
        entry = index["timepoints"][m["timepoint_id"]]
        if m["voi_type"] != "lesion" or m["voi_source"] != "detected" or entry["vois"] is None:
            continue
        suv = read_nifti(out / entry["suv"][m["tracer"]], quantity=Quantity.SUV_BW).array
        labels = read_nifti(out / entry["vois"], quantity=Quantity.UNITLESS).array
        names = json.loads((out / entry["voi_names"]).read_text(encoding="utf-8"))
        label = next(int(k) for k, v in names.items() if v == m["voi_id"])
        voxels = suv[labels == label]
        assert voxels.size == m["n_voxels"]
        assert float(voxels.max()) == pytest.approx(m["suv_max"], rel=1e-5)
        assert float(voxels.mean()) == pytest.approx(m["suv_mean"], rel=1e-5)
        ct = read_nifti(out / entry["ct"], quantity=Quantity.HOUNSFIELD)
        assert nib.load(out / entry["ct"]).get_data_dtype() == np.int16
        assert ct.shape == suv.shape
        assert float(ct.array.min()) >= -1024.0
        checked += 1
    assert checked >= 3


def test_partial_volume_corrected_lesion_means_match_truth(
    analysed: tuple[Path, Path, dict[str, Any]],
) -> None:
    """FDG lesions >= 30 mm (5 voxels across at 6 mm): GTM-corrected SUVmean within 10 % of truth.

    The simulator states its resolution in study.yaml (psf_fwhm_mm), so analyze corrects; the
    uncorrected VOI mean of the same lesions lies below the truth (spill-out), the corrected one
    recovers it.
    """
    _, out, truth = analysed
    results = _results(out)
    assert "Rousset" in results["methods"]["partial_volume"]
    folders = sorted(truth["timepoints"], key=lambda k: truth["timepoints"][k]["day"])
    scans = {round(s["day"], 2): s for s in truth["scans"] if s["tracer"] == "fdg"}
    checked = 0
    for tp, folder in zip(results["timepoints"], folders, strict=True):
        for name, (centre, diameter) in _truth_lesions(truth, folder).items():
            if diameter < 30.0:
                continue
            tid = next(
                lesion["tracking_id"]
                for lesion in results["lesions"]
                if lesion["timepoints"][tp["timepoint_id"]]["detected"]
                and np.linalg.norm(
                    np.subtract(lesion["timepoints"][tp["timepoint_id"]]["centroid_lps_mm"], centre)
                )
                <= diameter / 2.0
            )
            m = next(
                m
                for m in results["measurements"]
                if m["voi_id"] == tid
                and m["timepoint_id"] == tp["timepoint_id"]
                and m["tracer"] == "fdg"
            )
            true_suv = scans[round(tp["day"], 2)]["suv_bw"][name]
            assert m["suv_mean_pvc"] == pytest.approx(true_suv, rel=0.10)
            assert abs(m["suv_mean_pvc"] - true_suv) < abs(m["suv_mean"] - true_suv)
            assert m["suv_mean_pvc_se"] > m["suv_mean_se"] > 0.0
            checked += 1
    assert checked >= 2


def test_an_organ_no_visit_could_segment_is_reported(
    analysed: tuple[Path, Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The analysed study finds every organ: no such warning.
    root, out, _ = analysed
    assert not any("not found at" in warning for warning in _results(out)["warnings"])
    # The same study with a segmentation that never finds the blood pool (as when the lungs
    # were cut in two, trogocytosis P0018): one warning names the organ, every visit and the
    # reason, and no measurement of it exists.
    import immunopet.lesions as lesions
    from immunopet.pipeline import analyze_study

    segment = lesions.segment_organs

    def without_blood_pool(*args: Any, **kwargs: Any) -> Any:
        found = segment(*args, **kwargs)
        found.masks.pop("blood_pool_reference", None)
        found.not_found["blood_pool_reference"] = "no mediastinal region (test)"
        return found

    monkeypatch.setattr(lesions, "segment_organs", without_blood_pool)
    result = analyze_study(root / "P0001")
    (warning,) = [w for w in result.warnings if "not found at" in w]
    visits = sorted({m.timepoint_id for m in result.measurements})
    assert warning.startswith(
        f"organ 'blood_pool_reference' not found at {', '.join(visits)} "
        "(no mediastinal region (test))"
    )
    assert not any(m.voi_id == "blood_pool_reference" for m in result.measurements)
    assert all(m.lesion_to_blood is None for m in result.measurements)
