"""Lesion detection and delineation on PET SUV images.

Every method runs the same two steps; only the delineation threshold differs.

1. **Candidates.** The SUVpeak map (mean inside the PERCIST 1 mL sphere, weighted by partial
   voxels; Wahl et al., J Nucl Med 2009;50 Suppl 1:122S) is computed over the voxels that are
   not excluded. Each of its local maxima at or above the *detection floor* is a candidate,
   taken in order of decreasing peak. Its *core* is the region of the SUVpeak map connected to
   it at or above a fraction of its peak, the lowest of 0.5, 0.6 … 0.9 whose voxels all lie
   within 50 mm of the core's centroid (masses up to 10 cm; a core that spreads through a whole
   organ at every level is organ or diffuse uptake and the candidate is dropped). Its local
   background is the median SUV in a shell 10–20 mm outside the core; inside an organ listed
   as able to take up diffusely (spleen, red marrow, when ``organs`` are given) it is at least
   that organ's median SUV. A candidate is a lesion when its peak is at least 1.5 × its
   background and its delineated region holds at least ``min_volume_ml``. Later candidates
   inside an accepted lesion or a dropped core are skipped.
2. **Delineation.** The region connected to the candidate's SUVmax voxel, within 100 mm of it,
   at or above the method's threshold:

   ``fixed_suv``
       a fixed SUV (2.5 by default; 4.0 is the other usual choice). Floor: the threshold.
   ``percent_max``
       a fraction of the lesion's own SUVmax (41 %, the EANM 2015 isocontour). Region growing
       from each maximum.
   ``percist``
       1.5 × liver mean + 2 × liver SD of the reference sphere (PERCIST; with only a blood-pool
       reference, 2 × mean + 2 × SD). Floor: the threshold. PERCIST states it in SUL: pass an
       SUV-LBM image for PERCIST proper; the formula is applied to the SUV given.
   ``background_corrected``
       background + 0.5 × (SUVmax − background), the background of step 1 (adaptive,
       signal-to-background threshold).

The detection floor of ``percent_max`` and ``background_corrected`` is the liver reference
mean when reference levels are given (Deauville: positive is above liver), else SUV 2.5.

Physiological uptake: the caller's ``exclude`` mask, or, without one, the tracer's
physiological organs (FDG: brain, urinary bladder, kidneys, heart; other tracers by their target,
:func:`physiological_uptake`: e.g. heart and liver for hNET reporter probes) taken from
``organs`` and, for FDG's brain and bladder, found from the PET alone when ``organs`` lack them
(:mod:`immunopet.lesions._organs`). Excluded regions are widened by 10 mm so their blurred rim
is not found.

Species: the lengths and volumes of the rules were set for clinical PET; ``length_scale``
(:func:`species_length_scale`, 0.38 for mice on a preclinical scanner) scales them. Every
number is in ``data/lesion_detection.toml`` with its source, and each lesion records its
method, parameters, threshold, background and exclusions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, cast, get_args

import numpy as np
import numpy.typing as npt

from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.lesions._organs import (
    BLOOD_POOL_REFERENCE,
    LIVER_REFERENCE,
    OrganMasks,
    _bounding_box,
    _distance_outside_mm,
    _Frame,
    _label,
    _pad_voxels,
    _setting,
    bladder_from_pet,
    body_from_pet,
    brain_from_pet,
)
from immunopet.quant import VoiStatistics, sphere_kernel, voi_statistics
from immunopet.units import ML_PER_MM3

__all__ = [
    "DetectedLesion",
    "DetectionMethod",
    "DetectionRecord",
    "DetectionScore",
    "MethodName",
    "ReferenceLevels",
    "detect_lesions",
    "evaluate_detection",
    "physiological_uptake",
    "reference_levels",
    "species_length_scale",
]

MethodName = Literal["fixed_suv", "percent_max", "percist", "background_corrected"]
_METHODS: Final = frozenset(get_args(MethodName))
_SUV_QUANTITIES: Final = frozenset({Quantity.SUV_BW, Quantity.SUV_LBM, Quantity.SUV_BSA})
#: Parameters of each method (fields of DetectionMethod).
_PARAMETERS: Final[Mapping[str, tuple[str, ...]]] = {
    "fixed_suv": ("threshold_suv",),
    "percent_max": ("fraction",),
    "percist": (
        "liver_mean_factor",
        "liver_sd_factor",
        "blood_pool_mean_factor",
        "blood_pool_sd_factor",
    ),
    "background_corrected": ("fraction",),
}
#: A shell with fewer voxels than this gives no background.
_MIN_SHELL_VOXELS: Final = 8

Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
Point = tuple[float, float, float]


def _candidate(key: str) -> Any:
    return _setting("candidates", key)


def species_length_scale(species: str | None) -> float:
    """Scale of the detection's lengths for a species (``[species]`` of lesion_detection.toml).

    Parameters
    ----------
    species : str or None
        ``"adult"``, ``"mouse"`` (the manifest's ``subject.species``); None: the rules as set
        for patients.

    Returns
    -------
    float
        1.0 for patients; for mice the ratio of preclinical to clinical PET resolution.

    Raises
    ------
    InputError
        For a species the table does not have.

    Examples
    --------
    >>> species_length_scale("adult"), round(species_length_scale("mouse"), 2)
    (1.0, 0.38)

    """
    if species is None:
        return 1.0
    table = _setting_table("species")
    if species not in table:
        raise InputError(
            f"no lesion-detection scale for species {species!r}",
            field="species",
            hint=f"use one of {', '.join(sorted(table))}",
        )
    return float(table[species]["length_scale"])


def _method_table(name: str) -> Mapping[str, Any]:
    table: Mapping[str, Any] = _setting_table("methods")[name]
    return table


def _setting_table(section: str) -> Mapping[str, Any]:
    from immunopet.data import read_toml

    table: Mapping[str, Any] = read_toml("lesion_detection.toml")[section]
    return table


def _check_suv(suv: Volume, argument: str) -> None:
    if suv.quantity not in _SUV_QUANTITIES:
        raise InputError(
            f"{argument} must be an SUV image, got quantity {suv.quantity.value!r}",
            path=suv.source,
            field=argument,
            hint="standardise the scan (immunopet.quant.standardize_scan) and multiply the "
            "activity by its SUV factor",
        )


# -- reference levels --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceLevels:
    """Normal-tissue reference levels of one scan (PERCIST liver and blood pool).

    Attributes
    ----------
    liver_mean, liver_sd : float or None
        Mean and sample SD of the SUV inside the liver reference sphere.
    blood_pool_mean, blood_pool_sd : float or None
        The same inside the blood-pool reference.
    quantity : str
        The SUV the levels are in (:class:`~immunopet.image.Quantity` value).

    """

    liver_mean: float | None = None
    liver_sd: float | None = None
    blood_pool_mean: float | None = None
    blood_pool_sd: float | None = None
    quantity: str = Quantity.SUV_BW.value

    def __post_init__(self) -> None:
        for name in ("liver", "blood_pool"):
            mean, sd = getattr(self, f"{name}_mean"), getattr(self, f"{name}_sd")
            if (mean is None) != (sd is None):
                raise InputError(f"give both {name}_mean and {name}_sd, or neither", field=name)
            if mean is not None and not (
                math.isfinite(mean) and mean > 0.0 and math.isfinite(sd) and sd >= 0.0
            ):
                raise InputError(
                    f"{name} reference must have a positive mean and a non-negative SD, got "
                    f"mean {mean!r}, SD {sd!r}",
                    field=name,
                )


def reference_levels(suv: Volume, organs: OrganMasks) -> ReferenceLevels:
    """Liver and blood-pool reference levels from the reference spheres of ``organs``.

    Parameters
    ----------
    suv : Volume
        SUV image; the masks are resampled onto its grid when needed.
    organs : OrganMasks
        From :func:`~immunopet.lesions.segment_organs` (or masks named
        :data:`LIVER_REFERENCE` / :data:`BLOOD_POOL_REFERENCE`).

    Returns
    -------
    ReferenceLevels
        Mean and sample SD inside each sphere found (:func:`immunopet.quant.voi_statistics`).

    Raises
    ------
    InputError
        If neither reference sphere is present.

    """
    _check_suv(suv, "suv")
    on_grid = organs.on_grid(suv)
    levels: dict[str, float] = {}
    for name, key in ((LIVER_REFERENCE, "liver"), (BLOOD_POOL_REFERENCE, "blood_pool")):
        if name in on_grid.masks and on_grid.masks[name].any():
            stats = voi_statistics(suv, on_grid.volume(name))
            levels[f"{key}_mean"] = stats.mean
            levels[f"{key}_sd"] = 0.0 if math.isnan(stats.sd) else stats.sd
    if not levels:
        reasons = "; ".join(f"{k}: {v}" for k, v in organs.not_found.items() if "reference" in k)
        raise InputError(
            f"no liver or blood-pool reference region ({reasons or 'none given'})",
            field="organs",
            hint="supply a liver or blood-pool mask",
        )
    return ReferenceLevels(quantity=suv.quantity.value, **levels)


# -- methods -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectionMethod:
    """A delineation method and its parameters (missing ones from ``lesion_detection.toml``).

    Parameters
    ----------
    name : {"fixed_suv", "percent_max", "percist", "background_corrected"}
        The method (module text).
    threshold_suv : float, optional
        ``fixed_suv``: the SUV threshold (default 2.5).
    fraction : float, optional
        ``percent_max``: fraction of SUVmax (default 0.41); ``background_corrected``:
        fraction of SUVmax − background above the background (default 0.5).
    liver_mean_factor, liver_sd_factor : float, optional
        ``percist``: threshold = a × liver mean + b × liver SD (default 1.5, 2.0).
    blood_pool_mean_factor, blood_pool_sd_factor : float, optional
        ``percist`` without a liver reference: a × blood mean + b × blood SD (2.0, 2.0).

    Examples
    --------
    >>> DetectionMethod.percent_max().parameters()
    {'fraction': 0.41}
    >>> DetectionMethod.fixed_suv(4.0).parameters()
    {'threshold_suv': 4.0}

    """

    name: MethodName
    threshold_suv: float | None = None
    fraction: float | None = None
    liver_mean_factor: float | None = None
    liver_sd_factor: float | None = None
    blood_pool_mean_factor: float | None = None
    blood_pool_sd_factor: float | None = None

    def __post_init__(self) -> None:
        if self.name not in _METHODS:
            raise InputError(
                f"unknown detection method {self.name!r}",
                field="method",
                hint=f"use one of {sorted(_METHODS)}",
            )
        own = _PARAMETERS[self.name]
        table = _method_table(self.name)
        for parameter in {p for names in _PARAMETERS.values() for p in names}:
            value = getattr(self, parameter)
            if parameter not in own:
                if value is not None:
                    raise InputError(
                        f"{parameter} is not a parameter of method {self.name!r}",
                        field=parameter,
                        hint=f"{self.name} takes {', '.join(own)}",
                    )
                continue
            if value is None:
                value = float(table[parameter]["value"])
                object.__setattr__(self, parameter, value)
            number = float(value)
            upper = 1.0 if parameter == "fraction" else math.inf
            if not (math.isfinite(number) and number > 0.0 and number <= upper):
                limit = "in (0, 1]" if parameter == "fraction" else "positive"
                raise InputError(f"{parameter} must be {limit}, got {value!r}", field=parameter)

    @classmethod
    def fixed_suv(cls, threshold_suv: float | None = None) -> DetectionMethod:
        """Fixed SUV threshold (default 2.5)."""
        return cls("fixed_suv", threshold_suv=threshold_suv)

    @classmethod
    def percent_max(cls, fraction: float | None = None) -> DetectionMethod:
        """Fraction of each lesion's SUVmax (default 0.41, EANM 2015)."""
        return cls("percent_max", fraction=fraction)

    @classmethod
    def percist(cls) -> DetectionMethod:
        """PERCIST: 1.5 × liver mean + 2 × liver SD (needs reference levels)."""
        return cls("percist")

    @classmethod
    def background_corrected(cls, fraction: float | None = None) -> DetectionMethod:
        """Background + fraction × (SUVmax − background) (default 0.5)."""
        return cls("background_corrected", fraction=fraction)

    @classmethod
    def default(cls) -> DetectionMethod:
        """The default method of ``lesion_detection.toml`` (``background_corrected``)."""
        name = str(_setting("default", "method"))
        if name not in _METHODS:
            raise InputError(f"lesion_detection.toml names unknown default method {name!r}")
        return cls(cast(MethodName, name))

    def parameters(self) -> dict[str, float]:
        """The method's own parameters, by name."""
        return {name: float(getattr(self, name)) for name in _PARAMETERS[self.name]}

    def source(self) -> str:
        """Where the parameters come from (``lesion_detection.toml``)."""
        table = _method_table(self.name)
        return "; ".join(str(table[name]["source"]) for name in _PARAMETERS[self.name])


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectionRecord:
    """How one lesion was found: the method record written into outputs.

    Attributes
    ----------
    method : str
        Method name.
    parameters : dict of str to float
        The method's parameters.
    threshold_suv : float or None
        The SUV threshold that delineated this lesion (None: a reader's VOI).
    floor_suv : float or None
        The detection floor its SUVpeak had to reach (None: a reader's VOI).
    background_suv : float or None
        Its local background (median SUV around it; module text; None: a reader's VOI).
    peak_to_background : float or None
        Its SUVpeak over its background (at least ``min_peak_to_background``; None: a
        reader's VOI).
    excluded : tuple of str
        The regions excluded from the search (``"caller"`` for a caller's mask).
    source : str
        References of the method's parameters.

    """

    method: str
    parameters: dict[str, float]
    threshold_suv: float | None
    floor_suv: float | None
    background_suv: float | None
    peak_to_background: float | None
    excluded: tuple[str, ...]
    source: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        record = asdict(self)
        record["excluded"] = list(self.excluded)
        return record


@dataclass(frozen=True)
class DetectedLesion:
    """A lesion found on a PET SUV image.

    Attributes
    ----------
    mask : numpy.ndarray of bool, shape (n_slices, n_rows, n_columns)
        The lesion's voxels on the SUV image's grid.
    centroid_lps_mm : tuple of float
        Geometric centroid of the mask, LPS mm.
    statistics : VoiStatistics
        :func:`immunopet.quant.voi_statistics` of the SUV inside the mask.
    method : DetectionRecord
        How it was found.

    """

    mask: Mask = field(repr=False)
    centroid_lps_mm: Point
    statistics: VoiStatistics
    method: DetectionRecord

    @property
    def volume_ml(self) -> float:
        """Volume of the mask, mL."""
        return self.statistics.volume_ml

    @property
    def suv_max(self) -> float:
        """Largest voxel SUV in the mask."""
        return self.statistics.max

    @property
    def suv_mean(self) -> float:
        """Mean SUV in the mask."""
        return self.statistics.mean

    @property
    def suv_peak(self) -> float:
        """SUVpeak (PERCIST 1 mL sphere centred in the mask)."""
        return self.statistics.peak

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the mask)."""
        return {
            "centroid_lps_mm": list(self.centroid_lps_mm),
            "statistics": self.statistics.as_dict(),
            "method": self.method.as_dict(),
        }


# -- physiological exclusion -----------------------------------------------------------------


def physiological_uptake(agent: str, target: str | None) -> tuple[str, tuple[str, ...]]:
    """The physiological-uptake entry of a tracer: (table key, organ names).

    ``[physiological.fdg]`` for FDG (by agent name), else the first entry whose ``targets``
    hold the tracer's target (casefolded), else ``[physiological.default]``.

    Examples
    --------
    >>> physiological_uptake("[18F]MFBG", "hNET")
    ('hnet_probe', ('heart', 'liver', 'kidneys', 'urinary_bladder'))
    >>> physiological_uptake("[89Zr]Zr-DFO-obinutuzumab", "CD20")[0]
    'default'

    """
    from immunopet.io.discovery import is_fdg

    table = _setting_table("physiological")
    if is_fdg(agent):
        return "fdg", tuple(str(n) for n in table["fdg"]["organs"]["value"])
    wanted = (target or "").casefold()
    for key, block in table.items():
        targets = {str(t).casefold() for t in block.get("targets", {}).get("value", [])}
        if wanted and wanted in targets:
            return str(key), tuple(str(n) for n in block["organs"]["value"])
    return "default", tuple(str(n) for n in table["default"]["organs"]["value"])


def _physiological(
    suv: Volume, values: Floats, organs: OrganMasks | None, tracer: str
) -> tuple[Mask, tuple[str, ...]]:
    """Union of the tracer's physiological-uptake regions and the names found."""
    block: Mapping[str, Any] = _setting_table("physiological").get(tracer.lower(), {})
    names = [str(n) for n in block.get("organs", {}).get("value", [])]
    automatic = {str(n) for n in block.get("automatic", {}).get("value", [])}
    excluded = np.zeros(values.shape, dtype=bool)
    found: list[str] = []
    frame: _Frame | None = None
    canonical: Floats | None = None
    body: Mask | None = None
    for name in names:
        if organs is not None and name in organs.masks and organs.masks[name].any():
            excluded |= organs.masks[name]
            found.append(name)
            continue
        if name not in automatic:
            continue
        if frame is None:
            frame = _Frame.of(suv)
            canonical = np.ascontiguousarray(frame.to_canonical(values))
            body = body_from_pet(canonical)
        assert canonical is not None
        assert body is not None
        rule = brain_from_pet if name == "brain" else bladder_from_pet
        mask = rule(canonical, body, frame)
        if mask is not None:
            excluded |= frame.from_canonical(mask)
            found.append(f"{name} (PET rule)")
    return excluded, tuple(found)


