"""Classical organ segmentation from CT, helped by PET where CT alone cannot see an organ.

No learning, no atlas: thresholds on CT numbers and SUV, connected components, hole filling,
distance transforms and a few anatomical rules, each written into :attr:`OrganMasks.method`.
Numbers (HU windows, volumes, margins) are in ``data/lesion_detection.toml`` ``[organs]`` with
their sources.

What is found, and how (coordinates: DICOM LPS, +z superior, +y posterior, +x patient's left):

``body``
    CT > −300 HU, the largest connected component, holes filled in each axial slice.
``lungs``
    CT < −400 HU inside the body (and lung-density voxels, > −950 HU, that reach the outside
    air); the largest air region, plus the second largest when it holds at least 30 % of it
    (the other lung; connected lungs come as one region). The lungs are added to ``body``.
``bone`` and ``red_marrow``
    CT ≥ 150 HU inside the body, components ≥ 1 mL; ``red_marrow`` (the marrow proxy) is the
    trabecular part, 150–700 HU. Cortical partial-volume voxels fall in that range too, so it
    overestimates marrow in thin cortical bone.
``brain``
    CT: soft tissue enclosed by the skull (bone in the cranial 25 cm, filled per axial slice).
    Without a skull (the simulator's phantom has none) and with FDG PET given: the largest
    region of SUV ≥ 4 in the cranial 25 cm, refined to the half level between its median and its
    surroundings.
``liver_reference``
    A 30 mm sphere (PERCIST) at the deepest point of the largest liver-density region
    (45–75 HU, CT averaged over 8 mm) of the right upper abdomen below the right lung base, kept
    ≥ 4 mm inside it and, with PET, ≥ 10 mm from any hot spot (SUV > 1.5 × the region's median).
``blood_pool_reference``
    A sphere of 1 cm radius at the deepest point of the largest blood-density region between the
    lungs (the heart), with the same hot-spot rule.
``spleen`` (PET needed)
    Below the left lung base, left of the midline and not ahead of the body's centre by more
    than 10 mm (the stomach is in front): the uptake region (SUV ≥ 1.5 × the search region's
    median) nearest the lung base, 50–1500 mL, refined to its half level.
``kidneys`` (PET needed)
    Below the lung bases, behind the midline, bone and the CT liver excluded (liver-density
    voxels, 45–75 HU on the averaged CT, widened by the averaging cube: the right kidney
    touches the liver, whose FDG uptake is close to its own): two uptake regions of
    40–600 mL, one each side of the midline, at about the same height (|Δz| ≤ 60 mm; the
    closest pair) and of similar volume, refined to their half levels. Before the pair is
    chosen, hot foci are split off each region: voxels ≥ 2 × the region's kidney level (its
    25th percentile of SUV), bounded at the half level between that level and the focus's
    top, are not kidney when less than half of what surrounds them 10 mm out is the region
    (a para-aortic or retroperitoneal mass beside the kidney); they and their 10 mm blurred
    rim leave the kidney, which is not regrown into them. A focus enclosed by the region
    (urine in the collecting system) stays kidney. Needs renal uptake above the surroundings
    (FDG). Settings in ``data/kidney_segmentation.toml``.
``urinary_bladder`` (PET needed)
    SUV ≥ 5 regions ≥ 50 mL within 60 mm of the midline and ≥ 150 mm below the lung bases (or in
    the caudal half of the body without lungs); the most caudal one, refined to its half level.

Organs that cannot be found are listed in :attr:`OrganMasks.not_found` with the reason. The
rules assume an adult imaged supine on an axial grid (any flips and axis order are handled;
a grid tilted up to 30° is read along its nearest patient axes, a more oblique one is refused).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.units import ML_PER_MM3

__all__ = [
    "BLOOD_POOL_REFERENCE",
    "LIVER_NOISE_REFERENCE",
    "LIVER_REFERENCE",
    "OrganMasks",
    "segment_organs",
]

#: Name of the PERCIST liver reference sphere in :attr:`OrganMasks.masks`.
LIVER_REFERENCE: Final = "liver_reference"
#: Name of the liver sphere the image noise is measured in (:mod:`immunopet.quant`): centred as
#: the PERCIST sphere, as large as the liver allows up to ``noise_sphere_max_diameter_mm``
#: (more voxels, a steadier noise estimate); not a measured VOI.
LIVER_NOISE_REFERENCE: Final = "liver_noise_reference"
#: Name of the blood-pool reference sphere in :attr:`OrganMasks.masks`.
BLOOD_POOL_REFERENCE: Final = "blood_pool_reference"

_DATA_FILE: Final = "lesion_detection.toml"
_KIDNEY_FILE: Final = "kidney_segmentation.toml"
_SUV_QUANTITIES: Final = frozenset({Quantity.SUV_BW, Quantity.SUV_LBM, Quantity.SUV_BSA})

Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
_Vec3 = tuple[float, float, float]
#: A kidney candidate: (region, voxels kept out of it, volume mL, centroid index).
_KidneyCandidate = tuple[Mask, Mask, float, Floats]


def _setting(section: str, key: str) -> Any:
    """The ``value`` of ``[section].key`` in ``lesion_detection.toml`` (dotted sections allowed)."""
    table: Any = read_toml(_DATA_FILE)
    for part in section.split("."):
        table = table[part]
    return table[key]["value"]


def _organ(key: str) -> float:
    return float(_setting("organs", key))


def _organ_range(key: str) -> tuple[float, float]:
    low, high = _setting("organs", key)
    return float(low), float(high)


# -- orientation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """How an array's axes map onto the canonical (z superior, y posterior, x left) axes."""

    axes: tuple[int, int, int]  # array axis holding z, y, x
    flips: tuple[bool, bool, bool]  # whether that array axis runs against +z, +y, +x
    spacing_mm: _Vec3  # along canonical z, y, x

    @classmethod
    def of(cls, volume: Volume) -> _Frame:
        direction = volume.direction  # columns: LPS unit vector of each array axis
        dominant = [int(np.argmax(np.abs(direction[:, axis]))) for axis in range(3)]
        cosines = [abs(float(direction[d, axis])) for axis, d in enumerate(dominant)]
        limit = math.cos(math.radians(_organ("max_tilt_deg")))
        if sorted(dominant) != [0, 1, 2] or min(cosines) < limit:
            raise InputError(
                "the grid's axes are too oblique to tell superior, posterior and left apart "
                f"(more than {_organ('max_tilt_deg'):g} degrees from the patient axes; direction "
                f"cosines {np.round(direction, 3).tolist()})",
                path=volume.source,
                hint="resample the image onto an axial grid first",
            )
        axes = (dominant.index(2), dominant.index(1), dominant.index(0))
        flips = (
            bool(direction[2, axes[0]] < 0.0),
            bool(direction[1, axes[1]] < 0.0),
            bool(direction[0, axes[2]] < 0.0),
        )
        spacing = volume.spacing_mm
        return cls(
            axes, flips, (float(spacing[axes[0]]), float(spacing[axes[1]]), float(spacing[axes[2]]))
        )

    def to_canonical(self, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The array with axes (z, y, x), each increasing superior, posterior, left (a view)."""
        canonical = np.transpose(array, self.axes)
        index = tuple(slice(None, None, -1) if flip else slice(None) for flip in self.flips)
        return canonical[index]

    def from_canonical(self, array: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Inverse of :meth:`to_canonical` (a contiguous copy)."""
        index = tuple(slice(None, None, -1) if flip else slice(None) for flip in self.flips)
        return np.ascontiguousarray(np.transpose(array[index], np.argsort(self.axes)))

    @property
    def voxel_ml(self) -> float:
        return math.prod(self.spacing_mm) * ML_PER_MM3


# -- generic morphology ----------------------------------------------------------------------


def _label(mask: Mask, *, full: bool = False) -> tuple[npt.NDArray[np.int32], int]:
    """Connected components (6-connected, or 26 with ``full``) and their number."""
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(3, 3 if full else 1)
    labels, count = ndimage.label(mask, structure=structure)
    return np.asarray(labels, dtype=np.int32), int(count)


def _sizes(labels: npt.NDArray[np.int32], count: int) -> npt.NDArray[np.int64]:
    sizes = np.bincount(labels.ravel(), minlength=count + 1).astype(np.int64)
    sizes[0] = 0
    return sizes


def _largest(mask: Mask) -> Mask:
    """The largest 6-connected component of ``mask`` (empty if there is none)."""
    labels, count = _label(mask)
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    result: Mask = labels == int(np.argmax(_sizes(labels, count)))
    return result


def _fill_axial(mask: Mask) -> Mask:
    """Fill holes in every axial slice (axis 0 is z)."""
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    return np.asarray(ndimage.binary_fill_holes(mask, structure=structure), dtype=bool)


def _bounding_box(mask: Mask, pad: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    """Slices of the box around ``mask`` widened by ``pad`` voxels (clipped to the array)."""
    indices = np.nonzero(mask)
    lows = [max(int(axis.min()) - p, 0) for axis, p in zip(indices, pad, strict=True)]
    highs = [
        min(int(axis.max()) + p + 1, n) for axis, p, n in zip(indices, pad, mask.shape, strict=True)
    ]
    return slice(lows[0], highs[0]), slice(lows[1], highs[1]), slice(lows[2], highs[2])


def _pad_voxels(distance_mm: float, spacing_mm: _Vec3) -> tuple[int, int, int]:
    z, y, x = (math.ceil(distance_mm / step) + 1 for step in spacing_mm)
    return z, y, x


def _distance_outside_mm(region: Mask, spacing_mm: _Vec3) -> Floats:
    """Distance (mm) of every voxel centre to the nearest voxel of ``region`` (0 inside)."""
    from scipy import ndimage

    return np.asarray(
        ndimage.distance_transform_edt(~region, sampling=spacing_mm), dtype=np.float64
    )


def _depth_mm(region: Mask, spacing_mm: _Vec3) -> Floats:
    """Distance (mm) of every voxel of ``region`` to the nearest voxel outside it (array edge too)."""
    from scipy import ndimage

    padded = np.pad(region, 1, constant_values=False)
    depth = ndimage.distance_transform_edt(padded, sampling=spacing_mm)
    return np.asarray(depth, dtype=np.float64)[1:-1, 1:-1, 1:-1]


def _sphere(
    shape: tuple[int, ...], centre: npt.NDArray[np.intp], radius_mm: float, spacing_mm: _Vec3
) -> Mask:
    """Voxels whose centres lie within ``radius_mm`` of the voxel ``centre``."""
    grids = np.ogrid[: shape[0], : shape[1], : shape[2]]
    squared = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing_mm, strict=True))
    return np.asarray(squared <= radius_mm**2, dtype=bool)


