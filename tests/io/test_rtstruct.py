"""RTSTRUCT rasterisation: voxel counts of known polygons against geometry, holes, slice matching."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from immunopet.errors import InputError, UnsupportedInputError
from immunopet.image import Quantity, Volume
from immunopet.io import load_scan, read_rtstruct
from immunopet.io.dicom import ct_series_datasets, write_datasets

SHAPE = (10, 40, 40)
ROW_MM, COLUMN_MM, SLICE_MM = 2.0, 2.0, 3.0
#: Axial: slices along +z, rows along +y, columns along +x; voxel (k, r, c) centre at
#: x = -40 + 2c, y = -40 + 2r, z = 10 + 3k.
AFFINE = np.array(
    [
        [0.0, 0.0, COLUMN_MM, -40.0],
        [0.0, ROW_MM, 0.0, -40.0],
        [SLICE_MM, 0.0, 0.0, 10.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"

Contour = tuple[str, Sequence[tuple[float, float, float]]]


@pytest.fixture
def reference(tmp_path: Path) -> Volume:
    ct = Volume(np.zeros(SHAPE, np.float32), AFFINE, Quantity.HOUNSFIELD)
    write_datasets(ct_series_datasets(ct, when=datetime(2026, 3, 6, 9)), tmp_path / "CT")
    return load_scan(tmp_path / "CT").volume


def _z(k: float) -> float:
    return 10.0 + SLICE_MM * k


def _square(x0: float, y0: float, side: float, z: float) -> list[tuple[float, float, float]]:
    return [(x0, y0, z), (x0 + side, y0, z), (x0 + side, y0 + side, z), (x0, y0 + side, z)]


def _write_rtstruct(
    path: Path, rois: dict[int, tuple[str, list[Contour]]], frame_of_reference: str
) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RTSTRUCT_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = RTSTRUCT_STORAGE
    ds.Modality = "RTSTRUCT"
    ds.PatientID = "TEST"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "test"
    roi_items, contour_items = [], []
    for number, (name, contours) in rois.items():
        roi = Dataset()
        roi.ROINumber = number
        roi.ROIName = name
        roi.ReferencedFrameOfReferenceUID = frame_of_reference
        roi_items.append(roi)
        holder = Dataset()
        holder.ReferencedROINumber = number
        items = []
        for kind, points in contours:
            contour = Dataset()
            contour.ContourGeometricType = kind
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [f"{v:.6g}" for point in points for v in point]
            items.append(contour)
        holder.ContourSequence = DicomSequence(items)
        contour_items.append(holder)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.save_as(path, enforce_file_format=True)
    return path


def _for(reference: Volume) -> str:
    return str(reference.metadata["frame_of_reference_uid"])


def test_square_on_voxel_boundaries_fills_exactly(tmp_path: Path, reference: Volume) -> None:
    # Side 20 mm from voxel boundary to boundary: 10 × 10 voxel centres on each of 3 slices.
    x0, y0 = -40.0 + COLUMN_MM * 4.5, -40.0 + ROW_MM * 7.5
    contours: list[Contour] = [("CLOSED_PLANAR", _square(x0, y0, 20.0, _z(k))) for k in (2, 3, 4)]
    path = _write_rtstruct(tmp_path / "rs.dcm", {3: ("liver", contours)}, _for(reference))
    volume, names = read_rtstruct(path, reference)
    assert names == {3: "liver"}
    assert volume.same_grid(reference)
    assert volume.array.dtype == np.uint8
    inside = volume.array == 3
    assert int(inside.sum()) == 3 * 10 * 10
    # Volume from geometry: 20 mm × 20 mm × 3 slices × 3 mm = 3.6 mL.
    assert float(inside.sum()) * volume.voxel_volume_ml == pytest.approx(3.6, rel=1e-12)
    # Exactly the voxels whose centres are inside: columns 5..14, rows 8..17.
    assert inside[2:5, 8:18, 5:15].all()
    assert volume.metadata["notes"] == []


def test_circle_count_matches_the_polygon_and_its_area(tmp_path: Path, reference: Volume) -> None:
    radius_mm, n_vertices = 15.0, 64
    cx, cy = 1.3, -2.7  # off-centre so the count is not symmetric by construction
    angles = 2.0 * np.pi * np.arange(n_vertices) / n_vertices
    points = [(cx + radius_mm * math.cos(a), cy + radius_mm * math.sin(a), _z(5)) for a in angles]
    path = _write_rtstruct(
        tmp_path / "rs.dcm", {1: ("lesion", [("CLOSED_PLANAR", points)])}, _for(reference)
    )
    volume, _ = read_rtstruct(path, reference)
    count = int((volume.array[5] == 1).sum())
    # Independent ground truth: voxel centres inside the convex polygon (left of every edge).
    vx = np.array([p[0] for p in points])
    vy = np.array([p[1] for p in points])
    rows, columns = np.mgrid[0 : SHAPE[1], 0 : SHAPE[2]]
    x, y = -40.0 + COLUMN_MM * columns, -40.0 + ROW_MM * rows
    left = np.ones(x.shape, dtype=bool)
    for i in range(n_vertices):
        j = (i + 1) % n_vertices
        left &= (vx[j] - vx[i]) * (y - vy[i]) - (vy[j] - vy[i]) * (x - vx[i]) > 0.0
    assert count == int(left.sum())
    # Area: the inscribed 64-gon is (n/2) R² sin(2π/n) = 705.7 mm² (π R² = 706.9 mm²); the
    # pixel count may differ by the partial voxels along the perimeter (2πR / pixel side ≈ 47).
    polygon_area_mm2 = 0.5 * n_vertices * radius_mm**2 * math.sin(2.0 * math.pi / n_vertices)
    pixel_mm2 = ROW_MM * COLUMN_MM
    perimeter_pixels = 2.0 * math.pi * radius_mm / ROW_MM
    assert abs(count - polygon_area_mm2 / pixel_mm2) < 0.5 * perimeter_pixels
    assert volume.array[[k for k in range(SHAPE[0]) if k != 5]].max() == 0


def test_nested_contours_make_a_hole(tmp_path: Path, reference: Volume) -> None:
    z = _z(1)
    outer = _square(-40.0 + COLUMN_MM * 9.5, -40.0 + ROW_MM * 9.5, 8 * COLUMN_MM, z)
    inner = _square(-40.0 + COLUMN_MM * 11.5, -40.0 + ROW_MM * 11.5, 4 * COLUMN_MM, z)
    path = _write_rtstruct(
        tmp_path / "rs.dcm",
        {1: ("ring", [("CLOSED_PLANAR", outer), ("CLOSED_PLANAR", inner)])},
        _for(reference),
    )
    volume, _ = read_rtstruct(path, reference)
    assert int((volume.array == 1).sum()) == 8 * 8 - 4 * 4
    assert volume.array[1, 12:16, 12:16].max() == 0


def test_contours_go_to_the_slice_within_half_a_slice(tmp_path: Path, reference: Volume) -> None:
    x0, y0 = -40.0 + COLUMN_MM * 0.5, -40.0 + ROW_MM * 0.5
    contours: list[Contour] = [
        ("CLOSED_PLANAR", _square(x0, y0, 4.0, _z(6) + 0.4 * SLICE_MM)),  # -> slice 6
        ("CLOSED_PLANAR", _square(x0, y0, 4.0, _z(8) - 0.4 * SLICE_MM)),  # -> slice 8
        ("CLOSED_PLANAR", _square(x0, y0, 4.0, _z(-1))),  # below the grid: skipped
        ("POINT", [(0.0, 0.0, _z(3))] * 3),  # not an area: skipped
    ]
    path = _write_rtstruct(tmp_path / "rs.dcm", {2: ("node", contours)}, _for(reference))
    volume, _ = read_rtstruct(path, reference)
    per_slice = (volume.array == 2).sum(axis=(1, 2))
    assert per_slice.tolist() == [0, 0, 0, 0, 0, 0, 4, 0, 4, 0]
    notes = volume.metadata["notes"]
    assert "contours that are not CLOSED_PLANAR skipped: 1 POINT" in notes
    assert "1 contour(s) lie beyond the reference grid's slices: skipped" in notes


def test_overlapping_rois_higher_number_wins(tmp_path: Path, reference: Volume) -> None:
    z = _z(0)
    first = _square(-40.0 + COLUMN_MM * 0.5, -40.0 + ROW_MM * 0.5, 6 * COLUMN_MM, z)  # 6 × 6
    second = _square(-40.0 + COLUMN_MM * 3.5, -40.0 + ROW_MM * 3.5, 6 * COLUMN_MM, z)  # 6 × 6
    path = _write_rtstruct(
        tmp_path / "rs.dcm",
        {7: ("organ", [("CLOSED_PLANAR", first)]), 9: ("lesion", [("CLOSED_PLANAR", second)])},
        _for(reference),
    )
    volume, names = read_rtstruct(path, reference)
    assert names == {7: "organ", 9: "lesion"}
    assert int((volume.array == 9).sum()) == 36
    assert int((volume.array == 7).sum()) == 36 - 9  # 3 × 3 overlap taken by ROI 9
    assert (
        "9 voxel(s) lie in more than one ROI: the higher ROI Number wins"
        in (volume.metadata["notes"])
    )


def test_other_frame_of_reference_is_refused(tmp_path: Path, reference: Volume) -> None:
    contours: list[Contour] = [("CLOSED_PLANAR", _square(0.0, 0.0, 4.0, _z(1)))]
    path = _write_rtstruct(tmp_path / "rs.dcm", {1: ("liver", contours)}, "1.2.3.4")
    with pytest.raises(InputError, match="not in one patient space"):
        read_rtstruct(path, reference)


def test_contour_across_slices_is_refused(tmp_path: Path, reference: Volume) -> None:
    tilted = [(0.0, 0.0, _z(1)), (10.0, 0.0, _z(2)), (10.0, 10.0, _z(2)), (0.0, 10.0, _z(1))]
    path = _write_rtstruct(
        tmp_path / "rs.dcm", {1: ("tilted", [("CLOSED_PLANAR", tilted)])}, _for(reference)
    )
    with pytest.raises(UnsupportedInputError, match="not in the plane of the reference slices"):
        read_rtstruct(path, reference)


def test_a_ct_file_is_not_an_rtstruct(tmp_path: Path, reference: Volume) -> None:
    with pytest.raises(UnsupportedInputError, match="not an RT Structure Set"):
        read_rtstruct(next((tmp_path / "CT").iterdir()), reference)
