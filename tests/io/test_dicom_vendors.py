"""Vendor unit and timing variants (immunopet.io.dicom._vendors), one test each.

Sources: QIBA "Standardized Uptake Value (SUV)" vendor-neutral pseudo-code
(Philips CNTS with (7053,1009)/(7053,1000), GE private scan time (0009,100D),
Units GML); DICOM PS3.3 C.8.9.4 Decay Factor.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from immunopet.errors import InputError
from immunopet.image import Quantity
from immunopet.io import load_scan
from immunopet.quant import resolve_suv_inputs, standardize_scan
from phantoms import PetWriter, remaining

ACTIVITY, WEIGHT_G = 37.0e6, 70.0e3
SUV1 = ACTIVITY * remaining("Zr-89", 4 * 86400.0) / WEIGHT_G  # Bq/mL of SUV 1 on day 4


def max_suv(folder: Path, **overrides: Any) -> float:
    return standardize_scan(load_scan(folder), **overrides).max_suv_bw


def max_activity(folder: Path, **overrides: Any) -> float:
    """Largest Bq/mL after the engine's standardisation (at the scan's reference instant)."""
    return standardize_scan(load_scan(folder), **overrides).max_activity_bq_per_ml


def _philips(ds: Dataset, element: int, value: float) -> None:
    block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
    block.add_new(element, "DS", f"{value:.10g}")


def test_philips_counts_with_activity_concentration_factor(write_pet: PetWriter) -> None:
    bq_per_count = 3.5

    def to_counts(ds: Dataset, _: int) -> None:
        ds.Units = "CNTS"
        ds.RescaleSlope = f"{float(ds.RescaleSlope) / bq_per_count:.10g}"
        _philips(ds, 0x09, bq_per_count)

    folder = write_pet(values=SUV1, mutate=to_counts)
    scan = load_scan(folder)
    assert scan.volume.quantity is Quantity.ACTIVITY_CONCENTRATION
    assert float(scan.volume.array.max()) == pytest.approx(SUV1, rel=1e-6)
    assert max_suv(folder) == pytest.approx(1.0, abs=1e-4)
    assert any("7053,1009" in w for w in scan.warnings)


def test_philips_counts_with_suv_factor_only(write_pet: PetWriter) -> None:
    # The scanner's SUVbw per rescaled count; immunopet turns it back into Bq/mL with the
    # file's weight and dose and recomputes SUV itself.
    suv_per_count = 1.0 / SUV1

    def to_counts(ds: Dataset, _: int) -> None:
        ds.Units = "CNTS"
        _philips(ds, 0x00, suv_per_count)

    folder = write_pet(values=SUV1, mutate=to_counts)
    scan = load_scan(folder)
    assert scan.volume.quantity is Quantity.SUV_BW
    assert float(scan.volume.array.max()) == pytest.approx(1.0, rel=1e-5)
    assert max_suv(folder) == pytest.approx(1.0, abs=1e-4)
    # The Bq/mL recovered from the scanner's SUV is the phantom's, computed by hand …
    assert max_activity(folder) == pytest.approx(SUV1, rel=1e-5)
    # … so another weight rescales the SUV, as it would for Bq/mL data.
    assert max_suv(folder, weight_kg=84.0) == pytest.approx(84.0 / 70.0, rel=1e-4)


def test_units_gml_are_vendor_suv(write_pet: PetWriter) -> None:
    def to_gml(ds: Dataset, _: int) -> None:
        ds.Units = "GML"
        ds.RescaleSlope = f"{float(ds.RescaleSlope) / SUV1:.10g}"

    folder = write_pet(values=SUV1, mutate=to_gml)
    scan = load_scan(folder)
    assert scan.volume.quantity is Quantity.SUV_BW
    assert max_suv(folder) == pytest.approx(1.0, abs=1e-4)
    assert max_activity(folder) == pytest.approx(SUV1, rel=1e-5)
    assert max_suv(folder, weight_kg=84.0) == pytest.approx(84.0 / 70.0, rel=1e-4)


def test_units_gml_with_time_only_injection_uses_the_given_date(write_pet: PetWriter) -> None:
    def gml_time_only(ds: Dataset, _: int) -> None:
        ds.Units = "GML"
        ds.RescaleSlope = f"{float(ds.RescaleSlope) / SUV1:.10g}"
        del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime

    folder = write_pet(values=SUV1, mutate=gml_time_only)
    injection = datetime(2026, 3, 2, 9, 0)
    assert max_activity(folder, injection_datetime=injection) == pytest.approx(SUV1, rel=1e-5)


def test_units_gml_without_weight_is_refused(write_pet: PetWriter) -> None:
    def to_gml(ds: Dataset, _: int) -> None:
        ds.Units = "GML"
        del ds.PatientWeight

    folder = write_pet(values=SUV1, mutate=to_gml)
    with pytest.raises(InputError, match="--weight-kg"):
        max_suv(folder)
    # With the patient's weight given, the scanner's SUV still cannot be undone: the file lacks
    # the weight the scanner used.
    with pytest.raises(InputError, match="SUVbw as stored"):
        max_suv(folder, weight_kg=70.0)


def test_counts_without_calibration_are_refused_for_suv(write_pet: PetWriter) -> None:
    def to_counts(ds: Dataset, _: int) -> None:
        ds.Units = "CNTS"

    folder = write_pet(values=SUV1, mutate=to_counts)
    assert load_scan(folder).volume.quantity is Quantity.COUNTS
    with pytest.raises(InputError, match="activity-concentration"):
        max_suv(folder)


def test_per_slice_rescale_slope_is_applied(write_pet: PetWriter) -> None:
    # GE writes a different Rescale Slope on every slice; a reader that takes slice 1's slope
    # for the whole volume gets the other slices wrong.
    values = np.stack([np.full((8, 8), 100.0 * (i + 1), np.float32) for i in range(6)])
    folder = write_pet(values=values)
    slopes = {float(dcmread(p).RescaleSlope) for p in sorted(folder.iterdir())}
    assert len(slopes) == 6
    read = load_scan(folder).volume.array
    assert sorted(float(read[i].mean()) for i in range(6)) == pytest.approx(
        [100.0 * (i + 1) for i in range(6)], rel=1e-4
    )


def test_decay_factor_disagreeing_with_series_time_is_reported(write_pet: PetWriter) -> None:
    def wrong_factor(ds: Dataset, _: int) -> None:
        ds.DecayFactor = f"{float(ds.DecayFactor) * 1.01:.10g}"  # 68 min for Zr-89

    folder = write_pet(values=SUV1, mutate=wrong_factor)
    scan = load_scan(folder)
    assert any("Decay Factor (0054,1321) implies" in w for w in scan.warnings)
    assert max_suv(folder) == pytest.approx(1.0, abs=1e-4)  # the series time still rules


def test_header_half_life_mismatch_is_reported(write_pet: PetWriter) -> None:
    def wrong_half_life(ds: Dataset, _: int) -> None:
        ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife = "6586.2"  # F-18's

    folder = write_pet(values=SUV1, mutate=wrong_half_life)
    scan = load_scan(folder)
    assert scan.acquisition is not None
    assert scan.volume.timing is not None
    _, warnings = resolve_suv_inputs(scan.acquisition, scan.volume.timing.start)
    assert any("ICRP-107 is used" in w for w in warnings)


def test_nuclide_from_half_life_only_when_unique(write_pet: PetWriter) -> None:
    def no_code(ds: Dataset, _: int) -> None:
        del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideCodeSequence

    folder = write_pet(values=1.0, nuclide="F-18", mutate=no_code)
    scan = load_scan(folder)
    assert scan.acquisition is not None
    assert scan.acquisition.nuclide == "F-18"
    assert any("identified from RadionuclideHalfLife" in w for w in scan.warnings)
    # Zr-89 (78.41 h) and Ga-67 (78.27 h) are 0.2 % apart: no guess, the user is asked.
    zr = write_pet(values=1.0, nuclide="Zr-89", mutate=no_code)
    scan = load_scan(zr)
    assert scan.acquisition is not None
    assert scan.acquisition.nuclide is None
    assert scan.volume.timing is not None
    with pytest.raises(InputError, match="--nuclide"):
        resolve_suv_inputs(scan.acquisition, scan.volume.timing.start)


def test_units_gml_of_lean_body_mass_is_refused(write_pet: PetWriter) -> None:
    def gml_lbm(ds: Dataset, _: int) -> None:
        ds.Units = "GML"
        ds.SUVType = "LBM"

    from immunopet.errors import UnsupportedInputError

    with pytest.raises(UnsupportedInputError, match="SUV Type LBM"):
        load_scan(write_pet(values=SUV1, mutate=gml_lbm))


def test_spect_in_bq_per_ml_must_state_its_decay_correction(tmp_path: Path) -> None:
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from immunopet.image import DecayCorrection

    ds = Dataset()
    ds.file_meta = Dataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.20"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = (
        ds.file_meta.MediaStorageSOPClassUID,
        ds.file_meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality, ds.Units = "NM", "BQML"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.SeriesDate, ds.SeriesTime = "20260306", "090000"
    ds.NumberOfFrames, ds.Rows, ds.Columns = 3, 4, 4
    ds.PixelSpacing, ds.SpacingBetweenSlices = [4.8, 4.8], "4.8"
    detector = Dataset()
    detector.ImagePositionPatient, detector.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.DetectorInformationSequence = Sequence([detector])
    rotation = Dataset()
    rotation.ActualFrameDuration, rotation.NumberOfFramesInRotation = 20000, 60  # 20 min
    ds.RotationInformationSequence = Sequence([rotation])
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    ds.PixelData = np.ones((3, 4, 4), np.uint16).tobytes()
    path = tmp_path / "spect.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(InputError, match="--decay-correction"):
        load_scan(path)
    scan = load_scan(path, decay_correction=DecayCorrection.NONE)
    assert scan.volume.timing is not None
    assert scan.volume.timing.duration_s == pytest.approx(1200.0)  # 60 projections × 20 s
