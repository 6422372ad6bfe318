"""From per-slice positions and orientation to one validated affine (LPS, mm)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from immunopet.errors import GeometryError

__all__ = ["stack_affine"]

#: Row and column direction cosines must be orthogonal to this tolerance.
_COSINE_TOLERANCE = 1.0e-3
#: Slices closer than this (mm) along the normal are at the same position.
_SAME_POSITION_MM = 1.0e-3
#: Slice spacing may vary by this fraction of the median spacing (or 0.01 mm) before it counts as uneven.
_SPACING_RELATIVE_TOLERANCE = 1.0e-2
_SPACING_ABSOLUTE_TOLERANCE_MM = 1.0e-2
#: Slice origins may drift in plane by this much (mm, rounding of DS strings) before the stack counts as sheared.
_IN_PLANE_DRIFT_MM = 5.0e-2


def stack_affine(
    positions_mm: npt.ArrayLike,
    orientation: Sequence[float],
    pixel_spacing_mm: Sequence[float],
    *,
    single_slice_spacing_mm: float | None = None,
    source: str | None = None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Sort a stack of slices and build its affine.

    Parameters
    ----------
    positions_mm : array_like of shape (n_slices, 3)
        Image Position (Patient) of each slice, LPS mm, in any order.
    orientation : sequence of 6 floats
        Image Orientation (Patient): row then column direction cosines.
    pixel_spacing_mm : sequence of 2 floats
        Pixel Spacing: (between rows, between columns), mm.
    single_slice_spacing_mm : float, optional
        Slice spacing to use when there is only one slice.
    source : str, optional
        For messages.

    Returns
    -------
    order : ndarray of shape (n_slices,)
        Indices that sort the slices along the normal (row × column).
    affine : ndarray of shape (4, 4)
        Maps (slice, row, column, 1) to LPS mm.

    Raises
    ------
    GeometryError
        On non-orthogonal cosines, duplicate positions, gaps, uneven spacing or
        sheared stacks (gantry tilt).

    """
    positions = np.asarray(positions_mm, dtype=np.float64).reshape(-1, 3)
    row = np.asarray(orientation[:3], dtype=np.float64)
    column = np.asarray(orientation[3:6], dtype=np.float64)
    if np.linalg.norm(row) == 0.0 or np.linalg.norm(column) == 0.0:
        raise GeometryError(
            "zero direction cosine", path=source, field="ImageOrientationPatient (0020,0037)"
        )
    row /= np.linalg.norm(row)
    column /= np.linalg.norm(column)
    if abs(float(row @ column)) > _COSINE_TOLERANCE:
        raise GeometryError(
            f"row and column directions are not orthogonal (dot product {float(row @ column):.4g})",
            path=source,
            field="ImageOrientationPatient (0020,0037)",
        )
    normal = np.cross(row, column)
    if min(pixel_spacing_mm) <= 0.0:
        raise GeometryError(
            f"pixel spacing {list(pixel_spacing_mm)} has a non-positive value",
            path=source,
            field="PixelSpacing (0028,0030)",
        )
    distance = positions @ normal
    order = np.argsort(distance, kind="stable")
    sorted_distance = distance[order]
    n_slices = positions.shape[0]
    if n_slices == 1:
        if single_slice_spacing_mm is None or single_slice_spacing_mm <= 0.0:
            raise GeometryError(
                "one slice and no slice thickness: the voxel size along the normal is unknown",
                path=source,
                field="SliceThickness (0018,0050)",
            )
        step = float(single_slice_spacing_mm)
    else:
        gaps = np.diff(sorted_distance)
        if np.any(gaps < _SAME_POSITION_MM):
            duplicates = int(np.sum(gaps < _SAME_POSITION_MM))
            raise GeometryError(
                f"{duplicates} slice(s) share a position with another: the series holds several "
                "frames or duplicate images",
                path=source,
                field="ImagePositionPatient (0020,0032)",
                hint="split the series by frame (dynamic PET) or remove the duplicates",
            )
        step = float(np.median(gaps))
        tolerance = max(_SPACING_ABSOLUTE_TOLERANCE_MM, _SPACING_RELATIVE_TOLERANCE * step)
        uneven = np.abs(gaps - step) > tolerance
        if np.any(uneven):
            first = int(np.argmax(uneven))
            multiple = gaps[first] / step
            kind = (
                "gap (missing slices)"
                if abs(multiple - round(multiple)) < 0.05 and multiple > 1.5
                else "uneven spacing"
            )
            raise GeometryError(
                f"{kind}: slices at {sorted_distance[first]:.3f} and {sorted_distance[first + 1]:.3f} mm "
                f"along the normal are {gaps[first]:.3f} mm apart, the others {step:.3f} mm",
                path=source,
                field="ImagePositionPatient (0020,0032)",
                hint="re-export the complete series",
            )
        offsets = positions[order] - positions[order[0]]
        in_plane = offsets - np.outer(offsets @ normal, normal)
        drift = float(np.max(np.linalg.norm(in_plane, axis=1)))
        if drift > _IN_PLANE_DRIFT_MM:
            angle = np.degrees(np.arctan2(drift, sorted_distance[-1] - sorted_distance[0]))
            raise GeometryError(
                f"the slice stack is sheared by {angle:.2f}° (gantry tilt): slice origins drift "
                f"{drift:.2f} mm in plane",
                path=source,
                field="ImagePositionPatient (0020,0032)",
                hint="resample the series to an orthogonal grid in the scanner software",
            )
    affine = np.eye(4)
    affine[:3, 0] = normal * step
    affine[:3, 1] = column * float(pixel_spacing_mm[0])
    affine[:3, 2] = row * float(pixel_spacing_mm[1])
    affine[:3, 3] = positions[order[0]]
    return order, affine
