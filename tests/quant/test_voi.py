"""VOI statistics: values from geometry and analytic truth."""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.quant import VoiStatistics, voi_statistics
from immunopet.quant._voi import sphere_kernel

#: Radius of a 1 mL (1000 mm³) sphere, mm, written out independently of the code.
RADIUS_1ML_MM = (3.0 * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


def make_volume(
    array: npt.NDArray[np.float64],
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
    quantity: Quantity = Quantity.ACTIVITY_CONCENTRATION,
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Volume:
    affine = np.diag([*spacing_mm, 1.0])
    affine[:3, 3] = origin_mm
    return Volume(array, affine, quantity, source="image.dcm")


def box_mask(image: Volume, *slices: slice, source: str = "lesion.nii.gz") -> Volume:
    inside = np.zeros(image.shape, dtype=bool)
    inside[slices] = True
    return image.mask(inside).with_array(inside, source=source)


def brute_force_peak(
    array: npt.NDArray[np.float64], inside: npt.NDArray[np.bool_], kernel: npt.NDArray[np.float64]
) -> float:
    """Explicit loop over centres; voxels outside the array or non-finite carry no weight."""
    half = [n // 2 for n in kernel.shape]
    pad = [(h, h) for h in half]
    values = np.pad(np.where(np.isfinite(array), array, 0.0), pad)
    valid = np.pad(np.isfinite(array), pad).astype(np.float64)
    best = -math.inf
    for i, j, k in np.argwhere(inside):
        window = (
            slice(i, i + kernel.shape[0]),
            slice(j, j + kernel.shape[1]),
            slice(k, k + kernel.shape[2]),
        )
        mean = float((kernel * values[window]).sum() / (kernel * valid[window]).sum())
        best = max(best, mean)
    return best


# -- plain statistics -------------------------------------------------------------------


def test_uniform_cube_on_anisotropic_grid() -> None:
    image = make_volume(np.full((10, 10, 10), 3.0), spacing_mm=(2.0, 3.0, 4.0))
    stats = voi_statistics(image, box_mask(image, slice(2, 5), slice(3, 7), slice(1, 6)))
    n_voxels = 3 * 4 * 5
    voxel_ml = 2.0 * 3.0 * 4.0 / 1000.0
    assert stats.n_voxels == n_voxels
    assert stats.volume_ml == pytest.approx(n_voxels * voxel_ml, rel=1e-12)
    assert (stats.mean, stats.sd, stats.max, stats.min) == (3.0, 0.0, 3.0, 3.0)
    assert stats.peak == pytest.approx(3.0, rel=1e-12)
    assert stats.total == pytest.approx(3.0 * n_voxels * voxel_ml, rel=1e-12)
    assert (stats.total_unit, stats.unit, stats.quantity) == (
        "Bq",
        "Bq/mL",
        "activity_concentration",
    )
    assert stats.peak_sphere_volume_ml == 1.0


def test_total_activity_by_hand() -> None:
    values = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[7.0, 8.0, 9.0], [10.0, 11.0, 12.0]]])
    inside = np.array(
        [[[True, False, True], [False, False, True]], [[False, True, False], [True, False, False]]]
    )
    image = make_volume(values, spacing_mm=(2.0, 2.0, 2.5))
    stats = voi_statistics(image, image.mask(inside))
    # Inside: 1 + 3 + 6 + 8 + 10 = 28 Bq/mL over 5 voxels of 2 x 2 x 2.5 mm = 0.01 mL.
    assert stats.n_voxels == 5
    assert stats.total == pytest.approx(28.0 * 0.01, rel=1e-12)
    assert stats.volume_ml == pytest.approx(0.05, rel=1e-12)
    assert stats.mean == pytest.approx(28.0 / 5.0, rel=1e-12)
    assert stats.max == 10.0
    assert stats.min == 1.0
    assert stats.max_lps_mm == (2.0, 2.0, 0.0)  # index (1, 1, 0) times the spacing
    assert stats.sd == pytest.approx(np.std([1.0, 3.0, 6.0, 8.0, 10.0], ddof=1), rel=1e-12)


