r"""Simulated scanners: turn a true activity map into a reconstructed-like image.

:class:`ImagingSystem` is the interface every simulated scanner implements (PET
now, SPECT later): ``acquire(truth, nuclide=..., frame_duration_s=..., rng=...)``
returns an image in Bq/mL on the truth's own grid. :class:`PetSystem` implements
it from a :class:`~immunopet.planning.ScannerModel` (NEMA sensitivity and
resolution, ``data/scanners.toml``).

The PET model (image domain, calibrated to counts)
--------------------------------------------------
The input ``truth`` holds the activity concentration C₀ (Bq/mL) at the *start*
of the frame (bed position). The expected true coincidences a voxel of volume
V (mL) contributes over a frame of duration Δ are

    N = C₀ · V · c · Δ · F,    F = (1 − e^(−λΔ))/(λΔ),

with ``c`` the counts per decay of the nuclide
(:meth:`~immunopet.planning.ScannerModel.counts_per_decay`: NEMA F-18
sensitivity scaled by the β⁺ yield) and F the frame-average decay factor
(:func:`~immunopet.physics.frame_average_decay_factor`; 0.9993 for ⁸⁹Zr over
10 min, 0.969 for ¹⁸F). The output is the image a scanner reports when it
decay-corrects to the frame start (DICOM Decay Correction START): counts divided
by V · c · Δ · F, so the noiseless output of a uniform region equals C₀.

Noise (``rng`` given): the counts of each voxel are *effective-count Poisson*,

    N̂ = η² · Poisson(N / η²),

so E[N̂] = N (unbiased, no clipping: N̂ ≥ 0 by construction) and
Var[N̂] = η² N, the Poisson variance of the counts amplified by the
reconstruction's noise-amplification factor η. The noisy image is then blurred
with the resolution kernel (noise first, then blur, as the detected counts of one
voxel are spread by the system's point-spread function). Consequences, each tested:

* for a volume of interest much larger than the kernel the blur conserves the
  total, so its noise is η √(counts in it): the same η as in the planner's
  detectability model (:mod:`immunopet.planning._cells`);
* a single voxel inside a large uniform region has coefficient of variation
  η √(Σ w²) / √N, with w the discrete blur kernel
  (:meth:`PetSystem.uniform_region_noise`);
* the noise falls as 1/√N: four times the scan time or the activity halves it.

Resolution: a Gaussian of the scanner's transverse FWHM near the centre, the same
in all three directions, combined in quadrature with an optional post-filter
FWHM; sampled per axis with σ = FWHM / (2√(2 ln 2)) / spacing (anisotropic
voxels allowed). The kernel weights sum to one and the image is extended
beyond its edges by its edge values (``mode="nearest"``), so a uniform region,
and in particular a grid filled uniformly, keeps its value exactly.

Approximations, each making the image cleaner or simpler than a real one: the
noise is that of counts, spatially white before the blur, not the correlated
noise of an iterative reconstruction; a voxel without activity has no noise
(real images show noise in cold regions); attenuation, scatter, randoms,
dead time and the ¹⁷⁶Lu background are absent (η absorbs their effect on noise,
not on bias); the resolution does not vary across the field of view; every
voxel is seen for ``frame_duration_s`` at the axially averaged NEMA sensitivity
(bed overlap and the axial sensitivity profile are not modelled); prompt γ
coincidences (¹²⁴I, ⁸⁶Y) are not counted.

Default noise amplification (convention): η = :data:`DEFAULT_NOISE_AMPLIFICATION`
makes a liver-like region of a whole-body FDG study have a voxel coefficient of
variation of 12 %, inside the 10–15 % usually reported for clinical whole-body
FDG PET (RECALLED; a convention, not a measurement). Reference conditions:
Biograph mCT, 2 min per bed, 4 mm voxels, no post-filter, liver 4.8 kBq/mL
(SUV 2 after 3.5 MBq/kg and 60 min of ¹⁸F decay). Reproduced in
``tests/simulate/test_pet_scanner.py``. The planner's default (η = 1, ideal
counting) is deliberately optimistic; this one aims at realistic images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from immunopet import physics
from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.planning import ScannerModel
from immunopet.units import FWHM_PER_SIGMA, ML_PER_MM3

__all__ = [
    "DEFAULT_NOISE_AMPLIFICATION",
    "ImagingSystem",
    "PetSystem",
    "UniformRegionNoise",
]

#: Default noise-amplification factor η of the reconstruction (convention; see the module text).
DEFAULT_NOISE_AMPLIFICATION = 3.6

#: The Gaussian kernel is cut at this many standard deviations (scipy's default).
_TRUNCATE_SIGMAS = 4.0


@runtime_checkable
class ImagingSystem(Protocol):
    """A simulated scanner: true activity in, reconstructed-like image out.

    Implementations (PET now, SPECT later) return the image on the truth's own
    grid, in Bq/mL, decay-corrected to the frame start, and are noiseless when
    ``rng`` is ``None``.
    """

    def acquire(
        self,
        truth: Volume,
        *,
        nuclide: str,
        frame_duration_s: float,
        rng: np.random.Generator | None = None,
    ) -> Volume:
        """Image ``truth`` (Bq/mL at the frame start) for one frame of ``frame_duration_s``."""
        ...


@dataclass(frozen=True)
class UniformRegionNoise:
    """Counts and noise of one voxel inside a large uniform region.

    Parameters
    ----------
    counts_per_voxel : float
        Expected true coincidences from one voxel during the frame.
    coefficient_of_variation : float
        Standard deviation of a voxel value in the output image over its mean.

    """

    counts_per_voxel: float
    coefficient_of_variation: float


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0.0 or (number == 0.0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be a finite number {bound}, got {value!r}", field=name)
    return number


@dataclass(frozen=True)
class PetSystem:
    """A PET scanner that images a true activity map (image-domain model; see the module text).

    Parameters
    ----------
    scanner : ScannerModel
        Sensitivity and resolution, e.g. ``immunopet.planning.scanner("biograph_mct")``
        or the preclinical ``scanner("inveon")``.
    noise_amplification : float, optional
        η > 0: the noise of the reconstructed counts over their Poisson noise
        (default :data:`DEFAULT_NOISE_AMPLIFICATION`, a convention).
    post_filter_fwhm_mm : float, optional
        Extra Gaussian post-filter, FWHM in mm, combined in quadrature with the
        scanner's resolution (default 0: none).

    Examples
    --------
    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> from immunopet.planning import scanner
    >>> pet = PetSystem(scanner("biograph_mct"))
    >>> truth = Volume(np.full((8, 8, 8), 5000.0), np.diag([4.0, 4.0, 4.0, 1.0]),
    ...                Quantity.ACTIVITY_CONCENTRATION)
    >>> image = pet.acquire(truth, nuclide="F-18", frame_duration_s=120.0)
    >>> float(image.array[4, 4, 4])
    5000.0
    >>> noisy = pet.acquire(truth, nuclide="F-18", frame_duration_s=120.0,
    ...                     rng=np.random.default_rng(1))
    >>> noisy.metadata["noiseless"], noisy.array.dtype
    (False, dtype('float32'))
    >>> noise = pet.uniform_region_noise(5000.0, spacing_mm=(4.0, 4.0, 4.0), nuclide="F-18",
    ...                                  frame_duration_s=120.0)
    >>> round(noise.counts_per_voxel), round(noise.coefficient_of_variation, 3)
    (366, 0.117)

    """

    scanner: ScannerModel
    noise_amplification: float = DEFAULT_NOISE_AMPLIFICATION
    post_filter_fwhm_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.scanner.modality != "PET":
            raise InputError(
                f"scanner {self.scanner.key!r} is {self.scanner.modality}, not PET",
                field="scanner",
                hint="choose a PET scanner",
            )
        _positive("noise_amplification", self.noise_amplification)
        _positive("post_filter_fwhm_mm", self.post_filter_fwhm_mm, allow_zero=True)

    @property
    def resolution_fwhm_mm(self) -> float:
        """FWHM of the image's point-spread function, mm (scanner ⊕ post-filter)."""
        return math.hypot(self.scanner.resolution_fwhm_mm, self.post_filter_fwhm_mm)

    def counts_per_bq_per_ml(
        self, voxel_volume_ml: float, *, nuclide: str, frame_duration_s: float
    ) -> float:
        """Expected counts of one voxel per Bq/mL at the frame start: V · c · Δ · F.

        Raises
        ------
        InputError
            If the nuclide emits no positrons, or a size or duration is not positive.

        """
        volume_ml = _positive("voxel_volume_ml", voxel_volume_ml)
        duration_s = _positive("frame_duration_s", frame_duration_s)
        counts_per_decay = self.scanner.counts_per_decay(nuclide)
        frame_factor = physics.frame_average_decay_factor(
            physics.nuclide(nuclide).half_life_s, duration_s
        )
        return volume_ml * counts_per_decay * duration_s * frame_factor

    def _sigmas_voxels(self, spacing_mm: npt.ArrayLike) -> tuple[float, ...]:
        spacing = np.asarray(spacing_mm, dtype=np.float64)
        if spacing.shape != (3,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0.0):
            raise InputError(
                f"spacing_mm must be three positive numbers, got {spacing.tolist()}",
                field="spacing_mm",
            )
        sigma_mm = self.resolution_fwhm_mm / FWHM_PER_SIGMA
        return tuple(float(sigma_mm / s) for s in spacing)

    def uniform_region_noise(
        self,
        concentration_bq_per_ml: float,
        *,
        spacing_mm: npt.ArrayLike,
        nuclide: str,
        frame_duration_s: float,
    ) -> UniformRegionNoise:
        """Counts and voxel noise inside a large uniform region: CV = η √(Σ w²) / √N.

        Parameters
        ----------
        concentration_bq_per_ml : float
            Activity concentration of the region at the frame start, Bq/mL (> 0).
        spacing_mm : array_like of shape (3,)
            Voxel spacing along (slice, row, column), mm.
        nuclide : str
            The positron emitter, e.g. ``"Zr-89"``.
        frame_duration_s : float
            Scan time per bed position, s.

        Returns
        -------
        UniformRegionNoise
            Expected counts per voxel and the voxel coefficient of variation of
            the image :meth:`acquire` returns (exact for the model, far from edges).

        """
        from scipy import ndimage  # imported on first use: keeps `import immunopet` light

        concentration = _positive("concentration_bq_per_ml", concentration_bq_per_ml)
        sigmas = self._sigmas_voxels(spacing_mm)
        voxel_volume_ml = float(np.prod(np.asarray(spacing_mm, dtype=np.float64))) * ML_PER_MM3
        counts = concentration * self.counts_per_bq_per_ml(
            voxel_volume_ml, nuclide=nuclide, frame_duration_s=frame_duration_s
        )
        # The separable kernel's Σw² is the product of its 1-D kernels' Σw² (exactly as applied).
        sum_squares = 1.0
        for sigma in sigmas:
            radius = int(_TRUNCATE_SIGMAS * sigma + 0.5)
            delta = np.zeros(2 * radius + 1)
            delta[radius] = 1.0
            kernel = ndimage.gaussian_filter1d(
                delta, sigma, mode="constant", truncate=_TRUNCATE_SIGMAS
            )
            sum_squares *= float(np.sum(kernel**2))
        cv = self.noise_amplification * math.sqrt(sum_squares / counts)
        return UniformRegionNoise(counts_per_voxel=counts, coefficient_of_variation=cv)

    def acquire(
        self,
        truth: Volume,
        *,
        nuclide: str,
        frame_duration_s: float,
        rng: np.random.Generator | None = None,
        slices_per_bed: int | None = None,
    ) -> Volume:
        """Image ``truth`` for one frame (bed position): counts, noise, resolution.

        With ``slices_per_bed`` the field is a whole-body scan of consecutive bed
        positions along the first (slice) axis, each ``frame_duration_s`` long and
        starting when the previous one ends: bed *k* sees the activity decayed by
        2^(−kΔ/T½) and so fewer counts, and its image is decay-corrected back to the
        start of the first bed (DICOM Decay Correction START), so the expected image
        is still ``truth`` while later beds are noisier.

        Parameters
        ----------
        truth : Volume
            Activity concentration (Bq/mL, ``Quantity.ACTIVITY_CONCENTRATION``) at
            the frame start; finite and non-negative.
        nuclide : str
            The positron emitter, e.g. ``"F-18"`` or ``"Zr-89"``.
        frame_duration_s : float
            Scan time of the bed position, s.
        rng : numpy.random.Generator, optional
            Source of the counting noise; ``None`` gives the noiseless (expected) image.
        slices_per_bed : int, optional
            Slices per bed position (default: one bed covers the whole field).

        Returns
        -------
        Volume
            float32 activity concentration, Bq/mL, decay-corrected to the (first)
            frame start, on the truth's grid (same affine and timing); ``metadata``
            records the scanner, nuclide, frame duration, η and the FWHM.

        Raises
        ------
        InputError
            If ``truth`` is not a finite non-negative activity concentration, the
            nuclide emits no positrons, or the frame duration is not positive.

        """
        from scipy import ndimage  # imported on first use: keeps `import immunopet` light

        if truth.quantity is not Quantity.ACTIVITY_CONCENTRATION:
            raise InputError(
                f"truth must be an activity concentration (Bq/mL), got {truth.quantity.value}",
                field="truth",
                path=truth.source,
            )
        counts_per_unit = self.counts_per_bq_per_ml(
            truth.voxel_volume_ml, nuclide=nuclide, frame_duration_s=frame_duration_s
        )
        concentration = np.asarray(truth.array, dtype=np.float64)
        if not np.all(np.isfinite(concentration)) or np.any(concentration < 0.0):
            raise InputError(
                "truth holds negative, NaN or infinite activity concentrations",
                field="truth",
                path=truth.source,
                hint="the true activity map must be finite and >= 0 Bq/mL",
            )
        if rng is not None:
            per_bed = truth.shape[0] if slices_per_bed is None else int(slices_per_bed)
            if per_bed < 1:
                raise InputError(
                    f"slices_per_bed must be >= 1, got {per_bed}", field="slices_per_bed"
                )
            bed = np.arange(truth.shape[0]) // per_bed
            half_life_s = physics.nuclide(nuclide).half_life_s
            remaining = np.exp2(-bed * float(frame_duration_s) / half_life_s)  # 2^(−kΔ/T½)
            counts_per_slice = (counts_per_unit * remaining)[:, None, None]
            quantum = self.noise_amplification**2  # counts per effective count
            effective_counts = rng.poisson(concentration * (counts_per_slice / quantum))
            concentration = effective_counts.astype(np.float64) * (quantum / counts_per_slice)
        image = ndimage.gaussian_filter(
            concentration,
            sigma=self._sigmas_voxels(truth.spacing_mm),
            mode="nearest",
            truncate=_TRUNCATE_SIGMAS,
        )
        metadata = {
            **truth.metadata,
            "scanner": self.scanner.key,
            "nuclide": nuclide,
            "frame_duration_s": float(frame_duration_s),
            "slices_per_bed": slices_per_bed,
            "noiseless": rng is None,
            "noise_amplification": self.noise_amplification,
            "resolution_fwhm_mm": self.resolution_fwhm_mm,
        }
        return truth.with_array(
            image.astype(np.float32), Quantity.ACTIVITY_CONCENTRATION, metadata=metadata
        )
