"""The Volume: an array plus validated geometry, quantity, unit and timing.

Convention (the one used everywhere inside immunopet, as in highdicom's
``Volume``): the array has shape ``(n_slices, n_rows, n_columns)`` and the 4×4
affine maps a voxel index ``(slice, row, column, 1)`` to patient coordinates
``(x, y, z, 1)`` in DICOM LPS, millimetres. RAS appears only at the NIfTI
boundary (:mod:`immunopet.io.nifti`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from immunopet.errors import GeometryError
from immunopet.units import ML_PER_MM3, UCUM

__all__ = ["AcquisitionTiming", "Quantity", "Volume"]

#: Tolerance on the dot product of two direction cosines for them to count as orthogonal.
_ORTHOGONALITY_TOLERANCE = 1.0e-4


class Quantity(StrEnum):
    """What the values of a volume are. The canonical unit is :attr:`unit`."""

    ACTIVITY_CONCENTRATION = "activity_concentration"
    SUV_BW = "suv_bw"
    SUV_LBM = "suv_lbm"
    SUV_BSA = "suv_bsa"
    PERCENT_ID_PER_ML = "percent_id_per_ml"
    PERCENT_ID_PER_G = "percent_id_per_g"
    HOUNSFIELD = "hounsfield"
    COUNTS = "counts"
    MASK = "mask"
    UNITLESS = "unitless"

    @property
    def unit(self) -> str:
        """UCUM code of the canonical unit of this quantity."""
        return UCUM[self.value]


@dataclass(frozen=True)
class AcquisitionTiming:
    """When the counts of a volume were acquired and what its values are decay-corrected to.

    Parameters
    ----------
    start : datetime.datetime
        Start of the acquisition (the earliest frame or bed position).
    duration_s : float or None
        Duration of one frame (bed position), seconds; ``None`` when unknown.
    decay_reference : datetime.datetime or None
        Instant the values are decay-corrected to (DICOM Decay Correction START:
        the series reference time; ADMIN: the administration time). ``None``
        means the values are *not* decay-corrected: each voxel holds the
        activity averaged over its own frame.
    frame_start_offsets_s : tuple of float, optional
        For volumes that are not decay-corrected, the start of the frame of each
        slice, seconds after :attr:`start`; one entry per slice. Empty when all
        slices share :attr:`start`.

    """

    start: datetime
    duration_s: float | None = None
    decay_reference: datetime | None = None
    frame_start_offsets_s: tuple[float, ...] = ()
    frame_durations_s: tuple[float, ...] = ()

    @property
    def decay_corrected(self) -> bool:
        """Whether the values are decay-corrected to :attr:`decay_reference`."""
        return self.decay_reference is not None


def _validated_affine(affine: npt.ArrayLike) -> npt.NDArray[np.float64]:
    matrix = np.asarray(affine, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise GeometryError(f"affine must have shape (4, 4), got {matrix.shape}", field="affine")
    if not np.all(np.isfinite(matrix)):
        raise GeometryError("affine holds NaN or infinite values", field="affine")
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        raise GeometryError(
            f"affine's last row must be [0, 0, 0, 1], got {matrix[3].tolist()}", field="affine"
        )
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    if np.any(spacing <= 0.0):
        raise GeometryError(
            f"affine is degenerate: voxel spacing {spacing.tolist()} mm has a zero", field="affine"
        )
    unit = matrix[:3, :3] / spacing
    gram = unit.T @ unit
    if not np.allclose(gram, np.eye(3), atol=_ORTHOGONALITY_TOLERANCE):
        raise GeometryError(
            "affine axes are not orthogonal (sheared grid); "
            f"direction cosine dot products {gram[np.triu_indices(3, 1)].round(6).tolist()}",
            field="affine",
        )
    return matrix


class Volume:
    """A 3-D image or mask: array + 4×4 affine (LPS, mm) + quantity + timing.

    Parameters
    ----------
    array : numpy.ndarray of shape (n_slices, n_rows, n_columns)
        Voxel values in the canonical unit of ``quantity``. Not copied.
    affine : array_like of shape (4, 4)
        Maps ``(slice, row, column, 1)`` to LPS millimetres. Must be finite,
        non-degenerate and orthogonal (no shear).
    quantity : Quantity
        What the values are; fixes the unit.
    timing : AcquisitionTiming, optional
        Acquisition timing and decay reference (PET/SPECT).
    source : str, optional
        Where the volume came from (file or folder), for messages and provenance.
    metadata : dict, optional
        Free-form extra facts (series UID, modality, ...).

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(np.zeros((2, 3, 4), np.float32), np.diag([2.0, 1.0, 1.0, 1.0]),
    ...            Quantity.ACTIVITY_CONCENTRATION)
    >>> v.spacing_mm.tolist(), v.voxel_volume_ml
    ([2.0, 1.0, 1.0], 0.002)

    """

    __slots__ = ("_affine", "array", "metadata", "quantity", "source", "timing")

    def __init__(
        self,
        array: npt.NDArray[Any],
        affine: npt.ArrayLike,
        quantity: Quantity,
        *,
        timing: AcquisitionTiming | None = None,
        source: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(array, np.ndarray) or array.ndim != 3:
            shape = getattr(array, "shape", None)
            raise GeometryError(
                f"volume array must be 3-D (n_slices, n_rows, n_columns), got shape {shape}",
                path=source,
            )
        if quantity is Quantity.MASK and array.dtype != np.bool_:
            raise GeometryError(f"a mask must be boolean, got dtype {array.dtype}", path=source)
        self.array = array
        self._affine = _validated_affine(affine)
        self._affine.setflags(write=False)
        self.quantity = Quantity(quantity)
        self.timing = timing
        self.source = source
        self.metadata: dict[str, Any] = dict(metadata or {})

    # -- geometry -------------------------------------------------------------------------
    @property
    def affine(self) -> npt.NDArray[np.float64]:
        """Read-only 4×4 index-to-LPS affine, mm."""
        return self._affine

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(n_slices, n_rows, n_columns)``."""
        n_slices, n_rows, n_columns = self.array.shape
        return int(n_slices), int(n_rows), int(n_columns)

    @property
    def unit(self) -> str:
        """UCUM code of the values."""
        return self.quantity.unit

    @property
    def spacing_mm(self) -> npt.NDArray[np.float64]:
        """Voxel spacing along (slice, row, column), mm."""
        spacing: npt.NDArray[np.float64] = np.linalg.norm(self._affine[:3, :3], axis=0)
        return spacing

    @property
    def direction(self) -> npt.NDArray[np.float64]:
        """3×3 matrix whose columns are the LPS unit vectors of the slice, row and column axes."""
        return self._affine[:3, :3] / self.spacing_mm

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel, mL."""
        voxel_volume_mm3 = float(abs(np.linalg.det(self._affine[:3, :3])))
        return voxel_volume_mm3 * ML_PER_MM3

    def index_to_lps(self, index: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Map voxel indices of shape (..., 3) to LPS positions of shape (..., 3), mm."""
        ijk = np.asarray(index, dtype=np.float64)
        lps: npt.NDArray[np.float64] = ijk @ self._affine[:3, :3].T + self._affine[:3, 3]
        return lps

    def lps_to_index(self, lps_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Map LPS positions of shape (..., 3), mm, to fractional voxel indices (..., 3)."""
        xyz = np.asarray(lps_mm, dtype=np.float64)
        inverse = np.linalg.inv(self._affine)
        index: npt.NDArray[np.float64] = xyz @ inverse[:3, :3].T + inverse[:3, 3]
        return index

    def same_grid(self, other: Volume, *, atol_mm: float = 1.0e-3) -> bool:
        """Whether ``other`` has the same shape and affine (within ``atol_mm``)."""
        return self.shape == other.shape and bool(
            np.allclose(self._affine, other._affine, atol=atol_mm)
        )

    # -- derived volumes ------------------------------------------------------------------
    def with_array(
        self,
        array: npt.NDArray[Any],
        quantity: Quantity | None = None,
        **changes: Any,
    ) -> Volume:
        """Return a volume on the same grid holding ``array`` (same shape required)."""
        if array.shape != self.array.shape:
            raise GeometryError(
                f"new array shape {array.shape} differs from the grid's {self.array.shape}",
                path=self.source,
            )
        return Volume(
            array,
            self._affine,
            self.quantity if quantity is None else quantity,
            timing=changes.get("timing", self.timing),
            source=changes.get("source", self.source),
            metadata=changes.get("metadata", self.metadata),
        )

    def mask(self, array: npt.ArrayLike) -> Volume:
        """Return a boolean mask volume on this volume's grid."""
        return self.with_array(np.asarray(array, dtype=bool), Quantity.MASK, timing=None)

    def with_timing(self, timing: AcquisitionTiming | None) -> Volume:
        """Return the same volume with other timing (the array is shared, not copied)."""
        return self.with_array(self.array, timing=timing)

    def resample_to(
        self, target: Volume, *, order: int | None = None, fill_value: float = 0.0
    ) -> Volume:
        """Resample onto ``target``'s grid; see :func:`immunopet.image.resample_to`."""
        from immunopet.image._resample import resample_to

        return resample_to(self, target, order=order, fill_value=fill_value)

    def __repr__(self) -> str:
        spacing = ", ".join(f"{s:.4g}" for s in self.spacing_mm)
        return (
            f"Volume(shape={self.shape}, spacing_mm=({spacing}), quantity={self.quantity.value!r}, "
            f"unit={self.unit!r}, dtype={self.array.dtype})"
        )