def _widen(mask: Mask, margin_mm: float, spacing_mm: tuple[float, float, float]) -> Mask:
    if not mask.any() or margin_mm <= 0.0:
        return mask
    box = _bounding_box(mask, _pad_voxels(margin_mm, spacing_mm))
    widened = mask.copy()
    widened[box] = _distance_outside_mm(mask[box], spacing_mm) <= margin_mm
    return widened


# -- candidates --------------------------------------------------------------------------------


def _peak_map(values: Floats, allowed: Mask, spacing_mm: Floats) -> Floats:
    """Mean SUV in the 1 mL sphere around each voxel, over allowed voxels (0 where none).

    Computed only in the box around the allowed body voxels.
    """
    from scipy import ndimage

    peak = np.zeros(values.shape, dtype=np.float64)
    hot = allowed & (values > float(_candidate("body_min_suv")))
    if not hot.any():
        return peak
    kernel = sphere_kernel(spacing_mm, 1.0)
    half = tuple(n // 2 + 1 for n in kernel.shape)
    box = _bounding_box(hot, (half[0], half[1], half[2]))
    weight = allowed[box].astype(np.float64)
    total = ndimage.correlate(values[box] * weight, kernel, mode="constant", cval=0.0)
    norm = ndimage.correlate(weight, kernel, mode="constant", cval=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        peak[box] = np.where(norm > 0.0, total / np.where(norm > 0.0, norm, 1.0), 0.0)
    return peak


def _local_maxima(peak: Floats, allowed: Mask, floor: float, spacing_mm: Floats) -> list[Any]:
    """Indices of local maxima of ``peak`` at or above ``floor``, highest first."""
    from scipy import ndimage

    radius_mm = float(_candidate("local_max_radius_mm"))
    size = [2 * max(1, round(radius_mm / float(s))) + 1 for s in spacing_mm]
    masked = np.where(allowed, peak, -np.inf)
    is_max = (
        masked == ndimage.maximum_filter(masked, size=size, mode="constant", cval=-np.inf)
    ) & (masked >= floor)
    seeds = np.argwhere(is_max)
    order = np.argsort(-peak[tuple(seeds.T)], kind="stable")
    return [tuple(int(i) for i in seeds[k]) for k in order]


@dataclass
class _Scene:
    """The image and search state shared by the candidates of one call."""

    values: Floats
    peak: Floats
    allowed: Mask
    body: Mask
    taken: Mask  # voxels of accepted lesions
    visited: Mask  # cores of rejected candidates: later (lower) peaks there are skipped
    spacing: tuple[float, float, float]
    diffuse: list[Mask]

    def ball_box(self, centre: tuple[int, ...], radius_mm: float) -> tuple[slice, ...]:
        pads = _pad_voxels(radius_mm, self.spacing)
        return tuple(
            slice(max(c - p, 0), min(c + p + 1, n))
            for c, p, n in zip(centre, pads, self.values.shape, strict=True)
        )

    def distance_from(self, box: tuple[slice, ...], centre: tuple[int, ...]) -> Floats:
        """Distance (mm) of each voxel of ``box`` to ``centre`` (an index inside the box)."""
        shape = [int(b.stop) - int(b.start) for b in box]
        grids = np.ogrid[: shape[0], : shape[1], : shape[2]]
        squared = sum(
            ((g - c) * s) ** 2 for g, c, s in zip(grids, centre, self.spacing, strict=True)
        )
        return np.sqrt(np.asarray(squared, dtype=np.float64))


def _connected(mask: Mask, seed: tuple[int, ...]) -> Mask:
    """The 26-connected component of ``mask`` holding ``seed`` (empty if seed is outside)."""
    if not mask[seed]:
        return np.zeros(mask.shape, dtype=bool)
    labels, _ = _label(mask, full=True)
    result: Mask = labels == labels[seed]
    return result


def _extent_mm(region: Mask, spacing_mm: tuple[float, float, float]) -> float:
    """Largest distance (mm) of a voxel of ``region`` from the region's centroid."""
    where = np.argwhere(region).astype(np.float64) * np.asarray(spacing_mm)
    return float(np.sqrt(((where - where.mean(axis=0)) ** 2).sum(axis=1)).max())


def _background(
    scene: _Scene, box: tuple[slice, ...], seed: tuple[int, ...], ball: Mask, edge: Mask
) -> tuple[float | None, Mask]:
    """Median SUV in a shell outside the first bounded core (module text), and that core.

    ``seed`` is the local maximum of the SUVpeak map (an index inside ``box``); cores are
    regions of the SUVpeak map, which averages out voxel noise, so a noise peak inside a
    uniform organ wider than the search ball has no bounded core. ``ball`` is the search ball
    and ``edge`` its outer voxel layer. Without a bounded core the background is None and the
    core returned is the last one tried.
    """
    inner_mm, outer_mm = (float(v) for v in _candidate("background_shell_mm"))
    values, peak = scene.values[box], scene.peak[box]
    room = scene.allowed[box] & ~scene.taken[box] & ball
    shell_room = scene.allowed[box] & scene.body[box] & ~scene.taken[box]
    core = np.zeros(room.shape, dtype=bool)
    radius_mm = float(_candidate("max_lesion_radius_mm"))
    for fraction in _candidate("core_fractions"):
        core = _connected((peak >= float(fraction) * peak[seed]) & room, seed)
        if not core.any() or (core & edge).any() or _extent_mm(core, scene.spacing) > radius_mm:
            continue
        distance = _distance_outside_mm(core, scene.spacing)
        shell = (distance > inner_mm) & (distance <= outer_mm) & shell_room
        if np.count_nonzero(shell) >= _MIN_SHELL_VOXELS:
            return float(np.median(values[shell])), core
    return None, core


def _threshold(
    method: DetectionMethod,
    suv_max: float,
    background: float,
    reference: ReferenceLevels | None,
) -> float:
    if method.name == "fixed_suv":
        return float(method.threshold_suv or 0.0)
    if method.name == "percent_max":
        return float(method.fraction or 0.0) * suv_max
    if method.name == "background_corrected":
        return background + float(method.fraction or 0.0) * (suv_max - background)
    return _percist_threshold(method, reference)


def _percist_threshold(method: DetectionMethod, reference: ReferenceLevels | None) -> float:
    if reference is not None and reference.liver_mean is not None:
        assert reference.liver_sd is not None
        return (
            float(method.liver_mean_factor or 0.0) * reference.liver_mean
            + float(method.liver_sd_factor or 0.0) * reference.liver_sd
        )
    if reference is not None and reference.blood_pool_mean is not None:
        assert reference.blood_pool_sd is not None
        return (
            float(method.blood_pool_mean_factor or 0.0) * reference.blood_pool_mean
            + float(method.blood_pool_sd_factor or 0.0) * reference.blood_pool_sd
        )
    raise InputError(
        "the percist method needs reference levels (liver or blood pool)",
        field="reference",
        hint="pass reference=reference_levels(suv, segment_organs(ct, suv))",
    )


def _floor(method: DetectionMethod, reference: ReferenceLevels | None) -> float:
    if method.name in ("fixed_suv", "percist"):
        return _threshold(method, 0.0, 0.0, reference)
    if reference is not None and reference.liver_mean is not None:
        return float(_candidate("floor_liver_factor")) * reference.liver_mean
    return float(_candidate("floor_suv"))


@dataclass(frozen=True)
class _Accepted:
    region: Mask
    threshold_suv: float
    background_suv: float
    peak_to_background: float


def _candidate_lesion(
    scene: _Scene,
    seed_peak: tuple[int, ...],
    method: DetectionMethod,
    reference: ReferenceLevels | None,
    minimum_ml: float,
) -> _Accepted | tuple[tuple[slice, ...], Mask]:
    """The lesion grown from one local maximum of the SUVpeak map, or (box, voxels) to skip."""
    values, allowed = scene.values, scene.allowed
    # Cores and regions grow within a ball of twice the largest lesion radius around the
    # SUVmax voxel: a lesion of that radius fits whatever voxel of it holds the maximum.
    radius_mm = 2.0 * float(_candidate("max_lesion_radius_mm"))
    # The SUVmax voxel near the peak sphere's centre seeds the lesion.
    half = _pad_voxels(float(_candidate("local_max_radius_mm")) / 2.0, scene.spacing)
    near = tuple(slice(max(c - h, 0), c + h + 1) for c, h in zip(seed_peak, half, strict=True))
    local = np.where(allowed[near] & ~scene.taken[near], values[near], -np.inf)
    offset = np.unravel_index(int(np.argmax(local)), local.shape)
    seed = tuple(int(s.start) + int(o) for s, o in zip(near, offset, strict=True))
    suv_max = float(values[seed])
    box = scene.ball_box(seed, radius_mm + float(_candidate("background_shell_mm")[1]))
    local_seed = tuple(s - int(b.start) for s, b in zip(seed, box, strict=True))
    local_peak = tuple(s - int(b.start) for s, b in zip(seed_peak, box, strict=True))
    distance = scene.distance_from(box, local_seed)
    ball = distance <= radius_mm
    edge = ball & (distance > radius_mm - max(scene.spacing))

    def whole(local_mask: Mask) -> Mask:
        result = np.zeros(values.shape, dtype=bool)
        result[box] = local_mask
        return result

    def skip(local_mask: Mask) -> tuple[tuple[slice, ...], Mask]:
        local_mask = local_mask.copy()
        local_mask[local_peak] = True
        return box, local_mask

    background, core = _background(scene, box, local_peak, ball, edge)
    if background is None:
        return skip(core)
    for organ in scene.diffuse:
        if organ[seed]:
            background = max(background, float(np.median(values[organ & allowed])))
    ratio = float(scene.peak[seed_peak]) / background if background > 0.0 else math.inf
    if ratio < float(_candidate("min_peak_to_background")):
        return skip(core)
    threshold = _threshold(method, suv_max, background, reference)
    room = (values[box] >= threshold) & allowed[box] & ~scene.taken[box] & ball
    region = _connected(room, local_seed)
    if float(np.count_nonzero(region)) * _voxel_ml(scene.spacing) < minimum_ml or not region.any():
        return skip(core)
    return _Accepted(whole(region), threshold, background, ratio)


def _voxel_ml(spacing_mm: tuple[float, float, float]) -> float:
    return math.prod(spacing_mm) * ML_PER_MM3


def detect_lesions(
    suv: Volume,
    *,
    method: DetectionMethod | None = None,
    exclude: Mask | None = None,
    min_volume_ml: float | None = None,
    reference: ReferenceLevels | None = None,
    organs: OrganMasks | None = None,
    tracer: str | None = None,
    length_scale: float = 1.0,
) -> tuple[DetectedLesion, ...]:
    """Find and delineate lesions on an SUV image (module text).

    Parameters
    ----------
    suv : Volume
        SUV image (body weight, lean body mass or surface area), shape (n_slices, n_rows,
        n_columns). Non-finite voxels are never part of a lesion.
    method : DetectionMethod, optional
        Delineation method; default :meth:`DetectionMethod.default` (background-corrected 50 %).
    exclude : numpy.ndarray of bool, optional
        Voxels where no lesion is sought (physiological uptake: brain, bladder, kidneys,
        heart ...), shape of ``suv``. Widened by ``exclude_margin_mm`` (10 mm). Without it,
        the tracer's physiological organs are excluded (from ``organs``; brain and bladder
        from the PET when ``organs`` lack them).
    min_volume_ml : float, optional
        Smallest lesion, mL (default 0.5).
    reference : ReferenceLevels, optional
        Liver / blood-pool levels (:func:`reference_levels`): needed by ``percist``; sets the
        detection floor of ``percent_max`` and ``background_corrected`` to the liver mean.
    organs : OrganMasks, optional
        Organ masks (any grid in the same space): physiological exclusion when ``exclude`` is
        not given, and the diffuse-uptake rule for spleen and red marrow.
    tracer : str, optional
        Key of the physiological-uptake table (default ``"fdg"``); a tracer without an entry
        has no automatic exclusion.
    length_scale : float, optional
        The subject's scale against the clinical PET the candidate rules were set for
        (:func:`species_length_scale`: 1 for patients, about 0.38 for mice imaged on a
        preclinical scanner): every length of the rules (background shell, local-maximum
        radius, exclusion margin, largest lesion radius) is multiplied by it, every volume
        (smallest lesion, the SUVpeak sphere of the search) by its cube. An explicit
        ``min_volume_ml`` is taken as given.

    Returns
    -------
    tuple of DetectedLesion
        In order of decreasing SUVpeak of their candidate.

    Raises
    ------
    InputError
        For a non-SUV image, an ``exclude`` of another shape, a bad ``min_volume_ml``, or
        ``percist`` without reference levels.

    Examples
    --------
    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> values = np.full((40, 40, 40), 1.0)
    >>> values[15:22, 15:22, 15:22] = 8.0  # a 28 mm cube of SUV 8 in SUV 1
    >>> image = Volume(values, np.diag([4.0, 4.0, 4.0, 1.0]), Quantity.SUV_BW)
    >>> (lesion,) = detect_lesions(image, exclude=np.zeros(image.shape, dtype=bool))
    >>> round(lesion.volume_ml, 3), lesion.suv_mean, lesion.method.threshold_suv
    (21.952, 8.0, 4.5)

    """
    _check_suv(suv, "suv")
    chosen = DetectionMethod.default() if method is None else method
    if not (math.isfinite(length_scale) and length_scale > 0.0):
        raise InputError(
            f"length_scale must be a positive number, got {length_scale!r}", field="length_scale"
        )
    # The rules run on the grid seen at adult scale: spacing / length_scale (module text).
    minimum_ml = float(
        _candidate("min_volume_ml") if min_volume_ml is None else min_volume_ml / length_scale**3
    )
    if not (math.isfinite(minimum_ml) and minimum_ml >= 0.0):
        raise InputError(
            f"min_volume_ml must be a non-negative number, got {min_volume_ml!r}",
            field="min_volume_ml",
        )
    values = np.asarray(suv.array, dtype=np.float64)
    finite = np.isfinite(values)
    values = np.where(finite, values, 0.0)
    on_grid = None if organs is None else organs.on_grid(suv)
    if exclude is not None:
        excluded = np.asarray(exclude)
        if excluded.shape != values.shape or excluded.dtype != np.bool_:
            raise InputError(
                f"exclude must be a boolean array of the SUV image's shape {values.shape}, got "
                f"{excluded.dtype} {excluded.shape}",
                field="exclude",
            )
        names: tuple[str, ...] = ("caller",)
    else:
        key = str(_setting("default", "tracer")) if tracer is None else tracer
        excluded, names = _physiological(suv, values, on_grid, key)
    spacing_array = np.asarray(suv.spacing_mm, dtype=np.float64) / length_scale
    spacing = (float(spacing_array[0]), float(spacing_array[1]), float(spacing_array[2]))
    excluded = _widen(excluded, float(_candidate("exclude_margin_mm")), spacing)
    allowed = finite & ~excluded
    floor = _floor(chosen, reference)
    diffuse = (
        []
        if on_grid is None
        else [on_grid.masks[name] for name in _candidate("diffuse_organs") if name in on_grid.masks]
    )
    peak = _peak_map(values, allowed, spacing_array)
    scene = _Scene(
        values=values,
        peak=peak,
        allowed=allowed,
        body=values > float(_candidate("body_min_suv")),
        taken=np.zeros(values.shape, dtype=bool),
        visited=np.zeros(values.shape, dtype=bool),
        spacing=spacing,
        diffuse=[mask for mask in diffuse if mask.any()],
    )
    found: list[_Accepted] = []
    for seed in _local_maxima(peak, allowed, floor, spacing_array):
        if scene.taken[seed] or scene.visited[seed]:
            continue
        outcome = _candidate_lesion(scene, seed, chosen, reference, minimum_ml)
        if isinstance(outcome, _Accepted):
            scene.taken |= outcome.region
            found.append(outcome)
        else:
            box, skipped = outcome
            scene.visited[box] |= skipped
    parameters, source = chosen.parameters(), chosen.source()
    lesions: list[DetectedLesion] = []
    for item in found:
        region = item.region
        centre = suv.index_to_lps(np.argwhere(region).mean(axis=0))
        lesions.append(
            DetectedLesion(
                mask=region,
                centroid_lps_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
                statistics=voi_statistics(suv, suv.mask(region)),
                method=DetectionRecord(
                    method=chosen.name,
                    parameters=dict(parameters),
                    threshold_suv=item.threshold_suv,
                    floor_suv=floor,
                    background_suv=item.background_suv,
                    peak_to_background=item.peak_to_background,
                    excluded=names,
                    source=source,
                ),
            )
        )
    return tuple(lesions)


# -- evaluation against ground truth -------------------------------------------------------


@dataclass(frozen=True)
class DetectionScore:
    """Detections matched to true lesions by centroid distance.

    A detection matches a true lesion when their centroids are at most
    ``max(true radius, min_match_distance_mm)`` apart; matching is one to one and
    maximises the number of matches, then minimises the summed distance.

    Attributes
    ----------
    true_positives : int
        True lesions of at least ``min_diameter_mm`` that were matched.
    false_negatives : int
        True lesions of at least ``min_diameter_mm`` left unmatched.
    false_positives : int
        Detections matched to no true lesion.
    matches : tuple of (int, str, float)
        (detection index, true lesion name, centroid distance in mm), every match, including
        those of lesions smaller than ``min_diameter_mm``.
    missed : tuple of str
        Names of the false negatives.
    false_detections : tuple of int
        Indices of the false positives.
    small_detected : tuple of str
        True lesions below ``min_diameter_mm`` that were matched (neither counted as true
        positives nor, their detections, as false positives).

    """

    true_positives: int
    false_negatives: int
    false_positives: int
    matches: tuple[tuple[int, str, float], ...]
    missed: tuple[str, ...]
    false_detections: tuple[int, ...]
    small_detected: tuple[str, ...]

    @property
    def sensitivity(self) -> float:
        """TP / (TP + FN); NaN when there is no true lesion to find."""
        total = self.true_positives + self.false_negatives
        return self.true_positives / total if total else math.nan


def evaluate_detection(
    detected: Sequence[DetectedLesion] | Sequence[Sequence[float]],
    truth_centroids_mm: Mapping[str, Sequence[float]],
    truth_diameters_mm: Mapping[str, float],
    *,
    min_diameter_mm: float = 0.0,
    min_match_distance_mm: float = 10.0,
) -> DetectionScore:
    """Score detections against true lesions (TP / FP / FN by centroid distance).

    Parameters
    ----------
    detected : sequence of DetectedLesion or of (x, y, z) LPS positions, mm
        The detections.
    truth_centroids_mm : mapping of str to (x, y, z)
        True lesion centres, LPS mm (``truth.json`` ``lesion_centroids_lps_mm``).
    truth_diameters_mm : mapping of str to float
        True lesion diameters, mm (``truth.json`` ``lesion_diameters_mm``); every name of
        ``truth_centroids_mm`` must be here.
    min_diameter_mm : float
        True lesions smaller than this count neither as misses nor, when found, as false
        positives (e.g. 15 for "lesions >= 15 mm").
    min_match_distance_mm : float
        The smallest matching radius (10 mm).

    Returns
    -------
    DetectionScore

    Examples
    --------
    >>> score = evaluate_detection([(0.0, 0.0, 5.0), (90.0, 0.0, 0.0)],
    ...                            {"a": (0.0, 0.0, 0.0)}, {"a": 30.0})
    >>> score.true_positives, score.false_positives, score.false_negatives
    (1, 1, 0)

    """
    from scipy.optimize import linear_sum_assignment

    missing = sorted(set(truth_centroids_mm) - set(truth_diameters_mm))
    if missing:
        raise InputError(f"no diameter for true lesions {missing}", field="truth_diameters_mm")
    names = list(truth_centroids_mm)
    points = [
        item.centroid_lps_mm if isinstance(item, DetectedLesion) else tuple(item)
        for item in detected
    ]
    found = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    truth = np.asarray([truth_centroids_mm[n] for n in names], dtype=np.float64).reshape(-1, 3)
    radius = np.asarray([float(truth_diameters_mm[n]) / 2.0 for n in names], dtype=np.float64)
    distance = np.linalg.norm(found[:, None, :] - truth[None, :, :], axis=2)
    allowed = distance <= np.maximum(radius, min_match_distance_mm)[None, :]
    pairs: list[tuple[int, str, float]] = []
    if allowed.any():
        big = 1.0e6 * (1.0 + float(distance.max(initial=0.0)))
        rows, cols = linear_sum_assignment(np.where(allowed, distance, big))
        pairs = [
            (int(r), names[c], float(distance[r, c]))
            for r, c in zip(rows, cols, strict=True)
            if allowed[r, c]
        ]
    matched_truth = {name for _, name, _ in pairs}
    matched_found = {index for index, _, _ in pairs}
    target = {n for n in names if float(truth_diameters_mm[n]) >= min_diameter_mm}
    missed = tuple(n for n in names if n in target and n not in matched_truth)
    false = tuple(i for i in range(len(found)) if i not in matched_found)
    return DetectionScore(
        true_positives=len(matched_truth & target),
        false_negatives=len(missed),
        false_positives=len(false),
        matches=tuple(pairs),
        missed=missed,
        false_detections=false,
        small_detected=tuple(n for n in names if n in matched_truth and n not in target),
    )
