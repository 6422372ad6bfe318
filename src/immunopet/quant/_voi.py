"""Statistics of a volume of interest (VOI) for any mask on any grid.

Max, mean, SD, min, SUVpeak (PERCIST: the mean inside a 1 cm³ sphere placed to
maximise it; Wahl et al., J Nucl Med 2009;50 Suppl 1:122S-150S, and Lodge,
Chaudhry & Wahl, J Nucl Med 2012;53:1041-1047), volume (mL) and total uptake.
The sphere's volume and the sampling of its partial-voxel weights are read from
``immunopet/data/quantification.toml``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.units import ML_PER_MM3

__all__ = ["VoiStatistics", "sphere_kernel", "voi_statistics"]

_DATA_FILE = "quantification.toml"

#: Unit of the total uptake (sum of the values × voxel volume, mL) of the quantities whose
#: unit is "per mL"; any other quantity gives ``"<unit>.mL"``.
_TOTAL_UNIT: dict[Quantity, str] = {
    Quantity.ACTIVITY_CONCENTRATION: "Bq",
    Quantity.SUV_BW: "g",
    Quantity.SUV_LBM: "g",
    Quantity.SUV_BSA: "cm2",
    Quantity.PERCENT_ID_PER_ML: "%",
}

#: Kernels with at least this many voxels are applied by FFT rather than direct correlation
#: (a speed choice only: both give the same local sums, to rounding). A 1 mL sphere's kernel
#: is 5³ voxels at 3-4 mm spacing, 7³ at 2 mm, 13³ at 1 mm.
_FFT_MIN_KERNEL_VOXELS = 256

#: How many sphere kernels (one per voxel spacing, sphere volume and sampling) are cached.
_KERNEL_CACHE_SIZE = 16

Point = tuple[float, float, float]


@dataclass(frozen=True)
class VoiStatistics:
    """Statistics of the voxels of a volume inside a mask.

    Attributes
    ----------
    n_voxels : int
        Number of voxels of the image grid inside the mask.
    volume_ml : float
        ``n_voxels`` × voxel volume, mL.
    max, mean, sd, min : float
        Of the voxel values inside the mask, in :attr:`unit`; ``sd`` is the sample
        standard deviation (``ddof=1``), NaN for a one-voxel mask.
    peak : float
        Largest mean inside a sphere of :attr:`peak_sphere_volume_ml` whose centre is
        a voxel of the mask (the sphere may reach beyond the mask), in :attr:`unit`.
    peak_center_lps_mm : tuple of float
        LPS position of the centre of that sphere, mm.
    max_lps_mm : tuple of float
        LPS position of the voxel holding :attr:`max`, mm.
    total : float
        Sum of the values × voxel volume (mL), in :attr:`total_unit`: the activity
        (Bq) of an activity-concentration image, SUV × mL (g or cm²) of an SUV image.
    total_unit : str
        UCUM code of :attr:`total`.
    quantity : str
        The image's :class:`~immunopet.image.Quantity` value.
    unit : str
        UCUM code of the image values.
    peak_sphere_volume_ml : float
        Volume of the sphere used for :attr:`peak`, mL.

    """

    n_voxels: int
    volume_ml: float
    max: float
    mean: float
    sd: float
    min: float
    peak: float
    peak_center_lps_mm: Point
    max_lps_mm: Point
    total: float
    total_unit: str
    quantity: str
    unit: str
    peak_sphere_volume_ml: float

    def as_dict(self) -> dict[str, Any]:
        """Return the statistics as JSON-ready values (positions as lists, NaN as ``None``)."""
        return {name: _json_ready(value) for name, value in asdict(self).items()}


def _json_ready(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _suv_peak_setting(key: str) -> Any:
    return read_toml(_DATA_FILE)["suv_peak"][key]


def sphere_kernel(
    spacing_mm: npt.ArrayLike,
    volume_ml: float | None = None,
    *,
    samples_per_axis: int | None = None,
) -> npt.NDArray[np.float64]:
    """Partial-voxel weights of a sphere centred on a voxel of a grid.

    The sphere has radius ``(3 V / 4π)^(1/3)`` with ``V`` its volume in mm³. Each
    weight is the fraction of a voxel's volume inside the sphere: the voxel is
    sampled on ``samples_per_axis`` × ``samples_per_axis`` lines parallel to the
    column axis (midpoints of equal strata along the slice and row axes), and the
    length of each line inside the sphere is computed exactly. The weights are
    mirror-symmetric about the centre voxel along each axis.

    Parameters
    ----------
    spacing_mm : array_like of shape (3,)
        Voxel spacing along (slice, row, column), mm (:attr:`Volume.spacing_mm`).
    volume_ml : float, optional
        Sphere volume, mL; default the SUVpeak sphere of ``quantification.toml``.
    samples_per_axis : int, optional
        Sub-voxel strata per sampled axis; default from ``quantification.toml``.

    Returns
    -------
    numpy.ndarray of shape (2 h0 + 1, 2 h1 + 1, 2 h2 + 1)
        Weights in [0, 1], read-only; the centre voxel is at index ``(h0, h1, h2)``.
        ``weights.sum()`` × voxel volume ≈ the sphere volume.

    Examples
    --------
    >>> weights = sphere_kernel([1.0, 1.0, 1.0], 1.0)
    >>> weights.shape, round(float(weights.sum()) / 1000.0, 2)
    ((13, 13, 13), 1.0)

    """
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing) & (spacing > 0.0)):
        raise InputError(f"voxel spacing must be 3 positive lengths in mm, got {spacing.tolist()}")
    sphere_ml = float(_suv_peak_setting("sphere_volume_ml") if volume_ml is None else volume_ml)
    if not (math.isfinite(sphere_ml) and sphere_ml > 0.0):
        raise InputError(f"sphere volume must be a positive number of mL, got {sphere_ml}")
    samples = int(
        _suv_peak_setting("subvoxel_samples_per_axis")
        if samples_per_axis is None
        else samples_per_axis
    )
    if samples < 1:
        raise InputError(f"samples per axis must be at least 1, got {samples}")
    spacing_key = (float(spacing[0]), float(spacing[1]), float(spacing[2]))
    return _sphere_kernel(spacing_key, sphere_ml, samples)


@lru_cache(maxsize=_KERNEL_CACHE_SIZE)
def _sphere_kernel(spacing_mm: Point, volume_ml: float, samples: int) -> npt.NDArray[np.float64]:
    radius_mm = (3.0 * (volume_ml / ML_PER_MM3) / (4.0 * math.pi)) ** (1.0 / 3.0)
    # Voxel k along an axis reaches from (k - 1/2) to (k + 1/2) spacings: it can meet the
    # sphere only while |k| <= radius / spacing + 1/2.
    halves = [math.floor(radius_mm / step + 0.5) for step in spacing_mm]
    centres = [np.arange(-half, half + 1, dtype=np.float64) for half in halves]
    # Midpoints of the strata, in voxel units; j and n-1-j are exact negatives of each other.
    strata = (2.0 * np.arange(samples) + 1.0 - samples) / (2.0 * samples)
    slice_mm = (centres[0][:, None] + strata) * spacing_mm[0]  # (n_slices, samples)
    row_mm = (centres[1][:, None] + strata) * spacing_mm[1]  # (n_rows, samples)
    squared_rest = radius_mm**2 - slice_mm[:, :, None, None] ** 2 - row_mm[None, None, :, :] ** 2
    chord_half_mm = np.sqrt(np.clip(squared_rest, 0.0, None))
    chord_half_mm[squared_rest < 0.0] = -np.inf  # the line misses the sphere
    column_low_mm = (centres[2] - 0.5) * spacing_mm[2]
    column_high_mm = (centres[2] + 0.5) * spacing_mm[2]
    inside_mm = np.minimum(chord_half_mm[..., None], column_high_mm) - np.maximum(
        -chord_half_mm[..., None], column_low_mm
    )
    weights: npt.NDArray[np.float64] = (
        np.clip(inside_mm, 0.0, None).mean(axis=(1, 3)) / spacing_mm[2]
    )
    # Averaging over the strata of k and of -k sums the same numbers in reverse order, which
    # can differ in the last bit: make the mirror symmetry exact.
    weights = (weights + weights[::-1, :, :]) / 2.0
    weights = (weights + weights[:, ::-1, :]) / 2.0
    if weights[halves[0], halves[1], halves[2]] <= 0.0:
        raise InputError(
            f"a {volume_ml} mL sphere misses every sample of its centre voxel at spacing "
            f"{list(spacing_mm)} mm",
            hint="raise subvoxel_samples_per_axis or use a finer grid",
        )
    # Drop outer planes that hold no weight (symmetric, so the centre stays in the middle).
    occupied = np.nonzero(weights)
    trim = [int(np.min(axis_index)) for axis_index in occupied]
    kernel = weights[
        trim[0] : weights.shape[0] - trim[0],
        trim[1] : weights.shape[1] - trim[1],
        trim[2] : weights.shape[2] - trim[2],
    ].copy()
    kernel.setflags(write=False)
    return kernel


def _correlate(
    data: npt.NDArray[np.float64], kernel: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Correlate ``data`` with an odd-sized ``kernel``, zero outside ``data``; same shape."""
    from scipy import ndimage, signal  # imported on first use: keeps the CLI's start-up light

    if kernel.size < _FFT_MIN_KERNEL_VOXELS:
        result = ndimage.correlate(data, kernel, mode="constant", cval=0.0)
    else:
        result = signal.fftconvolve(data, kernel[::-1, ::-1, ::-1], mode="same")
    return np.asarray(result, dtype=np.float64)


