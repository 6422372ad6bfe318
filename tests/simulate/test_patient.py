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
from immunopet.image import Quantity
from immunopet.io import load_scan, read_nifti
from immunopet.quant import standardize_scan
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._patient import simulate_patient

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
