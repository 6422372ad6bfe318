"""GTM partial-volume correction against images whose true concentrations are known.

Ground truth three ways:

* **the discrete model**: piecewise-constant regions blurred by ``scipy.ndimage.gaussian_filter``
  (the simulator's PET blur), where the GTM must be exact to rounding whatever the sizes;
* **closed form**: a uniform sphere of radius R blurred by an isotropic Gaussian of SD σ has,
  at distance r from its centre,
  ``½[erf((R−r)/√2σ) + erf((R+r)/√2σ)] − σ/(r√2π) [exp(−(R−r)²/2σ²) − exp(−(R+r)²/2σ²)]``
  (the convolution done in spherical coordinates), and a box blurs into a product of erf
  steps; the image is sampled at voxel centres, the regions are voxelised at voxel centres,
  so the correction carries its real discretisation error;
* **the simulator's PET system** (:class:`immunopet.simulate.PetSystem`, counts and noise) for
  the standard errors, over many noise realisations.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage
from scipy.special import erf

from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.planning import scanner
from immunopet.quant import estimate_image_noise, gtm_correct, gtm_regions
from immunopet.simulate import PetSystem
from immunopet.units import FWHM_PER_SIGMA

Mask = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]


def _volume(values: Floats, voxel_mm: float | tuple[float, float, float]) -> Volume:
    spacing = (voxel_mm,) * 3 if isinstance(voxel_mm, float) else voxel_mm
    return Volume(values, np.diag([*spacing, 1.0]), Quantity.ACTIVITY_CONCENTRATION)


def _ball(
    shape: tuple[int, int, int], centre_mm: Floats, radius_mm: float, voxel_mm: float
) -> Mask:
    grids = np.ogrid[: shape[0], : shape[1], : shape[2]]
    squared = sum((g * voxel_mm - c) ** 2 for g, c in zip(grids, centre_mm, strict=True))
    return np.asarray(squared <= radius_mm**2)


# -- the discrete model: exact ------------------------------------------------------------------


def test_piecewise_constant_regions_are_recovered_exactly_including_spill_in() -> None:
    # A kidney-like warm ellipsoid, a hot 12 mm "node" touching it, a cold 16 mm lesion
    # inside a liver-like block, and the rest of the body, blurred by the scanner-like
    # discrete Gaussian (4.3 mm FWHM on 4 mm voxels, as the simulator blurs).
    shape, voxel = (40, 48, 48), 4.0
    z, y, x = np.ogrid[:40, :48, :48]
    body = np.zeros(shape, bool)
    body[2:38, 3:45, 3:45] = True
    liver = np.zeros(shape, bool)
    liver[5:25, 5:25, 5:25] = True
    cold = _ball(shape, np.array([60.0, 60.0, 60.0]), 8.0, voxel)
    kidney = ((z - 28) / 6.0) ** 2 + ((y - 30) / 4.0) ** 2 + ((x - 32) / 5.0) ** 2 <= 1.0
    node = _ball(shape, np.array([112.0, 120.0, 160.0]), 6.0, voxel) & ~kidney
    regions = {
        "node": node,
        "cold": cold,
        "kidney": kidney & ~node,
        "liver": liver & ~cold,
    }
    regions["background"] = body & ~np.logical_or.reduce(list(regions.values()))
    truth = {"node": 30.0, "cold": 2.0, "kidney": 6.0, "liver": 5.0, "background": 1.0}
    values = np.zeros(shape)
    for name, mask in regions.items():
        values[mask] = truth[name]
    sigma = 4.3 / FWHM_PER_SIGMA / voxel
    image = _volume(ndimage.gaussian_filter(values, sigma, mode="constant"), voxel)
    result = gtm_correct(image, regions, 4.3, kernel="sampled")
    observed = dict(zip(result.names, result.observed_mean, strict=True))
    # Partial volume is large before correction: the node loses, the cold lesion gains.
    assert observed["node"] < 0.85 * truth["node"]
    assert observed["cold"] > 1.1 * truth["cold"]
    for name, corrected in zip(result.names, result.corrected_mean, strict=True):
        assert corrected == pytest.approx(truth[name], rel=1e-9), name
    assert result.warnings == ()
    assert result.region("node")["recovery"] == pytest.approx(result.transfer_matrix[0, 0])


def test_sampled_kernel_is_scipys_gaussian_filter_and_anisotropic_fwhm_applies_per_axis() -> None:
    rng = np.random.default_rng(3)
    shape = (20, 24, 28)
    labels = rng.integers(0, 3, size=(5, 6, 7)).repeat(4, 0).repeat(4, 1).repeat(4, 2)
    regions = {f"r{k}": labels == k for k in range(3)}
    spacing = (3.0, 2.0, 2.5)
    fwhm = (9.0, 5.0, 6.0)
    sigmas = [f / FWHM_PER_SIGMA / s for f, s in zip(fwhm, spacing, strict=True)]
    result = gtm_correct(_volume(np.ones(shape), spacing), regions, fwhm, kernel="sampled")
    for i, source in enumerate(regions.values()):
        spread = ndimage.gaussian_filter(source.astype(float), sigmas, mode="constant")
        for j, target in enumerate(regions.values()):
            assert result.transfer_matrix[j, i] == pytest.approx(spread[target].mean(), rel=1e-12)


def test_integrated_kernel_is_the_gaussian_integrated_over_each_voxel() -> None:
    # One voxel of activity: its image is the continuous Gaussian integrated over each voxel,
    # Φ((k+½)/s) − Φ((k−½)/s) per axis (s = σ in voxels).
    shape, voxel, fwhm = (21, 21, 21), 4.0, 4.3
    point = np.zeros(shape, bool)
    point[10, 10, 10] = True
    s = fwhm / FWHM_PER_SIGMA / voxel
    k = np.arange(-10, 11)
    weights = 0.5 * (erf((k + 0.5) / (math.sqrt(2.0) * s)) - erf((k - 0.5) / (math.sqrt(2.0) * s)))
    expected = np.einsum("i,j,k->ijk", weights, weights, weights)
    for offset in ((1, 0, 0), (1, 1, 0), (2, 0, 1)):
        target = np.zeros(shape, bool)
        target[tuple(10 + np.asarray(offset))] = True
        regions = {"point": point, "target": target}
        result = gtm_correct(_volume(np.ones(shape), voxel), regions, fwhm)
        assert result.transfer_matrix[0, 0] == pytest.approx(expected[10, 10, 10], rel=1e-3)
        assert result.transfer_matrix[1, 0] == pytest.approx(
            expected[tuple(10 + np.asarray(offset))], rel=1e-3
        )


# -- closed form: spheres of the NEMA IEC body phantom ------------------------------------------


def _blurred_ball(r_mm: Floats, radius_mm: float, sigma_mm: float) -> Floats:
    r = np.maximum(r_mm, 1e-9)
    a = (radius_mm - r) / (math.sqrt(2.0) * sigma_mm)
    b = (radius_mm + r) / (math.sqrt(2.0) * sigma_mm)
    tail = sigma_mm / (r * math.sqrt(2.0 * math.pi)) * (np.exp(-a * a) - np.exp(-b * b))
    result: Floats = 0.5 * (erf(a) + erf(b)) - tail
    return result


def _blurred_box(coordinates: list[Floats], half_mm: float, sigma_mm: float) -> Floats:
    result: Floats = np.ones(())
    for c in coordinates:
        scale = math.sqrt(2.0) * sigma_mm
        result = result * 0.5 * (erf((half_mm - c) / scale) - erf((-half_mm - c) / scale))
    return result


#: Sphere diameters of the NEMA NU 2 / IEC body phantom, mm.
NEMA_SPHERES_MM = (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)


def _nema_like(
    voxel_mm: float, fwhm_mm: float, offset_mm: Floats, contrast: float
) -> tuple[Volume, dict[str, Mask]]:
    """Six spheres (contrast : 1) on a 50 mm ring in a 176 mm cube of 1, blurred exactly."""
    sigma_mm = fwhm_mm / FWHM_PER_SIGMA
    n = round(200.0 / voxel_mm)
    axis = (np.arange(n) - (n - 1) / 2.0) * voxel_mm
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij", sparse=True)
    half_mm = 88.0  # a voxel border on 2 and 4 mm grids
    image = _blurred_box([z, y, x], half_mm, sigma_mm)
    cube = (np.abs(z) <= half_mm) & (np.abs(y) <= half_mm) & (np.abs(x) <= half_mm)
    regions: dict[str, Mask] = {}
    for k, diameter in enumerate(NEMA_SPHERES_MM):
        angle = 2.0 * math.pi * k / len(NEMA_SPHERES_MM)
        centre = offset_mm + np.array([0.0, 50.0 * math.sin(angle), 50.0 * math.cos(angle)])
        r = np.sqrt((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2)
        image = image + (contrast - 1.0) * _blurred_ball(r, diameter / 2.0, sigma_mm)
        regions[f"{diameter:g} mm"] = np.asarray(r <= diameter / 2.0)
    regions["background"] = cube & ~np.logical_or.reduce(list(regions.values()))
    return Volume(image, np.diag([voxel_mm] * 3 + [1.0]), Quantity.SUV_BW), regions


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_spheres_of_at_least_two_fwhm_are_corrected_within_2_percent(seed: int) -> None:
    # 6 mm FWHM on 2 mm voxels, contrast 4:1, spheres at random sub-voxel positions.
    offset = np.random.default_rng(seed).uniform(-1.0, 1.0, 3)
    image, regions = _nema_like(2.0, 6.0, offset, contrast=4.0)
    result = gtm_correct(image, regions, 6.0)
    for name, observed, corrected in zip(
        result.names, result.observed_mean, result.corrected_mean, strict=True
    ):
        truth = 1.0 if name == "background" else 4.0
        if name == "background":
            assert corrected == pytest.approx(truth, rel=0.005)
            continue
        diameter = float(name.split()[0])
        assert observed < 0.9 * truth  # recovery below 90 % for every sphere before correction
        if diameter >= 2.0 * 6.0:
            assert corrected == pytest.approx(truth, rel=0.02), (name, corrected)
        else:  # 10 mm: the voxelised mask (radius 2.5 voxels) limits the correction
            assert corrected == pytest.approx(truth, rel=0.08), (name, corrected)


def test_the_discretisation_matters_when_the_psf_is_narrow_against_the_voxel() -> None:
    # 4.3 mm FWHM on 4 mm voxels (a clinical reconstruction): the continuous PSF acting on
    # voxel-sized activity ("integrated") models the analytic image; the Gaussian sampled at
    # voxel centres ("sampled", the simulator's blur) spreads too little and under-corrects.
    image, regions = _nema_like(4.0, 4.3, np.array([0.7, -1.1, 0.4]), contrast=4.0)
    integrated = gtm_correct(image, regions, 4.3)
    sampled = gtm_correct(image, regions, 4.3, kernel="sampled")
    index = integrated.index("37 mm")
    assert integrated.corrected_mean[index] == pytest.approx(4.0, rel=0.02)
    assert sampled.corrected_mean[index] < 0.97 * 4.0


# -- noise: standard errors from count statistics ----------------------------------------------


def test_standard_errors_predict_the_spread_and_cover_the_truth() -> None:
    # Simulator PET (Biograph mCT, F-18, 2 min, 4 mm voxels) of a 20 mm and a 28 mm hot
    # sphere (8:1) and a 24 mm cold sphere (1:4) in a warm block; 120 noise realisations.
    pet = PetSystem(scanner("biograph_mct"))
    shape, voxel = (36, 44, 44), 4.0
    block = np.zeros(shape, bool)
    block[2:34, 2:42, 2:42] = True
    hot_small = _ball(shape, np.array([60.0, 60.0, 60.0]), 10.0, voxel)
    hot_large = _ball(shape, np.array([60.0, 60.0, 112.0]), 14.0, voxel)
    cold = _ball(shape, np.array([80.0, 120.0, 80.0]), 12.0, voxel)
    truth_bq = np.zeros(shape)
    truth_bq[block] = 4000.0
    truth_bq[hot_small | hot_large] = 32000.0
    truth_bq[cold] = 1000.0
    reference = np.zeros(shape, bool)
    reference[6:14, 28:40, 6:18] = True  # uniform part of the block
    volume = _volume(truth_bq, voxel)
    regions = gtm_regions(
        volume, {"hot 20 mm": hot_small, "hot 28 mm": hot_large, "cold 24 mm": cold}, block, 4.3
    )
    truth = {"hot 20 mm": 32000.0, "hot 28 mm": 32000.0, "cold 24 mm": 1000.0}
    rng = np.random.default_rng(11)
    rows: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in truth}
    for _ in range(120):
        image = pet.acquire(volume, nuclide="F-18", frame_duration_s=120.0, rng=rng)
        noise = estimate_image_noise(image.array, reference, region="block")
        result = gtm_correct(image, regions, 4.3, noise=noise, kernel="sampled")
        for name in truth:
            r = result.region(name)
            rows[name].append(
                (r["observed_mean"], r["observed_se"], r["corrected_mean"], r["corrected_se"])
            )
    for name, value in truth.items():
        observed, observed_se, corrected, corrected_se = (
            np.array(c) for c in zip(*rows[name], strict=False)
        )
        spread = float(np.std(corrected, ddof=1))
        # Unbiased (the sampled kernel is the simulator's blur).
        assert float(np.mean(corrected)) == pytest.approx(value, abs=3.0 * spread / math.sqrt(120))
        # The propagation through W: the SE grows from observed to corrected as the spread does.
        predicted_gain = float(np.mean(corrected_se) / np.mean(observed_se))
        actual_gain = spread / float(np.std(observed, ddof=1))
        assert predicted_gain == pytest.approx(actual_gain, rel=0.10), name
        # Against the spread itself: within 15 % for the hot spheres; the count-statistics SE of
        # a cold region's mean (quant._uncertainty) is conservative, and so is the corrected SE.
        if name.startswith("hot"):
            assert float(np.mean(corrected_se)) == pytest.approx(spread, rel=0.15), name
        else:
            assert 1.0 <= float(np.mean(corrected_se)) / spread <= 1.5
        # The 95 % intervals cover the truth in 90-100 % of the realisations.
        covered = float(np.mean(np.abs(corrected - value) <= 1.96 * corrected_se))
        assert 0.90 <= covered <= 1.0, (name, covered)


def test_noise_scale_converts_the_standard_error_to_the_image_unit() -> None:
    values = np.full((10, 10, 10), 2.0)
    inside = np.zeros(values.shape, bool)
    inside[3:7, 3:7, 3:7] = True
    regions = {"cube": inside, "rest": ~inside}
    noise = estimate_image_noise(
        np.random.default_rng(0).normal(1000.0, 100.0, values.shape), ~inside, region="rest"
    )
    in_bq = gtm_correct(_volume(values * 500.0, 4.0), regions, 4.3, noise=noise)
    in_suv = gtm_correct(
        _volume(values, 4.0).with_array(values, Quantity.SUV_BW),
        regions,
        4.3,
        noise=noise,
        noise_scale=1.0 / 500.0,
    )
    assert in_bq.corrected_se is not None
    assert in_suv.corrected_se is not None
    np.testing.assert_allclose(in_suv.corrected_se * 500.0, in_bq.corrected_se, rtol=1e-12)
    np.testing.assert_allclose(in_suv.corrected_mean * 500.0, in_bq.corrected_mean, rtol=1e-12)
    assert in_suv.unit != in_bq.unit


# -- conditioning, regions and errors -----------------------------------------------------------


def test_regions_much_smaller_than_the_psf_give_an_ill_conditioned_warning() -> None:
    values = np.ones((20, 20, 20))
    first = np.zeros(values.shape, bool)
    second = np.zeros(values.shape, bool)
    first[10, 10, 10] = True
    second[10, 10, 11] = True
    result = gtm_correct(_volume(values, 2.0), {"a": first, "b": second}, 10.0)
    assert result.condition_number > 10.0
    (warning,) = result.warnings
    assert "ill-conditioned" in warning
    record = result.as_dict()
    assert record["warnings"] == [warning]
    assert set(record["regions"]) == {"a", "b"}


def test_gtm_regions_partition_the_body_by_priority_with_shells() -> None:
    shape, voxel = (30, 30, 30), 2.0
    grid = _volume(np.zeros(shape), voxel)
    body = np.zeros(shape, bool)
    body[2:28, 2:28, 2:28] = True
    lesion = _ball(shape, np.array([30.0, 30.0, 30.0]), 6.0, voxel)
    organ = np.zeros(shape, bool)
    organ[10:20, 10:20, 14:26] = True  # overlaps the lesion, which comes first
    regions = gtm_regions(grid, {"L001": lesion, "spleen": organ}, body, 4.0, surroundings_fwhm=1.5)
    assert list(regions) == [
        "L001",
        "spleen",
        "L001 surroundings",
        "spleen surroundings",
        "background",
    ]
    stacked = np.sum([m.astype(int) for m in regions.values()], axis=0)
    assert stacked.max() == 1  # disjoint
    np.testing.assert_array_equal(stacked == 1, body | lesion | organ)
    np.testing.assert_array_equal(regions["L001"], lesion)
    np.testing.assert_array_equal(regions["spleen"], organ & ~lesion)
    # The lesion's shell: body voxels within 1.5 x 4 mm = 6 mm of it, not in a mask.
    distance = ndimage.distance_transform_edt(~lesion, sampling=voxel)
    expected = (distance <= 6.0) & body & ~lesion & ~organ
    np.testing.assert_array_equal(regions["L001 surroundings"], expected)
    without = gtm_regions(grid, {"L001": lesion}, body, 4.0, surroundings_fwhm=0.0)
    assert list(without) == ["L001", "background"]


def _two_regions() -> tuple[Volume, dict[str, Mask]]:
    values = np.ones((8, 8, 8))
    inside = np.zeros(values.shape, bool)
    inside[2:5, 2:5, 2:5] = True
    return _volume(values, 4.0), {"in": inside, "out": ~inside}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v, r: (v, r, 0.0, {}), "PSF FWHM must be"),
        (lambda v, r: (v, r, (4.0, 4.0), {}), "PSF FWHM must be"),
        (lambda v, r: (v, r, float("nan"), {}), "PSF FWHM must be"),
        (lambda v, r: (v, {**r, "both": r["in"]}, 4.0, {}), "overlap"),
        (lambda v, r: (v, {**r, "none": np.zeros(v.shape, bool)}, 4.0, {}), "is empty"),
        (lambda v, r: (v, {"in": r["in"][:4]}, 4.0, {}), "boolean array of the image's shape"),
        (lambda v, r: (v, {}, 4.0, {}), "at least one region"),
        (lambda v, r: (v, r, 4.0, {"kernel": "box"}), "unknown PSF kernel"),
        (lambda v, r: (v, r, 4.0, {"noise_scale": 0.0}), "noise_scale"),
        (
            lambda v, r: (v.with_array(np.where(r["in"], np.nan, 1.0)), r, 4.0, {}),
            "NaN or infinite",
        ),
    ],
)
def test_bad_inputs_raise_one_line_errors(change: object, message: str) -> None:
    volume, regions = _two_regions()
    image, given, fwhm, options = change(volume, regions)  # type: ignore[operator]
    with pytest.raises(InputError, match=message) as caught:
        gtm_correct(image, given, fwhm, **options)
    assert "\n" not in str(caught.value)


def test_gtm_regions_refuses_reserved_names_and_wrong_shapes() -> None:
    volume, regions = _two_regions()
    body = np.ones(volume.shape, bool)
    with pytest.raises(InputError, match="reserved"):
        gtm_regions(volume, {"background": regions["in"]}, body, 4.0)
    with pytest.raises(InputError, match="reserved"):
        gtm_regions(volume, {"x surroundings": regions["in"]}, body, 4.0)
    with pytest.raises(InputError, match="grid's shape"):
        gtm_regions(volume, {"in": regions["in"][:4]}, body, 4.0)
    with pytest.raises(InputError, match="surroundings_fwhm"):
        gtm_regions(volume, regions, body, 4.0, surroundings_fwhm=-1.0)
    result = gtm_correct(volume, regions, 4.0)
    with pytest.raises(InputError, match="no region 'x'"):
        result.region("x")
