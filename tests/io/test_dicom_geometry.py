"""Slice sorting and validation, checked against SimpleITK/GDCM and hand-built affines."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from immunopet.errors import GeometryError, InputError
from immunopet.image import Quantity, Volume
from immunopet.io import load_scan, read_dicom, read_dicom_series
from immunopet.io.dicom import ct_series_datasets, write_datasets
from phantoms import AFFINE, PetWriter


def sitk_read(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return reader.Execute()


def ramp(shape: tuple[int, int, int]) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + 1.0


def test_geometry_and_values_agree_with_simpleitk(write_pet: PetWriter) -> None:
    values = ramp((6, 8, 8))
    folder = write_pet(values=values)
    volume = load_scan(folder).volume
    image = sitk_read(folder)
    # SimpleITK: array (z, y, x) with origin, spacing (x, y, z) and direction columns.
    assert np.allclose(volume.affine[:3, 3], image.GetOrigin(), atol=1e-4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    sitk_affine_columns = direction * spacing  # columns: x (column index), y (row), z (slice)
    assert np.allclose(volume.affine[:3, 2], sitk_affine_columns[:, 0], atol=1e-4)
    assert np.allclose(volume.affine[:3, 1], sitk_affine_columns[:, 1], atol=1e-4)
    assert np.allclose(volume.affine[:3, 0], sitk_affine_columns[:, 2], atol=1e-4)
    assert np.allclose(volume.array, sitk.GetArrayFromImage(image), rtol=1e-6)
    # And with the affine the phantom was written with (right-handed, so no flip).
    assert np.allclose(volume.affine, AFFINE, atol=1e-4)
    assert np.allclose(volume.array, values, rtol=1e-4)


def test_file_names_and_folders_do_not_matter(write_pet: PetWriter, tmp_path: Path) -> None:
    folder = write_pet(values=ramp((6, 8, 8)))
    scrambled = tmp_path / "scrambled"
    for index, path in enumerate(sorted(folder.iterdir())):
        target = scrambled / f"sub{index % 2}" / f"z{(7 * index) % 6}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    (scrambled / "README.txt").write_text("not DICOM")
    reference = load_scan(folder).volume
    scan = load_scan(scrambled)
    assert np.array_equal(scan.volume.array, reference.array)
    assert np.allclose(scan.volume.affine, reference.affine)
    assert any("non-DICOM" in w for w in scan.warnings)


def test_missing_slice_is_a_gap(write_pet: PetWriter) -> None:
    folder = write_pet(values=1.0)
    paths = sorted(folder.iterdir(), key=lambda p: float(dcmread(p).ImagePositionPatient[2]))
    paths[3].unlink()
    with pytest.raises(GeometryError, match="gap"):
        load_scan(folder)


def test_uneven_spacing_is_refused(write_pet: PetWriter) -> None:
    def nudge(ds: Dataset, index: int) -> None:
        if index == 2:
            ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 1.2

    with pytest.raises(GeometryError, match="uneven spacing"):
        load_scan(write_pet(values=1.0, mutate=nudge))


def test_gantry_tilt_is_refused(write_pet: PetWriter) -> None:
    def tilt(ds: Dataset, index: int) -> None:
        ds.ImagePositionPatient[1] = float(ds.ImagePositionPatient[1]) + 0.5 * index

    with pytest.raises(GeometryError, match="sheared"):
        load_scan(write_pet(values=1.0, mutate=tilt))


def test_mixed_orientation_is_split_and_reported(write_pet: PetWriter) -> None:
    def rotate_half(ds: Dataset, index: int) -> None:
        if index >= 3:
            ds.ImageOrientationPatient = [0, 1, 0, 1, 0, 0]

    folder = write_pet(values=1.0, mutate=rotate_half)
    scans = read_dicom(folder)
    assert sorted(s.volume.shape[0] for s in scans) == [3, 3]
    assert all(any("split into 2 stacks" in w for w in s.warnings) for s in scans)
    with pytest.raises(InputError, match="2 series found"):
        read_dicom_series(folder)


def test_dynamic_frames_are_split(write_pet: PetWriter, tmp_path: Path) -> None:
    first = write_pet(values=1.0)
    second = write_pet(values=2.0)
    uid = dcmread(next(first.iterdir())).SeriesInstanceUID
    combined = tmp_path / "dynamic"
    combined.mkdir()
    for frame, folder in enumerate((first, second)):
        for path in folder.iterdir():
            ds = dcmread(path)
            ds.SeriesInstanceUID = uid
            ds.TemporalPositionIndex = frame + 1
            ds.SOPInstanceUID = generate_uid()
            ds.save_as(combined / f"{frame}_{path.name}")
    scans = read_dicom(combined)
    assert sorted(float(s.volume.array.mean()) for s in scans) == pytest.approx(
        [1.0, 2.0], rel=1e-4
    )
    assert any("2 time frames" in w for w in scans[0].warnings)


def test_two_series_need_a_choice(write_pet: PetWriter, tmp_path: Path) -> None:
    both = tmp_path / "both"
    shutil.copytree(write_pet(values=1.0), both / "a")
    shutil.copytree(write_pet(values=2.0), both / "b")
    with pytest.raises(InputError, match="--series"):
        read_dicom_series(both)
    uid = dcmread(next((both / "b").iterdir())).SeriesInstanceUID
    assert float(read_dicom_series(both, series_uid=uid).volume.array.mean()) == pytest.approx(
        2.0, rel=1e-4
    )


def test_ct_round_trip_in_hounsfield_units(tmp_path: Path) -> None:
    hu = np.random.default_rng(3).integers(-1000, 2000, size=(5, 16, 12)).astype(np.float32)
    volume = Volume(hu, AFFINE, Quantity.HOUNSFIELD)
    write_datasets(ct_series_datasets(volume, when=datetime(2026, 3, 6, 9)), tmp_path / "ct")
    scan = load_scan(tmp_path / "ct")
    assert scan.modality == "CT"
    assert scan.volume.quantity is Quantity.HOUNSFIELD
    assert np.array_equal(scan.volume.array, hu)
    image = sitk_read(tmp_path / "ct")
    assert np.array_equal(sitk.GetArrayFromImage(image), scan.volume.array)


def _nm_tomogram(path: Path, frames: np.ndarray) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.20"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "NM"
    ds.SeriesInstanceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.NumberOfFrames = frames.shape[0]
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.PixelSpacing = [4.8, 4.8]
    ds.SpacingBetweenSlices = "4.8"
    ds.SliceThickness = "4.8"
    detector = Dataset()
    detector.ImagePositionPatient = [-100.0, -120.0, 50.0]
    detector.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.DetectorInformationSequence = Sequence([detector])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = frames.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_spect_tomogram_frames_are_slices_along_the_normal(tmp_path: Path) -> None:
    frames = np.stack([np.full((6, 5), k + 1, np.uint16) for k in range(4)])
    _nm_tomogram(tmp_path / "spect.dcm", frames)
    scan = load_scan(tmp_path / "spect.dcm")
    expected = np.array(
        [[0, 0, 4.8, -100.0], [0, 4.8, 0, -120.0], [4.8, 0, 0, 50.0], [0, 0, 0, 1]]
    )  # normal = row × column = +z
    assert np.allclose(scan.volume.affine, expected)
    assert [float(scan.volume.array[k].mean()) for k in range(4)] == [1.0, 2.0, 3.0, 4.0]
    assert scan.volume.quantity is Quantity.COUNTS


def test_copies_of_the_same_image_are_read_once(write_pet: PetWriter, tmp_path: Path) -> None:
    folder = write_pet(values=ramp((6, 8, 8)))
    doubled = tmp_path / "doubled"
    shutil.copytree(folder, doubled / "a")
    shutil.copytree(folder, doubled / "b")
    scan = load_scan(doubled)
    assert scan.volume.shape == (6, 8, 8)
    assert any("6 file(s) repeat an image" in w for w in scan.warnings)


def test_fast_numeric_parse_matches_pydicom(write_pet: PetWriter) -> None:
    from immunopet.io.dicom._values import fast_floats, fast_text, get_floats

    folder = write_pet(values=ramp((6, 8, 8)))
    for path in sorted(folder.iterdir()):
        ds = dcmread(path, stop_before_pixels=True)
        for keyword, count in (
            ("ImagePositionPatient", 3),
            ("ImageOrientationPatient", 6),
            ("PixelSpacing", 2),
            ("RescaleSlope", 1),
        ):
            raw = fast_floats(ds, keyword, count)
            assert raw == get_floats(ds, keyword, count)
        assert fast_text(ds, "Units") == "BQML"
        assert fast_text(ds, "SeriesDescription") is None


def test_fast_numeric_parse_refuses_what_pydicom_refuses(write_pet: PetWriter) -> None:
    from immunopet.io.dicom._values import fast_floats

    def broken(ds: Dataset, _: int) -> None:
        ds.ImagePositionPatient = ["1", "2"]  # two values where three are required

    folder = write_pet(values=1.0, mutate=broken)
    ds = dcmread(next(folder.iterdir()), stop_before_pixels=True)
    with pytest.raises(InputError, match="expected 3"):
        fast_floats(ds, "ImagePositionPatient", 3, path=str(folder))