def _half_level(
    suv: Floats, region: Mask, allowed: Mask, spacing_mm: _Vec3, *, fraction: float | None = None
) -> Mask:
    """Regrow ``region`` at the level between its median SUV and its surroundings' median.

    The surroundings are the ``allowed`` voxels 10–20 mm outside the region
    (``refine_shell_mm``); the level is ``bg + fraction × (inside − bg)``. The new region is
    made of the connected parts of ``allowed`` at or above the level that overlap the old
    region, grown no further than the shell's outer radius.
    """
    inner_mm, outer_mm = _organ_range("refine_shell_mm")
    share = _organ("refine_fraction") if fraction is None else fraction
    box = _bounding_box(region, _pad_voxels(outer_mm, spacing_mm))
    inside, values, room = region[box], suv[box], allowed[box]
    distance = _distance_outside_mm(inside, spacing_mm)
    shell = (distance > inner_mm) & (distance <= outer_mm) & room
    inside_level = float(np.median(values[inside]))
    background = float(np.median(values[shell])) if shell.any() else 0.0
    level = background + share * (inside_level - background)
    candidate = (values >= level) & room & (distance <= outer_mm)
    labels, _ = _label(candidate)
    keep = np.unique(labels[inside])
    grown = np.isin(labels, keep[keep > 0]) if np.any(keep > 0) else inside
    result = np.zeros(region.shape, dtype=bool)
    result[box] = grown
    return result


