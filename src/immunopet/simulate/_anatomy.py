"""Analytic anatomy: an adult human and a mouse voxelised into a label map and a CT.

The shapes, organ masses, lymph-node stations and CT numbers live in
``data/anatomy.toml`` (each with its source); adult organ masses come from
``data/reference_organs.toml`` (ICRP Publication 89), the same masses the
dosimetry uses, so the phantom's organ volumes agree with the dose model.

Geometry: the label map and the CT are :class:`~immunopet.image.Volume` objects
in DICOM LPS with the patient head-first supine and centred at the origin.
Slices run along +z from the feet to the head (slice 0 is the most inferior),
rows along +y (anterior to posterior) and columns along +x (patient's right to
left), so the affine is a positive permutation-diagonal matrix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.units import G_PER_KG, ML_PER_MM3

__all__ = ["LesionSpec", "Phantom", "anatomy_sites", "build_phantom"]

Species = Literal["adult", "mouse"]
Sex = Literal["M", "F"]
ShapeKind = Literal["ellipsoid", "cylinder", "box"]

_TABLE = "anatomy.toml"
_REFERENCE_ORGANS = "reference_organs.toml"
_SEX_BLOCK = {"M": "male", "F": "female"}
_Vec3 = tuple[float, float, float]
#: Labels are uint8.
_MAX_LABELS = 256


@dataclass(frozen=True)
class LesionSpec:
    """A spherical lesion placed by name.

    Parameters
    ----------
    site : str
        A lymph-node station (``"inguinal_lymph_node_left"``), an organ
        (``"liver"``: the centre of its first part) or a named organ part
        (``"kidney_right"``, ``"spine"``). The lesion's centre is that position.
    diameter_mm : float
        Sphere diameter, mm.
    name : str
        Label name of the lesion in the phantom; unique, not a tissue name.

    """

    site: str
    diameter_mm: float
    name: str


@dataclass(frozen=True)
class _Shape:
    kind: ShapeKind
    centre_mm: _Vec3  # (x, y, z) LPS
    semi_axes_mm: _Vec3  # (a_x, a_y, a_z); cylinder: a_z is the half-length along z

    @property
    def volume_mm3(self) -> float:
        a, b, c = self.semi_axes_mm
        factor = {"ellipsoid": 4.0 / 3.0 * math.pi, "cylinder": 2.0 * math.pi, "box": 8.0}
        return factor[self.kind] * a * b * c

    def placed(self, lateral: float, axial: float, size: float) -> _Shape:
        """Move the centre by (lateral, lateral, axial) and multiply the semi-axes by ``size``."""
        x, y, z = self.centre_mm
        a, b, c = self.semi_axes_mm
        return _Shape(
            self.kind, (x * lateral, y * lateral, z * axial), (a * size, b * size, c * size)
        )

    def contains(
        self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], z: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.bool_]:
        """Whether the points (broadcast x, y, z, mm) are inside the shape."""
        u = (x - self.centre_mm[0]) / self.semi_axes_mm[0]
        v = (y - self.centre_mm[1]) / self.semi_axes_mm[1]
        w = (z - self.centre_mm[2]) / self.semi_axes_mm[2]
        if self.kind == "ellipsoid":
            inside: npt.NDArray[np.bool_] = u * u + v * v + w * w <= 1.0
        elif self.kind == "cylinder":
            inside = (u * u + v * v <= 1.0) & (np.abs(w) <= 1.0)
        else:
            inside = (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0) & (np.abs(w) <= 1.0)
        return inside


def _shape(entry: Mapping[str, Any]) -> _Shape:
    centre = tuple(float(v) for v in entry["centre_mm"])
    semi = tuple(float(v) for v in entry["semi_axes_mm"])
    return _Shape(entry["shape"], (centre[0], centre[1], centre[2]), (semi[0], semi[1], semi[2]))


@dataclass(frozen=True)
class _Grid:
    shape: tuple[int, int, int]  # (n_slices, n_rows, n_columns)
    spacing_mm: _Vec3  # (slice = z, row = y, column = x)

    @property
    def origin_mm(self) -> _Vec3:
        """LPS (x, y, z) of voxel (0, 0, 0): the grid is centred at the origin."""
        n_s, n_r, n_c = self.shape
        d_z, d_y, d_x = self.spacing_mm
        return (-(n_c - 1) / 2 * d_x, -(n_r - 1) / 2 * d_y, -(n_s - 1) / 2 * d_z)

    @property
    def affine(self) -> npt.NDArray[np.float64]:
        d_z, d_y, d_x = self.spacing_mm
        x0, y0, z0 = self.origin_mm
        return np.array(
            [[0.0, 0.0, d_x, x0], [0.0, d_y, 0.0, y0], [d_z, 0.0, 0.0, z0], [0.0, 0.0, 0.0, 1.0]]
        )

    def paint(self, labels: npt.NDArray[np.uint8], shape: _Shape, label: int) -> None:
        """Set ``label`` in the voxels whose centres are in ``shape`` (within its bounding box)."""
        origin = self.origin_mm
        spacing = (self.spacing_mm[2], self.spacing_mm[1], self.spacing_mm[0])  # x, y, z
        sizes = (self.shape[2], self.shape[1], self.shape[0])
        axes: list[npt.NDArray[np.float64]] = []
        bounds: list[slice] = []
        for centre, semi, start, step, size in zip(
            shape.centre_mm, shape.semi_axes_mm, origin, spacing, sizes, strict=True
        ):
            lo = max(math.ceil((centre - semi - start) / step), 0)
            hi = min(math.floor((centre + semi - start) / step), size - 1)
            if hi < lo:
                return
            axes.append(start + step * np.arange(lo, hi + 1, dtype=np.float64))
            bounds.append(slice(lo, hi + 1))
        x, y, z = axes
        inside = shape.contains(x[None, None, :], y[None, :, None], z[:, None, None])
        labels[bounds[2], bounds[1], bounds[0]][inside] = label


@dataclass(frozen=True)
class Phantom:
    """A voxelised virtual patient or mouse: label map, tissue table and CT.

    Attributes
    ----------
    label_map : Volume
        Integer labels (``uint8``) of shape (n_slices, n_rows, n_columns);
        0 is air. Quantity ``UNITLESS``.
    labels : dict of str to int
        Label id of every tissue and lesion name.
    volume_ml : dict of str to float
        Voxelised volume of each label, mL.
    mass_g : dict of str to float
        Voxelised volume times the tissue density, g.
    ct : Volume
        CT in Hounsfield units (``int16``, Quantity ``HOUNSFIELD``); on the label
        map's grid unless a ``ct_voxel_mm`` was asked for.
    sites : dict of str to tuple of float
        LPS position (x, y, z), mm, of every named site (stations, organs, parts)
        of this body.
    lesion_centres_mm : dict of str to tuple of float
        LPS centre of each lesion, by lesion name.
    species, sex : str
        What was built.
    weight_kg : float
        Body weight the outline was sized to.
    height_cm : float or None
        Height (adult only).

    """

    label_map: Volume
    labels: dict[str, int]
    volume_ml: dict[str, float]
    mass_g: dict[str, float]
    ct: Volume
    sites: dict[str, _Vec3] = field(repr=False)
    lesion_centres_mm: dict[str, _Vec3]
    species: Species
    sex: Sex
    weight_kg: float
    height_cm: float | None

    def mask(self, name: str) -> Volume:
        """Boolean mask Volume of the label ``name`` on the label map's grid."""
        if name not in self.labels:
            raise InputError(
                f"no label {name!r} in the phantom",
                field="name",
                hint=f"use one of {sorted(self.labels)}",
            )
        return self.label_map.mask(self.label_map.array == self.labels[name])

    @property
    def total_mass_g(self) -> float:
        """Mass of the body (every label but air), g."""
        return sum(m for name, m in self.mass_g.items() if name != "air")


