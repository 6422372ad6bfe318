"""DICOM SEG write/read: exact label round trips, conformance, codes, geometry checks, other producers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import highdicom as hd
import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom import config

from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.io import load_scan, read_label_seg, write_label_seg
from immunopet.io.dicom import ct_series_datasets, write_datasets

SHAPE = (12, 16, 20)
#: Axial: slices along +z (3 mm), rows along +y (2 mm), columns along +x (2.5 mm).
AFFINE = np.array(
    [
        [0.0, 0.0, 2.5, -25.0],
        [0.0, 2.0, 0.0, -16.0],
        [3.0, 0.0, 0.0, 100.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
WHEN = datetime(2026, 3, 6, 9, 0)
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def _labels() -> npt.NDArray[np.uint8]:
    """Non-consecutive ids 2 (liver), 5 (lesion), 40 (unknown name) on slices 2..9."""
    array = np.zeros(SHAPE, dtype=np.uint8)
    array[2:8, 3:12, 4:15] = 2
    array[4:6, 6:9, 7:10] = 5  # inside the liver block
    array[7:10, 12:15, 1:4] = 40
    return array


NAMES = {2: "liver", 5: "mediastinal_mass", 40: "my structure"}


@pytest.fixture
def ct_folder(tmp_path: Path) -> Path:
    ct = Volume(np.zeros(SHAPE, np.float32), AFFINE, Quantity.HOUNSFIELD)
    folder = tmp_path / "CT"
    write_datasets(ct_series_datasets(ct, when=WHEN), folder)
    return folder


@pytest.fixture
def reference(ct_folder: Path) -> Volume:
    return load_scan(ct_folder).volume


@pytest.fixture
def seg_file(tmp_path: Path, ct_folder: Path, reference: Volume) -> Path:
    labels = reference.with_array(_labels(), Quantity.UNITLESS)
    return write_label_seg(
        labels, NAMES, ct_folder, tmp_path / "labels.dcm", lesions={"mediastinal_mass"}
    )


def test_round_trip_on_the_reference_grid_is_exact(seg_file: Path, reference: Volume) -> None:
    volume, names = read_label_seg(seg_file, reference=reference)
    assert volume.same_grid(reference)
    assert volume.array.dtype == np.uint8
    np.testing.assert_array_equal(volume.array, _labels())
    assert names == NAMES
    assert volume.metadata["notes"] == []
    assert volume.metadata["segment_numbers"] == {2: 1, 5: 2, 40: 3}


def test_round_trip_on_its_own_grid_covers_the_labelled_slices(
    seg_file: Path, reference: Volume
) -> None:
    volume, names = read_label_seg(seg_file)
    # Frames exist on slices 2..9 only (empty frames omitted).
    assert volume.shape == (8, *SHAPE[1:])
    np.testing.assert_allclose(volume.affine[:3, 3], reference.index_to_lps([2, 0, 0]))
    np.testing.assert_allclose(volume.affine[:3, :3], reference.affine[:3, :3])
    np.testing.assert_array_equal(volume.array, _labels()[2:10])
    assert names == NAMES


def test_labels_given_in_reversed_slice_order_are_written_correctly(
    tmp_path: Path, ct_folder: Path, reference: Volume
) -> None:
    flipped_affine = reference.affine.copy()
    flipped_affine[:3, 3] = reference.index_to_lps([SHAPE[0] - 1, 0, 0])
    flipped_affine[:3, 0] *= -1.0
    flipped = Volume(_labels()[::-1].copy(), flipped_affine, Quantity.UNITLESS)
    path = write_label_seg(flipped, NAMES, ct_folder, tmp_path / "flipped.dcm")
    volume, _ = read_label_seg(path, reference=reference)
    np.testing.assert_array_equal(volume.array, _labels())
    # And read onto the flipped grid: back to the order given.
    back, _ = read_label_seg(path, reference=flipped)
    np.testing.assert_array_equal(back.array, flipped.array)


def test_written_seg_passes_pydicom_strict_reading(
    seg_file: Path, ct_folder: Path, reference: Volume
) -> None:
    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        ds = pydicom.dcmread(seg_file)
        for element in ds.iterall():
            _ = element.value
    finally:
        config.settings.reading_validation_mode = previous
    assert ds.SOPClassUID == SEG_STORAGE
    assert ds.Modality == "SEG"
    assert ds.SegmentationType == "BINARY"
    assert ds.FrameOfReferenceUID == reference.metadata["frame_of_reference_uid"]
    referenced = ds.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == reference.metadata["series_instance_uid"]
    ct_uids = {pydicom.dcmread(p).SOPInstanceUID for p in ct_folder.iterdir()}
    assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} <= (
        ct_uids
    )
    # Frames per segment = slices holding that label: 6 + 2 + 3.
    assert ds.NumberOfFrames == 11
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == [2.0, 2.5]
    assert float(measures.SpacingBetweenSlices) == 3.0


def test_highdicom_reads_segments_codes_and_voxels(seg_file: Path) -> None:
    seg = hd.seg.segread(seg_file)
    assert seg.segment_numbers == [1, 2, 3]
    expected_types = {
        1: ("liver", "10200004", "91723000"),  # Liver / Anatomical Structure (CID 7151/7150)
        2: ("mediastinal_mass", "108369006", "49755003"),  # Neoplasm / Morph. Abnormal Structure
        3: ("my structure", "85756007", "85756007"),  # fallback Tissue / Tissue
    }
    labels = _labels()
    for number, (label, type_code, category_code) in expected_types.items():
        description = seg.get_segment_description(number)
        assert description.segment_label == label
        assert description.segmented_property_type.value == type_code
        assert description.segmented_property_category.value == category_code
        assert description.algorithm_type.value == "AUTOMATIC"
        volume = seg.get_volume(segment_numbers=[number])
        label_id = [2, 5, 40][number - 1]
        assert int(np.count_nonzero(volume.array)) == int(np.count_nonzero(labels == label_id))


def test_datasets_as_source_are_not_modified(tmp_path: Path, reference: Volume) -> None:
    datasets = ct_series_datasets(
        Volume(np.zeros(SHAPE, np.float32), AFFINE, Quantity.HOUNSFIELD), when=WHEN
    )
    for ds in datasets:  # a source without the Type 2 attribute: the SEG writer adds its own
        del ds.PatientBirthDate
    labels = Volume(_labels(), AFFINE, Quantity.UNITLESS)
    path = write_label_seg(labels, NAMES, datasets, tmp_path / "from_datasets.dcm")
    assert "PatientBirthDate" not in datasets[0]
    seg = pydicom.dcmread(path)
    assert seg.StudyInstanceUID == datasets[0].StudyInstanceUID
    assert seg.PatientBirthDate == ""


def test_grid_mismatch_is_refused(tmp_path: Path, ct_folder: Path) -> None:
    shifted = AFFINE.copy()
    shifted[:3, 3] += [2.5, 0.0, 0.0]  # one column to the left
    with pytest.raises(InputError, match="not on the source series' grid"):
        write_label_seg(
            Volume(_labels(), shifted, Quantity.UNITLESS), NAMES, ct_folder, tmp_path / "x.dcm"
        )
    smaller = _labels()[:, :, :-1].copy()
    with pytest.raises(InputError, match="not on the source series' grid"):
        write_label_seg(
            Volume(smaller, AFFINE, Quantity.UNITLESS), NAMES, ct_folder, tmp_path / "x.dcm"
        )
    assert not (tmp_path / "x.dcm").exists()


@pytest.mark.parametrize(
    ("array", "names", "message"),
    [
        (np.zeros(SHAPE, np.uint8), NAMES, "no labelled voxel"),
        (_labels(), {2: "liver"}, r"ids \[5, 40\] have no name"),
        (_labels().astype(np.float32), NAMES, "must be integers"),
        (_labels(), {**NAMES, 2: "x" * 65}, "cannot be a Segment Label"),
    ],
)
def test_unusable_labels_are_refused(
    tmp_path: Path,
    ct_folder: Path,
    array: npt.NDArray[np.generic],
    names: dict[int, str],
    message: str,
) -> None:
    with pytest.raises(InputError, match=message):
        write_label_seg(
            Volume(array, AFFINE, Quantity.UNITLESS), names, ct_folder, tmp_path / "x.dcm"
        )


def test_unknown_algorithm_family_is_refused(tmp_path: Path, ct_folder: Path) -> None:
    with pytest.raises(InputError, match="unknown algorithm family"):
        write_label_seg(
            Volume(_labels(), AFFINE, Quantity.UNITLESS),
            NAMES,
            ct_folder,
            tmp_path / "x.dcm",
            algorithm_family="guesswork",
        )


def test_folder_with_two_series_takes_the_one_matching_the_labels(
    tmp_path: Path, ct_folder: Path, reference: Volume
) -> None:
    other = Volume(np.zeros((5, 8, 8), np.float32), AFFINE, Quantity.HOUNSFIELD)
    write_datasets(ct_series_datasets(other, when=WHEN), ct_folder / "other")
    labels = reference.with_array(_labels(), Quantity.UNITLESS)
    path = write_label_seg(labels, NAMES, ct_folder, tmp_path / "two.dcm")
    seg = pydicom.dcmread(path)
    assert (
        seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        == (reference.metadata["series_instance_uid"])
    )
    # A second series of the same size leaves the choice ambiguous.
    twin = Volume(np.zeros(SHAPE, np.float32), AFFINE, Quantity.HOUNSFIELD)
    write_datasets(ct_series_datasets(twin, when=WHEN), ct_folder / "twin")
    with pytest.raises(InputError, match="3 series"):
        write_label_seg(labels, NAMES, ct_folder, tmp_path / "ambiguous.dcm")


def _foreign_seg(
    tmp_path: Path, ct_folder: Path, pixels: npt.NDArray[np.generic], kind: str
) -> Path:
    """A SEG written by highdicom directly (no immunopet label ids)."""
    sources = [pydicom.dcmread(p) for p in sorted(ct_folder.iterdir())]
    sources.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    for ds in sources[:1]:
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.AccessionNumber = ""
        ds.StudyID = ""
        ds.PatientName = "Phantom^Test"
    descriptions = [
        hd.seg.SegmentDescription(
            number,
            label,
            hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
            hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
            hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for number, label in ((1, "organ"), (2, "lesion"))
    ]
    seg = hd.seg.Segmentation(
        sources, pixels, kind, descriptions, hd.UID(), 5, hd.UID(), 1, "other", "other", "1", "1"
    )
    path = tmp_path / f"foreign_{kind}.dcm"
    seg.save_as(path)
    return path


def test_other_producers_overlapping_segments_higher_number_wins(
    tmp_path: Path, ct_folder: Path, reference: Volume
) -> None:
    stacked = np.zeros((*SHAPE, 2), dtype=np.uint8)
    stacked[2:6, 2:10, 2:10, 0] = 1  # organ: 4 × 8 × 8
    stacked[4:8, 6:12, 6:12, 1] = 1  # lesion: 4 × 6 × 6, overlapping 2 × 4 × 4
    path = _foreign_seg(tmp_path, ct_folder, stacked, "BINARY")
    expected = np.zeros(SHAPE, np.uint8)
    expected[stacked[..., 0] == 1] = 1
    expected[stacked[..., 1] == 1] = 2
    for ref in (reference, None):
        volume, names = read_label_seg(path, reference=ref)
        assert names == {1: "organ", 2: "lesion"}
        if ref is None:
            np.testing.assert_array_equal(volume.array, expected[2:8])
        else:
            np.testing.assert_array_equal(volume.array, expected)
        assert any(
            "32 voxel(s) lie in more than one segment" in n for n in volume.metadata["notes"]
        )


def test_fractional_segments_hold_voxels_at_one_half_or_more(
    tmp_path: Path, ct_folder: Path, reference: Volume
) -> None:
    fractions = np.zeros((*SHAPE, 2), dtype=np.float32)
    fractions[3, 4:8, 4:8, 0] = 0.75
    fractions[3, 8:10, 4:8, 0] = 0.25  # below one half: outside
    fractions[5, 1:3, 1:4, 1] = 0.5  # exactly one half: inside
    path = _foreign_seg(tmp_path, ct_folder, fractions, "FRACTIONAL")
    volume, _ = read_label_seg(path, reference=reference)
    assert int(np.count_nonzero(volume.array == 1)) == 16
    assert int(np.count_nonzero(volume.array == 2)) == 6
    assert volume.array[3, 8, 4] == 0


def test_reading_onto_a_coarser_grid_samples_the_nearest_voxel(
    seg_file: Path, reference: Volume
) -> None:
    coarse_affine = reference.affine.copy()
    coarse_affine[:3, :3] *= 2.0  # voxel centres on every other original centre
    coarse = Volume(np.zeros((6, 8, 10), np.float32), coarse_affine, Quantity.UNITLESS)
    volume, _ = read_label_seg(seg_file, reference=coarse)
    np.testing.assert_array_equal(volume.array, _labels()[::2, ::2, ::2])
    assert any("nearest neighbour" in n for n in volume.metadata["notes"])


def test_other_frame_of_reference_is_refused(seg_file: Path, reference: Volume) -> None:
    elsewhere = reference.with_array(
        reference.array,
        metadata={**reference.metadata, "frame_of_reference_uid": "1.2.3.4"},
    )
    with pytest.raises(InputError, match="not in one patient space"):
        read_label_seg(seg_file, reference=elsewhere)


def test_a_ct_file_is_not_a_seg(ct_folder: Path) -> None:
    with pytest.raises(InputError, match="cannot read the file as a DICOM Segmentation"):
        read_label_seg(next(ct_folder.iterdir()))
