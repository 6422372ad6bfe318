"""CT-to-CT registration recovers a known patient repositioning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.lesions._register import Registration, register_ct
from immunopet.simulate import build_phantom


@pytest.fixture(scope="module")
def baseline_ct():  # type: ignore[no-untyped-def]
    return build_phantom("adult", voxel_mm=6.0).ct


def _moved(ct, rotation_deg: float, shift_mm: tuple[float, float, float]):  # type: ignore[no-untyped-def]
    # The same anatomy imaged with the patient rotated about S and shifted: a point p of the
    # baseline is at R p + d in the follow-up's coordinates.
    angle = math.radians(rotation_deg)
    rotation = np.array(
        [
            [math.cos(angle), -math.sin(angle), 0.0],
            [math.sin(angle), math.cos(angle), 0.0],
            [0, 0, 1],
        ]
    )
    move = np.eye(4)
    move[:3, :3] = rotation
    move[:3, 3] = shift_mm
    from immunopet.image import Volume

    return Volume(ct.array, move @ ct.affine, ct.quantity), move


@pytest.mark.parametrize("mode", ["rigid", "affine"])
def test_recovers_rotation_and_shift(baseline_ct, mode: str) -> None:  # type: ignore[no-untyped-def]
    followup, move = _moved(baseline_ct, 4.0, (15.0, -10.0, 24.0))
    result = register_ct(baseline_ct, followup, mode=mode)  # type: ignore[arg-type]
    expected = np.linalg.inv(move)
    # Points across the body, head to feet, map back to within half a voxel (6 mm).
    points = np.array(
        [
            [0.0, 0.0, 250.0],
            [-120.0, 40.0, 400.0],
            [90.0, -60.0, -300.0],
            [0.0, 0.0, 780.0],
            [-90.0, 0.0, -850.0],
        ]
    )
    followup_points = points @ move[:3, :3].T + move[:3, 3]
    mapped = result.map_points(followup_points)
    assert np.max(np.linalg.norm(mapped - points, axis=1)) < 3.0
    np.testing.assert_allclose(result.matrix[:3, :3], expected[:3, :3], atol=0.02)
    assert result.as_dict()["mode"] == mode


def test_identity_is_exact() -> None:
    identity = Registration.identity()
    np.testing.assert_array_equal(identity.map_points([[1.0, 2.0, 3.0]]), [[1.0, 2.0, 3.0]])
    assert identity.as_dict()["mattes_mutual_information"] is None


def test_non_ct_is_refused(baseline_ct) -> None:  # type: ignore[no-untyped-def]
    from immunopet.image import Quantity

    pet_like = baseline_ct.with_array(baseline_ct.array, Quantity.ACTIVITY_CONCENTRATION)
    with pytest.raises(InputError, match="needs CT"):
        register_ct(baseline_ct, pet_like)


def test_a_mouse_keeps_a_fine_working_grid() -> None:
    # A 25 mm wide mouse: the 6 mm working grid of adults would leave ~4 voxels across; the
    # grid stays at >= 32 voxels across and a 2 mm shift is recovered to a fraction of a mm.
    ct = build_phantom("mouse", voxel_mm=0.5).ct
    followup, _ = _moved(ct, 0.0, (2.0, -1.5, 3.0))
    result = register_ct(ct, followup, mode="rigid")
    mapped = result.map_points([[2.0, -1.5, 3.0]])[0]
    assert np.linalg.norm(mapped) < 0.5


# A known deformation, the lead's check: a follow-up point x images the baseline anatomy at
# x + u(x), u = 12 mm exp(-(z / 120 mm)^2) along L (the abdomen pushed 12 mm to the patient's
# left, fading over ~20 cm of the body's length). Coarse voxels keep the run short.
_WARP_MM = 12.0
_WARP_WIDTH_MM = 120.0
_WARP_VOXEL_MM = 12.0


def _warp_mm(points_lps_mm: np.ndarray) -> np.ndarray:
    shift = np.zeros_like(points_lps_mm)
    shift[:, 0] = _WARP_MM * np.exp(-((points_lps_mm[:, 2] / _WARP_WIDTH_MM) ** 2))
    return shift


@pytest.fixture(scope="module")
def warped_pair():  # type: ignore[no-untyped-def]
    from scipy import ndimage

    ct = build_phantom("adult", voxel_mm=_WARP_VOXEL_MM).ct
    index = np.indices(ct.shape, dtype=np.float64).reshape(3, -1).T
    lps = ct.index_to_lps(index)
    source = ct.lps_to_index(lps + _warp_mm(lps))  # follow-up voxel x shows baseline x + u(x)
    array = ndimage.map_coordinates(
        ct.array.astype(np.float64), source.T, order=1, mode="nearest"
    ).reshape(ct.shape)
    return ct, ct.with_array(array)


@pytest.mark.slow
def test_deformable_recovers_a_known_abdominal_warp(warped_pair) -> None:  # type: ignore[no-untyped-def]
    baseline, followup = warped_pair
    warped = np.array([[-60.0, 0.0, 0.0], [60.0, 20.0, 40.0], [0.0, -30.0, -40.0]])
    # Head and thigh: no deformation there, and the B-spline must not invent one.
    still = np.array([[0.0, 0.0, 600.0], [-100.0, 0.0, -600.0]])
    points = np.vstack([warped, still])
    truth = points + _warp_mm(points)
    affine = register_ct(baseline, followup, mode="affine")
    deformable = register_ct(baseline, followup, mode="deformable")
    affine_error = np.linalg.norm(affine.map_points(points) - truth, axis=1)
    mapped = deformable.map_points(points)
    error = np.linalg.norm(mapped - truth, axis=1)
    half_voxel_mm = _WARP_VOXEL_MM / 2.0
    # Affine cannot follow a local warp: it leaves most of the 10.7-12 mm.
    assert np.all(affine_error[:3] > 8.0)
    assert np.all(error < half_voxel_mm)
    assert np.all(error[:3] < affine_error[:3] / 2.0)
    # map_points inverts the (baseline -> follow-up) transform: mapping back is exact.
    back = np.array([deformable.transform.TransformPoint(tuple(p)) for p in mapped])
    np.testing.assert_allclose(back, points, atol=1e-3)


def _synthetic_deformable(amplitude_mm: float) -> Registration:
    # A rotated, scaled affine after a B-spline with known coefficients (no image needed).
    import SimpleITK as sitk

    from immunopet.lesions._register import _matrix_of

    grid = sitk.Image([40, 40, 40], sitk.sitkFloat32)
    grid.SetSpacing([10.0, 10.0, 10.0])
    grid.SetOrigin([-200.0, -200.0, -200.0])
    bspline = sitk.BSplineTransformInitializer(grid, [4, 4, 4], 3)
    rng = np.random.default_rng(7)
    bspline.SetParameters(
        [float(v) for v in rng.uniform(-1.0, 1.0, len(bspline.GetParameters())) * amplitude_mm]
    )
    affine = sitk.AffineTransform(3)
    angle = math.radians(10.0)
    affine.SetMatrix(
        [
            1.1 * math.cos(angle), -math.sin(angle), 0.0,
            math.sin(angle), 1.1 * math.cos(angle), 0.0,
            0.0, 0.0, 0.95,
        ]
    )  # fmt: skip
    affine.SetTranslation([5.0, -8.0, 12.0])
    composite = sitk.CompositeTransform([affine, bspline])
    return Registration("deformable", _matrix_of(affine), float("nan"), composite)


def test_deformable_points_are_inverted_exactly() -> None:
    registration = _synthetic_deformable(8.0)
    points = np.array([[0.0, 0.0, 0.0], [55.0, -70.0, 30.0], [-120.0, 90.0, -110.0]])
    mapped = registration.map_points(points)
    back = np.array([registration.transform.TransformPoint(tuple(p)) for p in mapped])
    np.testing.assert_allclose(back, points, atol=1e-3)
    # The deformation is not negligible: the affine part alone misses by millimetres.
    affine_only = Registration("affine", registration.matrix, 0.0).map_points(points)
    assert np.min(np.linalg.norm(mapped - affine_only, axis=1)) > 1.0


def test_a_folded_deformation_is_reported() -> None:
    registration = _synthetic_deformable(400.0)
    with pytest.raises(InputError, match="cannot be inverted"):
        registration.map_points([[0.0, 0.0, 0.0], [55.0, -70.0, 30.0], [-120.0, 90.0, -110.0]])