def _peak(
    image: npt.NDArray[Any], inside: npt.NDArray[np.bool_], kernel: npt.NDArray[np.float64]
) -> tuple[float, npt.NDArray[np.intp]]:
    """Largest kernel-weighted mean over centres in ``inside``, and its centre's index.

    Only a box around the mask, widened by the kernel's half-size and clipped to the
    image, is filtered. Voxels outside the image, or non-finite, carry no weight: each
    mean is normalised by the kernel weight that falls on valid voxels.
    """
    half = np.asarray(kernel.shape) // 2
    indices = np.argwhere(inside)
    low = np.maximum(indices.min(axis=0) - half, 0)
    high = np.minimum(indices.max(axis=0) + half + 1, inside.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
    data = np.asarray(image[box], dtype=np.float64)
    valid = np.isfinite(data)
    weighted_sum = _correlate(np.where(valid, data, 0.0), kernel)
    weight = _correlate(valid.astype(np.float64), kernel)
    centres = inside[box]
    means = weighted_sum[centres] / weight[centres]
    best = int(np.argmax(means))
    return float(means[best]), np.argwhere(centres)[best] + low


def _lps(volume: Volume, index: npt.ArrayLike) -> Point:
    x, y, z = (float(value) for value in volume.index_to_lps(index))
    return x, y, z


def voi_statistics(
    volume: Volume, mask: Volume, *, peak_sphere_volume_ml: float | None = None
) -> VoiStatistics:
    """Max, mean, SD, min, peak, volume and total uptake of ``volume`` inside ``mask``.

    Parameters
    ----------
    volume : Volume
        The image, shape (n_slices, n_rows, n_columns), any quantity (Bq/mL, SUV, ...).
    mask : Volume
        Boolean mask (:attr:`Quantity.MASK`) on any grid in the same LPS space. A mask on
        another grid is resampled onto the image's (:meth:`Volume.resample_to`: linear
        interpolation thresholded at one half).
    peak_sphere_volume_ml : float, optional
        Volume of the peak sphere, mL; default 1 mL (PERCIST, ``quantification.toml``).

    Returns
    -------
    VoiStatistics
        Values in the image's unit; ``total`` in ``total_unit``.

    Raises
    ------
    InputError
        If ``mask`` is not a mask, holds no voxel of the image grid, or a voxel inside it
        is NaN or infinite.

    Notes
    -----
    The peak is the SUVpeak of PERCIST (Wahl et al. 2009; Lodge, Chaudhry & Wahl 2012):
    the mean inside a sphere (weights from :func:`sphere_kernel`, so voxels cut by its
    surface count in part and anisotropic voxels are respected) centred on the mask voxel
    that maximises it. The sphere may extend beyond the mask. Where it extends beyond the
    image, or over non-finite voxels outside the mask, the mean is taken over the part
    that falls on valid voxels.

    Examples
    --------
    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> image = Volume(np.full((8, 8, 8), 2.0), np.diag([4.0, 4.0, 4.0, 1.0]), Quantity.SUV_BW)
    >>> inside = np.zeros(image.shape, dtype=bool)
    >>> inside[2:5, 2:5, 2:5] = True
    >>> stats = voi_statistics(image, image.mask(inside))
    >>> stats.n_voxels, round(stats.volume_ml, 6), stats.mean, stats.sd, round(stats.peak, 12)
    (27, 1.728, 2.0, 0.0, 2.0)
    >>> round(stats.total, 6), stats.total_unit
    (3.456, 'g')

    """
    if mask.quantity is not Quantity.MASK:
        raise InputError(
            f"the VOI must be a boolean mask volume, got quantity {mask.quantity.value!r}",
            path=mask.source,
            hint="build it with Volume.mask(array)",
        )
    on_grid = mask if volume.same_grid(mask) else mask.resample_to(volume)
    inside = np.asarray(on_grid.array, dtype=bool)
    n_voxels = int(np.count_nonzero(inside))
    if n_voxels == 0:
        resampled = "" if on_grid is mask else " after resampling onto the image grid"
        raise InputError(
            f"mask {mask.source or '(unnamed)'} holds no voxel of image "
            f"{volume.source or '(unnamed)'}{resampled}",
            path=mask.source,
            hint="check that the mask is not empty and overlaps the image in patient (LPS) space",
        )
    indices = np.argwhere(inside)
    values = np.asarray(volume.array[inside], dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        first = indices[int(np.argmin(finite))]
        raise InputError(
            f"{int(np.count_nonzero(~finite))} of {n_voxels} voxels inside mask "
            f"{mask.source or '(unnamed)'} are NaN or infinite, the first at index "
            f"{first.tolist()} (LPS {[round(c, 2) for c in _lps(volume, first)]} mm)",
            path=volume.source,
            hint="fix the image or exclude those voxels from the mask",
        )
    sphere_ml = float(
        _suv_peak_setting("sphere_volume_ml")
        if peak_sphere_volume_ml is None
        else peak_sphere_volume_ml
    )
    kernel = sphere_kernel(volume.spacing_mm, sphere_ml)
    peak, peak_index = _peak(volume.array, inside, kernel)
    voxel_ml = volume.voxel_volume_ml
    return VoiStatistics(
        n_voxels=n_voxels,
        volume_ml=n_voxels * voxel_ml,
        max=float(values.max()),
        mean=float(values.mean()),
        sd=float(values.std(ddof=1)) if n_voxels > 1 else math.nan,
        min=float(values.min()),
        peak=peak,
        peak_center_lps_mm=_lps(volume, peak_index),
        max_lps_mm=_lps(volume, indices[int(np.argmax(values))]),
        total=float(values.sum()) * voxel_ml,
        total_unit=_TOTAL_UNIT.get(volume.quantity, f"{volume.unit}.mL"),
        quantity=volume.quantity.value,
        unit=volume.unit,
        peak_sphere_volume_ml=sphere_ml,
    )
