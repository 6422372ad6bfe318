"""The simulated PET scanner against physical invariants (issue 4, part 5).

Expected values are computed by hand from ICRP-107 literals (``phantoms.HALF_LIFE_S`` and the
β⁺ yields below), the scanner's NEMA numbers and the Gaussian's definition, never from the
engine under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.planning import scanner
from immunopet.simulate._scanner import (
    DEFAULT_NOISE_AMPLIFICATION,
    ImagingSystem,
    PetSystem,
)
from phantoms import HALF_LIFE_S

#: ICRP-107 β⁺ yields per decay.
BETA_PLUS_YIELD = {"F-18": 0.9673, "Zr-89": 0.22741}
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
MCT = scanner("biograph_mct")


def volume(array: npt.NDArray[np.float64], spacing_mm: tuple[float, float, float]) -> Volume:
    return Volume(array, np.diag([*spacing_mm, 1.0]), Quantity.ACTIVITY_CONCENTRATION)


def frame_average(nuclide: str, duration_s: float) -> float:
    x = math.log(2.0) * duration_s / HALF_LIFE_S[nuclide]
    return (1.0 - math.exp(-x)) / x


def half_max_width(profile: npt.NDArray[np.float64], spacing_mm: float) -> float:
    """FWHM of a single-peaked profile, mm, by linear interpolation at half maximum."""
    peak = int(np.argmax(profile))
    half = profile[peak] / 2.0

    def crossing(step: int) -> float:
        i = peak
        while profile[i + step] > half:
            i += step
        inner, outer = profile[i], profile[i + step]
        return i + step * (inner - half) / (inner - outer)

    return (crossing(+1) - crossing(-1)) * spacing_mm


def test_pet_system_is_an_imaging_system() -> None:
    assert isinstance(PetSystem(MCT), ImagingSystem)


def test_noiseless_large_uniform_region_keeps_its_concentration() -> None:
    spacing = (3.0, 2.0, 2.5)  # anisotropic on purpose
    truth = np.zeros((40, 48, 44))
    truth[8:32, 10:38, 9:35] = 12_345.0  # 72 x 56 x 65 mm box in air
    image = PetSystem(MCT).acquire(volume(truth, spacing), nuclide="Zr-89", frame_duration_s=600)
    # Interior: 3 FWHM (13 mm) from every face of the box.
    interior = image.array[13:27, 17:31, 15:29]
    assert np.max(np.abs(interior / 12_345.0 - 1.0)) < 1.0e-3
    # The blur moves activity, never creates or destroys it (the box is far from the edges).
    assert float(image.array.sum(dtype=np.float64)) == pytest.approx(truth.sum(), rel=1.0e-6)


def test_a_grid_filled_uniformly_keeps_its_value_up_to_the_edges() -> None:
    truth = volume(np.full((16, 16, 16), 800.0), (4.0, 4.0, 4.0))
    image = PetSystem(MCT, post_filter_fwhm_mm=6.0).acquire(
        truth, nuclide="F-18", frame_duration_s=120
    )
    np.testing.assert_allclose(image.array, 800.0, rtol=1.0e-6)


def test_output_is_float32_bq_per_ml_on_the_truth_grid_and_the_input_is_untouched() -> None:
    array = np.zeros((10, 12, 14))
    array[5, 6, 7] = 1.0e6
    truth = Volume(
        array.copy(),
        np.diag([2.0, 2.0, 2.0, 1.0]),
        Quantity.ACTIVITY_CONCENTRATION,
        metadata={"phantom": "point"},
    )
    image = PetSystem(MCT).acquire(
        truth, nuclide="F-18", frame_duration_s=60, rng=np.random.default_rng(0)
    )
    assert image.array.dtype == np.float32
    assert image.quantity is Quantity.ACTIVITY_CONCENTRATION
    assert image.same_grid(truth)
    assert image.metadata["phantom"] == "point"
    assert image.metadata["scanner"] == "biograph_mct"
    assert image.metadata["noiseless"] is False
    np.testing.assert_array_equal(truth.array, array)


@pytest.mark.parametrize("post_filter_fwhm_mm", [0.0, 5.0])
def test_measured_fwhm_of_line_and_point_sources_is_the_scanners(
    post_filter_fwhm_mm: float,
) -> None:
    spacing = (1.0, 0.5, 0.8)
    expected_mm = math.sqrt(MCT.resolution_fwhm_mm**2 + post_filter_fwhm_mm**2)
    pet = PetSystem(MCT, post_filter_fwhm_mm=post_filter_fwhm_mm)
    line = np.zeros((24, 64, 48))
    line[:, 32, 24] = 1.0e5  # a line source along the slice axis
    image = pet.acquire(volume(line, spacing), nuclide="F-18", frame_duration_s=60).array
    assert half_max_width(image[12, :, 24].astype(float), 0.5) == pytest.approx(
        expected_mm, rel=0.03
    )
    assert half_max_width(image[12, 32, :].astype(float), 0.8) == pytest.approx(
        expected_mm, rel=0.03
    )
    point = np.zeros((40, 40, 40))
    point[20, 20, 20] = 1.0e5
    image = pet.acquire(volume(point, spacing), nuclide="F-18", frame_duration_s=60).array
    axial = image[:, 20, 20].astype(float)
    assert half_max_width(axial, 1.0) == pytest.approx(expected_mm, rel=0.03)
    # Second moment of the axial profile: the Gaussian's σ.
    z_mm = (np.arange(40) - 20) * 1.0
    sigma_mm = math.sqrt(float(np.sum(z_mm**2 * axial) / np.sum(axial)))
    assert sigma_mm * FWHM_PER_SIGMA == pytest.approx(expected_mm, rel=0.03)


def test_counts_per_voxel_follow_sensitivity_time_decay_and_voxel_volume() -> None:
    # 9.6 cps/kBq with F-18, 120 s, 4 mm voxels (0.064 mL), 5 kBq/mL at the frame start.
    noise = PetSystem(MCT).uniform_region_noise(
        5000.0, spacing_mm=(4.0, 4.0, 4.0), nuclide="F-18", frame_duration_s=120
    )
    expected = 5000.0 * 0.064 * 9.6e-3 * 120.0 * frame_average("F-18", 120.0)
    assert noise.counts_per_voxel == pytest.approx(expected, rel=1.0e-9)


def test_counts_scale_with_the_positron_yield() -> None:
    pet = PetSystem(MCT)
    counts = {
        name: pet.counts_per_bq_per_ml(0.064, nuclide=name, frame_duration_s=300)
        for name in ("F-18", "Zr-89")
    }
    expected = (BETA_PLUS_YIELD["Zr-89"] * frame_average("Zr-89", 300.0)) / (
        BETA_PLUS_YIELD["F-18"] * frame_average("F-18", 300.0)
    )
    assert counts["Zr-89"] / counts["F-18"] == pytest.approx(expected, rel=1.0e-4)


def noisy_uniform(
    pet: PetSystem,
    concentration: float,
    *,
    nuclide: str,
    frame_duration_s: float,
    seed: int,
    shape: tuple[int, int, int] = (32, 32, 32),
    spacing: tuple[float, float, float] = (4.0, 4.0, 4.0),
) -> npt.NDArray[np.float32]:
    """One noisy image of a uniform grid, cropped to voxels at least 6 from the edges."""
    truth = volume(np.full(shape, concentration), spacing)
    image = pet.acquire(
        truth,
        nuclide=nuclide,
        frame_duration_s=frame_duration_s,
        rng=np.random.default_rng(seed),
    ).array
    return image[6:-6, 6:-6, 6:-6]


@pytest.mark.parametrize("concentration", [5000.0, 30.0])  # ~370 and ~2 counts per voxel
def test_fifty_noisy_realisations_are_unbiased(concentration: float) -> None:
    pet = PetSystem(MCT)
    truth = np.zeros((32, 32, 32))
    truth[4:28, 4:28, 4:28] = concentration
    rng = np.random.default_rng(20260101)
    region = (slice(8, 24),) * 3
    means = [
        float(
            pet.acquire(
                volume(truth, (4.0, 4.0, 4.0)), nuclide="F-18", frame_duration_s=120, rng=rng
            )
            .array[region]
            .mean(dtype=np.float64)
        )
        for _ in range(50)
    ]
    assert np.mean(means) == pytest.approx(concentration, rel=0.01)
    # Effective-count Poisson noise is never negative, so nothing needs clipping.
    assert min(means) > 0.0


def test_voxel_noise_matches_the_predicted_coefficient_of_variation() -> None:
    pet = PetSystem(MCT)
    image = noisy_uniform(pet, 5000.0, nuclide="F-18", frame_duration_s=120, seed=1)
    measured = float(image.std(dtype=np.float64) / image.mean(dtype=np.float64))
    predicted = pet.uniform_region_noise(
        5000.0, spacing_mm=(4.0, 4.0, 4.0), nuclide="F-18", frame_duration_s=120
    )
    assert measured == pytest.approx(predicted.coefficient_of_variation, rel=0.03)


def test_noise_falls_as_one_over_root_counts() -> None:
    pet = PetSystem(MCT)

    def cv(concentration: float, frame_duration_s: float, seed: int) -> float:
        image = noisy_uniform(
            pet, concentration, nuclide="F-18", frame_duration_s=frame_duration_s, seed=seed
        )
        return float(image.std(dtype=np.float64) / image.mean(dtype=np.float64))

    # Four times the activity: four times the counts, half the noise.
    assert cv(2000.0, 120.0, 2) / cv(8000.0, 120.0, 3) == pytest.approx(2.0, rel=0.03)
    # Four times the scan time: the counts grow by 4 · F(480 s)/F(120 s) (F-18 decays meanwhile).
    counts_ratio = 4.0 * frame_average("F-18", 480.0) / frame_average("F-18", 120.0)
    assert cv(2000.0, 120.0, 4) / cv(2000.0, 480.0, 5) == pytest.approx(
        math.sqrt(counts_ratio), rel=0.03
    )


def test_large_voi_noise_is_eta_times_poisson_noise_of_its_counts() -> None:
    # The η of the planner's detectability model: σ(VOI total) = η √(counts in the VOI).
    pet = PetSystem(MCT, noise_amplification=2.5)
    rng = np.random.default_rng(7)
    truth = volume(np.full((24, 24, 24), 3000.0), (4.0, 4.0, 4.0))
    region = (slice(4, 20),) * 3
    totals = [
        float(
            pet.acquire(truth, nuclide="F-18", frame_duration_s=60, rng=rng)
            .array[region]
            .sum(dtype=np.float64)
        )
        for _ in range(200)
    ]
    counts_per_unit = pet.counts_per_bq_per_ml(0.064, nuclide="F-18", frame_duration_s=60)
    voi_counts = 3000.0 * counts_per_unit * 16**3
    measured = float(np.std(totals, ddof=1)) / float(np.mean(totals))
    assert measured == pytest.approx(2.5 / math.sqrt(voi_counts), rel=0.15)


def test_default_noise_amplification_gives_a_clinical_liver_cv() -> None:
    # Convention documented in the module: liver SUV 2 after 3.5 MBq/kg of FDG, 60 min uptake,
    # Biograph mCT, 2 min per bed, 4 mm voxels -> voxel CV 12 % (10-15 % in the clinic).
    liver_bq_per_ml = 2.0 * 3.5e6 / 1000.0 * 2.0 ** (-3600.0 / HALF_LIFE_S["F-18"])
    noise = PetSystem(MCT).uniform_region_noise(
        liver_bq_per_ml, spacing_mm=(4.0, 4.0, 4.0), nuclide="F-18", frame_duration_s=120
    )
    assert DEFAULT_NOISE_AMPLIFICATION == 3.6
    assert noise.coefficient_of_variation == pytest.approx(0.12, abs=0.005)


def test_preclinical_inveon_images_a_mouse_on_a_half_millimetre_grid() -> None:
    inveon = scanner("inveon")
    pet = PetSystem(inveon)
    spacing = (0.5, 0.5, 0.5)
    shape = (64, 48, 48)  # 32 x 24 x 24 mm
    z, y, x = np.indices(shape) - np.array(shape)[:, None, None, None] / 2.0 + 0.5
    body = (z / 28.0) ** 2 + (y / 18.0) ** 2 + (x / 18.0) ** 2 <= 1.0  # 28 x 18 x 18 mm ellipsoid
    truth = np.where(body, 40_000.0, 0.0)  # ~1 MBq of Zr-89 in a 25 g mouse
    truth[32, 24, 24] += 4.0e7  # a point-like hot spot for the resolution
    noiseless = pet.acquire(volume(truth, spacing), nuclide="Zr-89", frame_duration_s=600).array
    # Interior of the body, far (>= 4 FWHM) from the hot spot and the surface.
    assert noiseless[10, 24, 24] == pytest.approx(40_000.0, rel=1.0e-3)
    spot = noiseless[32, 24, :].astype(float) - 40_000.0
    assert half_max_width(spot, 0.5) == pytest.approx(inveon.resolution_fwhm_mm, rel=0.03)

    uniform = noisy_uniform(
        pet,
        40_000.0,
        nuclide="Zr-89",
        frame_duration_s=600,
        seed=11,
        shape=(48, 48, 48),
        spacing=spacing,
    )  # the noise is correlated over ~3 voxels here: a larger region for a precise SD
    measured = float(uniform.std(dtype=np.float64) / uniform.mean(dtype=np.float64))
    predicted = pet.uniform_region_noise(
        40_000.0, spacing_mm=spacing, nuclide="Zr-89", frame_duration_s=600
    )
    assert measured == pytest.approx(predicted.coefficient_of_variation, rel=0.05)
    assert float(uniform.mean(dtype=np.float64)) == pytest.approx(40_000.0, rel=0.01)


def test_a_non_positron_emitter_is_refused() -> None:
    truth = volume(np.ones((4, 4, 4)), (2.0, 2.0, 2.0))
    with pytest.raises(InputError, match="In-111 emits no positrons"):
        PetSystem(MCT).acquire(truth, nuclide="In-111", frame_duration_s=60)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise_amplification": 0.0}, "noise_amplification must be"),
        ({"noise_amplification": math.nan}, "noise_amplification must be"),
        ({"post_filter_fwhm_mm": -1.0}, "post_filter_fwhm_mm must be"),
    ],
)
def test_impossible_system_settings_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        PetSystem(MCT, **kwargs)


def test_impossible_acquisitions_are_refused() -> None:
    pet = PetSystem(MCT)
    good = volume(np.ones((4, 4, 4)), (2.0, 2.0, 2.0))
    with pytest.raises(InputError, match="frame_duration_s must be"):
        pet.acquire(good, nuclide="F-18", frame_duration_s=0.0)
    with pytest.raises(InputError, match="negative, NaN or infinite"):
        pet.acquire(
            volume(-np.ones((4, 4, 4)), (2.0, 2.0, 2.0)), nuclide="F-18", frame_duration_s=1
        )
    suv = Volume(np.ones((4, 4, 4)), np.eye(4), Quantity.SUV_BW)
    with pytest.raises(InputError, match="activity concentration"):
        pet.acquire(suv, nuclide="F-18", frame_duration_s=60)
    with pytest.raises(InputError, match="spacing_mm must be three positive"):
        pet.uniform_region_noise(1.0, spacing_mm=(1.0, 1.0), nuclide="F-18", frame_duration_s=1)


def test_whole_body_beds_decay_later_beds_are_noisier_but_unbiased() -> None:
    # Two F-18 beds of 30 min: bed 1 starts 1800 s later with 2^(-1800/T½) of the activity,
    # so its counts are that fraction and its voxel CV larger by 2^(+900/T½).
    pet = PetSystem(MCT)
    shape = (2 * 40, 48, 48)
    truth = volume(np.full(shape, 5000.0), (4.0, 4.0, 4.0))
    image = pet.acquire(
        truth,
        nuclide="F-18",
        frame_duration_s=1800.0,
        rng=np.random.default_rng(11),
        slices_per_bed=40,
    ).array.astype(np.float64)
    bed0, bed1 = image[5:35], image[45:75]  # away from the bed boundary and the edges
    assert bed0.mean() == pytest.approx(5000.0, rel=2e-3)
    assert bed1.mean() == pytest.approx(5000.0, rel=2e-3)
    ratio = (bed1.std() / bed1.mean()) / (bed0.std() / bed0.mean())
    assert ratio == pytest.approx(2.0 ** (900.0 / HALF_LIFE_S["F-18"]), rel=0.03)


@pytest.mark.slow
def test_fifty_realisations_through_dicom_and_the_reader_are_unbiased(tmp_path: Path) -> None:
    # The full output path: PetSystem -> int16 DICOM with per-slice slope -> load_scan.
    from datetime import datetime

    from immunopet.io import load_scan
    from immunopet.io.dicom import PetSeriesSpec, write_pet_series

    pet = PetSystem(MCT)
    affine = np.array(
        [[0.0, 0.0, 4.0, -64.0], [0.0, 4.0, 0.0, -64.0], [4.0, 0.0, 0.0, -64.0], [0, 0, 0, 1.0]]
    )
    concentration = 2000.0  # about 150 counts per voxel in 120 s
    array = np.zeros((32, 32, 32))
    array[4:28, 4:28, 4:28] = concentration
    truth = Volume(array, affine, Quantity.ACTIVITY_CONCENTRATION)
    start = datetime(2026, 1, 5, 10, 0, 0)
    spec = PetSeriesSpec(
        nuclide="F-18",
        injected_activity_bq=250e6,
        injection_datetime=datetime(2026, 1, 5, 9, 0, 0),
        series_datetime=start,
        frame_duration_s=120.0,
        weight_kg=70.0,
    )
    rng = np.random.default_rng(42)
    region = (slice(8, 24),) * 3
    means, sds = [], []
    for index in range(50):
        image = pet.acquire(truth, nuclide="F-18", frame_duration_s=120.0, rng=rng)
        folder = tmp_path / f"r{index:02d}"
        write_pet_series(image, spec, folder)
        read = load_scan(folder).volume.array[region].astype(np.float64)
        means.append(read.mean())
        sds.append(read.std())
    assert np.mean(means) == pytest.approx(concentration, rel=0.01)
    predicted = pet.uniform_region_noise(
        concentration, spacing_mm=(4.0, 4.0, 4.0), nuclide="F-18", frame_duration_s=120.0
    )
    assert np.mean(sds) / concentration == pytest.approx(
        predicted.coefficient_of_variation, rel=0.05
    )