@pytest.mark.parametrize(
    ("quantity", "total_unit"),
    [
        (Quantity.ACTIVITY_CONCENTRATION, "Bq"),
        (Quantity.SUV_BW, "g"),
        (Quantity.SUV_LBM, "g"),
        (Quantity.SUV_BSA, "cm2"),
        (Quantity.PERCENT_ID_PER_ML, "%"),
        (Quantity.PERCENT_ID_PER_G, "%/g.mL"),
        (Quantity.COUNTS, "{counts}.mL"),
    ],
)
def test_total_unit_follows_the_quantity(quantity: Quantity, total_unit: str) -> None:
    image = make_volume(np.full((3, 3, 3), 2.0), spacing_mm=(2.0, 2.0, 2.0), quantity=quantity)
    stats = voi_statistics(image, box_mask(image, slice(1, 2), slice(1, 2), slice(1, 2)))
    assert stats.total_unit == total_unit
    assert stats.unit == quantity.unit
    assert stats.total == pytest.approx(2.0 * 0.008, rel=1e-12)


def test_one_voxel_sd_is_nan_and_as_dict_is_strict_json() -> None:
    image = make_volume(np.arange(27.0).reshape(3, 3, 3), quantity=Quantity.SUV_BW)
    stats = voi_statistics(image, box_mask(image, slice(1, 2), slice(1, 2), slice(2, 3)))
    assert math.isnan(stats.sd)
    assert (stats.mean, stats.max, stats.min) == (14.0, 14.0, 14.0)
    record = stats.as_dict()
    assert record["sd"] is None
    assert record["max_lps_mm"] == [1.0, 1.0, 2.0]
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert set(record) == set(VoiStatistics.__dataclass_fields__)


# -- the sphere kernel ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "spacing_mm",
    [(1.0, 1.0, 1.0), (2.0, 2.0, 3.0), (4.0, 4.0, 4.0), (2.04, 2.04, 3.27), (0.7, 1.3, 5.0)],
)
def test_kernel_volume_is_one_ml(spacing_mm: tuple[float, float, float]) -> None:
    kernel = sphere_kernel(spacing_mm, 1.0)
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    assert float(kernel.sum()) * voxel_ml == pytest.approx(1.0, rel=0.01)
    assert np.array_equal(kernel, kernel[::-1, ::-1, ::-1])
    assert np.array_equal(kernel, kernel[::-1, :, :])
    assert np.all((kernel >= 0.0) & (kernel <= 1.0))
    assert kernel.shape == tuple(2 * math.floor(RADIUS_1ML_MM / s + 0.5) + 1 for s in spacing_mm)
    assert not kernel.flags.writeable


def test_kernel_weights_follow_geometry() -> None:
    spacing_mm = np.array([2.0, 2.0, 3.0])
    kernel = sphere_kernel(spacing_mm, 1.0)
    centre = np.array(kernel.shape) // 2
    # Independent estimate: the fraction of a 32 x 32 x 32 lattice of points in each voxel
    # that lies inside the sphere.
    lattice = (np.arange(32) + 0.5) / 32 - 0.5
    for index in np.ndindex(kernel.shape):
        offset = np.array(index) - centre
        nearest_mm = np.linalg.norm(np.clip(np.abs(offset) - 0.5, 0.0, None) * spacing_mm)
        farthest_mm = np.linalg.norm((np.abs(offset) + 0.5) * spacing_mm)
        if farthest_mm <= RADIUS_1ML_MM:
            assert kernel[index] == 1.0
        elif nearest_mm >= RADIUS_1ML_MM:
            assert kernel[index] == 0.0
        else:
            s, r, c = ((offset[axis] + lattice) * spacing_mm[axis] for axis in range(3))
            squared = s[:, None, None] ** 2 + r[None, :, None] ** 2 + c[None, None, :] ** 2
            fraction = float(np.mean(squared <= RADIUS_1ML_MM**2))
            assert kernel[index] == pytest.approx(fraction, abs=0.02)


