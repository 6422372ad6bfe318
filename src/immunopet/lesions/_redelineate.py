r"""Re-delineate a carried lesion VOI on the image of the timepoint it was carried to.

A visit without the lesion-finding tracer (FDG by default) gets its lesion VOIs from the
nearest visit that has it, moved by the CT registrations (``immunopet.pipeline``). The lesion
may have grown or shrunk in between: a VOI carried from a 69 mm mass onto the same mass at
58 mm holds 70 mL of surrounding tissue, and its mean falls although the concentration in the
lesion rose (a CAR T-cell tracer's homing signal read as a 30 % drop). Where the visit's own
tracer shows the lesion, :func:`redelineate_lesion` draws it again there, with the detection's
own rule:

1. the seed is the hottest voxel of the carried VOI; the search region is the carried VOI
   widened by ``[redelineation].search_margin_mm``;
2. the local background is the median SUV in the shell ``[candidates].background_shell_mm``
   outside the carried VOI (body voxels not in another lesion);
3. the lesion must stand out: SUVpeak (1 mL sphere mean at the seed's peak) ≥
   ``[candidates].min_peak_to_background`` × background, as for a detected lesion;
4. the region is the connected set of voxels at or above the background-corrected 50 %
   threshold, background + 0.5 (SUVmax − background) (:meth:`DetectionMethod.default`),
   grown from the seed inside the search region; it is refused when it reaches the search
   region's edge (it leaks into a neighbour) or is smaller than the detection's minimum
   volume.

When any step fails the carried VOI is kept (the tracer does not show the lesion well enough
to redraw it: e.g. a target-negative lesion on the antibody scan), and the measurement says
which VOI it used.

References
----------
Boellaard R et al. FDG PET/CT: EANM procedure guidelines for tumour imaging: version 2.0.
Eur J Nucl Med Mol Imaging 2015;42:328-354 (background-corrected 50 % isocontour).

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from immunopet.image import Volume
from immunopet.lesions._detect import (
    _MIN_SHELL_VOXELS,
    DetectionMethod,
    _candidate,
    _check_suv,
    _connected,
    _peak_map,
    _setting_table,
    _threshold,
    _voxel_ml,
)
from immunopet.lesions._organs import _distance_outside_mm

__all__ = ["Redelineation", "redelineate_lesion"]

Mask = npt.NDArray[np.bool_]
_SECTION: Final = "redelineation"


@dataclass(frozen=True)
class Redelineation:
    """A lesion VOI drawn again on another image.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (n_slices, n_rows, n_columns)
        The new VOI on the image's grid.
    threshold_suv, background_suv : float
        The isocontour level and the local background, SUV.
    peak_to_background : float
        SUVpeak over the background.

    """

    mask: Mask
    threshold_suv: float
    background_suv: float
    peak_to_background: float

    def describe(self) -> str:
        """One line for the measurement's ``voi_source``."""
        return (
            f"re-delineated on this scan (background-corrected 50 %: SUV >= "
            f"{self.threshold_suv:.3g}, background {self.background_suv:.3g}, peak/background "
            f"{self.peak_to_background:.3g})"
        )


def redelineate_lesion(
    suv: Volume, carried: Mask, *, allowed: Mask | None = None, length_scale: float = 1.0
) -> Redelineation | None:
    """Draw a carried lesion VOI again on ``suv`` (module text), or ``None`` to keep it.

    Parameters
    ----------
    suv : Volume
        The visit's image as SUV (any SUV normalisation), shape (n_slices, n_rows, n_columns).
    carried : numpy.ndarray of bool, same shape
        The VOI carried from another visit.
    allowed : numpy.ndarray of bool, same shape, optional
        Voxels the background and the new VOI may use (the body without the other lesions);
        default: every voxel.
    length_scale : float, optional
        As :func:`~immunopet.lesions.detect_lesions`: the rules' lengths times it, volumes
        times its cube (mice: :func:`~immunopet.lesions.species_length_scale`).

    Returns
    -------
    Redelineation or None

    Examples
    --------
    A 20 mm sphere (SUV 6 in SUV 1) carried as a 40 mm sphere is redrawn at its own size:

    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> index = np.indices((40, 40, 40)) - 20
    >>> radius_mm = 2.0 * np.sqrt((index**2).sum(axis=0))
    >>> image = Volume(np.where(radius_mm <= 10.0, 6.0, 1.0), np.diag([2.0, 2.0, 2.0, 1.0]),
    ...                Quantity.SUV_BW)
    >>> redone = redelineate_lesion(image, radius_mm <= 20.0)
    >>> int(redone.mask.sum()) == int((radius_mm <= 10.0).sum()), redone.background_suv
    (True, 1.0)

    """
    _check_suv(suv, "suv")
    values = np.asarray(suv.array, dtype=np.float64)
    region = np.asarray(carried, dtype=bool)
    if region.shape != values.shape or not region.any():
        return None
    usable = np.ones(values.shape, dtype=bool) if allowed is None else np.asarray(allowed, bool)
    # The rules run on the grid seen at adult scale (detect_lesions length_scale).
    sizes = np.asarray(suv.spacing_mm, dtype=np.float64) / length_scale
    spacing = (float(sizes[0]), float(sizes[1]), float(sizes[2]))
    inner_mm, outer_mm = (float(v) for v in _candidate("background_shell_mm"))
    margin_mm = float(_setting_table(_SECTION)["search_margin_mm"]["value"])
    # Work in a box around the VOI, large enough for the shell and the search margin.
    pads = [int(np.ceil(max(outer_mm, margin_mm) / s)) + 2 for s in spacing]
    where = np.argwhere(region)
    box = tuple(
        slice(max(int(low) - p, 0), min(int(high) + p + 1, n))
        for low, high, p, n in zip(where.min(0), where.max(0), pads, values.shape, strict=True)
    )
    local, inside, ok = values[box], region[box], usable[box] | region[box]
    distance = _distance_outside_mm(inside, spacing)
    shell = (distance > inner_mm) & (distance <= outer_mm) & usable[box]
    if np.count_nonzero(shell) < _MIN_SHELL_VOXELS:
        return None
    background = float(np.median(local[shell]))
    search = (distance <= margin_mm) & ok
    edge = search & (distance > margin_mm - max(spacing))
    flat_seed = int(np.argmax(np.where(inside, local, -np.inf)))
    seed = tuple(int(i) for i in np.unravel_index(flat_seed, local.shape))
    suv_max = float(local[seed])
    peak = _peak_map(local, search, np.asarray(spacing, dtype=np.float64))
    suv_peak = float(np.max(np.where(inside, peak, -np.inf)))
    ratio = suv_peak / background if background > 0.0 else float("inf")
    if not ratio >= float(_candidate("min_peak_to_background")):
        return None
    method = DetectionMethod.default()
    threshold = _threshold(method, suv_max, background, None)
    grown = _connected((local >= threshold) & search, seed)
    minimum_ml = float(_setting_table(_SECTION)["min_volume_ml"]["value"])
    if (grown & edge).any() or np.count_nonzero(grown) * _voxel_ml(spacing) < minimum_ml:
        return None
    mask = np.zeros(values.shape, dtype=bool)
    mask[box] = grown
    return Redelineation(mask, threshold, background, ratio)
