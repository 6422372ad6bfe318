"""The analytic adult and mouse: organ volumes, positions, lesions, CT numbers and geometry.

Expected organ volumes are the reference masses of ``reference_organs.toml`` (ICRP 89) divided
by their densities, computed here from that table, never from the phantom builder.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import Quantity
from immunopet.simulate._anatomy import LesionSpec, Phantom, build_phantom

#: Organ voxel volume vs reference volume at the default voxel size (4 mm adult, 0.5 mm mouse).
ORGAN_TOLERANCE = 0.05
#: Sphere voxel volume vs 4/3 pi r^3 when the radius spans at least three voxels.
SPHERE_TOLERANCE = 0.10
ADULT_ORGANS = ("liver", "spleen", "kidneys", "lungs", "heart", "brain", "red_marrow")
LESION = LesionSpec("inguinal_lymph_node_left", 25.0, "inguinal_tumour")
LIVER_LESION = LesionSpec("liver", 30.0, "liver_metastasis")


@pytest.fixture(scope="module")
def adult() -> Phantom:
    return build_phantom("adult", lesions=[LESION, LIVER_LESION])


@pytest.fixture(scope="module")
def mouse() -> Phantom:
    return build_phantom(
        "mouse", voxel_mm=0.5, lesions=[LesionSpec("axillary_lymph_node_right", 3.0, "node")]
    )


def reference_volume_ml(sex: str, organ: str) -> float:
    table = read_toml("reference_organs.toml")
    region = table[{"M": "male", "F": "female"}[sex]]["regions"][organ]
    density = region.get("density_g_per_ml", table["soft_tissue_density_g_per_ml"])
    return float(region["mass_g"]) / float(density)


def centroid_lps(phantom: Phantom, name: str) -> np.ndarray:
    index = np.argwhere(phantom.label_map.array == phantom.labels[name]).mean(axis=0)
    return phantom.label_map.index_to_lps(index)


@pytest.mark.parametrize("sex", ["M", "F"])
def test_adult_organ_volumes_match_icrp89_masses(sex: str) -> None:
    phantom = build_phantom("adult", sex=sex)
    for organ in ADULT_ORGANS:
        expected = reference_volume_ml(sex, organ)
        assert phantom.volume_ml[organ] == pytest.approx(expected, rel=ORGAN_TOLERANCE), organ


@pytest.mark.parametrize(
    ("sex", "weight_kg", "height_cm"),
    [("M", 73.0, 176.0), ("F", 60.0, 163.0), ("M", 95.0, 185.0), ("F", 52.0, 168.0)],
)
def test_adult_body_has_the_weight_and_height_asked_and_reference_organs(
    sex: str, weight_kg: float, height_cm: float
) -> None:
    phantom = build_phantom("adult", sex=sex, weight_kg=weight_kg, height_cm=height_cm)  # type: ignore[arg-type]
    assert phantom.total_mass_g == pytest.approx(1000.0 * weight_kg, rel=0.03)
    assert phantom.volume_ml["liver"] == pytest.approx(reference_volume_ml(sex, "liver"), rel=0.05)
    grid = phantom.label_map
    body_slices = np.flatnonzero((grid.array != phantom.labels["air"]).any(axis=(1, 2)))
    length_mm = (body_slices.size + 1) * grid.spacing_mm[0]
    assert length_mm == pytest.approx(10.0 * height_cm, abs=2 * grid.spacing_mm[0])


def test_organs_lie_where_anatomy_says(adult: Phantom) -> None:
    x, y, z = 0, 1, 2
    liver, spleen = centroid_lps(adult, "liver"), centroid_lps(adult, "spleen")
    brain, heart = centroid_lps(adult, "brain"), centroid_lps(adult, "heart")
    bladder, kidneys = centroid_lps(adult, "urinary_bladder"), centroid_lps(adult, "kidneys")
    assert liver[x] < 0.0 < spleen[x]  # LPS: +x is the patient's left
    assert brain[z] > heart[z] > liver[z] > kidneys[z] > bladder[z]
    assert kidneys[y] > heart[y]  # kidneys posterior (+y) to the heart
    assert heart[x] > 0.0  # heart slightly to the left


def test_lesions_are_spheres_at_their_sites_and_override_organs(adult: Phantom) -> None:
    voxel = float(adult.label_map.spacing_mm.max())
    stations = read_toml("anatomy.toml")["adult"]["stations"]
    for lesion in (LESION, LIVER_LESION):
        expected_ml = 4.0 / 3.0 * math.pi * (lesion.diameter_mm / 2.0) ** 3 / 1000.0
        assert adult.volume_ml[lesion.name] == pytest.approx(expected_ml, rel=SPHERE_TOLERANCE)
    # The reference male is the layout's reference body: the station is where the table says.
    centre = centroid_lps(adult, LESION.name)
    assert np.all(np.abs(centre - np.array(stations[LESION.site])) <= voxel)
    assert np.allclose(centre, adult.lesion_centres_mm[LESION.name], atol=voxel)
    # The liver lesion sits inside the liver and replaces it where they overlap.
    at = np.round(adult.label_map.lps_to_index(adult.sites["liver"])).astype(int)
    assert adult.label_map.array[tuple(at)] == adult.labels[LIVER_LESION.name]


def test_ct_holds_the_table_hu_per_label(adult: Phantom) -> None:
    tissues = read_toml("anatomy.toml")["tissues"]
    assert adult.ct.quantity is Quantity.HOUNSFIELD
    assert adult.label_map.same_grid(adult.ct)
    for name, label in adult.labels.items():
        values = np.unique(adult.ct.array[adult.label_map.array == label])
        expected = tissues["lesion" if name in adult.lesion_centres_mm else name]["hu"]
        assert values.tolist() == [expected], name
    assert tissues["air"]["hu"] == -1000
    assert tissues["lungs"]["hu"] < tissues["fat"]["hu"] < 0 < tissues["liver"]["hu"]


def test_affine_is_lps_feet_to_head_centred_at_origin(adult: Phantom) -> None:
    grid = adult.label_map
    assert np.allclose(grid.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])  # slice→z, row→y, col→x
    assert np.allclose(grid.spacing_mm, 4.0)
    middle = (np.array(grid.shape) - 1) / 2.0
    assert np.allclose(grid.index_to_lps(middle), 0.0)
    assert grid.array.dtype == np.uint8
    assert adult.ct.array.dtype == np.int16


def test_mouse_builds_at_half_millimetre_with_a_25_g_body(mouse: Phantom) -> None:
    assert np.allclose(mouse.label_map.spacing_mm, 0.5)
    assert mouse.total_mass_g == pytest.approx(25.0, rel=0.03)
    # Organ masses of anatomy.toml: % of body mass (29 g male table) applied to 25 g.
    for organ, percent in {"liver": 5.18, "spleen": 0.38, "kidneys": 0.88, "heart": 0.50}.items():
        assert mouse.mass_g[organ] == pytest.approx(percent / 100 * 25.0, rel=ORGAN_TOLERANCE)
    assert mouse.mass_g["lungs"] == pytest.approx(0.74 / 100 * 25.0, rel=ORGAN_TOLERANCE)
    assert centroid_lps(mouse, "liver")[0] < 0.0 < centroid_lps(mouse, "spleen")[0]
    node_ml = 4.0 / 3.0 * math.pi * 1.5**3 / 1000.0
    assert mouse.volume_ml["node"] == pytest.approx(node_ml, rel=SPHERE_TOLERANCE)


def test_every_station_and_organ_is_a_site_inside_the_body() -> None:
    for species in ("adult", "mouse"):
        phantom = build_phantom(species)  # type: ignore[arg-type]
        stations = read_toml("anatomy.toml")[species]["stations"]
        assert {
            f"{s}_lymph_node_{side}"
            for s in (
                "cervical",
                "axillary",
                "mediastinal",
                "para_aortic",
                "mesenteric",
                "iliac",
                "inguinal",
            )
            for side in ("left", "right")
        } == set(stations)
        for site, position in phantom.sites.items():
            index = tuple(np.round(phantom.label_map.lps_to_index(position)).astype(int))
            assert phantom.label_map.array[index] != phantom.labels["air"], (species, site)


def test_unknown_site_lists_the_valid_ones() -> None:
    with pytest.raises(InputError, match="inguinal_lymph_node_left") as caught:
        build_phantom("mouse", voxel_mm=2.0, lesions=[LesionSpec("left_knee", 5.0, "x")])
    assert "left_knee" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lesions": [LesionSpec("liver", 10.0, "liver")]}, "already a tissue"),
        ({"lesions": [LesionSpec("liver", 0.0, "m")]}, "diameter_mm"),
        ({"height_cm": 9.0}, "height_cm"),
        ({"weight_kg": 250.0}, "weight_kg"),
        ({"voxel_mm": -1.0}, "voxel_mm"),
    ],
)
def test_bad_inputs_raise_input_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        build_phantom("adult", **kwargs)  # type: ignore[arg-type]


def test_mouse_refuses_a_height() -> None:
    with pytest.raises(InputError, match="height_cm"):
        build_phantom("mouse", height_cm=10.0)


def test_finer_ct_covers_the_same_field_of_view() -> None:
    phantom = build_phantom("mouse", voxel_mm=1.0, ct_voxel_mm=0.5)
    assert np.allclose(phantom.ct.spacing_mm, 0.5)
    assert np.allclose(phantom.ct.index_to_lps((np.array(phantom.ct.shape) - 1) / 2.0), 0.0)
    assert phantom.ct.shape[0] >= 2 * phantom.label_map.shape[0] - 5
    liver = np.round(phantom.ct.lps_to_index(phantom.sites["liver"])).astype(int)
    assert phantom.ct.array[tuple(liver)] == read_toml("anatomy.toml")["tissues"]["liver"]["hu"]


def test_mask_of_a_label_and_unknown_label() -> None:
    phantom = build_phantom("mouse", voxel_mm=1.0)
    mask = phantom.mask("liver")
    assert mask.quantity is Quantity.MASK
    assert mask.array.sum() * mask.voxel_volume_ml == pytest.approx(phantom.volume_ml["liver"])
    with pytest.raises(InputError, match="no label"):
        phantom.mask("pancreas")
