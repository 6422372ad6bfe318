"""Volume geometry validation and resampling against analytic truth."""

from __future__ import annotations

import numpy as np
import pytest

from immunopet.errors import GeometryError
from immunopet.image import Quantity, Volume, resample_to


def ramp_volume(affine: np.ndarray, shape: tuple[int, int, int]) -> Volume:
    """Values = 2x + 3y − z + 7 in LPS mm at each voxel centre (linear, so trilinear is exact)."""
    probe = Volume(np.zeros(shape, np.float64), affine, Quantity.UNITLESS)
    lps = probe.index_to_lps(np.stack(np.indices(shape), axis=-1))
    values = 2 * lps[..., 0] + 3 * lps[..., 1] - lps[..., 2] + 7
    return probe.with_array(values)


@pytest.mark.parametrize(
    ("affine", "message"),
    [
        (np.diag([1.0, 1.0, 0.0, 1.0]), "degenerate"),
        (np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "not orthogonal"),
        (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1.0]]), "last row"),
        (np.full((4, 4), np.nan), "NaN"),
        (np.eye(3), "shape"),
    ],
)
def test_bad_affines_are_refused(affine: np.ndarray, message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        Volume(np.zeros((2, 2, 2)), affine, Quantity.UNITLESS)


def test_masks_must_be_boolean_and_arrays_3d() -> None:
    with pytest.raises(GeometryError, match="boolean"):
        Volume(np.zeros((2, 2, 2)), np.eye(4), Quantity.MASK)
    with pytest.raises(GeometryError, match="3-D"):
        Volume(np.zeros((2, 2)), np.eye(4), Quantity.UNITLESS)


def test_geometry_properties() -> None:
    affine = np.array([[0, 0, 0.8, -10], [0, 0.8, 0, -20], [2.5, 0, 0, 30], [0, 0, 0, 1.0]])
    volume = Volume(np.zeros((4, 5, 6), np.float32), affine, Quantity.ACTIVITY_CONCENTRATION)
    assert volume.spacing_mm.tolist() == pytest.approx([2.5, 0.8, 0.8])
    assert volume.voxel_volume_ml == pytest.approx(2.5 * 0.8 * 0.8 / 1000)
    assert volume.unit == "Bq/mL"
    point = volume.index_to_lps([1, 2, 3])
    assert point.tolist() == pytest.approx([-10 + 2.4, -20 + 1.6, 30 + 2.5])
    assert volume.lps_to_index(point).tolist() == pytest.approx([1, 2, 3])


def test_resampling_a_linear_field_is_exact_on_any_grid() -> None:
    source = ramp_volume(
        np.diag([2.0, 1.5, 1.5, 1.0])
        + np.array([[0, 0, 0, -5], [0, 0, 0, 3], [0, 0, 0, 1], [0, 0, 0, 0]]),
        (20, 24, 24),
    )
    # Target: rotated 90° in plane, reversed slices, other spacing, inside the source's field.
    target_affine = np.array(
        [[0, 0, 1.0, 2.0], [0, -1.2, 0, 30.0], [-1.7, 0, 0, 30.0], [0, 0, 0, 1]]
    )
    target = ramp_volume(target_affine, (10, 15, 12))
    resampled = resample_to(source, target)
    assert resampled.same_grid(target)
    assert np.allclose(resampled.array, target.array, atol=1e-9)


def test_outside_the_field_of_view_gets_the_fill_value() -> None:
    source = Volume(np.ones((4, 4, 4)), np.eye(4), Quantity.UNITLESS)
    shifted = Volume(
        np.zeros((4, 4, 4)),
        np.eye(4) + np.array([[0, 0, 0, 100.0], [0] * 4, [0] * 4, [0] * 4]),
        Quantity.UNITLESS,
    )
    assert np.all(resample_to(source, shifted, fill_value=-1.0).array == -1.0)


def test_resampled_mask_keeps_its_volume() -> None:
    # A 20 mm sphere on a 1 mm grid resampled to 2 mm keeps its volume within a few per cent.
    fine_shape = (60, 60, 60)
    centre = np.array(fine_shape) / 2
    inside = np.sum((np.indices(fine_shape).T - centre) ** 2, axis=-1).T <= 20.0**2
    fine = Volume(inside, np.eye(4), Quantity.MASK)
    coarse = Volume(
        np.zeros((30, 30, 30)),
        np.diag([2.0, 2.0, 2.0, 1.0]) + np.array([[0, 0, 0, 0.5]] * 3 + [[0, 0, 0, 0]]),
        Quantity.UNITLESS,
    )
    resampled = fine.resample_to(coarse)
    assert resampled.array.dtype == np.bool_
    true_ml = 4 / 3 * np.pi * 20.0**3 / 1000
    assert resampled.array.sum() * resampled.voxel_volume_ml == pytest.approx(true_ml, rel=0.03)
