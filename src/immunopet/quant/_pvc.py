r"""Partial-volume correction of regional means by the geometric transfer matrix (GTM).

The method of Rousset, Ma & Evans (J Nucl Med 1998;39:904-911). The image is modelled as
*N* non-overlapping regions :math:`R_i`, each of uniform true concentration :math:`T_i`,
blurred by the scanner's point-spread function *h* (here a Gaussian of given FWHM), plus
noise; activity outside every region is taken as zero (so the rest of the body must be a
region of its own: :func:`gtm_regions` builds such a set). The observed mean over region
:math:`R_j` is then

.. math::

    t_j = \sum_i W_{ji} T_i, \qquad
    W_{ji} = \frac{1}{n_j} \sum_{x \in R_j} (h \ast \mathbf{1}_{R_i})(x),

where :math:`n_j` is the number of voxels of :math:`R_j` and :math:`h \ast \mathbf{1}_{R_i}`
is the *regional spread function* of region *i* (its indicator blurred by the PSF).
:math:`W_{ii}` is the fraction of its own activity a region keeps (recovery) and
:math:`W_{ji}` the spill-over from *i* into *j*. The corrected means are
:math:`T = W^{-1} t`.

The PSF on the voxel grid (``kernel``): the image of region *i* is its voxel-uniform
activity blurred by the continuous Gaussian and read at the voxel centres, so the separable
kernel is the Gaussian *integrated over each voxel*, :math:`w_k = \Phi((k + 1/2)/s) -
\Phi((k - 1/2)/s)` per axis (*s* the SD in voxels, :math:`\Phi` the normal CDF). The
alternative ``"sampled"`` kernel, the Gaussian sampled at the voxel centres
(:func:`scipy.ndimage.gaussian_filter`, the immunopet simulator's blur), spreads less when
the FWHM is not much larger than the voxel; the two agree for a FWHM of several voxels.
Image values that are voxel averages rather than point samples add a box of one voxel:
fold it in, approximately, by giving a FWHM of :math:`\sqrt{F^2 + 8 \ln 2\, \Delta^2 / 12}` per axis
(voxel size :math:`\Delta`).

Computation: each region's indicator is blurred (one 1-D correlation per axis) inside its
bounding box widened by the kernel's reach (cut at ``truncate_sigmas`` standard deviations,
``data/partial_volume.toml``; zero beyond the image), and the blurred values are summed per
region with one :func:`numpy.bincount`; the bounding boxes come from one
:func:`scipy.ndimage.find_objects` pass.

Uncertainty: the observed means carry count-statistics standard errors :math:`s_j`
(:meth:`immunopet.quant.ImageNoise.mean_standard_error`). *W* is fixed by the geometry and
the PSF, so the correction is linear and the covariance of the corrected means is exactly

.. math::

    \operatorname{Cov}(T) = W^{-1} \operatorname{diag}(s^2) W^{-\top},

taking the regional means as independent. Regions share correlated noise only across their
common border (over about one correlation length), which this neglects; for a region and its
surrounding shell that correlation is positive, and neglecting it overstates the variance of
the corrected mean (conservative; tests/quant/test_pvc.py). Errors of the PSF itself, of the region borders
and non-uniform uptake inside a region are biases, not in the standard error.

The 2-norm condition number :math:`\kappa(W)` bounds how much a relative error of the
observed means can grow in the corrected ones; above ``condition_number_warning`` the result
carries a warning naming the region that keeps the least of its own activity.

References
----------
Rousset OG, Ma Y, Evans AC. Correction for partial volume effects in PET: principle and
validation. J Nucl Med 1998;39(5):904-911.

Erlandsson K, Buvat I, Pretorius PH, Thomas BA, Hutton BF. A review of partial volume
correction techniques for emission tomography and their applications in neurology,
cardiology and oncology. Phys Med Biol 2012;57(21):R119-R159 (region-based methods, the
GTM among them; the reference of the PETPVC toolbox).

"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import Volume
from immunopet.quant._uncertainty import ImageNoise
from immunopet.units import FWHM_PER_SIGMA

__all__ = ["GtmResult", "gtm_correct", "gtm_regions"]

_DATA_FILE = "partial_volume.toml"
#: Name of the rest-of-body region made by :func:`gtm_regions`.
BACKGROUND = "background"
#: Suffix of the local-background shell of a region made by :func:`gtm_regions`.
SURROUNDINGS = " surroundings"

Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
Box = tuple[slice, slice, slice]
#: How the Gaussian PSF is discretised on the voxel grid (module text).
KernelName = Literal["integrated", "sampled"]


def _setting(section: str, key: str) -> float:
    return float(read_toml(_DATA_FILE)[section][key]["value"])


def _fwhm_per_axis(psf_fwhm_mm: float | Sequence[float]) -> tuple[float, float, float]:
    """The FWHM along (slice, row, column), mm, from one number or three."""
    values = np.atleast_1d(np.asarray(psf_fwhm_mm, dtype=np.float64)).ravel()
    if values.size == 1:
        values = np.repeat(values, 3)
    if values.size != 3 or not np.all(np.isfinite(values) & (values > 0.0)):
        raise InputError(
            f"the PSF FWHM must be one or three positive lengths in mm, got {psf_fwhm_mm!r}",
            field="psf_fwhm_mm",
            hint="give the reconstructed image's resolution (FWHM, mm) of the scanner and "
            "reconstruction that made the image; it is never guessed",
        )
    return float(values[0]), float(values[1]), float(values[2])


def _widened(tight: tuple[slice, ...], pad: Sequence[int], shape: Sequence[int]) -> Box:
    """A bounding box (from ``find_objects``) widened by ``pad`` voxels, clipped to ``shape``."""
    low = [max(int(t.start) - p, 0) for t, p in zip(tight, pad, strict=True)]
    high = [min(int(t.stop) + p, n) for t, p, n in zip(tight, pad, shape, strict=True)]
    return slice(low[0], high[0]), slice(low[1], high[1]), slice(low[2], high[2])


@dataclass(frozen=True, eq=False)
class GtmResult:
    r"""Regional means before and after GTM partial-volume correction.

    Attributes
    ----------
    names : tuple of str
        The regions, in the order of every array below.
    n_voxels : tuple of int
        Voxels per region.
    observed_mean : numpy.ndarray of shape (n_regions,)
        Mean of the image over each region, in :attr:`unit`.
    observed_se : numpy.ndarray of shape (n_regions,) or None
        Count-statistics standard error of each observed mean (None without a noise model).
    corrected_mean : numpy.ndarray of shape (n_regions,)
        Partial-volume-corrected mean concentration :math:`T = W^{-1} t`, in :attr:`unit`.
    corrected_se : numpy.ndarray of shape (n_regions,) or None
        Its standard error, the square root of the diagonal of :attr:`covariance`.
    covariance : numpy.ndarray of shape (n_regions, n_regions) or None
        :math:`W^{-1} \\operatorname{diag}(s^2) W^{-\\top}` (module text).
    transfer_matrix : numpy.ndarray of shape (n_regions, n_regions)
        *W*: ``transfer_matrix[j, i]`` is the mean over region *j* of region *i*'s blurred
        indicator (its diagonal is each region's recovery).
    condition_number : float
        2-norm condition number of *W*.
    psf_fwhm_mm : tuple of float
        The PSF FWHM used along (slice, row, column), mm.
    unit : str
        UCUM code of the means (the image's).
    warnings : tuple of str
        E.g. an ill-conditioned transfer matrix.

    """

    names: tuple[str, ...]
    n_voxels: tuple[int, ...]
    observed_mean: Floats
    observed_se: Floats | None
    corrected_mean: Floats
    corrected_se: Floats | None
    covariance: Floats | None
    transfer_matrix: Floats
    condition_number: float
    psf_fwhm_mm: tuple[float, float, float]
    unit: str
    warnings: tuple[str, ...]

    def index(self, name: str) -> int:
        """Position of region ``name`` in the arrays."""
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(
                f"no region {name!r} in the correction",
                field="name",
                hint=f"use one of {self.names}",
            ) from None

    def region(self, name: str) -> dict[str, Any]:
        """JSON-ready record of one region: observed and corrected mean, SEs and recovery."""
        i = self.index(name)
        return {
            "n_voxels": self.n_voxels[i],
            "observed_mean": float(self.observed_mean[i]),
            "observed_se": None if self.observed_se is None else float(self.observed_se[i]),
            "corrected_mean": float(self.corrected_mean[i]),
            "corrected_se": None if self.corrected_se is None else float(self.corrected_se[i]),
            "recovery": float(self.transfer_matrix[i, i]),
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record of the whole correction (without the matrices)."""
        return {
            "method": "geometric transfer matrix (Rousset, Ma & Evans, J Nucl Med 1998;39:904)",
            "psf_fwhm_mm": list(self.psf_fwhm_mm),
            "unit": self.unit,
            "condition_number": self.condition_number,
            "regions": {name: self.region(name) for name in self.names},
            "warnings": list(self.warnings),
        }


def gtm_correct(
    image: Volume,
    regions: Mapping[str, Mask],
    psf_fwhm_mm: float | Sequence[float],
    *,
    noise: ImageNoise | None = None,
    noise_scale: float = 1.0,
    kernel: KernelName = "integrated",
) -> GtmResult:
    """Correct the regional means of ``image`` for partial volume (GTM, module text).

    Parameters
    ----------
    image : Volume
        The PET image, shape (n_slices, n_rows, n_columns), any linear quantity (Bq/mL,
        SUV ...); the corrected means are in its unit.
    regions : mapping of str to numpy.ndarray of bool
        Non-overlapping region masks on the image's grid, each of the image's shape and
        non-empty; together they should hold all the activity near the regions of interest
        (activity outside every region is taken as zero): see :func:`gtm_regions`.
    psf_fwhm_mm : float or sequence of 3 floats
        FWHM of the image's Gaussian point-spread function, mm: one value (isotropic) or one
        per array axis (slice, row, column; for an axial grid: axial, then the two
        transverse). The scanner's and reconstruction's resolution, given by the user.
    noise : ImageNoise, optional
        Count-statistics noise of the image (:func:`immunopet.quant.estimate_image_noise`),
        for the standard errors; without it they are None.
    noise_scale : float
        Image units per unit of ``noise`` (e.g. the SUV factor when ``image`` is SUV and
        ``noise`` was measured in Bq/mL); default 1.
    kernel : {"integrated", "sampled"}
        How the PSF is put on the voxel grid. ``"integrated"`` (default): a voxel's uniform
        activity blurred by the continuous Gaussian and read at the voxel centres, i.e. the
        Gaussian integrated over each voxel; right for a measured scanner resolution (NEMA
        FWHM) on any voxel size. ``"sampled"``: the Gaussian sampled at voxel centres (as
        :func:`scipy.ndimage.gaussian_filter` blurs, and so the immunopet simulator): it
        spreads less than the integrated kernel when the FWHM is not much larger than the
        voxel (at 4.3 mm FWHM on 4 mm voxels its variance is 0.15 voxel², the integrated
        kernel's 0.28), so use it only for images blurred that way.

    Returns
    -------
    GtmResult

    Raises
    ------
    InputError
        For a bad FWHM, a region of another shape, an empty or overlapping region, a
        non-finite voxel inside a region, or a singular transfer matrix.

    Examples
    --------
    Two touching cubes of 8 and 2 (SUV) in a zero background, blurred by a 6 mm Gaussian
    on 2 mm voxels, are recovered exactly when the same PSF is given:

    >>> import numpy as np
    >>> from scipy import ndimage
    >>> from immunopet.image import Quantity, Volume
    >>> from immunopet.units import FWHM_PER_SIGMA
    >>> truth = np.zeros((30, 30, 40))
    >>> hot, warm = np.zeros(truth.shape, bool), np.zeros(truth.shape, bool)
    >>> hot[10:20, 10:20, 8:18] = True
    >>> warm[10:20, 10:20, 18:30] = True
    >>> truth[hot], truth[warm] = 8.0, 2.0
    >>> sigma_voxels = 6.0 / FWHM_PER_SIGMA / 2.0
    >>> blurred = ndimage.gaussian_filter(truth, sigma_voxels, mode="constant")
    >>> image = Volume(blurred, np.diag([2.0, 2.0, 2.0, 1.0]), Quantity.SUV_BW)
    >>> result = gtm_correct(image, {"hot": hot, "warm": warm}, 6.0, kernel="sampled")
    >>> np.round(result.observed_mean, 3).tolist(), np.round(result.corrected_mean, 6).tolist()
    ([5.984, 1.765], [8.0, 2.0])

    """
    fwhm = _fwhm_per_axis(psf_fwhm_mm)
    scale = float(noise_scale)
    if not (math.isfinite(scale) and scale > 0.0):
        raise InputError(f"noise_scale must be positive, got {noise_scale!r}", field="noise_scale")
    if not regions:
        raise InputError("give at least one region", field="regions")
    shape = image.shape
    names = tuple(regions)
    labels = np.zeros(shape, dtype=np.int32)
    for k, name in enumerate(names, start=1):
        mask = np.asarray(regions[name])
        if mask.shape != shape or mask.dtype != np.bool_:
            raise InputError(
                f"region {name!r} must be a boolean array of the image's shape {shape}, got "
                f"{mask.dtype} {mask.shape}",
                field="regions",
            )
        if not mask.any():
            raise InputError(f"region {name!r} is empty", field="regions")
        taken = labels[mask]
        if taken.any():
            other = names[int(taken[taken > 0][0]) - 1]
            raise InputError(
                f"regions {other!r} and {name!r} overlap ({int(np.count_nonzero(taken))} voxels)",
                field="regions",
                hint="make them disjoint (gtm_regions does, by priority)",
            )
        labels[mask] = k
    n = len(names)
    flat = labels.ravel()
    counts = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
    values = np.asarray(image.array, dtype=np.float64).ravel()
    inside = flat > 0
    if not np.all(np.isfinite(values[inside])):
        bad = names[int(flat[inside][~np.isfinite(values[inside])][0]) - 1]
        raise InputError(
            f"region {bad!r} holds NaN or infinite voxels", path=image.source, field="image"
        )
    observed = np.bincount(flat[inside], weights=values[inside], minlength=n + 1)[1:] / counts
    if kernel not in get_args(KernelName):
        raise InputError(
            f"unknown PSF kernel {kernel!r}",
            field="kernel",
            hint=f"use one of {get_args(KernelName)}",
        )
    transfer = _transfer_matrix(labels, names, counts, image.spacing_mm, fwhm, kernel)
    condition = float(np.linalg.cond(transfer))
    if not math.isfinite(condition) or condition > 1.0 / np.finfo(np.float64).eps:
        raise InputError(
            f"the regions cannot be separated at {fwhm} mm FWHM (singular transfer matrix)",
            field="regions",
            hint="merge regions that are much smaller than the FWHM with their neighbours",
        )
    inverse = np.linalg.inv(transfer)
    corrected = inverse @ observed
    observed_se = covariance = corrected_se = None
    if noise is not None:
        # Voxels of each region per slice (the slices' counting variance differs by bed).
        slice_of = np.broadcast_to(np.arange(shape[0])[:, None, None], shape).ravel()
        per_slice = np.zeros((n + 1, shape[0]))
        np.add.at(per_slice, (flat, slice_of), 1.0)
        observed_se = np.asarray(
            [
                scale
                * noise.mean_standard_error(
                    float(mean) / scale, int(count), slice_counts=per_slice[k + 1]
                )
                for k, (mean, count) in enumerate(zip(observed, counts, strict=True))
            ],
            dtype=np.float64,
        )
        covariance = (inverse * observed_se**2) @ inverse.T
        corrected_se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    warnings: list[str] = []
    limit = _setting("gtm", "condition_number_warning")
    if condition > limit:
        weakest = names[int(np.argmin(np.diag(transfer)))]
        warnings.append(
            f"ill-conditioned transfer matrix (condition number {condition:.1f} > {limit:g}): "
            f"noise in the observed means is amplified; region {weakest!r} keeps only "
            f"{100.0 * float(np.min(np.diag(transfer))):.0f} % of its own activity"
        )
    arrays = [observed, corrected, transfer] + [
        a for a in (observed_se, covariance, corrected_se) if a is not None
    ]
    for array in arrays:
        array.setflags(write=False)
    return GtmResult(
        names=names,
        n_voxels=tuple(int(c) for c in counts),
        observed_mean=observed,
        observed_se=observed_se,
        corrected_mean=corrected,
        corrected_se=corrected_se,
        covariance=covariance,
        transfer_matrix=transfer,
        condition_number=condition,
        psf_fwhm_mm=fwhm,
        unit=image.unit,
        warnings=tuple(warnings),
    )


def _kernel_1d(sigma_voxels: float, truncate: float, kernel: KernelName) -> Floats:
    """The 1-D PSF kernel along one axis, weights summing to one (module text)."""
    from scipy.special import ndtr

    if kernel == "sampled":
        # scipy.ndimage.gaussian_filter1d's kernel: radius int(truncate * sigma + 0.5).
        radius = int(truncate * sigma_voxels + 0.5)
        offsets = np.arange(-radius, radius + 1, dtype=np.float64)
        weights = np.exp(-0.5 * (offsets / sigma_voxels) ** 2)
    else:
        # A voxel-uniform activity blurred by the continuous Gaussian, at voxel centres: the
        # Gaussian integrated over each voxel's extent (reaches half a voxel further).
        radius = int(truncate * sigma_voxels + 0.5) + 1
        offsets = np.arange(-radius, radius + 1, dtype=np.float64)
        weights = ndtr((offsets + 0.5) / sigma_voxels) - ndtr((offsets - 0.5) / sigma_voxels)
    result: Floats = weights / weights.sum()
    return result


def _transfer_matrix(
    labels: npt.NDArray[np.int32],
    names: Sequence[str],
    counts: Floats,
    spacing_mm: Floats,
    fwhm_mm: tuple[float, float, float],
    kernel: KernelName,
) -> Floats:
    """W[j, i]: mean over region j of region i's indicator blurred by the PSF."""
    from scipy import ndimage

    truncate = _setting("gtm", "truncate_sigmas")
    sigmas = [f / FWHM_PER_SIGMA / float(s) for f, s in zip(fwhm_mm, spacing_mm, strict=True)]
    kernels = [_kernel_1d(s, truncate, kernel) for s in sigmas]
    pad = [k.size // 2 for k in kernels]
    n = len(names)
    transfer = np.zeros((n, n), dtype=np.float64)
    # One pass for every region's bounding box (find_objects), each widened by the kernel.
    for i, tight in enumerate(ndimage.find_objects(labels, max_label=n)):
        assert tight is not None  # every region is non-empty (checked by the caller)
        box = _widened(tight, pad, labels.shape)
        local = labels[box]
        spread = (local == i + 1).astype(np.float64)
        for axis, weights in enumerate(kernels):
            if weights.size > 1:
                spread = ndimage.correlate1d(spread, weights, axis=axis, mode="constant", cval=0.0)
        sums = np.bincount(local.ravel(), weights=spread.ravel(), minlength=n + 1)[1:]
        transfer[:, i] = sums / counts
    return transfer


def gtm_regions(
    grid: Volume,
    masks: Mapping[str, Mask],
    body: Mask,
    psf_fwhm_mm: float | Sequence[float],
    *,
    surroundings_fwhm: float | None = None,
) -> dict[str, Mask]:
    """A set of disjoint GTM regions: the masks, a shell around each, and the rest of the body.

    The masks are made disjoint by priority (a voxel belongs to the first mask, in the
    mapping's order, that holds it: give lesions before organs). Around each mask, the body
    voxels within ``surroundings_fwhm`` × FWHM of it that belong to no mask form its
    *surroundings* (named ``"<name> surroundings"``; shells of earlier masks take
    precedence), so each region's local background is its own uniform region rather than the
    average of the whole body (a lesion in the liver is surrounded by liver, one in a node
    by fat and muscle). The remaining body voxels are the region ``"background"``. Empty
    regions are left out.

    Parameters
    ----------
    grid : Volume
        Any volume on the grid of the masks (its spacing sets the shell widths).
    masks : mapping of str to numpy.ndarray of bool
        Lesion and organ masks of the grid's shape, in order of priority. Names must not end
        with ``" surroundings"`` nor be ``"background"``.
    body : numpy.ndarray of bool
        The body (activity outside it is taken as zero).
    psf_fwhm_mm : float or sequence of 3 floats
        The PSF FWHM (as for :func:`gtm_correct`): the shell width is measured in FWHMs
        along each axis.
    surroundings_fwhm : float, optional
        Shell width in FWHMs; default ``[regions] surroundings_fwhm`` of
        ``partial_volume.toml`` (2); 0 gives no shells.

    Returns
    -------
    dict of str to numpy.ndarray of bool
        Disjoint regions, ready for :func:`gtm_correct`.

    Examples
    --------
    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> grid = Volume(np.zeros((20, 20, 20)), np.diag([2.0, 2.0, 2.0, 1.0]), Quantity.SUV_BW)
    >>> body = np.ones(grid.shape, bool)
    >>> lesion = np.zeros(grid.shape, bool)
    >>> lesion[8:12, 8:12, 8:12] = True
    >>> regions = gtm_regions(grid, {"L001": lesion}, body, 4.0, surroundings_fwhm=1.0)
    >>> {name: int(mask.sum()) for name, mask in regions.items()}
    {'L001': 64, 'L001 surroundings': 248, 'background': 7688}

    """
    from scipy import ndimage

    fwhm = _fwhm_per_axis(psf_fwhm_mm)
    width = (
        _setting("regions", "surroundings_fwhm")
        if surroundings_fwhm is None
        else float(surroundings_fwhm)
    )
    if not (math.isfinite(width) and width >= 0.0):
        raise InputError(
            f"surroundings_fwhm must be a non-negative number, got {surroundings_fwhm!r}",
            field="surroundings_fwhm",
        )
    shape = grid.shape
    inside_body = np.asarray(body, dtype=bool)
    if inside_body.shape != shape:
        raise InputError(f"body must have the grid's shape {shape}, got {inside_body.shape}")
    labels = np.zeros(shape, dtype=np.int32)
    regions: dict[str, Mask] = {}
    for name, mask in masks.items():
        if name == BACKGROUND or name.endswith(SURROUNDINGS):
            raise InputError(
                f"region name {name!r} is reserved", field="masks", hint="rename the mask"
            )
        region = np.asarray(mask, dtype=bool)
        if region.shape != shape:
            raise InputError(
                f"mask {name!r} must have the grid's shape {shape}, got {region.shape}",
                field="masks",
            )
        region = region & (labels == 0)
        if region.any():
            regions[name] = region
            labels[region] = len(regions)
    shells: dict[str, Mask] = {}
    if width > 0.0:
        # Distances in FWHMs along each axis: spacing / FWHM per axis.
        sampling = [float(s) / f for s, f in zip(grid.spacing_mm, fwhm, strict=True)]
        pad = [math.ceil(width / step) + 1 for step in sampling]
        boxes = ndimage.find_objects(labels, max_label=len(regions))
        for k, (name, tight) in enumerate(zip(list(regions), boxes, strict=True), start=1):
            assert tight is not None
            box = _widened(tight, pad, shape)
            distance = ndimage.distance_transform_edt(labels[box] != k, sampling=sampling)
            local = (np.asarray(distance) <= width) & inside_body[box] & (labels[box] == 0)
            if local.any():
                shell = np.zeros(shape, dtype=bool)
                shell[box] = local
                shells[name + SURROUNDINGS] = shell
                labels[box][local] = -1  # taken
    regions.update(shells)
    rest = inside_body & (labels == 0)
    if rest.any():
        regions[BACKGROUND] = rest
    return regions
