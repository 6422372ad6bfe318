"""Named label maps: NIfTI + sidecar, TotalSegmentator folders, SEG/RTSTRUCT dispatch, canonical names."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from immunopet.data import read_toml
from immunopet.errors import InputError, UnsupportedInputError
from immunopet.image import Quantity, Volume
from immunopet.io import (
    LabelMap,
    canonical_structure_name,
    load_label_map,
    load_scan,
    write_label_seg,
    write_nifti,
)
from immunopet.io.dicom import ct_series_datasets, write_datasets

SHAPE = (6, 8, 10)
AFFINE = np.array(
    [
        [0.0, 0.0, 2.0, -10.0],
        [0.0, 2.0, 0.0, -8.0],
        [4.0, 0.0, 0.0, 50.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)


def _labels() -> npt.NDArray[np.uint8]:
    array = np.zeros(SHAPE, dtype=np.uint8)
    array[1:4, 1:5, 1:6] = 1  # liver: 3 × 4 × 5 = 60
    array[2:5, 5:7, 6:9] = 3  # kidney_left: 3 × 2 × 3 = 18
    array[0:2, 0:2, 7:10] = 4  # kidney_right: 2 × 2 × 3 = 12
    return array


NAMES = {1: "liver", 3: "kidney_left", 4: "kidney_right"}


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("kidney_left", "kidneys"),
        ("Kidney Right", "kidneys"),
        ("lung_middle_lobe_right", "lungs"),
        ("vertebrae_L1", "red_marrow"),
        ("VERTEBRAE_t12", "red_marrow"),
        ("heart_ventricle_left", "heart"),
        ("iliopsoas_left", "muscle"),
        ("subcutaneous_fat", "fat"),
        ("urinary_bladder", "urinary_bladder"),
        ("spleen", "spleen"),
        ("pancreas", "pancreas"),  # no phantom counterpart: keeps its name
        ("mediastinal_mass", "mediastinal_mass"),
    ],
)
def test_canonical_structure_names(name: str, canonical: str) -> None:
    assert canonical_structure_name(name) == canonical


def test_canonical_names_are_the_phantom_tissues_and_all_have_codes() -> None:
    structures = read_toml("structure_names.toml")
    tissues = set(read_toml("anatomy.toml")["tissues"]) - {"air", "lesion"}
    assert set(structures["canonical"]) == tissues
    assert set(structures["aliases"].values()) <= tissues
    assert set(read_toml("segment_codes.toml")["structures"]) == tissues


def test_label_map_finds_structures_by_name_or_canonical_name() -> None:
    labels = LabelMap(Volume(_labels(), AFFINE, Quantity.UNITLESS), NAMES)
    assert labels.ids("kidneys") == (3, 4)
    assert labels.ids("kidney_left") == (3,)
    assert labels.ids("Liver") == (1,)
    assert int(labels.mask("kidneys").array.sum()) == 18 + 12
    assert labels.canonical_names == {1: "liver", 3: "kidneys", 4: "kidneys"}
    with pytest.raises(InputError, match="no structure 'spleen'"):
        labels.mask("spleen")
    with pytest.raises(InputError, match="have no name"):
        LabelMap(Volume(_labels(), AFFINE, Quantity.UNITLESS), {1: "liver"})


@pytest.mark.parametrize(
    "sidecar",
    [
        {"labels": {"1": "liver", "3": "kidney_left", "4": "kidney_right"}},
        {"air": 0, "liver": 1, "kidney_left": 3, "kidney_right": 4},  # truth.json style
    ],
)
def test_nifti_label_map_with_sidecar(tmp_path: Path, sidecar: dict[str, object]) -> None:
    write_nifti(Volume(_labels(), AFFINE, Quantity.UNITLESS), tmp_path / "labels.nii.gz")
    (tmp_path / "labels.json").write_text(json.dumps(sidecar))
    labels = load_label_map(tmp_path / "labels.nii.gz")
    assert labels.names == NAMES
    assert labels.volume.array.dtype == np.uint8
    np.testing.assert_array_equal(labels.volume.array, _labels())
    np.testing.assert_allclose(labels.volume.affine, AFFINE)
    assert labels.notes == ()


def test_nifti_without_names_gets_generic_names(tmp_path: Path) -> None:
    write_nifti(Volume(_labels(), AFFINE, Quantity.UNITLESS), tmp_path / "labels.nii")
    labels = load_label_map(tmp_path / "labels.nii")
    assert labels.names == {1: "label_1", 3: "label_3", 4: "label_4"}
    assert "named label_<id>" in labels.notes[0]
    named = load_label_map(tmp_path / "labels.nii", names=NAMES)
    assert named.names == NAMES


def test_nifti_image_is_not_a_label_map(tmp_path: Path) -> None:
    image = Volume(np.full(SHAPE, 2.5, np.float32), AFFINE, Quantity.UNITLESS)
    write_nifti(image, tmp_path / "pet.nii.gz")
    with pytest.raises(InputError, match="non-negative whole numbers"):
        load_label_map(tmp_path / "pet.nii.gz")


def test_totalsegmentator_folder(tmp_path: Path) -> None:
    folder = tmp_path / "segmentations"
    folder.mkdir()
    masks = {
        "liver": _labels() == 1,
        "kidney_left": _labels() == 3,
        "kidney_right": _labels() == 4,
        "spleen": np.zeros(SHAPE, dtype=bool),  # TotalSegmentator writes empty masks too
        "vertebrae_L1": np.zeros(SHAPE, dtype=bool),
    }
    # vertebrae_L1 overlaps the liver by 2 voxels and comes last in name order: it wins.
    masks["vertebrae_L1"][1, 1, 1:3] = True
    masks["vertebrae_L1"][5, 7, 9] = True
    reference = Volume(np.zeros(SHAPE, np.float32), AFFINE, Quantity.UNITLESS)
    for name, mask in masks.items():
        write_nifti(reference.mask(mask), folder / f"{name}.nii.gz")
    labels = load_label_map(folder)
    # ids 1, 2, … in file-name order, empty masks skipped.
    assert labels.names == {1: "kidney_left", 2: "kidney_right", 3: "liver", 4: "vertebrae_L1"}
    counts = np.bincount(labels.volume.array.ravel(), minlength=5)
    assert counts[1:].tolist() == [18, 12, 60 - 2, 3]
    assert int(labels.mask("kidneys").array.sum()) == 30
    assert int(labels.mask("red_marrow").array.sum()) == 3
    assert "1 empty mask(s) skipped: spleen" in labels.notes
    assert "2 voxel(s) lie in more than one mask: the later file in name order wins" in (
        labels.notes
    )


def test_masks_on_different_grids_are_refused(tmp_path: Path) -> None:
    write_nifti(Volume(np.ones(SHAPE, bool), AFFINE, Quantity.MASK), tmp_path / "a.nii.gz")
    write_nifti(Volume(np.ones((2, 2, 2), bool), AFFINE, Quantity.MASK), tmp_path / "b.nii.gz")
    with pytest.raises(InputError, match="another grid"):
        load_label_map(tmp_path)


def test_reference_grid_paste_and_nearest(tmp_path: Path) -> None:
    write_nifti(Volume(_labels(), AFFINE, Quantity.UNITLESS), tmp_path / "labels.nii.gz")
    # A larger aligned grid starting one slice, two rows and three columns earlier.
    larger_affine = AFFINE.copy()
    larger_affine[:3, 3] -= AFFINE[:3, :3] @ np.array([1.0, 2.0, 3.0])
    larger = Volume(np.zeros((8, 12, 14), np.float32), larger_affine, Quantity.UNITLESS)
    pasted = load_label_map(tmp_path / "labels.nii.gz", larger, names=NAMES)
    assert pasted.volume.same_grid(larger)
    np.testing.assert_array_equal(pasted.volume.array[1:7, 2:10, 3:13], _labels())
    assert int(np.count_nonzero(pasted.volume.array)) == int(np.count_nonzero(_labels()))
    assert pasted.notes == ()
    # A grid of twice the spacing on every other voxel centre: nearest picks those voxels.
    coarse_affine = AFFINE.copy()
    coarse_affine[:3, :3] *= 2.0
    coarse = Volume(np.zeros((3, 4, 5), np.float32), coarse_affine, Quantity.UNITLESS)
    sampled = load_label_map(tmp_path / "labels.nii.gz", coarse, names=NAMES)
    np.testing.assert_array_equal(sampled.volume.array, _labels()[::2, ::2, ::2])
    assert "nearest neighbour" in sampled.notes[0]


@pytest.fixture
def ct(tmp_path: Path) -> tuple[Path, Volume]:
    ct = Volume(np.zeros(SHAPE, np.float32), AFFINE, Quantity.HOUNSFIELD)
    write_datasets(ct_series_datasets(ct, when=datetime(2026, 3, 6, 9)), tmp_path / "CT")
    return tmp_path / "CT", load_scan(tmp_path / "CT").volume


def test_seg_file_and_folder_dispatch(tmp_path: Path, ct: tuple[Path, Volume]) -> None:
    folder, reference = ct
    seg_folder = tmp_path / "SEG"
    seg_folder.mkdir()
    path = write_label_seg(
        reference.with_array(_labels(), Quantity.UNITLESS), NAMES, folder, seg_folder / "s.dcm"
    )
    for given in (path, seg_folder):
        labels = load_label_map(given, reference)
        assert labels.names == NAMES
        np.testing.assert_array_equal(labels.volume.array, _labels())


def _rtstruct(path: Path, frame_of_reference: str) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.Modality = "RTSTRUCT"
    roi = Dataset()
    roi.ROINumber = 2
    roi.ROIName = "Spleen"
    roi.ReferencedFrameOfReferenceUID = frame_of_reference
    ds.StructureSetROISequence = DicomSequence([roi])
    contour = Dataset()
    contour.ContourGeometricType = "CLOSED_PLANAR"
    contour.NumberOfContourPoints = 4
    # Slice 3 (z = 62 mm); columns 2..4 and rows 1..3 (voxel boundaries at -7/-1 mm, -7/-1 mm).
    contour.ContourData = [-7, -7, 62, -1, -7, 62, -1, -1, 62, -7, -1, 62]
    holder = Dataset()
    holder.ReferencedROINumber = 2
    holder.ContourSequence = DicomSequence([contour])
    ds.ROIContourSequence = DicomSequence([holder])
    ds.save_as(path, enforce_file_format=True)
    return path


def test_rtstruct_dispatch_needs_a_reference(tmp_path: Path, ct: tuple[Path, Volume]) -> None:
    _, reference = ct
    path = _rtstruct(tmp_path / "rs.dcm", str(reference.metadata["frame_of_reference_uid"]))
    labels = load_label_map(path, reference)
    assert labels.names == {2: "Spleen"}
    assert labels.ids("spleen") == (2,)
    mask = labels.mask("spleen").array
    assert int(mask.sum()) == 9
    assert mask[3, 1:4, 2:5].all()
    with pytest.raises(InputError, match="needs a reference grid"):
        load_label_map(path)


def test_unsupported_inputs(tmp_path: Path, ct: tuple[Path, Volume]) -> None:
    folder, _ = ct
    with pytest.raises(UnsupportedInputError, match="modality CT is not a label map"):
        load_label_map(next(folder.iterdir()))
    (tmp_path / "notes.txt").write_text("liver")
    with pytest.raises(UnsupportedInputError, match="neither NIfTI"):
        load_label_map(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="0 DICOM SEG/RTSTRUCT files"):
        load_label_map(folder)
    with pytest.raises(InputError, match="no such file or folder"):
        load_label_map(tmp_path / "missing.nii.gz")