def _centroid(mask: Mask) -> Floats:
    return np.asarray([float(axis.mean()) for axis in np.nonzero(mask)], dtype=np.float64)


def _component_centroids(labels: npt.NDArray[np.int32], count: int) -> Floats:
    """Index-space centroid of every component, shape (count + 1, 3); row 0 unused."""
    where = np.nonzero(labels)
    ids = labels[where]
    sizes = np.maximum(np.bincount(ids, minlength=count + 1), 1).astype(np.float64)
    columns = [np.bincount(ids, weights=axis, minlength=count + 1) / sizes for axis in where]
    return np.stack(columns, axis=1)


# -- the body and the organs, in canonical orientation ---------------------------------------


@dataclass
class _Context:
    """Arrays in canonical orientation (z, y, x) and what has been found so far."""

    frame: _Frame
    hu: Floats | None
    suv: Floats | None
    masks: dict[str, Mask] = field(default_factory=dict)
    method: dict[str, str] = field(default_factory=dict)
    not_found: dict[str, str] = field(default_factory=dict)
    _smooth_hu: Floats | None = None

    @property
    def spacing(self) -> _Vec3:
        return self.frame.spacing_mm

    @property
    def shape(self) -> tuple[int, int, int]:
        source = self.hu if self.hu is not None else self.suv
        assert source is not None
        z, y, x = source.shape
        return int(z), int(y), int(x)

    def smooth_hu(self) -> Floats:
        """CT numbers averaged over a cube of ``hu_smoothing_mm``."""
        from scipy import ndimage

        assert self.hu is not None
        if self._smooth_hu is None:
            self._smooth_hu = np.asarray(
                ndimage.uniform_filter(self.hu, size=self.smoothing_size(), mode="nearest"),
                dtype=np.float64,
            )
        return self._smooth_hu

    def smoothing_size(self) -> list[int]:
        """Voxels per axis of the ``hu_smoothing_mm`` cube (odd, at least 1)."""
        return [max(1, 2 * round(_organ("hu_smoothing_mm") / s / 2) + 1) for s in self.spacing]

    def volume_ml(self, mask: Mask) -> float:
        return float(np.count_nonzero(mask)) * self.frame.voxel_ml

    def z_mm(self) -> Floats:
        return np.arange(self.shape[0], dtype=np.float64) * self.spacing[0]

    def found(self, name: str, mask: Mask, method: str) -> None:
        self.masks[name] = mask
        self.method[name] = method

    def missing(self, name: str, reason: str) -> None:
        self.not_found[name] = reason

    def midline_x(self) -> float:
        """Column index of the body's midline (its centroid, over the lung slices if any)."""
        body = self.masks["body"]
        lungs = self.masks.get("lungs")
        if lungs is not None:
            slices = np.nonzero(lungs.any(axis=(1, 2)))[0]
            body = body[slices.min() : slices.max() + 1]
        return float(np.nonzero(body)[2].mean())

    def posterior_y(self) -> float:
        """Row index of the body's centroid (rows increase towards the back)."""
        return float(np.nonzero(self.masks["body"])[1].mean())

    def lung_base(self, side: str) -> int | None:
        """Slice index of the lowest voxel of the right or left lung."""
        lungs = self.masks.get("lungs")
        if lungs is None:
            return None
        columns = np.arange(self.shape[2])
        mid = self.midline_x()
        half = columns < mid if side == "right" else columns >= mid
        slices = np.nonzero((lungs & half[None, None, :]).any(axis=(1, 2)))[0]
        return None if slices.size == 0 else int(slices.min())


def _body_from_ct(context: _Context) -> None:
    assert context.hu is not None
    body = _fill_axial(_largest(context.hu > _organ("body_min_hu")))
    if not body.any():
        raise InputError(
            "no body found in the CT (no voxel above the body threshold)",
            hint="check that the CT is in Hounsfield units",
        )
    context.found(
        "body",
        body,
        f"CT > {_organ('body_min_hu'):g} HU, largest connected component, holes filled per "
        "axial slice",
    )


def body_from_pet(suv: Floats) -> Mask:
    """Body from PET alone: SUV above ``body_min_suv``, largest component, holes filled."""
    return _fill_axial(_largest(suv > float(_setting("candidates", "body_min_suv"))))


def _lungs(context: _Context) -> None:
    from scipy import ndimage

    assert context.hu is not None
    air = context.hu < _organ("lung_max_hu")
    inside = air & context.masks["body"]
    # A lung that reaches the body's outline (the simulator's thinnest bodies) joins the outside
    # air: keep its lung-density voxels, less the one-voxel skin partial-volume shell. The opening
    # is in-plane: a 3-D one also erased the lung where the outline is open on only one or two
    # slices, cutting each lung in two (then only the two larger halves were kept).
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    outside_lung = ndimage.binary_opening(
        air & ~context.masks["body"] & (context.hu > _organ("air_max_hu")), structure=in_plane
    )
    labels, count = _label(inside | outside_lung)
    sizes = _sizes(labels, count)
    order = np.argsort(sizes)[::-1]
    if count == 0:
        context.missing("lungs", "no air inside the body")
        return
    keep = [int(order[0])]
    if count > 1 and sizes[order[1]] >= _organ("lung_pair_min_fraction") * sizes[order[0]]:
        keep.append(int(order[1]))
    lungs = _fill_axial(np.isin(labels, keep))
    if context.volume_ml(lungs) < _organ("lung_min_volume_ml"):
        context.missing(
            "lungs", f"the largest air region inside the body is {context.volume_ml(lungs):.0f} mL"
        )
        return
    context.masks["body"] = context.masks["body"] | lungs
    context.method["body"] += "; the lungs added"
    context.found(
        "lungs",
        lungs,
        f"CT < {_organ('lung_max_hu'):g} HU inside the body: the largest air region"
        + (" and the second largest (the other lung)" if len(keep) == 2 else " (lungs connected)")
        + f", holes filled per axial slice (lung-density voxels, > {_organ('air_max_hu'):g} HU, "
        "that reach the outside air are kept)",
    )