def _voxel_spacing(voxel_mm: float | Sequence[float], argument: str) -> _Vec3:
    values = (
        [float(voxel_mm)] * 3 if isinstance(voxel_mm, int | float) else [float(v) for v in voxel_mm]
    )
    if len(values) != 3 or not all(math.isfinite(v) and v > 0.0 for v in values):
        raise InputError(
            f"{argument} must be a positive number or three (slice, row, column) spacings in mm, "
            f"got {voxel_mm!r}",
            field=argument,
        )
    return (values[0], values[1], values[2])


def _organ_target_ml(name: str, entry: Mapping[str, Any], sex: Sex) -> float | None:
    """Target volume of an organ, mL: mass / density (reference_organs.toml or inline)."""
    if "volume_ml" in entry:
        return float(entry["volume_ml"])
    if "reference" in entry:
        reference = read_toml(_REFERENCE_ORGANS)
        region = reference[_SEX_BLOCK[sex]]["regions"][entry["reference"]]
        density = float(region.get("density_g_per_ml", reference["soft_tissue_density_g_per_ml"]))
        return float(region["mass_g"]) / density
    if "mass_g" in entry:
        density = float(
            entry.get("density_g_per_ml", read_toml(_TABLE)["tissues"][name]["density_g_per_ml"])
        )
        return float(entry["mass_g"]) / density
    return None


