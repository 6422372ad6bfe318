"""The DICOM ingest path against a real corpus that no one here wrote: a result or a clear error.

The corpus is every file on disk under pydicom's own data folder (``test_files``,
``charset_files``, ``palettes`` and the package's other files: CT, MR, RT, SR, US,
SEG, ECG, compressed, big-endian, truncated, DICOMDIR, JSON, text) and every
file of the ``pydicom-data`` package (``data_store/data``). Folders are walked
on disk: ``pydicom.data.get_testdata_files`` is not used because it downloads
every file listed in pydicom's ``urls.json`` that is missing from its cache.

Each file must give Scans with sane volumes or an :class:`ImmunopetError` whose
one line names the file; anything else is a traceback in the command line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import data_store
import numpy as np
import pydicom.data
import pytest
import SimpleITK as sitk
from pydicom import dcmread
from pydicom.dataset import Dataset

from immunopet.cli import main
from immunopet.errors import GeometryError, ImmunopetError, InputError, UnsupportedInputError
from immunopet.image import Quantity
from immunopet.io import Scan, read_dicom
from phantoms import SUV_JSON_KEYS

PYDICOM_DATA = Path(pydicom.data.__file__).resolve().parent
PYDICOM_DATA_STORE = Path(data_store.__file__).resolve().parent / "data"
TEST_FILES = PYDICOM_DATA / "test_files"
ROOTS = {"pydicom": PYDICOM_DATA, "pydicom-data": PYDICOM_DATA_STORE}

SUV_KEYS = SUV_JSON_KEYS


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """Files and folders under ``root`` in a stable order (compiled bytecode left out)."""
    files: list[Path] = []
    folders: list[Path] = []
    for here, directories, names in os.walk(root):
        directories[:] = sorted(d for d in directories if d != "__pycache__")
        folders.append(Path(here))
        files.extend(Path(here) / name for name in sorted(names))
    return files, folders


def _corpus() -> tuple[list[Any], list[Any]]:
    files: list[Any] = []
    folders: list[Any] = []
    for label, root in ROOTS.items():
        found, dirs = _walk(root)
        files += [pytest.param(p, id=f"{label}/{p.relative_to(root).as_posix()}") for p in found]
        folders += [
            pytest.param(p, id=f"{label}/{p.relative_to(root).as_posix()}".rstrip("/."))
            for p in dirs
        ]
    return files, folders


CORPUS_FILES, CORPUS_FOLDERS = _corpus()
CORPUS_PATHS: list[Path] = [p.values[0] for p in CORPUS_FILES]


def _pydicom(path: Path, *, pixels: bool = True) -> Dataset:
    """The file as pydicom reads it (its warnings about invalid values silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(path, stop_before_pixels=not pixels)
        if pixels:
            ds.pixel_array  # decode now, under the same silence  # noqa: B018
    return ds


def _floats(value: Any) -> np.ndarray:
    return np.asarray([float(v) for v in value], dtype=np.float64)


def _assert_clear(error: ImmunopetError, path: Path) -> None:
    line = error.one_line()
    assert line.strip(), "empty error message"
    assert "\n" not in line, line
    assert "\r" not in line, line
    assert str(path) in line, f"the error does not name {path}: {line}"
    assert error.message.strip()
    assert str(error) == line


def _assert_sane(scan: Scan) -> None:
    volume = scan.volume
    assert scan.modality in {"PT", "NM", "CT"}
    assert volume.array.ndim == 3
    assert min(volume.array.shape) >= 1
    assert np.all(np.isfinite(volume.array)), "non-finite voxel values"
    assert volume.affine.shape == (4, 4)
    assert np.all(np.isfinite(volume.affine))
    np.testing.assert_array_equal(volume.affine[3], [0.0, 0.0, 0.0, 1.0])
    assert abs(np.linalg.det(volume.affine[:3, :3])) > 0.0
    assert scan.files
    assert all(Path(f).is_file() for f in scan.files)
    if scan.modality == "CT":
        assert volume.quantity is Quantity.HOUNSFIELD


def _assert_matches_pydicom(scan: Scan, path: Path) -> None:
    """A single-frame classic image: grid and values as pydicom and the header give them."""
    ds = _pydicom(path)
    volume = scan.volume
    assert volume.array.shape == (1, int(ds.Rows), int(ds.Columns))
    expected = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1.0)) + float(
        ds.get("RescaleIntercept", 0.0)
    )
    np.testing.assert_allclose(volume.array[0], expected, rtol=1e-6, atol=1e-3)
    orientation = _floats(ds.ImageOrientationPatient)
    row, column = orientation[:3], orientation[3:]
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    spacing = _floats(ds.PixelSpacing)
    np.testing.assert_allclose(volume.affine[:3, 1], column * spacing[0], atol=1e-6)
    np.testing.assert_allclose(volume.affine[:3, 2], row * spacing[1], atol=1e-6)
    np.testing.assert_allclose(volume.affine[:3, 3], _floats(ds.ImagePositionPatient), atol=1e-6)
    slice_axis = volume.affine[:3, 0]
    np.testing.assert_allclose(
        slice_axis / np.linalg.norm(slice_axis), np.cross(row, column), atol=1e-6
    )


