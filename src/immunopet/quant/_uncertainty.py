r"""Count-statistics uncertainty of VOI means, estimated from the image itself.

A reconstructed PET image carries counting noise that is (to first order) Poisson in the
counts and spatially correlated by the resolution and the reconstruction. Two facts measured
in a uniform reference region of the same scan (a liver sphere, a muscle or blood-pool VOI)
give the standard error of the mean of any VOI of that scan:

1. **Noise level.** The voxel standard deviation σ_ref at the reference concentration
   C_ref. Counting noise has variance proportional to the counts, so a voxel of
   concentration C has σ(C) = σ_ref · √(C / C_ref) (same scan time, decay and
   reconstruction).
2. **Noise correlation.** The correlation ρ_a of neighbouring voxels along each axis *a*.
   The noise is modelled as white noise blurred by a Gaussian kernel sampled on the voxel
   grid, of standard deviation s_a voxels: its neighbour correlation is
   ρ_a = Σ_i w_i w_{i+1} / Σ_i w_i², solved here for s_a, and the number of voxels that carry
   one independent sample is n_c = Π_a 1 / Σ_i w_i² (the same quantity as
   :meth:`immunopet.simulate.PetSystem.uniform_region_noise`). The continuous approximation
   ρ = exp(−1 / (4 s²)), n_c = 2 √π s underestimates n_c by about 2 % per axis at the
   s ≈ 0.5 voxel of clinical 4 mm grids, and its SE by 3 %.
3. **Counts per slice.** A whole-body scan is a series of bed positions: later beds see the
   activity decayed by 2^(−t/T½) (and a bed may be scanned longer), so after decay
   correction their voxels carry more noise per Bq/mL. With the start offset t_s and the
   duration Δ_s of the frame of each slice (DICOM Acquisition Time and Actual Frame
   Duration, :class:`immunopet.image.AcquisitionTiming`), the counting variance per unit
   concentration of slice *s* is proportional to v_s = 1 / (2^(−t_s/T½) · Δ_s · f(Δ_s)),
   f the frame-average decay factor (:func:`slice_variance_factors`); v is normalised to a
   mean of 1 over the reference region. For ¹⁸F imaged 8 beds × 5 min, the last bed's SE
   is 12 % larger than the first's.

For a VOI of N voxels with mean C̄, N_s of them in slice *s*, the standard error of the mean
is

    SE(C̄) = σ(C̄) · √(v̄ · n_c / N),   v̄ = Σ_s N_s v_s / N,

valid when the VOI is larger than the correlation length (for smaller VOIs it tends to
σ(C̄), which :meth:`ImageNoise.mean_standard_error` uses as its ceiling). The estimate is
itself noisy: from a 30 mm sphere (≈ 250 voxels of 4 mm) its SE scatters by ≈ 14 % between
scans, which lowers the coverage of ±1.96 SE to ≈ 0.93; the analysis therefore measures the
noise in the largest liver sphere up to 50 mm (≈ 1000 voxels, scatter ≈ 7 %, coverage 0.95;
:data:`immunopet.lesions.LIVER_NOISE_REFERENCE`). The estimate covers
counting noise only: partial-volume bias, calibration and reconstruction differences between
scans are not in it (the change statistics add published test–retest repeatability for that,
issue 6). Heterogeneity of the reference region inflates σ_ref, which makes the estimate
conservative.

References
----------
Barrett HH, Myers KJ. Foundations of Image Science. Wiley 2004, ch. 8 (noise in
reconstructed images, correlation and the variance of region means).

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from immunopet.errors import InputError
from immunopet.image import AcquisitionTiming
from immunopet.physics import decay_factor, frame_average_decay_factor

__all__ = ["ImageNoise", "estimate_image_noise", "slice_variance_factors"]

#: Fewest voxels of a reference region for a usable noise estimate.
_MIN_REFERENCE_VOXELS = 30
#: Kernel half-width in standard deviations (as scipy.ndimage.gaussian_filter's default).
_KERNEL_TRUNCATE = 4.0
#: Bisection bracket of the kernel standard deviation, voxels, and its iterations.
_SIGMA_BRACKET = (0.05, 50.0)
_BISECTIONS = 60


@dataclass(frozen=True)
class ImageNoise:
    """Noise of one PET image, measured in a reference region.

    Parameters
    ----------
    reference_bq_per_ml : float
        Mean of the reference region, Bq/mL (> 0).
    reference_sd_bq_per_ml : float
        Voxel standard deviation there, Bq/mL (at the region's mean slice variance factor).
    correlation_voxels : float
        Voxels per independent sample, n_c ≥ 1.
    region : str
        What the reference region was (for the record in results).
    slice_variance : tuple of float, optional
        Relative counting variance per unit concentration of each slice, v_s, normalised to a
        mean of 1 over the reference region's voxels (:func:`slice_variance_factors`);
        empty when every slice has the same counts per Bq/mL.

    """

    reference_bq_per_ml: float
    reference_sd_bq_per_ml: float
    correlation_voxels: float
    region: str
    slice_variance: tuple[float, ...] = ()

    def voxel_sd(self, concentration_bq_per_ml: float, slice_index: int | None = None) -> float:
        """Counting-noise SD of a voxel of the given concentration, Bq/mL.

        ``slice_index`` selects the slice's variance factor (default: the reference's).
        """
        ratio = max(float(concentration_bq_per_ml), 0.0) / self.reference_bq_per_ml
        if slice_index is not None and self.slice_variance:
            ratio *= self.slice_variance[slice_index]
        return self.reference_sd_bq_per_ml * math.sqrt(ratio)

    def mean_standard_error(
        self,
        mean_bq_per_ml: float,
        n_voxels: int,
        *,
        slice_counts: npt.ArrayLike | None = None,
    ) -> float:
        """Standard error of a VOI mean of ``n_voxels`` voxels, Bq/mL.

        Parameters
        ----------
        mean_bq_per_ml : float
            The VOI's mean, Bq/mL.
        n_voxels : int
            Its voxels (≥ 1).
        slice_counts : array_like of shape (n_slices,), optional
            Voxels of the VOI in each slice (``mask.sum(axis=(1, 2))``): weights the slices'
            variance factors. Without it the reference region's factor (1) is used.

        """
        if n_voxels < 1:
            raise InputError("a VOI needs at least one voxel", field="n_voxels")
        factor = min(1.0, math.sqrt(self.correlation_voxels / n_voxels))
        return (
            self.voxel_sd(mean_bq_per_ml)
            * factor
            * math.sqrt(self.mean_slice_variance(slice_counts))
        )

    def mean_slice_variance(self, slice_counts: npt.ArrayLike | None) -> float:
        """Voxel-weighted mean of the slice variance factors v̄ over a VOI (1 without them)."""
        if slice_counts is None or not self.slice_variance:
            return 1.0
        counts = np.asarray(slice_counts, dtype=np.float64)
        if counts.shape != (len(self.slice_variance),):
            raise InputError(
                f"slice_counts has shape {counts.shape}, the image {len(self.slice_variance)} slices",
                field="slice_counts",
            )
        total = float(counts.sum())
        if total <= 0.0:
            return 1.0
        return float(np.dot(counts, self.slice_variance)) / total

    def as_dict(self) -> dict[str, float | str]:
        """JSON-ready record of the estimate."""
        record: dict[str, float | str] = {
            "reference_region": self.region,
            "reference_bq_per_ml": self.reference_bq_per_ml,
            "reference_sd_bq_per_ml": self.reference_sd_bq_per_ml,
            "correlation_voxels": self.correlation_voxels,
        }
        if self.slice_variance:
            record["slice_variance_min"] = min(self.slice_variance)
            record["slice_variance_max"] = max(self.slice_variance)
        return record


def slice_variance_factors(
    timing: AcquisitionTiming | None, half_life_s: float, n_slices: int
) -> npt.NDArray[np.float64] | None:
    """Relative counting variance per unit (decay-corrected) concentration of each slice.

    v_s = 1 / (2^(−t_s/T½) · Δ_s · f(Δ_s)) for a slice whose frame starts t_s after the
    scan's start and lasts Δ_s (f: :func:`immunopet.physics.frame_average_decay_factor`):
    the reciprocal of its expected counts per Bq/mL at the decay reference.

    Parameters
    ----------
    timing : AcquisitionTiming or None
        The image's timing (per-slice start offsets and durations when the file has them).
    half_life_s : float
        The nuclide's half-life, s.
    n_slices : int
        Slices of the image (first axis).

    Returns
    -------
    ndarray of shape (n_slices,) or None
        Factors scaled to a minimum of 1, or ``None`` when every slice has the same timing
        (or the timing is unknown).

    Examples
    --------
    >>> from datetime import datetime
    >>> timing = AcquisitionTiming(datetime(2024, 1, 1, 9), 300.0, datetime(2024, 1, 1, 9),
    ...                            frame_start_offsets_s=(0.0, 0.0, 6586.2, 6586.2))
    >>> slice_variance_factors(timing, 6586.2, 4).round(3).tolist()  # one half-life later
    [1.0, 1.0, 2.0, 2.0]

    """
    if timing is None:
        return None
    offsets = timing.frame_start_offsets_s or (0.0,) * n_slices
    if timing.frame_durations_s:
        durations: Sequence[float | None] = timing.frame_durations_s
    else:
        durations = (timing.duration_s,) * n_slices
    if len(offsets) != n_slices or len(durations) != n_slices:
        return None
    if len(set(offsets)) == 1 and len(set(durations)) == 1:
        return None
    counts = np.array(
        [
            decay_factor(half_life_s, t)
            * (1.0 if d is None else d * frame_average_decay_factor(half_life_s, d))
            for t, d in zip(offsets, durations, strict=True)
        ]
    )
    variance = 1.0 / counts
    return np.asarray(variance / variance.min(), dtype=np.float64)


def _neighbour_correlation(
    values: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_], axis: int
) -> float:
    """Correlation of voxel pairs one step apart along ``axis``, both inside ``mask``."""
    count = values.shape[axis] - 1
    first = [slice(None)] * 3
    second = [slice(None)] * 3
    first[axis], second[axis] = slice(0, count), slice(1, count + 1)
    both = mask[tuple(first)] & mask[tuple(second)]
    if int(both.sum()) < _MIN_REFERENCE_VOXELS:
        return 0.0
    a = values[tuple(first)][both]
    b = values[tuple(second)][both]
    a = a - a.mean()
    b = b - b.mean()
    denominator = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    return float(np.sum(a * b)) / denominator if denominator > 0.0 else 0.0


def _sampled_gaussian(sigma_voxels: float) -> npt.NDArray[np.float64]:
    radius = max(1, int(_KERNEL_TRUNCATE * sigma_voxels + 0.5))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma_voxels) ** 2)
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _kernel_correlation(weights: npt.NDArray[np.float64]) -> float:
    return float(np.dot(weights[:-1], weights[1:]) / np.dot(weights, weights))


def voxels_per_sample(rho: float) -> float:
    """Voxels per independent sample along one axis for a neighbour correlation ``rho``.

    Solves ρ = Σ w_i w_{i+1} / Σ w_i² for the sampled Gaussian kernel w and returns
    1 / Σ w_i² (1 for ρ ≤ 0; the continuous limit 2 √π s beyond the bracket).

    Examples
    --------
    >>> round(voxels_per_sample(0.0), 3), round(voxels_per_sample(0.1786), 3)
    (1.0, 1.374)

    """
    if not rho > 0.0:
        return 1.0
    low, high = _SIGMA_BRACKET
    if rho <= _kernel_correlation(_sampled_gaussian(low)):
        return 1.0
    if rho >= _kernel_correlation(_sampled_gaussian(high)):
        return 2.0 * math.sqrt(math.pi) / (2.0 * math.sqrt(-math.log(min(rho, 1.0 - 1e-12))))
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        if _kernel_correlation(_sampled_gaussian(middle)) < rho:
            low = middle
        else:
            high = middle
    weights = _sampled_gaussian(0.5 * (low + high))
    return 1.0 / float(np.dot(weights, weights))


def estimate_image_noise(
    activity: npt.NDArray[np.floating],
    reference_mask: npt.NDArray[np.bool_],
    *,
    region: str,
    slice_variance: npt.ArrayLike | None = None,
) -> ImageNoise:
    """Measure voxel noise and its correlation in a uniform reference region.

    Parameters
    ----------
    activity : ndarray of shape (n_slices, n_rows, n_columns)
        The PET image, Bq/mL.
    reference_mask : ndarray of bool, same shape
        A region of (nearly) uniform uptake away from edges (e.g. a 3 cm liver sphere).
    region : str
        Its name, recorded with the estimate.
    slice_variance : array_like of shape (n_slices,), optional
        Relative variance per unit concentration of each slice
        (:func:`slice_variance_factors`); the residuals are scaled by it before the
        variance and correlation are measured.

    Returns
    -------
    ImageNoise

    Raises
    ------
    InputError
        If the region has fewer than 30 voxels or no activity.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = rng.poisson(100.0, size=(20, 20, 20)).astype(float)  # white Poisson noise
    >>> noise = estimate_image_noise(image, np.ones(image.shape, bool), region="cube")
    >>> round(noise.reference_sd_bq_per_ml / 10.0, 1), round(noise.correlation_voxels, 1)
    (1.0, 1.0)

    """
    values = np.asarray(activity, dtype=np.float64)
    mask = np.asarray(reference_mask, dtype=bool)
    if mask.shape != values.shape:
        raise InputError(
            f"reference mask shape {mask.shape} differs from the image's {values.shape}",
            field="reference_mask",
        )
    n = int(mask.sum())
    if n < _MIN_REFERENCE_VOXELS:
        raise InputError(
            f"the noise reference region {region!r} has {n} voxels (< {_MIN_REFERENCE_VOXELS})",
            field="reference_mask",
            hint="use a larger uniform region (e.g. a 3 cm liver sphere)",
        )
    inside = values[mask]
    mean = float(inside.mean())
    if mean <= 0.0:
        raise InputError(
            f"the noise reference region {region!r} has no activity", field="reference_mask"
        )
    factors: tuple[float, ...] = ()
    residual = np.where(mask, values - mean, 0.0)
    if slice_variance is not None:
        variance = np.asarray(slice_variance, dtype=np.float64)
        if variance.shape != (values.shape[0],) or not np.all(variance > 0.0):
            raise InputError(
                f"slice_variance must hold {values.shape[0]} positive factors",
                field="slice_variance",
            )
        counts = mask.sum(axis=(1, 2))
        variance = variance / (float(np.dot(counts, variance)) / n)
        residual /= np.sqrt(variance)[:, None, None]
        factors = tuple(float(v) for v in variance)
    sd = math.sqrt(float(np.sum(residual[mask] ** 2)) / (n - 1))
    correlation_voxels = 1.0
    for axis in range(3):
        correlation_voxels *= voxels_per_sample(_neighbour_correlation(residual, mask, axis))
    return ImageNoise(mean, sd, correlation_voxels, region, factors)
