"""The fast series writers produce the same files as the dataset builders, all or nothing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest

from immunopet.image import Quantity, Volume
from immunopet.io import load_scan
from immunopet.io.dicom import (
    PetSeriesSpec,
    StudyIdentity,
    ct_series_datasets,
    pet_series_datasets,
    write_ct_series,
    write_datasets,
    write_pet_series,
)

INJECTION = datetime(2024, 1, 1, 9, 0, 0)
START = datetime(2024, 1, 4, 10, 30, 0)


def _volume(quantity: Quantity) -> Volume:
    rng = np.random.default_rng(7)
    # Axial slices 3 mm apart along S; rows along P (2 mm), columns along L (2.5 mm).
    affine = np.array(
        [[0.0, 0.0, 2.5, -50.0], [0.0, 2.0, 0.0, -20.0], [3.0, 0.0, 0.0, 10.0], [0, 0, 0, 1.0]]
    )
    scale = 1000.0 if quantity is Quantity.ACTIVITY_CONCENTRATION else 800.0
    values = rng.random((12, 9, 7)) * scale
    if quantity is Quantity.HOUNSFIELD:
        values -= 1000.0
    return Volume(values.astype(np.float32), affine, quantity)


SPEC = PetSeriesSpec(
    nuclide="Zr-89",
    injected_activity_bq=37e6,
    injection_datetime=INJECTION,
    series_datetime=START,
    frame_duration_s=300.0,
    weight_kg=70.0,
    height_cm=170.0,
    sex="F",
    radiopharmaceutical="[89Zr]Zr-test",
    slices_per_bed=5,
    series_description="test PET",
)


def _same_files(slow: Path, fast: Path) -> None:
    slow_files = sorted(slow.iterdir())
    assert [p.name for p in slow_files] == [p.name for p in sorted(fast.iterdir())]
    for path in slow_files:
        a = pydicom.dcmread(path)
        b = pydicom.dcmread(fast / path.name)
        assert {e.keyword for e in a} == {e.keyword for e in b}
        assert {e.keyword for e in a.file_meta} == {e.keyword for e in b.file_meta}
        for element in a:
            if element.keyword == "SOPInstanceUID":
                continue
            assert b[element.tag].VR == element.VR, element.keyword
            assert b[element.tag].value == element.value, element.keyword
        assert b.file_meta.MediaStorageSOPInstanceUID == b.SOPInstanceUID


def test_fast_pet_writer_equals_dataset_builder(tmp_path: Path) -> None:
    volume = _volume(Quantity.ACTIVITY_CONCENTRATION)
    study = StudyIdentity.new("P1", START)
    write_datasets(
        pet_series_datasets(volume, SPEC, series_uid="1.2.3", study=study), tmp_path / "slow"
    )
    write_pet_series(volume, SPEC, tmp_path / "fast", series_uid="1.2.3", study=study)
    _same_files(tmp_path / "slow", tmp_path / "fast")
    # Per-bed acquisition times: slices 1-5 in bed 0, 6-10 in bed 1 (300 s later).
    bed1 = pydicom.dcmread(tmp_path / "fast" / "IMG0006.dcm")
    assert bed1.AcquisitionTime == "103500.000000"
    scan = load_scan(tmp_path / "fast")
    # int16 with per-slice slope: relative error below 1/32767 of the slice maximum.
    assert np.max(np.abs(scan.volume.array - volume.array)) <= 1000.0 / 32767.0
    assert scan.volume.same_grid(volume)


def test_fast_ct_writer_equals_dataset_builder(tmp_path: Path) -> None:
    volume = _volume(Quantity.HOUNSFIELD)
    study = StudyIdentity.new("P1", START)
    write_datasets(
        ct_series_datasets(volume, when=START, series_uid="1.2.4", study=study), tmp_path / "slow"
    )
    write_ct_series(volume, tmp_path / "fast", when=START, series_uid="1.2.4", study=study)
    _same_files(tmp_path / "slow", tmp_path / "fast")
    ct = load_scan(tmp_path / "fast").volume
    np.testing.assert_array_equal(ct.array, np.rint(volume.array))


def test_shared_study_identity(tmp_path: Path) -> None:
    study = StudyIdentity.new("P7", START)
    write_pet_series(_volume(Quantity.ACTIVITY_CONCENTRATION), SPEC, tmp_path / "pt", study=study)
    write_ct_series(_volume(Quantity.HOUNSFIELD), tmp_path / "ct", when=START, study=study)
    pt = pydicom.dcmread(tmp_path / "pt" / "IMG0001.dcm")
    ct = pydicom.dcmread(tmp_path / "ct" / "IMG0001.dcm")
    assert pt.StudyInstanceUID == ct.StudyInstanceUID == study.study_instance_uid
    assert pt.FrameOfReferenceUID == ct.FrameOfReferenceUID == study.frame_of_reference_uid
    assert pt.SeriesInstanceUID != ct.SeriesInstanceUID
    assert pt.PatientID == ct.PatientID == "P7"


def test_fast_writer_is_all_or_nothing(tmp_path: Path) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(OSError, match="occupied"):
        write_pet_series(_volume(Quantity.ACTIVITY_CONCENTRATION), SPEC, occupied)
    assert [p.name for p in tmp_path.iterdir()] == ["occupied"]
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]