def _bone(context: _Context) -> None:
    assert context.hu is not None
    bone = (context.hu >= _organ("bone_min_hu")) & context.masks["body"]
    labels, count = _label(bone, full=True)
    sizes = _sizes(labels, count)
    keep = np.nonzero(sizes * context.frame.voxel_ml >= _organ("bone_min_component_ml"))[0]
    bone = np.isin(labels, keep[keep > 0])
    if not bone.any():
        context.missing("bone", f"no CT voxel at or above {_organ('bone_min_hu'):g} HU")
        context.missing("red_marrow", "no bone")
        return
    context.found(
        "bone",
        bone,
        f"CT >= {_organ('bone_min_hu'):g} HU inside the body, components >= "
        f"{_organ('bone_min_component_ml'):g} mL",
    )
    context.found(
        "red_marrow",
        bone & (context.hu < _organ("cortical_min_hu")),
        f"marrow proxy: trabecular bone, {_organ('bone_min_hu'):g} <= CT < "
        f"{_organ('cortical_min_hu'):g} HU",
    )


def _cranial_slab(context: _Context, body: Mask) -> Mask:
    slices = np.nonzero(body.any(axis=(1, 2)))[0]
    z_mm = context.z_mm()
    top_mm = z_mm[int(slices.max())]
    return np.asarray(z_mm >= top_mm - _organ("cranial_slab_mm"), dtype=bool)[:, None, None] & body


def brain_from_pet(suv: Floats, body: Mask, frame: _Frame) -> Mask | None:
    """The cranial high-uptake region of an FDG PET (see the module text), or None."""
    context = _Context(frame, None, suv, masks={"body": body})
    slab = _cranial_slab(context, body)
    hot = (suv >= _organ("brain_min_suv")) & slab
    region = _largest(hot)
    if context.volume_ml(region) < _organ("brain_min_volume_ml"):
        return None
    return _half_level(suv, region, slab, frame.spacing_mm)


def _brain(context: _Context) -> None:
    body = context.masks["body"]
    slab = _cranial_slab(context, body)
    minimum_ml = _organ("brain_min_volume_ml")
    if context.hu is not None and "bone" in context.masks:
        skull = context.masks["bone"] & slab
        low, high = _organ_range("soft_tissue_hu")
        interior = _fill_axial(skull) & ~skull
        brain = _largest(interior & (context.hu >= low) & (context.hu <= high))
        if context.volume_ml(brain) >= minimum_ml:
            context.found(
                "brain",
                brain,
                f"CT: soft tissue ({low:g} to {high:g} HU) enclosed by the skull (bone within "
                f"{_organ('cranial_slab_mm'):g} mm of the top of the body, filled per axial "
                "slice), largest region",
            )
            return
    if context.suv is not None:
        brain_pet = brain_from_pet(context.suv, body, context.frame)
        if brain_pet is not None:
            context.found(
                "brain",
                brain_pet,
                f"PET (no skull found on CT): largest region of SUV >= "
                f"{_organ('brain_min_suv'):g} within {_organ('cranial_slab_mm'):g} mm of the top "
                "of the body, regrown at the half level between its median and its surroundings",
            )
            return
    context.missing(
        "brain",
        f"no skull-enclosed soft tissue of at least {minimum_ml:g} mL on CT"
        + ("" if context.suv is not None else "; give the PET for the uptake-based fallback"),
    )


