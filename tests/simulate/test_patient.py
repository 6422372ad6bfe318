"""simulate_patient and `immunopet simulate`: scenario → DICOM PET/CT + truth.json, read back."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from immunopet.cli import main
from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import Quantity
from immunopet.io import load_scan, read_nifti
from immunopet.physics import decay_factor, nuclide
from immunopet.quant import standardize_scan
from immunopet.simulate import PatientSpec, Phantom, draw_cohort, list_scenarios, load_scenario
from immunopet.simulate._patient import (
    _as_written,
    _injected_activity_bq,
    _placed_lesions,
    _scan_concentrations,
    _simulated_acquisitions,
    _visit_phantom,
    _visits,
    simulate_patient,
)

VOXEL_MM = 12.0


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    scenario = load_scenario("complete_response")
    patient = draw_cohort(scenario, 1, seed=3)[0]
    # One FDG scan and one minibody scan keep the test fast.
    scans = (scenario.scans[0], dataclasses.replace(scenario.scans[4], scan_delays_h=(24.0,)))
    patient = dataclasses.replace(patient, scans=scans)
    out = tmp_path_factory.mktemp("sim") / patient.patient_id
    truth = simulate_patient(
        patient, out, noiseless=True, rng=np.random.default_rng(0), voxel_mm=VOXEL_MM
    )
    return out, truth


def test_truth_json_matches_return_and_lists_skips(simulated: tuple[Path, dict[str, Any]]) -> None:
    out, truth = simulated
    assert json.loads((out / "truth.json").read_text(encoding="utf-8")) == truth
    assert [scan["tracer"] for scan in truth["scans"]] == ["fdg", "cd8_minibody"]
    assert not any("tracer" in item for item in truth["not_simulated"])


def test_suv_reads_back_administration_and_patient(
    simulated: tuple[Path, dict[str, Any]],
) -> None:
    out, truth = simulated
    scan_truth = truth["scans"][0]
    result = standardize_scan(load_scan(out / scan_truth["folder"]))
    inputs = result.factors.inputs
    assert inputs.injected_activity_bq == scan_truth["injected_activity_bq"]
    assert inputs.weight_kg == truth["patient"]["weight_kg"]
    assert inputs.height_cm == pytest.approx(truth["patient"]["height_cm"], abs=1e-9)
    assert inputs.sex == truth["patient"]["sex"]
    assert inputs.injection_datetime == datetime.fromisoformat(scan_truth["injection_datetime"])
    assert result.factors.reference_datetime == datetime.fromisoformat(scan_truth["scan_datetime"])


def test_noiseless_liver_mean_equals_truth(simulated: tuple[Path, dict[str, Any]]) -> None:
    out, truth = simulated
    scan_truth = truth["scans"][0]
    day_folder = Path(scan_truth["folder"]).parent
    labels = read_nifti(
        out / truth["timepoints"][str(day_folder)]["labels_file"], quantity=Quantity.UNITLESS
    )
    image = load_scan(out / scan_truth["folder"]).volume
    assert labels.same_grid(image)
    liver_id = truth["timepoints"][str(day_folder)]["labels"]["liver"]
    core = ndimage.binary_erosion(labels.array == liver_id, iterations=2)
    assert core.sum() > 10
    expected = scan_truth["organ_bq_per_ml"]["liver"]
    assert float(image.array[core].mean()) == pytest.approx(expected, rel=0.01)
    assert expected > scan_truth["organ_bq_per_ml"]["muscle"] > 0.0


def test_truth_holds_scenario_events_and_lesions(simulated: tuple[Path, dict[str, Any]]) -> None:
    out, truth = simulated
    scenario = load_scenario("complete_response")
    assert truth["events"] == [
        {
            "type": event.type.value,
            "lesion": event.lesion,
            "site": event.site,
            "day": event.day,
            "note": event.note,
        }
        for event in scenario.events
    ]
    scan_truth = next(scan for scan in truth["scans"] if scan["tracer"] == "cd8_minibody")
    assert set(scan_truth["lesion_bq_per_ml"]) == {"mediastinal_mass", "inguinal_node_left"}
    assert set(scan_truth["lesion_centroids_lps_mm"]) == set(scan_truth["lesion_bq_per_ml"])
    # The CD8 minibody's target is not on the lymphoma cells, only on the CAR T cells in them:
    # density = cells x 5e4 CD8 per CAR T cell / (volume x 1e8 cells/mL) / 5000 (reference).
    day_folder = str(Path(scan_truth["folder"]).parent)
    timepoint = truth["timepoints"][day_folder]
    labels = read_nifti(
        out / truth["timepoints"][str(day_folder)]["labels_file"], quantity=Quantity.UNITLESS
    )
    voxel_ml = labels.voxel_volume_ml
    for name, density in scan_truth["lesion_antigen_density"].items():
        volume_ml = float(np.sum(labels.array == timepoint["labels"][name])) * voxel_ml
        cells = timepoint["live_car_t_cells_in_lesions"][name]
        assert cells > 0.0
        assert density == pytest.approx(cells * 5.0e4 / (volume_ml * 1.0e8) / 5000.0, rel=1e-9)
    assert set(scan_truth["lesion_antigen_density"]) == {"mediastinal_mass", "inguinal_node_left"}


def test_simpleitk_geometry_agrees(simulated: tuple[Path, dict[str, Any]]) -> None:
    sitk = pytest.importorskip("SimpleITK")
    out, truth = simulated
    folder = out / truth["scans"][0]["folder"]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    itk = reader.Execute()
    volume = load_scan(folder).volume
    affine = volume.affine
    np.testing.assert_allclose(itk.GetOrigin(), affine[:3, 3], atol=1e-3)
    spacing = (affine[0, 2], affine[1, 1], affine[2, 0])  # columns → x, rows → y, slices → z
    np.testing.assert_allclose(itk.GetSpacing(), spacing, atol=1e-3)
    assert itk.GetSize() == volume.shape[::-1]


def test_cli_lists_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12
    assert lines[0].startswith("cd19_lymphoma_demo")  # sorted by name
    assert lines[1].startswith("cd19_negative_relapse")


def test_cli_refuses_non_empty_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("x", encoding="utf-8")
    assert main(["simulate", "--scenario", "crs", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "not empty" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--scenario", "crs"],
        ["simulate", "--scenario", "no_such_scenario", "--out", "unused"],
    ],
)
def test_cli_one_line_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_writes_a_cohort(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["simulate", "--scenario", "complete_response", "--out", str(out), "--seed", "5"]
    assert main([*argv, "--voxel-mm", "16"]) == 0
    assert "P0001: 7 PET scans" in capsys.readouterr().out
    truth = json.loads((out / "P0001" / "truth.json").read_text(encoding="utf-8"))
    assert truth["patient"]["seed"] == 5
    for scan in truth["scans"]:
        assert (out / "P0001" / scan["folder"] / "IMG0001.dcm").is_file()
        assert (out / "P0001" / scan["ct_folder"] / "IMG0001.dcm").is_file()
    # Counting noise by default: the liver is not uniform.
    first = truth["scans"][0]
    image = load_scan(out / "P0001" / first["folder"]).volume.array
    assert float(np.std(image[image > 0])) > 0.0


def test_written_dicom_passes_pydicom_strict_reading(
    simulated: tuple[Path, dict[str, Any]],
) -> None:
    # Conformance check: every file re-read with pydicom's validation set to raise on any value
    # that breaks its VR (length, character set, format), every element converted.
    import pydicom
    from pydicom import config

    out, _ = simulated
    files = sorted(p for p in out.rglob("*.dcm"))
    assert len([p for p in files if p.name == "labels_seg.dcm"]) == 2  # one SEG per visit
    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        for path in files:
            ds = pydicom.dcmread(path)
            for element in ds.iterall():
                _ = element.value
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert ds.SOPClassUID in (
                "1.2.840.10008.5.1.4.1.1.128",  # PET Image Storage
                "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
                "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage (ground truth)
            )
            if ds.Modality == "PT":
                assert ds.Units == "BQML"
                assert ds.DecayCorrection == "START"
                item = ds.RadiopharmaceuticalInformationSequence[0]
                assert len(str(item.RadiopharmaceuticalStartDateTime)) >= 14
    finally:
        config.settings.reading_validation_mode = previous


def test_visit_pet_and_ct_share_study_and_frame_of_reference(
    simulated: tuple[Path, dict[str, Any]],
) -> None:
    import pydicom

    out, truth = simulated
    for scan_truth in truth["scans"]:
        pt = pydicom.dcmread(next((out / scan_truth["folder"]).glob("*.dcm")))
        ct = pydicom.dcmread(next((out / scan_truth["ct_folder"]).glob("*.dcm")))
        assert pt.StudyInstanceUID == ct.StudyInstanceUID
        assert pt.FrameOfReferenceUID == ct.FrameOfReferenceUID
    studies = {
        pydicom.dcmread(next((out / scan["folder"]).glob("*.dcm"))).StudyInstanceUID
        for scan in truth["scans"]
    }
    # The two scans of the fixture are on different days: two visits, two studies.
    assert len({scan["day"] for scan in truth["scans"]}) == len(studies) == 2
    assert not list(out.parent.glob(".*.tmp"))  # no temporary folder left behind


#: Voxel of the mass-balance phantoms, mm: coarse (volumes are counted on the same grid).
_BALANCE_VOXEL_MM = {"adult": 8.0, "mouse": 1.0}


def _true_activities(patient: PatientSpec, voxel_mm: float | None = None) -> list[dict[str, Any]]:
    """Activity in the phantom's labels and injected activity decayed to each scan, Bq.

    The concentrations are the simulator's truth (``_scan_concentrations``, what
    ``simulate_patient`` writes to truth.json), without writing any file.
    """
    patient = _as_written(patient)
    placed, _ = _placed_lesions(patient)
    acquisitions, _ = _simulated_acquisitions(patient)
    visit_of = _visits(acquisitions)
    phantoms: dict[float, Phantom] = {}
    found = []
    for acquisition in acquisitions:
        visit = visit_of[id(acquisition)]
        if visit not in phantoms:
            voxel = voxel_mm or _BALANCE_VOXEL_MM[patient.species]
            phantoms[visit] = _visit_phantom(patient, placed, visit, voxel)[0]
        phantom = phantoms[visit]
        tracer = acquisition.tracer
        activity_bq = _injected_activity_bq(tracer)
        concentration, _, extra = _scan_concentrations(patient, phantom, acquisition, activity_bq)
        held = {label: concentration[label] * phantom.volume_ml[label] for label in phantom.labels}
        elapsed_s = acquisition.delay_h * 3600.0
        found.append(
            {
                "tracer": tracer,
                "day": acquisition.day,
                "held_bq": held,
                "available_bq": activity_bq
                * decay_factor(nuclide(tracer.nuclide).half_life_s, elapsed_s),
                "extra": extra,
            }
        )
    return found


@pytest.mark.parametrize("scenario", [name for name, _ in list_scenarios()])
def test_true_activity_never_exceeds_the_injected_activity(scenario: str) -> None:
    """Mass balance of the truth: Σ concentration × volume ≤ injected activity decayed.

    Seed 3 holds the reported patient (on_target_off_tumor P0001): before specific binding
    depleted the plasma, its CD8-minibody scans held 443 %, 2630 %, 1486 % and 3569 % of the
    injected activity (red marrow alone 405 % and 554 % on days 7 and 22).
    """
    scans = [
        scan
        for patient in draw_cohort(load_scenario(scenario), 4, seed=3)
        for scan in _true_activities(patient)
    ]
    assert scans
    for scan in scans:
        held = sum(scan["held_bq"].values())
        available = scan["available_bq"]
        where = f"{scan['tracer'].key} day {scan['day']:.2f}: {held / available:.2%}"
        assert held <= available * (1.0 + 1e-6), where
        assert held >= 0.3 * available, where  # the activity is there, not lost
        if (
            scan["tracer"].cell_label is not None
            and "reporter_cell_bq_by_site" not in scan["extra"]
        ):
            assert held == pytest.approx(available, rel=1e-9), where  # bound + free label


def test_cd8_minibody_sink_of_the_reported_patient() -> None:
    """on_target_off_tumor, seed 3, 6 mm voxels: the CD8⁺ CAR T cells deplete the minibody."""
    patient = draw_cohort(load_scenario("on_target_off_tumor"), 1, seed=3)[0]
    scans = [
        scan
        for scan in _true_activities(patient, voxel_mm=6.0)
        if scan["tracer"].key == "cd8_minibody" and scan["day"] > 0.0
    ]
    assert [round(scan["day"], 2) for scan in scans] == [6.25, 7.0, 21.25, 22.0]
    for scan in scans:
        percent = {
            label: 100.0 * bq / scan["available_bq"] for label, bq in scan["held_bq"].items()
        }
        assert sum(percent.values()) <= 100.0 * (1.0 + 1e-6)
        assert percent["red_marrow"] < 50.0
        assert percent["lungs"] < 20.0
        # CAR T cells and CAIX trap faster than the minibody's own elimination clears plasma
        # (k10 x V_plasma, about 100 mL/h): the specific uptake per antigen falls.
        sink = scan["extra"]["specific_sink"]
        assert sink["clearance_ml_per_h"] > 300.0
        assert sink["uptake_factor"] < 0.8
        assert scan["extra"]["normal_tissue_scale"] == 1.0


def test_normal_tissues_give_up_what_bulky_fdg_avid_lesions_hold() -> None:
    """FDG: a lesion burden beyond the body's activity lowers the normal tissues, not lesions."""
    patient = draw_cohort(load_scenario("complete_response"), 1, seed=3)[0]
    patient = dataclasses.replace(patient, scans=(patient.scans[0],))  # one FDG scan
    assert patient.tracers[0].key == "fdg"

    def with_lesion_suv(suv: float) -> list[dict[str, Any]]:
        # Bulky disease: every lesion 10 cm across (about 0.5 L each).
        lesions = tuple(
            dataclasses.replace(lesion, fdg_suv=((0.0, suv),), diameter_mm=100.0)
            for lesion in patient.lesions
        )
        return _true_activities(dataclasses.replace(patient, lesions=lesions))

    typical = _true_activities(patient)[0]
    assert typical["extra"]["normal_tissue_scale"] == 1.0
    bulky = with_lesion_suv(20.0)[0]
    lesion_names = {lesion.name for lesion in patient.lesions}
    in_lesions = sum(bq for label, bq in bulky["held_bq"].items() if label in lesion_names)
    assert in_lesions > 0.2 * bulky["available_bq"]
    scale = bulky["extra"]["normal_tissue_scale"]
    assert 0.0 < scale < 1.0
    assert sum(bulky["held_bq"].values()) == pytest.approx(bulky["available_bq"], rel=1e-9)
    # Normal tissues keep their ratios (SUVbw of the table times one factor); lesions keep theirs.
    table = read_toml("fdg_uptake.toml")["suv_bw"]
    assert bulky["extra"]["suv_bw"]["liver"] == pytest.approx(table["liver"]["suv"] * scale)
    assert all(bulky["extra"]["suv_bw"][name] == 20.0 for name in lesion_names)
    normal = sum(bq for label, bq in bulky["held_bq"].items() if label not in lesion_names)
    assert normal == pytest.approx(bulky["available_bq"] - in_lesions, rel=1e-9)
    with pytest.raises(InputError, match="lesions would hold"):
        with_lesion_suv(1.0e4)
