"""Coronal maximum-intensity projections (MIPs) of SUV volumes, as nuclear medicine reads them.

A coronal MIP keeps, for every (head–foot, right–left) position, the largest SUV along the
anterior–posterior line of sight. It is drawn the way PET readers view it: head at the top,
the patient's right on the viewer's left (the patient faces the viewer), inverse grey (white
background, uptake dark), with one fixed SUV window per tracer (``data/report.toml``) so that
timepoints compare by eye. Anisotropic pixels are resampled (linear) to square ones of the
finer spacing, so the picture keeps the body's proportions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from immunopet.errors import GeometryError
from immunopet.image import Volume

__all__ = ["Mip", "coronal_mip", "inverse_grey"]

#: Largest grey level of an 8-bit image.
_WHITE = 255


@dataclass(frozen=True)
class Mip:
    """A coronal MIP and how patient positions fall on it.

    Attributes
    ----------
    values : numpy.ndarray of float32, shape (height, width)
        The projected SUV; row 0 is the most superior, column 0 the patient's right.
    pixel_mm : float
        Side of a (square) pixel, mm.
    volume : Volume
        The projected volume (for :meth:`fraction`).
    axes : tuple of int
        Array axes of the volume along (right→left, anterior→posterior, inferior→superior).
    flips : tuple of bool
        Whether rows / columns of the projection run against the volume's index.

    """

    values: npt.NDArray[np.float32]
    pixel_mm: float
    volume: Volume
    axes: tuple[int, int, int]
    flips: tuple[bool, bool]

    def fraction(self, lps_mm: Sequence[float]) -> tuple[float, float] | None:
        """Where a patient position (LPS, mm) falls on the MIP, as (x, y) fractions in [0, 1].

        ``None`` when the position lies outside the projected field of view.
        """
        index = self.volume.lps_to_index(np.asarray(lps_mm, dtype=np.float64))
        lr, _, si = self.axes
        n_si, n_lr = self.volume.shape[si], self.volume.shape[lr]
        row = (n_si - 1 - index[si]) if self.flips[0] else index[si]
        column = (n_lr - 1 - index[lr]) if self.flips[1] else index[lr]
        x, y = (float(column) + 0.5) / n_lr, (float(row) + 0.5) / n_si
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            return None
        return x, y


def coronal_mip(volume: Volume) -> Mip:
    """The coronal MIP of a volume (see the module text for the orientation).

    Parameters
    ----------
    volume : Volume
        Array of shape (n_slices, n_rows, n_columns), e.g. SUVbw (g/mL), affine to LPS mm; its
        axes must each run mainly along one patient axis (any order and sign).

    Returns
    -------
    Mip

    Raises
    ------
    GeometryError
        When two array axes run mainly along the same patient axis (strongly oblique grids).

    Examples
    --------
    An axial stack (slices along +z, superior): the hot voxel at the top slice, patient's left.

    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> array = np.zeros((4, 3, 5), np.float32)
    >>> array[3, 1, 4] = 7.0                      # top slice, column 4 (+x: patient's left)
    >>> axial = [[0, 0, 2, 0], [0, 2, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1]]  # (slice, row, col) → (z, y, x)
    >>> mip = coronal_mip(Volume(array, axial, Quantity.SUV_BW))
    >>> mip.values.shape, float(mip.values[0, 4]), mip.fraction([8.0, 2.0, 6.0])
    ((4, 5), 7.0, (0.9, 0.125))

    """
    direction = volume.direction
    lr, ap, si = (int(np.argmax(np.abs(direction[k]))) for k in range(3))
    if len({lr, ap, si}) != 3:
        raise GeometryError(
            "the grid is too oblique for a coronal projection (two axes along one patient axis)",
            path=volume.source,
        )
    array = np.asarray(volume.array, dtype=np.float32)
    projected = array.max(axis=ap)
    remaining = [a for a in range(3) if a != ap]
    if remaining.index(si) != 0:
        projected = projected.T
    flip_rows = bool(direction[2, si] > 0.0)  # index runs to superior: top row is the last
    flip_columns = bool(direction[0, lr] < 0.0)  # index runs to the right: left column last
    if flip_rows:
        projected = projected[::-1, :]
    if flip_columns:
        projected = projected[:, ::-1]
    projected = np.nan_to_num(projected, nan=0.0, posinf=0.0, neginf=0.0)
    spacing = volume.spacing_mm
    row_mm, column_mm = float(spacing[si]), float(spacing[lr])
    pixel_mm = min(row_mm, column_mm)
    if not np.isclose(row_mm, column_mm, rtol=1e-3):
        from scipy import ndimage

        zoom = (row_mm / pixel_mm, column_mm / pixel_mm)
        projected = ndimage.zoom(projected, zoom, order=1, mode="nearest", grid_mode=True)
    values = np.ascontiguousarray(projected, dtype=np.float32)
    return Mip(values, pixel_mm, volume, (lr, ap, si), (flip_rows, flip_columns))


def inverse_grey(
    values: npt.NDArray[np.floating], low: float, high: float
) -> npt.NDArray[np.uint8]:
    """Window ``values`` to 8-bit inverse grey: ``low`` and below white, ``high`` and above black.

    Examples
    --------
    >>> inverse_grey(np.array([[-1.0, 0.0, 2.5, 5.0, 9.0]]), 0.0, 5.0).tolist()
    [[255, 255, 128, 0, 0]]

    """
    scaled = np.clip((np.asarray(values, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    grey: npt.NDArray[np.uint8] = np.rint(_WHITE * (1.0 - scaled)).astype(np.uint8)
    return grey