def _body_scales(
    species: Species, sex: Sex, weight_kg: float | None, height_cm: float | None
) -> tuple[float, float, float, float | None]:
    """Return (lateral k, axial h, weight_kg, height_cm) of the body asked for."""
    block = read_toml(_TABLE)[species]
    reference = block["reference_body"][sex]
    weight = float(reference["weight_kg"]) if weight_kg is None else float(weight_kg)
    if not (math.isfinite(weight) and weight > 0.0):
        raise InputError(f"weight_kg must be positive, got {weight_kg!r}", field="weight_kg")
    height: float | None
    if species == "mouse":
        if height_cm is not None:
            raise InputError(
                "height_cm applies to the adult only", field="height_cm", hint="leave it out"
            )
        height, axial = None, 1.0
    else:
        height = float(reference["height_cm"]) if height_cm is None else float(height_cm)
        low, high = block["height_cm_range"]
        if not low <= height <= high:
            raise InputError(
                f"height_cm must be within [{low}, {high}], got {height_cm!r}", field="height_cm"
            )
        axial = height / float(block["layout_height_cm"])
    fixed_mm3 = sum(
        _shape(e).volume_mm3 for e in block["outline"] if not e.get("scales_with_weight", True)
    )
    scaled_mm3 = sum(
        _shape(e).volume_mm3 for e in block["outline"] if e.get("scales_with_weight", True)
    )
    lungs_ml = _organ_target_ml("lungs", block["organs"]["lungs"], sex) or 0.0
    lung_density = read_toml(_TABLE)["tissues"]["lungs"]["density_g_per_ml"]
    soft = read_toml(_TABLE)["tissues"]["muscle"]["density_g_per_ml"]
    body_ml = weight * G_PER_KG / soft + lungs_ml * (1.0 - lung_density / soft)
    scaled_ml = body_ml - fixed_mm3 * axial * ML_PER_MM3
    lateral = math.sqrt(max(scaled_ml, 0.0) / (scaled_mm3 * axial * ML_PER_MM3))
    low, high = block["lateral_scale_range"]
    if not low <= lateral <= high:
        raise InputError(
            f"weight_kg={weight:g} with this height gives a body {lateral:.2f} times the "
            f"reference width, outside the modelled [{low}, {high}]",
            field="weight_kg",
            hint="choose a weight and height closer to the reference body",
        )
    return lateral, axial, weight, height


def _layout(
    species: Species, sex: Sex, lateral: float, axial: float
) -> tuple[dict[str, list[_Shape]], dict[str, _Vec3]]:
    """Shapes of every tissue (placed and sized) and the LPS position of every named site."""
    block = read_toml(_TABLE)[species]
    sites: dict[str, _Vec3] = {}
    organ_shapes: dict[str, list[_Shape]] = {"fat": [], "muscle": []}
    for entry in block["outline"]:
        shape, fat_mm = _shape(entry), float(entry["fat_mm"])
        width = lateral if entry.get("scales_with_weight", True) else 1.0
        x, y, z = shape.centre_mm
        a, b, c = shape.semi_axes_mm
        centre = (x * lateral, y * lateral, z * axial)
        organ_shapes["fat"].append(_Shape(shape.kind, centre, (a * width, b * width, c * axial)))
        inner = ((a - fat_mm) * width, (b - fat_mm) * width, c * axial)
        organ_shapes["muscle"].append(_Shape(shape.kind, centre, inner))
    for name, entry in block["organs"].items():
        parts = [_shape(p) for p in entry["parts"]]
        target_ml = _organ_target_ml(name, entry, sex)
        drawn_ml = sum(p.volume_mm3 for p in parts) * ML_PER_MM3
        size = 1.0 if target_ml is None else (target_ml / drawn_ml) ** (1.0 / 3.0)
        organ_shapes[name] = [p.placed(lateral, axial, size) for p in parts]
        sites[name] = organ_shapes[name][0].centre_mm
        for raw, placed in zip(entry["parts"], organ_shapes[name], strict=True):
            if "site" in raw:
                sites[raw["site"]] = placed.centre_mm
    for place, position in block.get("soft_tissue_sites", {}).items():
        x, y, z = (float(v) for v in position)
        sites[place] = (x * lateral, y * lateral, z * axial)
    node_radius = float(block["node_diameter_mm"]) / 2.0
    organ_shapes["lymph_node"] = []
    for station, position in block["stations"].items():
        x, y, z = (float(v) for v in position)
        sites[station] = (x * lateral, y * lateral, z * axial)
        organ_shapes["lymph_node"].append(_Shape("ellipsoid", sites[station], (node_radius,) * 3))
    return organ_shapes, sites