def bladder_from_pet(
    suv: Floats, body: Mask, frame: _Frame, *, below_slice: int | None = None
) -> Mask | None:
    """The caudal midline high-uptake region of an FDG PET (see the module text), or None.

    ``below_slice``: the region's centroid must lie below this slice (e.g. the lung bases minus
    ``bladder_min_below_lungs_mm``); default the caudal half of the body.
    """
    context = _Context(frame, None, suv, masks={"body": body})
    hot = (suv >= _organ("bladder_min_suv")) & body
    labels, count = _label(hot)
    if count == 0:
        return None
    sizes = _sizes(labels, count)
    slices = np.nonzero(body.any(axis=(1, 2)))[0]
    if below_slice is None:
        below_slice = int((int(slices.min()) + int(slices.max())) // 2)
    mid = context.midline_x()
    centres = _component_centroids(labels, count)
    best: tuple[float, int] | None = None
    for index in np.nonzero(sizes * frame.voxel_ml >= _organ("bladder_min_volume_ml"))[0]:
        centre = centres[index]
        offset_mm = abs(centre[2] - mid) * frame.spacing_mm[2]
        if centre[0] >= below_slice or offset_mm > _organ("bladder_max_midline_offset_mm"):
            continue
        if best is None or centre[0] < best[0]:
            best = (float(centre[0]), int(index))
    if best is None:
        return None
    return _half_level(suv, labels == best[1], body, frame.spacing_mm)


def _bladder(context: _Context) -> None:
    if context.suv is None:
        context.missing("urinary_bladder", "needs the PET (found from urinary uptake)")
        return
    below: int | None = None
    bases = [b for b in (context.lung_base("right"), context.lung_base("left")) if b is not None]
    if bases:
        below = min(bases) - math.ceil(_organ("bladder_min_below_lungs_mm") / context.spacing[0])
    bladder = bladder_from_pet(context.suv, context.masks["body"], context.frame, below_slice=below)
    if bladder is None:
        context.missing(
            "urinary_bladder",
            f"no region of SUV >= {_organ('bladder_min_suv'):g} and >= "
            f"{_organ('bladder_min_volume_ml'):g} mL on the caudal midline",
        )
        return
    where = (
        f">= {_organ('bladder_min_below_lungs_mm'):g} mm below the lung bases"
        if bases
        else "in the caudal half of the body"
    )
    context.found(
        "urinary_bladder",
        bladder,
        f"PET: the most caudal region of SUV >= {_organ('bladder_min_suv'):g}, >= "
        f"{_organ('bladder_min_volume_ml'):g} mL, within "
        f"{_organ('bladder_max_midline_offset_mm'):g} mm of the midline, {where}; regrown at "
        "its half level",
    )


def _below_lung_base(context: _Context, base: int) -> Mask:
    """Slices from ``organ_search_above_mm`` above ``base`` to ``organ_search_mm`` below it."""
    z_mm = context.z_mm()
    base_mm = z_mm[base]
    band = (z_mm <= base_mm + _organ("organ_search_above_mm")) & (
        z_mm >= base_mm - _organ("organ_search_mm")
    )
    return np.asarray(band, dtype=bool)[:, None, None]


def _columns_mm_from_midline(context: _Context) -> Floats:
    """Signed distance (mm) of each column from the midline (+ towards the patient's left)."""
    columns = np.arange(context.shape[2], dtype=np.float64)
    return (columns - context.midline_x()) * context.spacing[2]


def _rows_mm_behind_centre(context: _Context) -> Floats:
    """Signed distance (mm) of each row behind the body's centroid (+ posterior)."""
    rows = np.arange(context.shape[1], dtype=np.float64)
    return (rows - context.posterior_y()) * context.spacing[1]


def _without_hot_spots(context: _Context, region: Mask) -> Mask:
    """``region`` less voxels near SUV hot spots (PET given), for reference spheres."""
    if context.suv is None or not region.any():
        return region
    level = _organ("hot_spot_factor") * float(np.median(context.suv[region]))
    margin_mm = _organ("hot_spot_margin_mm")
    box = _bounding_box(region, _pad_voxels(margin_mm, context.spacing))
    hot = (context.suv[box] > level) & context.masks["body"][box]
    if not hot.any():
        return region
    result = region.copy()
    result[box] &= _distance_outside_mm(hot, context.spacing) > margin_mm
    return result


def _reference_sphere(
    context: _Context,
    name: str,
    candidate: Mask,
    diameter_key: str,
    what: str,
    *,
    noise_sphere: str | None = None,
    min_diameter_key: str | None = None,
) -> None:
    """Place a sphere at the deepest point of ``candidate``'s largest region.

    With ``noise_sphere``, a second, concentric sphere of that name as large as the region
    allows (the margin kept) up to ``noise_sphere_max_diameter_mm``, never smaller than the first.
    With ``min_diameter_key``, a region too thin for the sphere gets the largest one that keeps
    the margin, down to that diameter (a thin mediastinum, a small heart).
    """
    radius_mm = _organ(diameter_key) / 2.0
    region = _largest(_without_hot_spots(context, _largest(candidate)))
    if not region.any():
        context.missing(name, f"no {what} region found")
        return
    box = _bounding_box(region, (1, 1, 1))
    depth = _depth_mm(region[box], context.spacing)
    deepest = np.unravel_index(int(np.argmax(depth)), depth.shape)
    needed_mm = radius_mm + _organ("reference_margin_mm")
    shrunk = ""
    if float(depth[deepest]) <= needed_mm and min_diameter_key is not None:
        fitting_mm = float(depth[deepest]) - _organ("reference_margin_mm")
        if 2.0 * fitting_mm >= _organ(min_diameter_key):
            shrunk = f" (the region is too thin for {2 * radius_mm:g} mm)"
            radius_mm = fitting_mm
    if not shrunk and float(depth[deepest]) <= needed_mm:
        context.missing(
            name,
            f"the {what} region is too thin for a {2 * radius_mm:g} mm sphere (deepest point "
            f"{float(depth[deepest]):.1f} mm from its edge, {needed_mm:g} mm needed)",
        )
        return
    centre = np.asarray([s.start for s in box], dtype=np.intp) + np.asarray(deepest, dtype=np.intp)
    sphere = _sphere(context.shape, centre, radius_mm, context.spacing)
    hot_rule = (
        f", >= {_organ('hot_spot_margin_mm'):g} mm from PET hot spots (SUV > "
        f"{_organ('hot_spot_factor'):g} x the region's median)"
        if context.suv is not None
        else ""
    )
    context.found(
        name,
        sphere,
        f"{2 * radius_mm:.3g} mm sphere at the deepest point of the largest {what} region"
        f"{shrunk}{hot_rule}, >= {_organ('reference_margin_mm'):g} mm inside it",
    )
    if noise_sphere is not None:
        noise_radius_mm = min(
            _organ("noise_sphere_max_diameter_mm") / 2.0,
            float(depth[deepest]) - _organ("reference_margin_mm"),
        )
        context.found(
            noise_sphere,
            _sphere(context.shape, centre, noise_radius_mm, context.spacing),
            f"{2 * noise_radius_mm:.0f} mm sphere concentric with {name} (the largest up to "
            f"{_organ('noise_sphere_max_diameter_mm'):g} mm that keeps the margin), for the "
            "image noise",
        )


def _liver_reference(context: _Context) -> None:
    if context.hu is None:
        return
    base = context.lung_base("right")
    if base is None:
        context.missing(LIVER_REFERENCE, "no right lung base to place the liver below")
        return
    low, high = _organ_range("liver_hu")
    smooth = context.smooth_hu()
    right = _columns_mm_from_midline(context) < 0.0
    candidate = (
        context.masks["body"]
        & _below_lung_base(context, base)
        & right[None, None, :]
        & ~context.masks.get("lungs", np.zeros(context.shape, dtype=bool))
        & (smooth >= low)
        & (smooth <= high)
    )
    _reference_sphere(
        context,
        LIVER_REFERENCE,
        candidate,
        "liver_sphere_diameter_mm",
        f"liver-density ({low:g}-{high:g} HU) right upper abdominal",
        noise_sphere=LIVER_NOISE_REFERENCE,
    )


def _between_lungs(lungs: Mask) -> Mask:
    """Voxels with lung on both sides along x in their row (the mediastinum), lungs excluded."""
    seen_from_right = np.maximum.accumulate(lungs, axis=2)
    seen_from_left = np.maximum.accumulate(lungs[:, :, ::-1], axis=2)[:, :, ::-1]
    return np.asarray(seen_from_right & seen_from_left & ~lungs, dtype=bool)


def _blood_pool_reference(context: _Context) -> None:
    if context.hu is None:
        return
    lungs = context.masks.get("lungs")
    if lungs is None:
        context.missing(BLOOD_POOL_REFERENCE, "no lungs to find the mediastinum between")
        return
    low, high = _organ_range("blood_hu")
    smooth = context.smooth_hu()
    candidate = (
        _between_lungs(lungs)
        & context.masks["body"]
        & (smooth >= low)
        & (smooth <= high)
        & ~context.masks.get("bone", np.zeros(context.shape, dtype=bool))
    )
    _reference_sphere(
        context,
        BLOOD_POOL_REFERENCE,
        candidate,
        "blood_pool_sphere_diameter_mm",
        f"blood-density ({low:g}-{high:g} HU) mediastinal (between the lungs)",
        min_diameter_key="blood_pool_sphere_min_diameter_mm",
    )


def _uptake_components(
    context: _Context, region: Mask
) -> tuple[npt.NDArray[np.int32], list[tuple[int, float, Floats]]]:
    """Components of SUV >= organ_hot_factor x median(region) in ``region``: (id, mL, centroid)."""
    assert context.suv is not None
    level = _organ("organ_hot_factor") * float(np.median(context.suv[region]))
    labels, count = _label((context.suv >= level) & region)
    sizes = _sizes(labels, count)
    centres = _component_centroids(labels, count)
    found = [
        (int(index), float(sizes[index]) * context.frame.voxel_ml, centres[index])
        for index in np.nonzero(sizes)[0]
    ]
    return labels, found


def _kidney_setting(key: str) -> Any:
    """The ``value`` of ``[kidneys].key`` in ``kidney_segmentation.toml``."""
    return read_toml(_KIDNEY_FILE)["kidneys"][key]["value"]


def _kidney_search_region(context: _Context) -> Mask | str:
    """Where kidneys are sought (module text), or the reason there is nowhere to look."""
    bases = [b for b in (context.lung_base("right"), context.lung_base("left")) if b is not None]
    if not bases:
        return "no lung bases to search below"
    z_mm = context.z_mm()
    top_mm = z_mm[min(bases)]
    band = (z_mm < top_mm) & (z_mm >= top_mm - _organ("kidney_search_mm"))
    behind = _rows_mm_behind_centre(context) >= 0.0
    region: Mask = (
        context.masks["body"]
        & band[:, None, None]
        & behind[None, :, None]
        & ~context.masks.get("bone", np.zeros(context.shape, dtype=bool))
    )
    if context.hu is not None and bool(_kidney_setting("exclude_liver_ct")):
        from scipy import ndimage

        low, high = _organ_range("liver_hu")
        smooth = context.smooth_hu()
        liver = ((smooth >= low) & (smooth <= high)).astype(np.float32)
        # Averaging pulls the liver's edge out of the window: widen it by the same cube.
        size = context.smoothing_size()
        widened = np.asarray(ndimage.uniform_filter(liver, size=size, mode="nearest"))
        region = region & (widened < 0.5 / math.prod(size))
    if not region.any():
        return "empty search region"
    return region


def _split_hot_foci(context: _Context, component: Mask) -> tuple[Mask, Mask]:
    """Split hot foci that stick out of a kidney candidate (module text).

    Returns the candidate without the foci (its largest 6-connected part) and the voxels
    kept out of the kidney: the foci, each bounded at the half level between the kidney's
    level and the focus's peak, widened by ``focus_margin_mm``.
    """
    assert context.suv is not None
    suv = context.suv
    box = _bounding_box(component, _pad_voxels(_kidney_setting("focus_margin_mm"), context.spacing))
    inside, values, body = component[box], suv[box], context.masks["body"][box]
    level = float(np.percentile(values[inside], float(_kidney_setting("level_percentile"))))
    hot = inside & (values >= float(_kidney_setting("hot_factor")) * level)
    margin_mm = float(_kidney_setting("focus_margin_mm"))
    removed = np.zeros(inside.shape, dtype=bool)
    labels, count = _label(hot)
    sizes = _sizes(labels, count)
    for index in np.nonzero(sizes * context.frame.voxel_ml >= _kidney_setting("focus_min_ml"))[0]:
        seed = labels == index
        # Half way between the kidney level and the focus's top level (90th percentile: robust
        # to single noisy voxels).
        border = (level + float(np.percentile(values[seed], 90.0))) / 2.0
        grown_labels, _ = _label(inside & (values >= border))
        keep = np.unique(grown_labels[seed])
        focus = np.isin(grown_labels, keep[keep > 0]) | seed
        # What surrounds the focus beyond its blurred rim: the body voxels at the margin.
        distance = _distance_outside_mm(focus, context.spacing)
        shell = (distance > margin_mm - max(context.spacing)) & (distance <= margin_mm) & body
        enclosed = float(np.count_nonzero(shell & inside)) / max(1, int(np.count_nonzero(shell)))
        if enclosed < float(_kidney_setting("enclosed_fraction")):
            removed |= distance <= margin_mm
    kept = _largest(inside & ~removed)
    part = np.zeros(component.shape, dtype=bool)
    part[box] = kept
    excluded = np.zeros(component.shape, dtype=bool)
    excluded[box] = removed
    return part, excluded


def _kidneys(context: _Context) -> None:
    if context.suv is None:
        context.missing("kidneys", "needs the PET (found from renal uptake)")
        return
    region = _kidney_search_region(context)
    if isinstance(region, str):
        context.missing("kidneys", region)
        return
    labels, components = _uptake_components(context, region)
    low_ml, high_ml = _organ_range("kidney_volume_ml")
    mid = context.midline_x()
    lateral_min = _organ("lateral_offset_min_mm")
    # (part, excluded hot voxels, mL, centroid) of each side's kidney-sized candidates.
    sides: dict[str, list[_KidneyCandidate]] = {"right": [], "left": []}
    for index, volume_ml, _ in components:
        if volume_ml < low_ml:
            continue
        part, excluded = _split_hot_foci(context, labels == index)
        part_ml = context.volume_ml(part)
        if not (low_ml <= part_ml <= high_ml):
            continue
        centre = _centroid(part)
        offset_mm = (centre[2] - mid) * context.spacing[2]
        if abs(offset_mm) >= lateral_min:
            sides["right" if offset_mm < 0.0 else "left"].append((part, excluded, part_ml, centre))
    best: tuple[float, _KidneyCandidate, _KidneyCandidate] | None = None
    for right in sides["right"]:
        for left in sides["left"]:
            dz_mm = abs(right[3][0] - left[3][0]) * context.spacing[0]
            ratio = max(right[2], left[2]) / min(right[2], left[2])
            centre_mm = abs((right[3][2] + left[3][2]) / 2.0 - mid) * context.spacing[2]
            plausible = (
                dz_mm <= _organ("kidney_pair_max_dz_mm")
                and ratio <= _organ("kidney_pair_max_volume_ratio")
                and centre_mm <= lateral_min
            )
            # Of the plausible pairs, the one at the most similar height.
            if plausible and (best is None or dz_mm < best[0]):
                best = (dz_mm, right, left)
    chosen: list[_KidneyCandidate] = [] if best is None else [best[1], best[2]]
    if best is None:
        # No pair (one kidney, or the other lost to a neighbour): kidney-shaped regions alone,
        # one per side, so that renal uptake is not left to be called a lesion.
        elongation_min = float(_kidney_setting("single_min_elongation"))
        for candidates in sides.values():
            shaped = [c for c in candidates if _elongation(c[0], context.spacing) >= elongation_min]
            if shaped:
                chosen.append(max(shaped, key=lambda c: _elongation(c[0], context.spacing)))
    if not chosen:
        context.missing(
            "kidneys",
            "no pair of uptake regions of kidney size on either side of the midline at the same "
            "height, and no single kidney-shaped one",
        )
        return
    kidneys = np.zeros(context.shape, dtype=bool)
    split = False
    for part, excluded, _, _ in chosen:
        kidneys |= _half_level(context.suv, part, region & ~excluded, context.spacing)
        split = split or bool(excluded.any())
    liver = (
        f", CT liver-density voxels ({_organ_range('liver_hu')[0]:g}-"
        f"{_organ_range('liver_hu')[1]:g} HU) excluded"
        if context.hu is not None and bool(_kidney_setting("exclude_liver_ct"))
        else ""
    )
    which = (
        f"one each side, |dz| <= {_organ('kidney_pair_max_dz_mm'):g} mm, volume ratio <= "
        f"{_organ('kidney_pair_max_volume_ratio'):g}"
        if best is not None
        else f"NO PAIR FOUND: {len(chosen)} single kidney-shaped region(s) (craniocaudal SD >= "
        f"{_kidney_setting('single_min_elongation'):g} x the transverse SDs), at most one per side"
    )
    context.found(
        "kidneys",
        kidneys,
        f"PET: uptake regions (SUV >= {_organ('organ_hot_factor'):g} x the search region's "
        f"median) of {low_ml:g}-{high_ml:g} mL behind the midline below the lung bases{liver}, "
        f"{which}; hot foci (>= {_kidney_setting('hot_factor'):g} x the kidney level) sticking "
        f"out of a kidney split off with a {_kidney_setting('focus_margin_mm'):g} mm margin"
        + (" (one was)" if split else "")
        + "; each regrown at its half level",
    )


def _elongation(mask: Mask, spacing_mm: _Vec3) -> float:
    """Craniocaudal SD of ``mask``'s voxel positions over the larger transverse SD (canonical)."""
    where = np.nonzero(mask)
    sd = [float(np.std(axis)) * step for axis, step in zip(where, spacing_mm, strict=True)]
    return sd[0] / max(sd[1], sd[2], 1e-9)


def _spleen(context: _Context) -> None:
    if context.suv is None:
        context.missing("spleen", "needs the PET (not separable from muscle on CT alone)")
        return
    base = context.lung_base("left")
    if base is None:
        context.missing("spleen", "no left lung base to search below")
        return
    empty = np.zeros(context.shape, dtype=bool)
    left = _columns_mm_from_midline(context) >= _organ("lateral_offset_min_mm")
    behind = _rows_mm_behind_centre(context) >= -_organ("spleen_max_ahead_mm")
    allowed = (
        context.masks["body"]
        & ~context.masks.get("lungs", empty)
        & ~context.masks.get("bone", empty)
        & ~context.masks.get("kidneys", empty)
    )
    region = allowed & _below_lung_base(context, base) & left[None, None, :] & behind[None, :, None]
    if not region.any():
        context.missing("spleen", "empty search region")
        return
    labels, components = _uptake_components(context, region)
    low_ml, high_ml = _organ_range("spleen_volume_ml")
    plausible = [item for item in components if low_ml <= item[1] <= high_ml]
    if not plausible:
        context.missing(
            "spleen", f"no uptake region of {low_ml:g}-{high_ml:g} mL below the left lung"
        )
        return
    # The spleen lies under the diaphragm: the candidate whose top is nearest the lung base.
    tops = [int(np.nonzero((labels == item[0]).any(axis=(1, 2)))[0].max()) for item in plausible]
    chosen = plausible[int(np.argmin([abs(top - base) for top in tops]))]
    spleen = _half_level(context.suv, labels == chosen[0], allowed, context.spacing)
    context.found(
        "spleen",
        spleen,
        f"PET: uptake region (SUV >= {_organ('organ_hot_factor'):g} x the search region's median) "
        f"of {low_ml:g}-{high_ml:g} mL below the left lung base, left of the midline and at most "
        f"{_organ('spleen_max_ahead_mm'):g} mm ahead of the body's centre, nearest the lung "
        "base; regrown at its half level",
    )


# -- public ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganMasks:
    """Organ masks on one grid, with how each was found.

    Attributes
    ----------
    masks : dict of str to numpy.ndarray of bool
        Each of shape (n_slices, n_rows, n_columns) of :attr:`grid`. Names are the
        canonical structure names (``lungs``, ``red_marrow``, ``brain``, ``spleen``,
        ``kidneys``, ``urinary_bladder``) plus ``body``, ``bone`` and the reference
        spheres :data:`LIVER_REFERENCE` and :data:`BLOOD_POOL_REFERENCE`.
    method : dict of str to str
        How each mask was found (thresholds and rules), for the outputs.
    grid : Volume
        The volume whose grid the masks are on (the CT); its values are not used.
    not_found : dict of str to str
        Organs looked for but not found, with the reason.

    """

    masks: dict[str, Mask]
    method: dict[str, str]
    grid: Volume
    not_found: dict[str, str] = field(default_factory=dict)

    def volume(self, name: str) -> Volume:
        """The mask ``name`` as a boolean :class:`~immunopet.image.Volume` on :attr:`grid`."""
        if name not in self.masks:
            reason = self.not_found.get(name, "not segmented")
            raise InputError(
                f"no {name!r} mask: {reason}",
                field="name",
                hint=f"use one of {sorted(self.masks)} or supply the mask",
            )
        return self.grid.mask(self.masks[name])

    def union(self, names: Iterable[str]) -> Mask:
        """Union of the named masks that exist (others are skipped)."""
        result = np.zeros(self.grid.shape, dtype=bool)
        for name in names:
            if name in self.masks:
                result |= self.masks[name]
        return result

    def on_grid(self, target: Volume) -> OrganMasks:
        """The same masks resampled onto ``target``'s grid (linear, thresholded at 1/2)."""
        if self.grid.same_grid(target):
            return self
        masks = {
            name: np.asarray(self.grid.mask(mask).resample_to(target).array, dtype=bool)
            for name, mask in self.masks.items()
        }
        return OrganMasks(masks, dict(self.method), target, dict(self.not_found))


def segment_organs(ct: Volume, pet_suv: Volume | None = None) -> OrganMasks:
    """Segment body, lungs, bone/marrow, brain and reference regions from CT (+ PET).

    Classical rules, listed in the module text and recorded per organ in
    :attr:`OrganMasks.method`; PET (when given) finds what CT cannot separate
    from muscle without contrast (spleen, kidneys, bladder, a skull-less brain) and keeps the
    reference spheres away from hot spots.

    Parameters
    ----------
    ct : Volume
        CT in Hounsfield units (:attr:`Quantity.HOUNSFIELD`), shape (n_slices, n_rows,
        n_columns), any axial orientation.
    pet_suv : Volume, optional
        PET as SUV (body weight, lean body mass or surface area) in the same patient space;
        resampled onto the CT grid (linear) when its grid differs.

    Returns
    -------
    OrganMasks
        Masks on the CT grid.

    Raises
    ------
    InputError
        If ``ct`` is not in HU, ``pet_suv`` is not an SUV image, the grid is oblique, or no
        body is found.

    Notes
    -----
    The reference spheres follow PERCIST (Wahl et al., J Nucl Med 2009;50 Suppl 1:122S):
    a 3 cm sphere in the right liver, and here a 2 cm sphere in the blood pool between the
    lungs (PERCIST uses a 1 × 2 cm cylinder in the descending aorta).

    Examples
    --------
    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> hu = np.full((30, 40, 40), -1000.0)
    >>> hu[2:28, 5:35, 5:35] = 40.0  # a block of soft tissue
    >>> organs = segment_organs(Volume(hu, np.diag([10.0, 10.0, 10.0, 1.0]), Quantity.HOUNSFIELD))
    >>> round(float(organs.masks["body"].sum()) * 1e-3, 1), organs.not_found["lungs"]
    (23.4, 'no air inside the body')

    """
    if ct.quantity is not Quantity.HOUNSFIELD:
        raise InputError(
            f"segment_organs needs a CT in Hounsfield units, got quantity {ct.quantity.value!r}",
            path=ct.source,
            field="ct",
        )
    frame = _Frame.of(ct)
    suv: Floats | None = None
    if pet_suv is not None:
        if pet_suv.quantity not in _SUV_QUANTITIES:
            raise InputError(
                f"pet_suv must be an SUV image, got quantity {pet_suv.quantity.value!r}",
                path=pet_suv.source,
                field="pet_suv",
                hint="standardise the scan first (immunopet.quant.standardize_scan) and "
                "multiply by its SUV factor",
            )
        on_ct = pet_suv if pet_suv.same_grid(ct) else pet_suv.resample_to(ct)
        suv = np.asarray(frame.to_canonical(np.asarray(on_ct.array, dtype=np.float64)))
        suv = np.where(np.isfinite(suv), suv, 0.0)
    hu = np.asarray(frame.to_canonical(np.asarray(ct.array, dtype=np.float64)))
    context = _Context(frame, hu, suv)
    _body_from_ct(context)
    _lungs(context)
    _bone(context)
    _brain(context)
    _liver_reference(context)
    _blood_pool_reference(context)
    _kidneys(context)
    _spleen(context)
    _bladder(context)
    masks = {name: frame.from_canonical(mask) for name, mask in context.masks.items()}
    return OrganMasks(masks, dict(context.method), ct, dict(context.not_found))