def test_kernel_of_another_volume() -> None:
    kernel = sphere_kernel((2.0, 2.0, 2.0), 8.0)
    assert float(kernel.sum()) * 0.008 == pytest.approx(8.0, rel=0.01)


# -- peak -----------------------------------------------------------------------------------


def test_peak_of_a_uniform_region_larger_than_the_sphere() -> None:
    array = np.zeros((40, 40, 40))
    array[10:30, 10:30, 10:30] = 5.0
    image = make_volume(array)
    stats = voi_statistics(image, box_mask(image, slice(10, 30), slice(10, 30), slice(10, 30)))
    assert stats.peak == pytest.approx(5.0, rel=1e-12)
    # Only centres at least the radius from the region's faces see no zeros.
    centre_index = image.lps_to_index(stats.peak_center_lps_mm)
    assert np.all(centre_index >= 10 + RADIUS_1ML_MM - 0.5)
    assert np.all(centre_index <= 29 - RADIUS_1ML_MM + 0.5)


def test_peak_sphere_extends_beyond_a_one_voxel_mask() -> None:
    array = np.zeros((40, 40, 40))
    array[10:30, 10:30, 10:30] = 5.0
    image = make_volume(array, spacing_mm=(2.0, 1.5, 1.0))
    stats = voi_statistics(image, box_mask(image, slice(20, 21), slice(20, 21), slice(20, 21)))
    assert stats.peak == pytest.approx(5.0, rel=1e-12)
    assert stats.peak_center_lps_mm == (40.0, 30.0, 20.0)


@pytest.mark.parametrize("sphere_ml", [1.0, 8.0])
def test_peak_of_a_single_hot_voxel(sphere_ml: float) -> None:
    value = 7.0e4
    array = np.zeros((41, 41, 41))
    array[20, 20, 20] = value
    image = make_volume(array)
    stats = voi_statistics(
        image,
        box_mask(image, slice(15, 26), slice(15, 26), slice(15, 26)),
        peak_sphere_volume_ml=sphere_ml,
    )
    # The hot voxel lies wholly inside the best sphere, which holds sphere_ml / 1 mm³ voxels.
    sphere_voxels = sphere_ml * 1000.0
    assert stats.peak == pytest.approx(value / sphere_voxels, rel=0.02)
    assert stats.peak == pytest.approx(value / float(sphere_kernel((1, 1, 1), sphere_ml).sum()))
    assert stats.max == value
    assert stats.max_lps_mm == (20.0, 20.0, 20.0)
    distance_mm = math.dist(stats.peak_center_lps_mm, stats.max_lps_mm)
    assert distance_mm <= RADIUS_1ML_MM * sphere_ml ** (1.0 / 3.0)
    assert stats.peak_sphere_volume_ml == sphere_ml


def test_peak_reaches_hot_voxels_outside_the_mask_in_a_large_volume() -> None:
    array = np.zeros((30, 80, 80))
    array[15, 40, 44] = 1000.0  # 4 mm from the mask voxel: wholly inside its sphere
    array[15, 40, 30] = 1.0e6  # 10 mm away: outside every sphere centred in the mask
    image = make_volume(array)
    stats = voi_statistics(image, box_mask(image, slice(15, 16), slice(40, 41), slice(40, 41)))
    assert stats.peak == pytest.approx(1000.0 / 1000.0, rel=0.02)
    assert stats.max == 0.0


