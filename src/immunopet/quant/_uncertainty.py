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
   For white noise blurred by a Gaussian of standard deviation s_a (in voxels),
   ρ_a = exp(−1 / (4 s_a²)), hence s_a = 1 / (2 √(−ln ρ_a)); the number of voxels that
   carry one independent sample is then n_c = Π_a max(1, 2 √π s_a) (the reciprocal of
   Σ w² of the kernel, the same quantity as
   :meth:`immunopet.simulate.PetSystem.uniform_region_noise`).

For a VOI of N voxels with mean C̄, the standard error of the mean is

    SE(C̄) = σ(C̄) · √(n_c / N),

valid when the VOI is larger than the correlation length (for smaller VOIs it tends to
σ(C̄), which :meth:`ImageNoise.mean_standard_error` uses as its ceiling). The estimate covers
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
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from immunopet.errors import InputError

__all__ = ["ImageNoise", "estimate_image_noise"]

#: Fewest voxels of a reference region for a usable noise estimate.
_MIN_REFERENCE_VOXELS = 30


@dataclass(frozen=True)
class ImageNoise:
    """Noise of one PET image, measured in a reference region.

    Parameters
    ----------
    reference_bq_per_ml : float
        Mean of the reference region, Bq/mL (> 0).
    reference_sd_bq_per_ml : float
        Voxel standard deviation there, Bq/mL.
    correlation_voxels : float
        Voxels per independent sample, n_c ≥ 1.
    region : str
        What the reference region was (for the record in results).

    """

    reference_bq_per_ml: float
    reference_sd_bq_per_ml: float
    correlation_voxels: float
    region: str

    def voxel_sd(self, concentration_bq_per_ml: float) -> float:
        """Counting-noise SD of a voxel of the given concentration, Bq/mL."""
        ratio = max(float(concentration_bq_per_ml), 0.0) / self.reference_bq_per_ml
        return self.reference_sd_bq_per_ml * math.sqrt(ratio)

    def mean_standard_error(self, mean_bq_per_ml: float, n_voxels: int) -> float:
        """Standard error of a VOI mean of ``n_voxels`` voxels, Bq/mL."""
        if n_voxels < 1:
            raise InputError("a VOI needs at least one voxel", field="n_voxels")
        factor = min(1.0, math.sqrt(self.correlation_voxels / n_voxels))
        return self.voxel_sd(mean_bq_per_ml) * factor

    def as_dict(self) -> dict[str, float | str]:
        """JSON-ready record of the estimate."""
        return {
            "reference_region": self.region,
            "reference_bq_per_ml": self.reference_bq_per_ml,
            "reference_sd_bq_per_ml": self.reference_sd_bq_per_ml,
            "correlation_voxels": self.correlation_voxels,
        }


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


def estimate_image_noise(
    activity: npt.NDArray[np.floating], reference_mask: npt.NDArray[np.bool_], *, region: str
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
    sd = float(inside.std(ddof=1))
    correlation_voxels = 1.0
    for axis in range(3):
        rho = _neighbour_correlation(values, mask, axis)
        if 0.0 < rho < 1.0:
            sigma_voxels = 1.0 / (2.0 * math.sqrt(-math.log(rho)))
            correlation_voxels *= max(1.0, 2.0 * math.sqrt(math.pi) * sigma_voxels)
    return ImageNoise(mean, sd, correlation_voxels, region)
