"""NIfTI (RAS <-> LPS at the boundary) and PET-BIDS read/write: geometry and SUV round trips."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import nibabel as nib
import numpy as np
import pytest

from immunopet.errors import InputError, TimingError, UnsupportedInputError
from immunopet.image import AcquisitionTiming, DecayCorrection, PetAcquisition, Quantity, Volume
from immunopet.io import read_nifti, read_pet_bids, write_nifti, write_pet_bids
from immunopet.quant import resolve_suv_inputs, standardize

INJECTION = datetime(2026, 3, 2, 9, 0)
SCAN = INJECTION + timedelta(days=4)
SHAPE = (4, 5, 6)

# Columns: slice, row and column axes in LPS (mm per voxel); a 90° rotation with a flip,
# anisotropic spacing and an offset. All values are exact in float32 (NIfTI-1 stores float32).
LPS_AFFINE = np.array(
    [
        [0.0, 0.0, -1.5, -120.5],
        [2.5, 0.0, 0.0, 33.25],
        [0.0, -0.75, 0.0, 7.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def _pet_volume(timing: AcquisitionTiming | None = None) -> Volume:
    rng = np.random.default_rng(0)
    array = rng.uniform(100.0, 5000.0, size=SHAPE).astype(np.float32)
    return Volume(array, LPS_AFFINE, Quantity.ACTIVITY_CONCENTRATION, timing=timing)


def _zr89(mode: DecayCorrection) -> PetAcquisition:
    return PetAcquisition(
        nuclide="Zr-89",
        injected_activity_bq=37.0e6,
        injection_datetime=INJECTION,
        patient_weight_kg=70.0,
        patient_height_cm=175.0,
        patient_sex="F",
        decay_correction=mode,
        radiopharmaceutical="89Zr-anti-CD8 minibody",
    )


def _timing(mode: DecayCorrection) -> AcquisitionTiming:
    if mode is DecayCorrection.START:
        return AcquisitionTiming(SCAN, 600.0, decay_reference=SCAN)
    if mode is DecayCorrection.ADMIN:
        return AcquisitionTiming(SCAN, 600.0, decay_reference=INJECTION)
    # Bed positions of different lengths (120, 180, 300 s, …) back to back: both the per-slice
    # starts and the per-slice durations must survive the round trip.
    durations = tuple(60.0 * (2 + index % 3) for index in range(SHAPE[0]))
    offsets = tuple(float(sum(durations[:index])) for index in range(SHAPE[0]))
    return AcquisitionTiming(
        SCAN, None, decay_reference=None, frame_start_offsets_s=offsets, frame_durations_s=durations
    )


def _suv(volume: Volume, acquisition: PetAcquisition) -> dict[str, float | None]:
    assert volume.timing is not None
    inputs, _ = resolve_suv_inputs(acquisition, volume.timing.start, source=volume.source)
    activity, factors = standardize(volume, acquisition, inputs)
    return {
        "suv_bw_factor": factors.suv_bw_factor,
        "suv_lbm_janmahasatian_factor": factors.suv_lbm_janmahasatian_factor,
        "suv_bsa_factor": factors.suv_bsa_factor,
        "max_suv_bw": float(factors.apply(activity).array.max()),
        "uptake_time_s": factors.uptake_time_s,
    }


def _assert_same_suv(after: dict[str, float | None], before: dict[str, float | None]) -> None:
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert value is not None, key
        assert after[key] == pytest.approx(value, rel=1e-6), key


# -- NIfTI geometry ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_nifti_voxels_land_on_the_same_physical_point(tmp_path: Path, suffix: str) -> None:
    volume = _pet_volume()
    path = tmp_path / f"pet{suffix}"
    write_nifti(volume, path)

    image = nib.load(path)
    assert image.get_sform(coded=True)[1] == 1
    assert image.get_qform(coded=True)[1] == 1
    assert image.header.get_xyzt_units() == ("mm", "sec")
    data = np.asarray(image.dataobj)
    assert data.shape == SHAPE[::-1]  # (i, j, k) = (column, row, slice)
    for s, r, c in [(0, 0, 0), (3, 1, 4), (2, 4, 5), (1, 2, 0)]:
        lps = LPS_AFFINE @ np.array([s, r, c, 1.0])
        ras = np.array([-lps[0], -lps[1], lps[2]])  # LPS -> RAS: negate x and y
        np.testing.assert_allclose(image.get_sform() @ [c, r, s, 1.0], [*ras, 1.0], atol=1e-5)
        np.testing.assert_allclose(image.get_qform() @ [c, r, s, 1.0], [*ras, 1.0], atol=1e-4)
        assert data[c, r, s] == volume.array[s, r, c]

    back = read_nifti(path, quantity=Quantity.ACTIVITY_CONCENTRATION)
    assert back.array.dtype == np.float32
    assert back.array.flags.c_contiguous
    np.testing.assert_array_equal(back.array, volume.array)
    np.testing.assert_allclose(back.affine, volume.affine, rtol=1e-6, atol=1e-6)
    assert back.source == str(path)


def test_nifti_with_only_a_qform_is_read_from_it(tmp_path: Path) -> None:
    volume = _pet_volume()
    path = tmp_path / "qform.nii.gz"
    write_nifti(volume, path)
    image = nib.load(path)
    image.set_sform(np.diag([9.0, 9.0, 9.0, 1.0]), code=0)
    nib.save(image, path)

    back = read_nifti(path, quantity=Quantity.ACTIVITY_CONCENTRATION)
    np.testing.assert_allclose(back.affine, volume.affine, atol=1e-4)


def test_nifti_without_orientation_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.nii"
    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.float32), np.eye(4))
    image.set_sform(np.eye(4), code=0)
    image.set_qform(np.eye(4), code=0)
    nib.save(image, path)

    with pytest.raises(InputError, match="sform_code and qform_code") as info:
        read_nifti(path, quantity=Quantity.ACTIVITY_CONCENTRATION)
    assert str(path) in str(info.value)


def test_nifti_with_sheared_sform_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sheared.nii.gz"
    sheared = np.array([[1.0, 0.5, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.float32), sheared)
    image.set_sform(sheared, code=1)
    nib.save(image, path)

    with pytest.raises(InputError, match="not orthogonal") as info:
        read_nifti(path, quantity=Quantity.ACTIVITY_CONCENTRATION)
    assert info.value.path == str(path)
    assert info.value.field == "sform"


def test_nifti_singleton_4d_is_read_and_real_4d_refused(tmp_path: Path) -> None:
    single, dynamic = tmp_path / "single.nii.gz", tmp_path / "dynamic.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 5, 4, 1), np.float32), np.eye(4)), single)
    nib.save(nib.Nifti1Image(np.ones((6, 5, 4, 3), np.float32), np.eye(4)), dynamic)

    assert read_nifti(single, quantity=Quantity.ACTIVITY_CONCENTRATION).shape == SHAPE
    with pytest.raises(UnsupportedInputError, match=r"\(6, 5, 4, 3\)") as info:
        read_nifti(dynamic, quantity=Quantity.ACTIVITY_CONCENTRATION)
    assert info.value.path == str(dynamic)


def test_nifti_scaled_integers_read_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "scaled.nii.gz"
    image = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(4, 3, 2), np.eye(4))
    image.header.set_slope_inter(0.5, -1.0)
    nib.save(image, path)

    back = read_nifti(path, quantity=Quantity.ACTIVITY_CONCENTRATION)
    assert back.array.dtype == np.float32
    np.testing.assert_array_equal(back.array[1, 2, 3], 0.5 * (3 * 6 + 2 * 2 + 1) - 1.0)


def test_mask_round_trip_stays_bool(tmp_path: Path) -> None:
    volume = _pet_volume()
    mask = volume.mask(volume.array > 2500.0)
    path = tmp_path / "mask.nii.gz"
    write_nifti(mask, path)

    assert nib.load(path).get_data_dtype() == np.uint8
    back = read_nifti(path, quantity=Quantity.MASK)
    assert back.array.dtype == np.bool_
    np.testing.assert_array_equal(back.array, mask.array)


def test_mask_with_other_labels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(np.full((2, 2, 2), 2, np.uint8), np.eye(4)), path)
    with pytest.raises(InputError, match="only 0 and 1"):
        read_nifti(path, quantity=Quantity.MASK)


@pytest.mark.parametrize("name", ["missing.nii.gz", "image.mha"])
def test_nifti_missing_or_misnamed_file_is_an_input_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match=name):
        read_nifti(tmp_path / name, quantity=Quantity.ACTIVITY_CONCENTRATION)


def test_truncated_nifti_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.nii.gz"
    write_nifti(_pet_volume(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="cannot read the file as NIfTI"):
        read_nifti(path, quantity=Quantity.ACTIVITY_CONCENTRATION)


# -- PET-BIDS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(DecayCorrection))
def test_pet_bids_round_trip_keeps_suv(tmp_path: Path, mode: DecayCorrection) -> None:
    volume, acquisition = _pet_volume(_timing(mode)), _zr89(mode)
    original = volume.array.copy()
    before = _suv(volume, acquisition)

    path = tmp_path / "sub-01_trc-89Zr_pet.nii.gz"
    sidecar_file = write_pet_bids(volume, acquisition, path)
    back, facts = read_pet_bids(path)

    np.testing.assert_array_equal(volume.array, original)  # the input is not modified
    assert sidecar_file == tmp_path / "sub-01_trc-89Zr_pet.json"
    assert facts.decay_correction is mode
    assert facts.nuclide == "Zr-89"
    assert facts.injection_datetime == INJECTION
    assert (facts.patient_weight_kg, facts.patient_height_cm, facts.patient_sex) == (
        70.0,
        175.0,
        "F",
    )
    assert back.timing == volume.timing
    np.testing.assert_array_equal(back.array, volume.array)
    _assert_same_suv(_suv(back, facts), before)


def test_pet_bids_sidecar_holds_the_required_fields(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_pet.nii"
    write_pet_bids(_pet_volume(_timing(DecayCorrection.START)), _zr89(DecayCorrection.START), path)
    sidecar = json.loads((tmp_path / "sub-01_pet.json").read_text())

    required = [
        "Manufacturer", "ManufacturersModelName", "Units", "TracerName", "TracerRadionuclide",
        "InjectedRadioactivity", "InjectedRadioactivityUnits", "InjectedMass",
        "InjectedMassUnits", "SpecificRadioactivity", "SpecificRadioactivityUnits",
        "ModeOfAdministration", "TimeZero", "ScanStart", "InjectionStart", "FrameTimesStart",
        "FrameDuration", "AcquisitionMode", "ImageDecayCorrected", "ImageDecayCorrectionTime",
        "ReconMethodName", "ReconMethodParameterLabels", "ReconFilterType", "ReconFilterSize",
        "AttenuationCorrection",
    ]  # fmt: skip
    assert [key for key in required if key not in sidecar] == []
    assert sidecar["Units"] == "Bq/mL"
    assert sidecar["TracerRadionuclide"] == "Zr89"
    assert (sidecar["InjectedRadioactivity"], sidecar["InjectedRadioactivityUnits"]) == (
        37.0,
        "MBq",
    )
    assert (sidecar["TimeZero"], sidecar["InjectionStart"]) == ("09:00:00", 0.0)
    assert sidecar["ScanStart"] == sidecar["ImageDecayCorrectionTime"] == 4 * 86400.0
    assert sidecar["FrameTimesStart"] == [4 * 86400.0]
    assert sidecar["FrameDuration"] == [600.0]
    assert sidecar["ImageDecayCorrected"] is True
    assert sidecar["ImmunopetInjectionDateTime"] == "2026-03-02T09:00:00"
    assert sidecar["ImmunopetScanStartDateTime"] == "2026-03-06T09:00:00"


def _rewrite(path: Path, change: dict[str, Any], remove: tuple[str, ...] = ()) -> None:
    sidecar = json.loads(path.read_text())
    for key in remove:
        del sidecar[key]
    sidecar.update(change)
    path.write_text(json.dumps(sidecar))


@pytest.mark.parametrize("mode", list(DecayCorrection))
def test_pet_bids_time_zero_alone_gives_the_same_suv(tmp_path: Path, mode: DecayCorrection) -> None:
    path = tmp_path / "sub-01_pet.nii.gz"
    write_pet_bids(_pet_volume(_timing(mode)), _zr89(mode), path)
    dated = _suv(*read_pet_bids(path))
    _rewrite(
        tmp_path / "sub-01_pet.json",
        {},
        remove=("ImmunopetInjectionDateTime", "ImmunopetScanStartDateTime"),
    )

    back, facts = read_pet_bids(path)
    assert facts.injection_datetime is not None
    assert facts.injection_datetime.time() == INJECTION.time()
    assert back.timing is not None
    assert back.timing.start - facts.injection_datetime == SCAN - INJECTION
    assert facts.decay_correction is mode
    assert any("arbitrary date" in note for note in facts.notes)
    _assert_same_suv(_suv(back, facts), dated)


def test_pet_bids_time_zero_contradicting_the_datetimes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_pet.nii.gz"
    write_pet_bids(_pet_volume(_timing(DecayCorrection.START)), _zr89(DecayCorrection.START), path)
    _rewrite(tmp_path / "sub-01_pet.json", {"TimeZero": "10:00:00"})
    with pytest.raises(TimingError) as info:
        read_pet_bids(path)
    assert info.value.field == "TimeZero"
    assert "sub-01_pet.json" in str(info.value)


def test_pet_bids_missing_injected_radioactivity_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_pet.nii.gz"
    write_pet_bids(_pet_volume(_timing(DecayCorrection.START)), _zr89(DecayCorrection.START), path)
    _rewrite(tmp_path / "sub-01_pet.json", {}, remove=("InjectedRadioactivity",))
    with pytest.raises(InputError) as info:
        read_pet_bids(path)
    assert "sub-01_pet.json" in str(info.value)
    assert "InjectedRadioactivity" in str(info.value)
    assert info.value.field == "InjectedRadioactivity"


def test_pet_bids_units_other_than_bq_per_ml_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sub-01_pet.nii.gz"
    write_pet_bids(_pet_volume(_timing(DecayCorrection.START)), _zr89(DecayCorrection.START), path)
    _rewrite(tmp_path / "sub-01_pet.json", {"Units": "kBq/mL"})
    with pytest.raises(UnsupportedInputError) as info:
        read_pet_bids(path)
    assert info.value.field == "Units"
    assert "sub-01_pet.json" in str(info.value)


@pytest.mark.parametrize(
    ("units_key", "value", "unit"),
    [
        ("InjectedRadioactivityUnits", 37000.0, "kBq"),
        ("InjectedRadioactivityUnits", 1.0, "mCi"),
        # the spelling of the example in the PET-BIDS specification
        ("InjectedRadioActivityUnits", 0.037, "GBq"),
    ],
)
def test_pet_bids_injected_activity_units_are_converted(
    tmp_path: Path, units_key: str, value: float, unit: str
) -> None:
    path = tmp_path / "sub-01_pet.nii.gz"
    write_pet_bids(_pet_volume(_timing(DecayCorrection.START)), _zr89(DecayCorrection.START), path)
    _rewrite(
        tmp_path / "sub-01_pet.json",
        {"InjectedRadioactivity": value, units_key: unit},
        remove=("InjectedRadioactivityUnits",),
    )
    _, facts = read_pet_bids(path)
    assert facts.injected_activity_bq == pytest.approx(37.0e6, rel=1e-12)


def test_pet_bids_unknown_nuclide_is_never_defaulted(tmp_path: Path) -> None:
    volume = _pet_volume(_timing(DecayCorrection.START))
    with pytest.raises(InputError, match="TracerRadionuclide"):
        write_pet_bids(
            volume, replace(_zr89(DecayCorrection.START), nuclide=None), tmp_path / "a.nii"
        )
    assert list(tmp_path.iterdir()) == []


# -- atomic writes ---------------------------------------------------------------------------------


def _write_partially_then_fail(self: Any, path: Any, *args: Any, **kwargs: Any) -> None:
    Path(path).write_bytes(b"partial")
    raise OSError("disk full")


def test_failed_nifti_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nib.Nifti1Image, "to_filename", _write_partially_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_nifti(_pet_volume(), tmp_path / "pet.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_failed_sidecar_write_leaves_neither_file_and_keeps_old_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sub-01_pet.nii.gz"
    volume, acquisition = _pet_volume(_timing(DecayCorrection.START)), _zr89(DecayCorrection.START)
    write_pet_bids(volume, acquisition, path)
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing_write_text(self: Path, text: str, *args: Any, **kwargs: Any) -> int:
        with open(self, "w", encoding="utf-8") as stream:
            stream.write(text[:10])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", failing_write_text)
    with pytest.raises(OSError, match="disk full"):
        write_pet_bids(volume.with_array(volume.array * 2), acquisition, path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == old

    monkeypatch.undo()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.setattr(Path, "write_text", failing_write_text)
    with pytest.raises(OSError, match="disk full"):
        write_pet_bids(volume, acquisition, fresh / "sub-02_pet.nii.gz")
    assert list(fresh.iterdir()) == []


def test_writing_onto_a_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pet.nii.gz"
    target.mkdir()
    with pytest.raises(InputError, match="folder"):
        write_nifti(_pet_volume(), target)
    assert target.is_dir()
    assert os.listdir(target) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pet.nii.gz"]


def test_pet_bids_relative_times_are_elapsed_time_across_a_dst_change(tmp_path: Path) -> None:
    zone = ZoneInfo("Europe/Amsterdam")  # clocks go forward on 2026-03-29
    injection = datetime(2026, 3, 27, 9, 0, 0, 250000, tzinfo=zone)
    scan = datetime(2026, 3, 31, 9, 0, tzinfo=zone)
    acquisition = replace(_zr89(DecayCorrection.START), injection_datetime=injection)
    volume = _pet_volume(AcquisitionTiming(scan, 600.0, decay_reference=scan))
    path = tmp_path / "sub-01_pet.nii.gz"
    write_pet_bids(volume, acquisition, path)

    sidecar = json.loads((tmp_path / "sub-01_pet.json").read_text())
    assert (sidecar["TimeZero"], sidecar["InjectionStart"]) == ("09:00:00", 0.25)
    assert sidecar["ScanStart"] == 95 * 3600.0  # 96 h on the wall clock, 95 h elapsed
    back, facts = read_pet_bids(path)
    assert facts.injection_datetime == injection
    assert back.timing is not None
    assert back.timing.start == scan
    assert back.timing.decay_reference == scan
