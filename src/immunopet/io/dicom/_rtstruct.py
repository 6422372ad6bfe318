"""DICOM RT Structure Sets (RTSTRUCT): closed planar contours rasterised onto a reference grid.

Each ROI of the Structure Set ROI Sequence becomes one label id (its ROI Number) named
by its ROI Name. Its CLOSED_PLANAR contours (Contour Data in LPS mm, DICOM PS3.3
C.8.8.6) are mapped into the reference's voxel indices; each contour must lie in a
plane of the grid's slices and goes to the slice whose centre is within half a slice
of it. Per slice the contours of one ROI are combined by the even-odd rule: a voxel is
inside when its centre is inside an odd number of contours, so a contour drawn inside
another is a hole (PS3.3 C.8.8.6.3 leaves holes to "the application"; even-odd is how
planning systems and most readers interpret nested contours).

A voxel centre exactly on an edge counts as inside on an edge at the lower row or
column index and outside on one at the higher index (half-open intervals), so two
contours sharing an edge never both claim a voxel, and a square whose corners are voxel
centres ``n`` voxels apart holds exactly ``n × n`` voxels.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from immunopet.errors import InputError, UnsupportedInputError
from immunopet.image import Quantity, Volume
from immunopet.io.dicom._values import field_name, get_str
from immunopet.io.labels import _label_dtype

__all__ = ["read_rtstruct"]

#: RT Structure Set Storage SOP Class.
RT_STRUCTURE_SET_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.481.3"
#: Contour points of one contour may spread this much (slices) along the grid's normal
#: and still count as lying in one slice plane.
_PLANE_TOLERANCE_SLICES: Final = 0.05
#: A contour is matched to the nearest slice when it is within half a slice of its centre.
_HALF_SLICE: Final = 0.5
_MAX_ROI_NUMBER: Final = 65535


def _fill_polygon(
    rows: npt.NDArray[np.float64], columns: npt.NDArray[np.float64], shape: tuple[int, int]
) -> npt.NDArray[np.bool_]:
    """Voxels of a (rows, columns) grid whose centres are inside a polygon (even-odd rule).

    Parameters
    ----------
    rows, columns : ndarray of shape (n_points,)
        Vertices in fractional voxel indices (voxel centres at whole numbers); the
        polygon closes from the last vertex back to the first.
    shape : tuple of int
        (n_rows, n_columns) of the slice.

    Returns
    -------
    ndarray of bool, shape ``shape``

    """
    inside = np.zeros(shape, dtype=bool)
    r0, c0 = rows, columns
    r1, c1 = np.roll(rows, -1), np.roll(columns, -1)
    lowest = max(int(np.ceil(rows.min())), 0)
    highest = min(int(np.floor(rows.max())), shape[0] - 1)
    for row in range(lowest, highest + 1):
        # Edges crossing the scanline, half-open in rows: [min, max).
        crossing = (r0 <= row) != (r1 <= row)
        if not np.any(crossing):
            continue
        t = (row - r0[crossing]) / (r1[crossing] - r0[crossing])
        xs = np.sort(c0[crossing] + t * (c1[crossing] - c0[crossing]))
        # Even-odd: voxel centres c with xs[2k] <= c < xs[2k+1].
        starts = np.clip(np.ceil(xs[0::2]), 0, shape[1]).astype(np.int64)
        stops = np.clip(np.ceil(xs[1::2]), 0, shape[1]).astype(np.int64)
        for start, stop in zip(starts, stops, strict=True):
            if stop > start:
                inside[row, start:stop] ^= True
    return inside


def _read(path: Path) -> Dataset:
    if not path.is_file():
        raise InputError("file not found", path=path)
    try:
        ds = dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read the file as DICOM ({exc})", path=path) from exc
    sop_class = get_str(ds, "SOPClassUID")
    modality = (get_str(ds, "Modality") or "").upper()
    if sop_class != RT_STRUCTURE_SET_STORAGE and modality != "RTSTRUCT":
        raise UnsupportedInputError(
            f"not an RT Structure Set (Modality {modality or 'missing'})",
            path=path,
            field=field_name("SOPClassUID"),
        )
    return ds


def _roi_names(ds: Dataset, path: Path, reference: Volume) -> dict[int, str]:
    """ROI Number → ROI Name; refuse ROIs in another frame of reference than ``reference``."""
    expected = reference.metadata.get("frame_of_reference_uid")
    names: dict[int, str] = {}
    for item in ds.get("StructureSetROISequence") or []:
        number = int(item.ROINumber)
        if not 0 < number <= _MAX_ROI_NUMBER:
            raise UnsupportedInputError(
                f"ROI Number {number} is outside 1..{_MAX_ROI_NUMBER}",
                path=path,
                field=field_name("ROINumber"),
            )
        frame = get_str(item, "ReferencedFrameOfReferenceUID", path=str(path))
        if expected and frame and frame != expected:
            raise InputError(
                f"ROI {number} is in frame of reference {frame}, the reference image in "
                f"{expected}: they are not in one patient space",
                path=path,
                field=field_name("ReferencedFrameOfReferenceUID"),
                hint="pass the image the contours were drawn on (or one registered to it)",
            )
        names[number] = get_str(item, "ROIName", path=str(path)) or f"roi_{number}"
    if not names:
        raise InputError(
            "the structure set has no ROI", path=path, field=field_name("StructureSetROISequence")
        )
    return names


def _contour_slices(
    contour: Dataset, reference: Volume, path: Path, roi: int
) -> tuple[int, npt.NDArray[np.float64]] | None:
    """The slice of one closed planar contour and its vertices as (row, column) indices.

    ``None`` when the contour lies beyond the grid's first or last slice by more than
    half a slice.
    """
    data = np.asarray(contour.get("ContourData") or [], dtype=np.float64)
    if data.size < 9 or data.size % 3:
        raise InputError(
            f"ROI {roi}: a contour has {data.size} coordinates (3 per point, at least 3 points)",
            path=path,
            field=field_name("ContourData"),
        )
    index = reference.lps_to_index(data.reshape(-1, 3))
    slices = index[:, 0]
    if float(np.ptp(slices)) > _PLANE_TOLERANCE_SLICES:
        raise UnsupportedInputError(
            f"ROI {roi}: a contour is not in the plane of the reference slices (it spans "
            f"{float(np.ptp(slices)):.2f} slices)",
            path=path,
            field=field_name("ContourData"),
            hint="contours must be drawn on the reference image's slices",
        )
    position = float(np.mean(slices))
    nearest = int(np.rint(position))
    if abs(position - nearest) > _HALF_SLICE or not 0 <= nearest < reference.shape[0]:
        return None
    return nearest, index[:, 1:]


def read_rtstruct(path: str | os.PathLike[str], reference: Volume) -> tuple[Volume, dict[int, str]]:
    """Rasterise an RT Structure Set's closed planar contours onto a reference grid.

    Parameters
    ----------
    path : str or os.PathLike
        The RTSTRUCT file.
    reference : Volume
        The image the contours were drawn on (or any grid whose slices are parallel to
        the contours' planes). Its ``metadata["frame_of_reference_uid"]``, when known,
        must match each ROI's Referenced Frame of Reference UID.

    Returns
    -------
    volume : Volume
        ``uint8`` labels (``uint16`` for ROI Numbers above 255) on ``reference``'s grid,
        Quantity ``UNITLESS``; id = ROI Number. ``metadata["notes"]`` says what was
        skipped (non-planar contour types, contours off the grid) and overlaps.
    names : dict of int to str
        ROI Name of each ROI Number (ROIs without contours included).

    Raises
    ------
    InputError
        Unreadable file, malformed contours, another frame of reference.
    UnsupportedInputError
        Not an RTSTRUCT, or contours not parallel to the reference slices.

    Notes
    -----
    A voxel is inside a ROI when its centre is inside an odd number of that ROI's
    contours on its slice (even-odd rule). Where ROIs overlap, the higher ROI Number wins.

    """
    file = Path(path)
    ds = _read(file)
    names = _roi_names(ds, file, reference)
    dtype = _label_dtype(max(names))
    array = np.zeros(reference.shape, dtype=dtype)
    plane_shape = (reference.shape[1], reference.shape[2])
    skipped_types: dict[str, int] = defaultdict(int)
    off_grid = 0
    overlap = 0
    contours_by_roi: dict[int, list[Dataset]] = defaultdict(list)
    for item in ds.get("ROIContourSequence") or []:
        number = int(item.ReferencedROINumber)
        if number not in names:
            raise InputError(
                f"contours for ROI {number}, which the Structure Set ROI Sequence does not list",
                path=file,
                field=field_name("ReferencedROINumber"),
            )
        contours_by_roi[number].extend(item.get("ContourSequence") or [])
    for number in sorted(contours_by_roi):
        per_slice: dict[int, npt.NDArray[np.bool_]] = {}
        for contour in contours_by_roi[number]:
            kind = (get_str(contour, "ContourGeometricType") or "").upper()
            if kind != "CLOSED_PLANAR":
                skipped_types[kind or "missing type"] += 1
                continue
            placed = _contour_slices(contour, reference, file, number)
            if placed is None:
                off_grid += 1
                continue
            slice_index, vertices = placed
            filled = _fill_polygon(vertices[:, 0], vertices[:, 1], plane_shape)
            if slice_index in per_slice:
                per_slice[slice_index] ^= filled
            else:
                per_slice[slice_index] = filled
        for slice_index, inside in per_slice.items():
            target = array[slice_index]
            overlap += int(np.count_nonzero(target[inside]))
            target[inside] = number
    notes: list[str] = []
    if skipped_types:
        listing = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped_types.items()))
        notes.append(f"contours that are not CLOSED_PLANAR skipped: {listing}")
    if off_grid:
        notes.append(f"{off_grid} contour(s) lie beyond the reference grid's slices: skipped")
    if overlap:
        notes.append(f"{overlap} voxel(s) lie in more than one ROI: the higher ROI Number wins")
    metadata: dict[str, Any] = {
        "modality": "RTSTRUCT",
        "sop_instance_uid": get_str(ds, "SOPInstanceUID"),
        "series_instance_uid": get_str(ds, "SeriesInstanceUID"),
        "frame_of_reference_uid": reference.metadata.get("frame_of_reference_uid"),
        "notes": notes,
    }
    volume = reference.with_array(
        array, Quantity.UNITLESS, timing=None, source=str(file), metadata=metadata
    )
    return volume, names
