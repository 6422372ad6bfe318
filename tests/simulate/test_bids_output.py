"""`immunopet simulate --format bids`: the same images and facts as the DICOM, in PET-BIDS."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from immunopet.cli import main
from immunopet.io import load_scan
from immunopet.quant import standardize_scan
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._bids import (
    bids_label,
    export_patient_bids,
    visit_label,
    write_dataset_description,
)
from immunopet.simulate._patient import simulate_patient


@pytest.mark.parametrize(
    ("day", "label"), [(7.0, "day007p00"), (-7.0, "daym007p00"), (0.0417, "day000p04")]
)
def test_visit_labels_are_bids_safe(day: float, label: str) -> None:
    assert visit_label(day) == label
    assert bids_label(label) == label


def test_bids_export_keeps_images_and_suv_of_the_dicom(tmp_path: Path) -> None:
    scenario = load_scenario("cd19_negative_relapse")
    patient = draw_cohort(scenario, 1, seed=2)[0]
    patient = dataclasses.replace(patient, scans=(scenario.scans[0], scenario.scans[4]))
    dicom_dir = tmp_path / "dicom"
    truth = simulate_patient(patient, dicom_dir, rng=np.random.default_rng(1), voxel_mm=10.0)
    root = tmp_path / "bids"
    write_dataset_description(root, "test")
    exported = export_patient_bids(dicom_dir, truth, root)
    assert json.loads((root / "dataset_description.json").read_text())["BIDSVersion"] == "1.9.0"
    rows = (root / "participants.tsv").read_text().splitlines()
    assert rows[1].split("\t")[:4] == [
        "sub-P0001",
        "adult",
        truth["patient"]["sex"],
        str(truth["patient"]["weight_kg"]),
    ]
    assert len(exported["scans"]) == len(truth["scans"]) == 3
    for original, scan in zip(truth["scans"], exported["scans"], strict=True):
        dicom = load_scan(dicom_dir / original["folder"])
        bids = load_scan(root / scan["pet_file"])
        np.testing.assert_array_equal(bids.volume.array, dicom.volume.array)
        assert bids.volume.same_grid(dicom.volume)
        a = standardize_scan(dicom).factors
        b = standardize_scan(bids).factors
        assert b.suv_bw_factor == pytest.approx(a.suv_bw_factor, rel=1e-9)
        assert (root / scan["ct_file"]).is_file()
    for timepoint in exported["timepoints"].values():
        assert (root / timepoint["labels_file"]).is_file()
    saved = root / "derivatives" / "truth" / "sub-P0001" / "truth.json"
    assert json.loads(saved.read_text()) == exported


def test_cli_writes_a_bids_cohort(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bids"
    argv = ["simulate", "--scenario", "icans", "--out", str(out), "--format", "bids"]
    assert main([*argv, "--cohort", "2", "--noiseless", "--voxel-mm", "16"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "dataset_description.json",
        "derivatives",
        "participants.tsv",
        "sub-P0001",
        "sub-P0002",
    ]
    assert (
        len(list(out.glob("sub-*/ses-*/pet/*_pet.json")))
        == len(list(out.glob("sub-*/ses-*/pet/*_pet.nii.gz")))
        > 0
    )
    assert "sub-P0002" in capsys.readouterr().out