def _result_or_clear_error(path: Path) -> list[Scan] | ImmunopetError:
    """``read_dicom(path)``: scans, or the ImmunopetError; any other exception propagates."""
    try:
        scans = read_dicom(path)
    except ImmunopetError as error:
        _assert_clear(error, path)
        return error
    assert scans, "no scans and no error"
    for scan in scans:
        _assert_sane(scan)
    return scans


def _sha256(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


# --- the corpus itself ------------------------------------------------------------------


def test_corpus_is_complete() -> None:
    """The walk finds what pydicom's own (non-downloading) listings find, and more."""
    walked = {p.resolve() for p in CORPUS_PATHS}
    assert len(walked) == len(CORPUS_PATHS) > 250
    listed = pydicom.data.get_charset_files() + pydicom.data.get_palette_files()
    assert {Path(p).resolve() for p in listed if Path(p).is_file()} <= walked
    on_disk = {p.name for p in PYDICOM_DATA_STORE.iterdir()}
    assert len(on_disk) >= 60
    assert {p.name for p in walked if p.parent == PYDICOM_DATA_STORE} == on_disk
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "README.txt"):
        assert (TEST_FILES / name).resolve() in walked


# --- every file: a result or the clear error, from the library and the command line ----


@pytest.mark.parametrize("path", CORPUS_FILES)
def test_every_file_gives_a_result_or_a_clear_error(path: Path) -> None:
    outcome = _result_or_clear_error(path)
    if isinstance(outcome, ImmunopetError):
        return
    for scan in outcome:
        assert scan.files == (str(path),)
    ds = _pydicom(path, pixels=False)
    frames = int(ds.get("NumberOfFrames") or 1)
    (scan,) = outcome
    assert scan.volume.array.shape[1:] == (int(ds.Rows), int(ds.Columns))
    if frames <= 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        _assert_matches_pydicom(scan, path)


