"""VOI-mean standard errors from the image's own noise match the simulator's noise."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.image import AcquisitionTiming, Quantity, Volume
from immunopet.physics import nuclide
from immunopet.planning import scanner
from immunopet.quant._uncertainty import (
    estimate_image_noise,
    slice_variance_factors,
    voxels_per_sample,
)
from immunopet.simulate import PetSystem


def test_standard_error_predicts_the_spread_of_voi_means_and_covers_truth() -> None:
    pet = PetSystem(scanner("biograph_mct"))
    truth = np.zeros((40, 48, 48))
    truth[2:38, 2:46, 2:46] = 5000.0  # a liver-like background (reference region inside)
    truth[10:20, 10:20, 10:20] = 15000.0  # a 40 mm hot cube: the VOI
    volume = Volume(truth, np.diag([4.0, 4.0, 4.0, 1.0]), Quantity.ACTIVITY_CONCENTRATION)
    reference = np.zeros(truth.shape, bool)
    reference[24:34, 28:40, 28:40] = True
    voi = np.zeros(truth.shape, bool)
    voi[12:18, 12:18, 12:18] = True  # the cube's core (away from the blurred edge)
    rng = np.random.default_rng(7)
    means, errors = [], []
    for _ in range(200):
        image = pet.acquire(volume, nuclide="F-18", frame_duration_s=120.0, rng=rng).array
        noise = estimate_image_noise(image, reference, region="background cube")
        mean = float(image[voi].mean(dtype=np.float64))
        means.append(mean)
        errors.append(noise.mean_standard_error(mean, int(voi.sum())))
    spread = float(np.std(means, ddof=1))
    # The predicted SE equals the observed spread of the VOI means (within 15 %) ...
    assert float(np.mean(errors)) == pytest.approx(spread, rel=0.15)
    # ... and the 95 % interval covers the true 15 kBq/mL in 90-99 % of the realisations.
    covered = np.mean(np.abs(np.array(means) - 15000.0) <= 1.96 * np.array(errors))
    assert 0.90 <= covered <= 0.99


def test_correlation_of_blurred_noise_is_measured() -> None:
    # Counting noise blurred by the scanner's 4.3 mm FWHM on 4 mm voxels: n_c = 1/Σw² > 1.
    pet = PetSystem(scanner("biograph_mct"))
    volume = Volume(
        np.full((40, 40, 40), 5000.0),
        np.diag([4.0, 4.0, 4.0, 1.0]),
        Quantity.ACTIVITY_CONCENTRATION,
    )
    image = pet.acquire(
        volume, nuclide="F-18", frame_duration_s=120.0, rng=np.random.default_rng(1)
    )
    mask = np.zeros(volume.shape, bool)
    mask[6:-6, 6:-6, 6:-6] = True
    noise = estimate_image_noise(image.array, mask, region="cube")
    predicted = pet.uniform_region_noise(
        5000.0, spacing_mm=(4.0, 4.0, 4.0), nuclide="F-18", frame_duration_s=120.0
    )
    assert noise.reference_sd_bq_per_ml / 5000.0 == pytest.approx(
        predicted.coefficient_of_variation, rel=0.05
    )
    # The sampled kernel's Σw² from the scanner model (CV = η √(Σw² / N)); n_c ≈ 1 / Σw².
    sum_w2 = (predicted.coefficient_of_variation / pet.noise_amplification) ** 2 * (
        predicted.counts_per_voxel
    )
    assert noise.correlation_voxels == pytest.approx(1.0 / sum_w2, rel=0.1)


def test_small_or_empty_reference_is_refused() -> None:
    image = np.ones((5, 5, 5))
    with pytest.raises(InputError, match="voxels"):
        estimate_image_noise(image, np.zeros((5, 5, 5), bool), region="none")
    with pytest.raises(InputError, match="no activity"):
        estimate_image_noise(np.zeros((5, 5, 5)), np.ones((5, 5, 5), bool), region="cold")


def test_sampled_gaussian_correlation_gives_the_kernels_voxels_per_sample() -> None:
    # scipy's sampled Gaussian of 0.9 voxel: 1/Σw² and the neighbour correlation computed here
    # from its weights; the continuous formula 2√π s would give 3.19 (Σw² of the sampled
    # kernel is larger at small s).
    from scipy import ndimage

    delta = np.zeros(21)
    delta[10] = 1.0
    weights = ndimage.gaussian_filter1d(delta, 0.9, mode="constant", truncate=4.0)
    rho = float(np.dot(weights[:-1], weights[1:]) / np.dot(weights, weights))
    assert voxels_per_sample(rho) == pytest.approx(1.0 / float(np.dot(weights, weights)), rel=1e-6)


def test_later_bed_positions_carry_more_noise_and_their_se_says_so() -> None:
    # ¹⁸F, 4 beds of 30 min: the last bed starts 90 min (0.82 half-lives) after the first, so
    # its decay-corrected voxels carry 1.77 x the variance per Bq/mL (1.33 x the SD).
    pet = PetSystem(scanner("biograph_mct"))
    bed_s, per_bed = 1800.0, 10
    truth = np.full((40, 32, 32), 5000.0)
    volume = Volume(truth, np.diag([4.0, 4.0, 4.0, 1.0]), Quantity.ACTIVITY_CONCENTRATION)
    start = datetime(2024, 1, 1, 9)
    offsets = tuple(float((k // per_bed) * bed_s) for k in range(40))
    timing = AcquisitionTiming(start, bed_s, start, frame_start_offsets_s=offsets)
    variance = slice_variance_factors(timing, nuclide("F-18").half_life_s, 40)
    assert variance is not None
    assert variance[-1] / variance[0] == pytest.approx(2.0 ** (5400.0 / 6586.2), rel=1e-3)
    reference = np.zeros(truth.shape, bool)
    reference[12:18, 8:24, 8:24] = True  # in bed 1
    first, last = np.zeros(truth.shape, bool), np.zeros(truth.shape, bool)
    first[2:8, 10:18, 10:18] = True  # bed 0
    last[32:38, 10:18, 10:18] = True  # bed 3
    rng = np.random.default_rng(3)
    means: dict[str, list[float]] = {"first": [], "last": []}
    se: dict[str, list[float]] = {"first": [], "last": []}
    se_flat: list[float] = []
    for _ in range(150):
        image = pet.acquire(
            volume, nuclide="F-18", frame_duration_s=bed_s, rng=rng, slices_per_bed=per_bed
        ).array
        noise = estimate_image_noise(image, reference, region="bed 1", slice_variance=variance)
        flat = estimate_image_noise(image, reference, region="bed 1")
        for name, voi in (("first", first), ("last", last)):
            mean = float(image[voi].mean(dtype=np.float64))
            means[name].append(mean)
            se[name].append(
                noise.mean_standard_error(mean, int(voi.sum()), slice_counts=voi.sum(axis=(1, 2)))
            )
        se_flat.append(flat.mean_standard_error(means["last"][-1], int(last.sum())))
    for name in ("first", "last"):
        assert float(np.mean(se[name])) == pytest.approx(
            float(np.std(means[name], ddof=1)), rel=0.15
        )
    spread_last = float(np.std(means["last"], ddof=1))
    # Without the per-slice factors the last bed's SE is that of bed 1: too small by ~20 %.
    assert float(np.mean(se_flat)) < 0.9 * spread_last
    assert slice_variance_factors(AcquisitionTiming(start, bed_s, start), 6586.2, 40) is None