def test_peak_of_a_linear_ramp_is_the_highest_centre_value() -> None:
    # x (LPS) decreases along the columns: x = 30 - 2 * column. Slices run along z, rows
    # along y. The mask's spheres all lie inside the image, and a symmetric sphere's mean
    # of a linear function is its value at the centre: the peak is the largest x of the mask.
    affine = np.array(
        [
            [0.0, 0.0, -2.0, 30.0],
            [0.0, 2.5, 0.0, -5.0],
            [3.0, 0.0, 0.0, 10.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    grid = Volume(np.zeros((20, 20, 30)), affine, Quantity.UNITLESS)
    x_mm = grid.index_to_lps(np.moveaxis(np.indices(grid.shape), 0, -1))[..., 0]
    image = grid.with_array(x_mm)
    stats = voi_statistics(image, box_mask(image, slice(5, 15), slice(5, 15), slice(5, 20)))
    assert stats.max == 20.0  # column 5
    assert stats.peak == pytest.approx(20.0, rel=1e-12)
    assert stats.peak_center_lps_mm[0] == pytest.approx(20.0, abs=1e-9)
    assert stats.mean == pytest.approx(30.0 - 2.0 * 12.0, rel=1e-12)  # mean column 12


def test_peak_near_the_field_of_view_edge_uses_only_voxels_inside_it() -> None:
    image = make_volume(np.full((12, 12, 12), 4.0), spacing_mm=(2.0, 2.0, 2.0))
    stats = voi_statistics(image, box_mask(image, slice(0, 1), slice(0, 1), slice(0, 1)))
    assert stats.peak == pytest.approx(4.0, rel=1e-12)


def test_ramp_truncated_by_the_field_of_view() -> None:
    # x = 2 * column; the mask reaches the last column. There the sphere loses its hot
    # side, so the peak lies below the largest x but no lower than the x of the deepest
    # centre whose sphere is whole.
    columns = np.broadcast_to(2.0 * np.arange(20.0), (10, 10, 20)).copy()
    image = make_volume(columns, spacing_mm=(2.0, 2.0, 2.0))
    inside = (slice(3, 7), slice(3, 7), slice(10, 20))
    stats = voi_statistics(image, box_mask(image, *inside))
    kernel = sphere_kernel((2.0, 2.0, 2.0), 1.0)
    half = kernel.shape[2] // 2
    assert 2.0 * (19 - half) <= stats.peak < 38.0
    mask_array = np.zeros(image.shape, dtype=bool)
    mask_array[inside] = True
    assert stats.peak == pytest.approx(brute_force_peak(columns, mask_array, kernel), rel=1e-12)


# -- masks on other grids ------------------------------------------------------------------


@pytest.fixture
def image_and_mask() -> tuple[Volume, Volume]:
    rng = np.random.default_rng(20261124)
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    affine[:3, 3] = (-10.0, 5.0, 20.0)
    image = Volume(rng.gamma(2.0, 1.5, size=(12, 14, 16)), affine, Quantity.SUV_BW)
    index = np.indices(image.shape)
    centre = np.array([6.0, 7.0, 8.0])[:, None, None, None]
    semi_axes = np.array([4.0, 3.5, 5.0])[:, None, None, None]
    inside = (((index - centre) / semi_axes) ** 2).sum(axis=0) <= 1.0
    return image, image.mask(inside)


def test_mask_on_a_grid_with_half_the_spacing(image_and_mask: tuple[Volume, Volume]) -> None:
    image, mask = image_and_mask
    fine_array = mask.array.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    fine_affine = image.affine.copy()
    fine_affine[:3, :3] /= 2.0
    fine_affine[:3, 3] -= image.affine[:3, :3].sum(axis=1) / 4.0  # centre of the first sub-voxel
    fine_mask = Volume(fine_array, fine_affine, Quantity.MASK)
    assert not image.same_grid(fine_mask)
    assert voi_statistics(image, fine_mask) == voi_statistics(image, mask)


def test_mask_with_reversed_slices_and_permuted_axes(
    image_and_mask: tuple[Volume, Volume],
) -> None:
    image, mask = image_and_mask
    expected = voi_statistics(image, mask)
    reversed_affine = image.affine.copy()
    reversed_affine[:3, 0] *= -1.0
    reversed_affine[:3, 3] = image.index_to_lps([image.shape[0] - 1, 0, 0])
    reversed_mask = Volume(mask.array[::-1].copy(), reversed_affine, Quantity.MASK)
    assert voi_statistics(image, reversed_mask) == expected
    permuted_affine = image.affine.copy()
    permuted_affine[:, [0, 1, 2]] = image.affine[:, [2, 0, 1]]
    permuted_mask = Volume(mask.array.transpose(2, 0, 1).copy(), permuted_affine, Quantity.MASK)
    assert voi_statistics(image, permuted_mask) == expected


# -- errors ---------------------------------------------------------------------------------


def test_empty_mask_is_an_error() -> None:
    image = make_volume(np.ones((4, 4, 4)))
    with pytest.raises(InputError, match=r"lesion\.nii\.gz holds no voxel"):
        voi_statistics(image, box_mask(image, slice(0, 0)))


def test_mask_outside_the_image_is_an_error() -> None:
    image = make_volume(np.ones((4, 4, 4)))
    far_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    far_affine[:3, 3] = 500.0
    far = Volume(np.ones((4, 4, 4), dtype=bool), far_affine, Quantity.MASK, source="far.nii")
    with pytest.raises(InputError, match="after resampling"):
        voi_statistics(image, far)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_voxel_inside_the_mask_is_an_error(bad: float) -> None:
    array = np.ones((5, 5, 5))
    array[2, 3, 1] = bad
    image = make_volume(array)
    with pytest.raises(InputError, match=r"1 of 27 voxels .* index \[2, 3, 1\]"):
        voi_statistics(image, box_mask(image, slice(1, 4), slice(1, 4), slice(0, 3)))


def test_non_finite_voxel_outside_the_mask_is_left_out_of_the_peak() -> None:
    array = np.full((9, 9, 9), 2.0)
    array[4, 4, 5] = math.nan
    image = make_volume(array)
    stats = voi_statistics(image, box_mask(image, slice(4, 5), slice(4, 5), slice(4, 5)))
    assert stats.peak == pytest.approx(2.0, rel=1e-12)


def test_an_image_is_not_a_mask() -> None:
    image = make_volume(np.ones((3, 3, 3)))
    with pytest.raises(InputError, match="boolean mask"):
        voi_statistics(image, image)


# -- properties ----------------------------------------------------------------------------

shapes = hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=5)


@st.composite
def image_and_inside(
    draw: st.DrawFn,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], tuple[float, float, float]]:
    shape = draw(shapes)
    values = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1.0e3, 1.0e3, allow_nan=False)))
    inside = draw(hnp.arrays(np.bool_, shape).filter(lambda a: bool(a.any())))
    spacing = draw(st.tuples(*[st.sampled_from([1.0, 2.0, 3.3, 4.0])] * 3))
    return values, inside, spacing