@pytest.mark.parametrize("path", CORPUS_FILES)
def test_every_file_through_the_command_line(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["suv", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        assert out == ""
        assert err.endswith("\n"), err
        assert err.count("\n") == 1, err
        assert str(path) in err, err
        assert err.startswith("immunopet suv: error: ")
        return
    assert err == ""
    payload = json.loads(out)
    assert payload.keys() >= SUV_KEYS


@pytest.mark.parametrize("folder", CORPUS_FOLDERS)
def test_every_corpus_folder_gives_a_result_or_a_clear_error(folder: Path) -> None:
    outcome = _result_or_clear_error(folder)
    if isinstance(outcome, ImmunopetError):
        return
    for scan in outcome:
        assert all(Path(f).is_relative_to(folder) for f in scan.files)


@pytest.fixture(scope="module")
def corpus_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole corpus in one folder: every kind of file mixed together."""
    folder = tmp_path_factory.mktemp("corpus")
    for label, root in ROOTS.items():
        shutil.copytree(root, folder / label, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_the_whole_corpus_in_one_folder(
    corpus_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(p for p in corpus_copy.rglob("*") if p.is_file())
    assert len(files) == len(CORPUS_PATHS)
    before = _sha256(files)
    outcome = _result_or_clear_error(corpus_copy)
    if not isinstance(outcome, ImmunopetError):
        for scan in outcome:
            assert all(Path(f).is_relative_to(corpus_copy) for f in scan.files)
    code = main(["suv", str(corpus_copy), "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 2)
    if code == 2:
        assert out == ""
        assert err.count("\n") == 1
        assert str(corpus_copy) in err
    assert sorted(p for p in corpus_copy.rglob("*") if p.is_file()) == files, "files created"
    assert _sha256(files) == before, "input files modified"


def test_reading_modifies_no_input_file(capsys: pytest.CaptureFixture[str]) -> None:
    before = _sha256(CORPUS_PATHS)
    for path in CORPUS_PATHS:
        with contextlib.suppress(ImmunopetError):
            read_dicom(path)
        main(["suv", str(path), "--json"])
    capsys.readouterr()
    assert _sha256(CORPUS_PATHS) == before


# --- what the results and errors say ------------------------------------------------------


def test_ct_small_is_hounsfield_on_the_grid_its_header_gives() -> None:
    path = TEST_FILES / "CT_small.dcm"
    (scan,) = read_dicom(path)
    ds = _pydicom(path)
    # Both slice-step attributes agree, so the test takes no side on which one wins.
    assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 5.0
    row = _floats(ds.ImageOrientationPatient[:3])
    column = _floats(ds.ImageOrientationPatient[3:])
    spacing = _floats(ds.PixelSpacing)
    expected = np.eye(4)
    expected[:3, 0] = np.cross(row, column) * 5.0
    expected[:3, 1] = column * spacing[0]
    expected[:3, 2] = row * spacing[1]
    expected[:3, 3] = _floats(ds.ImagePositionPatient)
    assert scan.modality == "CT"
    assert scan.acquisition is None
    assert scan.volume.quantity is Quantity.HOUNSFIELD
    np.testing.assert_allclose(scan.volume.affine, expected, atol=1e-9)
    values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(scan.volume.array[0], values.astype(np.float32))
    assert scan.volume.array.min() < -800.0  # near air: the intercept was applied


@pytest.mark.parametrize(
    ("compressed", "uncompressed"),
    [
        (PYDICOM_DATA_STORE / "693_J2KR.dcm", PYDICOM_DATA_STORE / "693_UNCR.dcm"),
        (TEST_FILES / "693_J2KI.dcm", PYDICOM_DATA_STORE / "693_UNCI.dcm"),
    ],
    ids=["j2k-lossless", "j2k-lossy"],
)
def test_compressed_ct_equals_its_uncompressed_twin_and_gdcm(
    compressed: Path, uncompressed: Path
) -> None:
    assert _pydicom(compressed, pixels=False).SOPInstanceUID == (
        _pydicom(uncompressed, pixels=False).SOPInstanceUID
    )
    (a,), (b,) = read_dicom(compressed), read_dicom(uncompressed)
    np.testing.assert_array_equal(a.volume.array, b.volume.array)
    np.testing.assert_array_equal(a.volume.affine, b.volume.affine)
    # An independent decoder (GDCM through SimpleITK) gives the same Hounsfield values.
    image = sitk.ReadImage(str(compressed), sitk.sitkFloat32)
    np.testing.assert_array_equal(a.volume.array, sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(a.volume.affine[:3, 3], image.GetOrigin(), atol=1e-6)


def test_ct_series_folder_is_stacked_in_position_order() -> None:
    folder = TEST_FILES / "dicomdirtests" / "98892001" / "CT5N"
    (scan,) = read_dicom(folder)
    datasets = {p: _pydicom(p) for p in folder.iterdir()}
    normal = np.cross(*np.split(_floats(next(iter(datasets.values())).ImageOrientationPatient), 2))
    ordered = sorted(
        datasets, key=lambda p: float(_floats(datasets[p].ImagePositionPatient) @ normal)
    )
    assert scan.files == tuple(str(p) for p in ordered)
    positions = np.array([_floats(datasets[p].ImagePositionPatient) for p in ordered])
    np.testing.assert_allclose(scan.volume.affine[:3, 3], positions[0], atol=1e-6)
    np.testing.assert_allclose(scan.volume.affine[:3, 0], positions[1] - positions[0], atol=1e-4)
    for index, path in enumerate(ordered):
        ds = datasets[path]
        values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(scan.volume.array[index], values.astype(np.float32))


@pytest.mark.parametrize(
    ("path", "error", "field", "words"),
    [
        (TEST_FILES / "MR_small.dcm", UnsupportedInputError, "Modality (0008,0060)", "MR"),
        (TEST_FILES / "MR_small_RLE.dcm", UnsupportedInputError, "Modality (0008,0060)", "MR"),
        (
            TEST_FILES / "MR_small_jp2klossless.dcm",
            UnsupportedInputError,
            "Modality (0008,0060)",
            "MR",
        ),
        (TEST_FILES / "rtdose.dcm", UnsupportedInputError, "Modality (0008,0060)", "RTDOSE"),
        (TEST_FILES / "README.txt", InputError, None, "not a DICOM Part-10 file"),
        (
            TEST_FILES / "dicomdirtests" / "DICOMDIR",
            UnsupportedInputError,
            "MediaStorageSOPClassUID (0002,0002)",
            "DICOMDIR",
        ),
        (
            TEST_FILES / "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000000",
            InputError,
            "Rows (0028,0010)",
            "no image",
        ),
        (
            PYDICOM_DATA_STORE / "eCT_Supplemental.dcm",
            UnsupportedInputError,
            "RescaleType (0028,1054)",
            "not Hounsfield",
        ),
        (
            PYDICOM_DATA_STORE / "explicit_VR-UN.dcm",
            GeometryError,
            "SliceThickness (0018,0050)",
            "one slice",
        ),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else None,
)
def test_refusals_name_the_field(
    path: Path, error: type[ImmunopetError], field: str | None, words: str
) -> None:
    with pytest.raises(error) as caught:
        read_dicom(path)
    assert type(caught.value) is error
    assert caught.value.path == str(path)
    assert caught.value.field == field
    assert words in caught.value.one_line()


# --- broken copies of a corpus file ---------------------------------------------------------


def test_a_file_truncated_inside_pixel_data(tmp_path: Path) -> None:
    data = (TEST_FILES / "CT_small.dcm").read_bytes()
    for fraction in (0.2, 0.5, 0.9):
        path = tmp_path / f"CT_small_{fraction}.dcm"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(InputError, match="truncated") as caught:
            read_dicom(path)
        assert caught.value.field == "PixelData (7FE0,0010)"
        _assert_clear(caught.value, path)


@pytest.mark.parametrize("keyword", ["Rows", "Columns"])
@pytest.mark.parametrize(
    "source",
    [TEST_FILES / "CT_small.dcm", PYDICOM_DATA_STORE / "693_J2KR.dcm"],
    ids=lambda p: p.name,
)
def test_a_ct_header_without_image_size(tmp_path: Path, source: Path, keyword: str) -> None:
    ds = dcmread(source)
    del ds[keyword]
    path = tmp_path / source.name
    ds.save_as(path)
    with pytest.raises(InputError, match="no image") as caught:
        read_dicom(path)
    assert (
        caught.value.field
        == {"Rows": "Rows (0028,0010)", "Columns": "Columns (0028,0011)"}[keyword]
    )
    _assert_clear(caught.value, path)
