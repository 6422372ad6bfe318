"""VOI-mean standard errors from the image's own noise match the simulator's noise."""

from __future__ import annotations

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.planning import scanner
from immunopet.quant._uncertainty import estimate_image_noise
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
    assert noise.correlation_voxels == pytest.approx(1.0 / sum_w2, rel=0.2)


def test_small_or_empty_reference_is_refused() -> None:
    image = np.ones((5, 5, 5))
    with pytest.raises(InputError, match="voxels"):
        estimate_image_noise(image, np.zeros((5, 5, 5), bool), region="none")
    with pytest.raises(InputError, match="no activity"):
        estimate_image_noise(np.zeros((5, 5, 5)), np.ones((5, 5, 5), bool), region="cold")