@settings(max_examples=50, deadline=None)
@given(image_and_inside())
def test_statistics_match_numpy(
    case: tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], tuple[float, float, float]],
) -> None:
    values, inside, spacing = case
    image = make_volume(values, spacing_mm=spacing)
    stats = voi_statistics(image, image.mask(inside))
    chosen = values[inside]
    voxel_ml = float(np.prod(spacing)) / 1000.0
    assert stats.n_voxels == chosen.size
    assert stats.max == chosen.max()
    assert stats.min == chosen.min()
    assert stats.mean == pytest.approx(chosen.mean(), rel=1e-9, abs=1e-9)
    if chosen.size > 1:
        assert stats.sd == pytest.approx(chosen.std(ddof=1), rel=1e-9, abs=1e-9)
    else:
        assert math.isnan(stats.sd)
    assert stats.volume_ml == pytest.approx(chosen.size * voxel_ml, rel=1e-12)
    assert stats.total == pytest.approx(chosen.sum() * voxel_ml, rel=1e-9, abs=1e-9)
    kernel = sphere_kernel(spacing, 1.0)
    assert stats.peak == pytest.approx(brute_force_peak(values, inside, kernel), rel=1e-9, abs=1e-9)
    assert values.min() - 1e-9 <= stats.peak <= values.max() + 1e-9