def anatomy_sites(species: Species, sex: Sex = "M") -> tuple[str, ...]:
    """Names of the sites a lesion can be placed at (organs, organ parts, lymph-node stations).

    Examples
    --------
    >>> "inguinal_lymph_node_left" in anatomy_sites("adult")
    True

    """
    return tuple(sorted(_layout(species, sex, 1.0, 1.0)[1]))


def build_phantom(
    species: Species = "adult",
    *,
    voxel_mm: float | Sequence[float] | None = None,
    sex: Sex = "M",
    weight_kg: float | None = None,
    height_cm: float | None = None,
    lesions: Sequence[LesionSpec] = (),
    ct_voxel_mm: float | Sequence[float] | None = None,
) -> Phantom:
    """Voxelise the analytic adult or mouse of ``data/anatomy.toml``.

    Organs keep their reference volumes (adult: ICRP 89 masses of
    ``reference_organs.toml`` for ``sex``; mouse: the masses in
    ``anatomy.toml``) whatever the body size; the body outline and the organ
    positions scale with ``height_cm`` (along z) and with the width that holds
    ``weight_kg`` (along x and y); see the header of ``anatomy.toml``. At the
    default voxel sizes each organ's voxelised volume is within 5 % of its
    target (tested).

    Parameters
    ----------
    species : {"adult", "mouse"}
        Which body.
    voxel_mm : float or sequence of 3 floats, optional
        Voxel size, mm (one number: isotropic; three: slice, row, column).
        Default 4 mm (adult) or 0.5 mm (mouse).
    sex : {"M", "F"}
        Reference body and organ masses (adult). Ignored for the mouse.
    weight_kg : float, optional
        Body weight; default the reference (73 / 60 kg adult, 0.025 kg mouse).
    height_cm : float, optional
        Height (adult only); default the reference (176 / 163 cm).
    lesions : sequence of LesionSpec
        Spheres placed at named sites; they override every tissue.
    ct_voxel_mm : float or sequence of 3 floats, optional
        Voxel size of the CT when it should be finer than the label map (same
        field of view, centred at the origin); default the label map's grid.

    Returns
    -------
    Phantom

    Raises
    ------
    InputError
        Unknown site (the message lists the valid ones), duplicate or reserved
        lesion names, non-positive sizes, or a body size outside the modelled
        range.

    Examples
    --------
    >>> p = build_phantom("mouse", voxel_mm=1.0,
    ...                   lesions=[LesionSpec("inguinal_lymph_node_left", 3.0, "tumour")])
    >>> p.labels["liver"] > 0, p.label_map.same_grid(p.ct), round(p.volume_ml["liver"], 1)
    (True, True, 1.3)

    """
    if species not in ("adult", "mouse"):
        raise InputError(f"species must be 'adult' or 'mouse', got {species!r}", field="species")
    if sex not in _SEX_BLOCK:
        raise InputError(f"sex must be 'M' or 'F', got {sex!r}", field="sex")
    table = read_toml(_TABLE)
    block = table[species]
    spacing = _voxel_spacing(
        block["default_voxel_mm"] if voxel_mm is None else voxel_mm, "voxel_mm"
    )
    lateral, axial, weight, height = _body_scales(species, sex, weight_kg, height_cm)

    tissue_names = [name for name in table["tissues"] if name != "lesion"]
    labels = {name: index for index, name in enumerate(tissue_names)}  # air = 0
    organ_shapes, sites = _layout(species, sex, lateral, axial)
    painted: list[tuple[_Shape, int]] = []
    for name in table["priority"]:
        painted.extend((shape, labels[name]) for shape in organ_shapes.get(name, []))

    lesion_centres: dict[str, _Vec3] = {}
    for lesion in lesions:
        if lesion.site not in sites:
            raise InputError(
                f"unknown lesion site {lesion.site!r}",
                field="LesionSpec.site",
                hint=f"use one of {sorted(sites)}",
            )
        if lesion.name in labels:
            raise InputError(
                f"lesion name {lesion.name!r} is already a tissue or lesion name",
                field="LesionSpec.name",
                hint="give each lesion its own name",
            )
        if not (math.isfinite(lesion.diameter_mm) and lesion.diameter_mm > 0.0):
            raise InputError(
                f"lesion {lesion.name!r}: diameter_mm must be positive, got {lesion.diameter_mm!r}",
                field="LesionSpec.diameter_mm",
            )
        labels[lesion.name] = len(labels)
        lesion_centres[lesion.name] = sites[lesion.site]
        radius = lesion.diameter_mm / 2.0
        painted.append(
            (_Shape("ellipsoid", sites[lesion.site], (radius,) * 3), labels[lesion.name])
        )
    if len(labels) > _MAX_LABELS:
        raise InputError(
            f"too many lesions ({len(lesions)}); at most {_MAX_LABELS - len(tissue_names)}",
            field="lesions",
        )

    fat_shapes = organ_shapes["fat"]
    grid = _grid_for(fat_shapes, spacing)
    label_array = _voxelise(grid, painted)
    label_map = Volume(label_array, grid.affine, Quantity.UNITLESS, source=f"phantom:{species}")

    hu = np.empty(len(labels), dtype=np.int16)
    density = np.empty(len(labels), dtype=np.float64)
    for name, index in labels.items():
        row = table["tissues"]["lesion" if name in lesion_centres else name]
        hu[index] = row["hu"]
        density[index] = row["density_g_per_ml"]
    counts = np.bincount(label_array.ravel(), minlength=len(labels))
    volume_ml = {name: float(counts[i]) * label_map.voxel_volume_ml for name, i in labels.items()}
    mass_g = {name: volume_ml[name] * float(density[i]) for name, i in labels.items()}

    if ct_voxel_mm is None:
        ct = label_map.with_array(hu[label_array], Quantity.HOUNSFIELD)
    else:
        fine = _voxel_spacing(ct_voxel_mm, "ct_voxel_mm")
        ct_grid = _grid_for(fat_shapes, fine)
        ct = Volume(
            hu[_voxelise(ct_grid, painted)],
            ct_grid.affine,
            Quantity.HOUNSFIELD,
            source=f"phantom:{species}",
        )
    return Phantom(
        label_map=label_map,
        labels=labels,
        volume_ml=volume_ml,
        mass_g=mass_g,
        ct=ct,
        sites=sites,
        lesion_centres_mm=lesion_centres,
        species=species,
        sex=sex,
        weight_kg=weight,
        height_cm=height,
    )


def _grid_for(outline: Sequence[_Shape], spacing: _Vec3) -> _Grid:
    """Grid centred at the origin holding the outline plus two voxels; square in-plane."""
    extent = [0.0, 0.0, 0.0]  # half-extents along x, y, z
    for shape in outline:
        for axis in range(3):
            far = abs(shape.centre_mm[axis]) + shape.semi_axes_mm[axis]
            extent[axis] = max(extent[axis], far)
    d_z, d_y, d_x = spacing
    n_slices = 2 * math.ceil(extent[2] / d_z) + 5
    in_plane = max(extent[0], extent[1])
    n_rows = 2 * math.ceil(in_plane / d_y) + 5
    n_columns = 2 * math.ceil(in_plane / d_x) + 5
    return _Grid((n_slices, n_rows, n_columns), spacing)


def _voxelise(grid: _Grid, painted: Sequence[tuple[_Shape, int]]) -> npt.NDArray[np.uint8]:
    labels = np.zeros(grid.shape, dtype=np.uint8)
    for shape, label in painted:
        grid.paint(labels, shape, label)
    return labels
