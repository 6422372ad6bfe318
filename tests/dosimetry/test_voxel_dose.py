"""Voxel-level absorbed dose by local deposition (``immunopet.dosimetry._voxel``).

Expected values are computed here by hand: time integrals written out (trapezoids, A/λ tails,
fitted rates), the ⁸⁹Zr half-life of ICRP-107 (78.41 h, tests/phantoms.py), the energy of its
electrons and positrons summed from the ICRP-107 record (β⁺ 89.94 + conversion electrons 7.63 +
Auger 4.37 = 101.94 keV per decay), 1 keV = 1.602176634e-16 J (SI, exact) and the soft-tissue
density 1.00 g/mL (data/reference_organs.toml).

Against :func:`lesion_absorbed_dose_gy` (local deposition plus the photon self-dose of a uniform
sphere): for ⁹⁰Y, which emits almost no photons (1.2e-3 keV per decay of X-rays against
933 keV of β⁻), the two agree to 1.3e-6; for ⁸⁹Zr the sphere adds its photons, about 43 % on
top of the non-penetrating dose in a 10 mL lesion (7.4 keV of Y X-rays absorbed where emitted,
and the first-flight fraction ¾·μ_en·R ≈ 3 % of its 1150 keV of γ and annihilation photons;
μ_en/ρ ≈ 0.032 cm²/g for soft tissue at 0.5–1 MeV, NIST SRD 126).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from immunopet.dosimetry import (
    VoxelDose,
    lesion_absorbed_dose_gy,
    lesion_dose_statistics,
    time_integrated_activity_bq_s,
    voxel_absorbed_dose,
)
from immunopet.errors import GeometryError, InputError, TimingError
from immunopet.image import AcquisitionTiming, Quantity, Volume
from immunopet.physics._nuclides import _icrp107_record
from phantoms import HALF_LIFE_S

HOUR = 3600.0
DAY = 86400.0
J_PER_KEV = 1.602176634e-16
DENSITY_KG_PER_ML = 1.0e-3  # 1.00 g/mL
ZR89_S = HALF_LIFE_S["Zr-89"]
LAMBDA_ZR89 = math.log(2.0) / ZR89_S
VOXEL_MM = 4.0
AFFINE = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
VOXEL_ML = VOXEL_MM**3 / 1000.0


def _non_penetrating_j(nuclide: str) -> float:
    """Σ energy × yield of β±, conversion and Auger electrons in the ICRP-107 record, J."""
    emissions = _icrp107_record(nuclide)["emissions"]
    kev = 1000.0 * sum(
        float(energy) * float(yield_)
        for kind in ("beta+", "beta-", "IE", "auger")
        for energy, yield_ in emissions.get(kind, [])
    )
    return kev * J_PER_KEV


def _volumes(arrays: list[np.ndarray], **kwargs: object) -> list[Volume]:
    return [
        Volume(np.asarray(a, dtype=np.float32), AFFINE, Quantity.ACTIVITY_CONCENTRATION, **kwargs)  # type: ignore[arg-type]
        for a in arrays
    ]


def test_electron_energy_of_zr89_is_the_icrp107_sum() -> None:
    assert _non_penetrating_j("Zr-89") / J_PER_KEV == pytest.approx(101.943, abs=1e-3)


def test_uniform_region_gets_tia_times_energy_over_mass_per_voxel() -> None:
    """A 40×48×48 mm cube of uniform ⁸⁹Zr at days 1, 3, 6, 8 in a cold 4 mm grid."""
    times_s = np.array([1.0, 3.0, 6.0, 8.0]) * DAY
    concentration = np.array([12.0e3, 9.0e3, 5.0e3, 3.5e3])  # Bq/mL, not decay-corrected
    region = np.zeros((14, 16, 16), bool)
    region[2:12, 2:14, 2:14] = True
    arrays = [np.where(region, c, 0.0) for c in concentration]
    dose = voxel_absorbed_dose(_volumes(arrays), times_s, "Zr-89")

    region_ml = float(region.sum()) * VOXEL_ML
    activity_bq = concentration * region_ml
    tia_bq_s = (
        activity_bq[0] * times_s[0]
        + sum(
            0.5 * (activity_bq[i] + activity_bq[i + 1]) * (times_s[i + 1] - times_s[i])
            for i in range(3)
        )
        + activity_bq[-1] / LAMBDA_ZR89
    )
    expected_gy = tia_bq_s * _non_penetrating_j("Zr-89") / (DENSITY_KG_PER_ML * region_ml)
    assert np.allclose(dose.dose_gy[region], expected_gy, rtol=1e-9, atol=0.0)
    assert np.all(dose.dose_gy[~region] == 0.0)  # local deposition: nothing leaves a voxel
    stats = lesion_dose_statistics(dose, region)
    assert stats["tia_bq_s"] == pytest.approx(tia_bq_s, rel=1e-9)
    assert stats["volume_ml"] == pytest.approx(region_ml, rel=1e-12)
    assert dose.as_volume().voxel_volume_ml == pytest.approx(VOXEL_ML)


def test_single_point_at_injection_with_physical_tail_gives_a0_over_lambda() -> None:
    a0 = np.array([[[1.0e4, 2.5e4], [0.0, 7.0e3]]])  # Bq/mL at t = 0
    dose = voxel_absorbed_dose(_volumes([a0]), [0.0], "Zr-89", tail="physical")
    expected = a0 / LAMBDA_ZR89 * _non_penetrating_j("Zr-89") / DENSITY_KG_PER_ML
    assert np.allclose(dose.tia_bq_s_per_ml, a0 / LAMBDA_ZR89, rtol=1e-12, atol=0.0)
    assert np.allclose(dose.dose_gy, expected, rtol=1e-9, atol=0.0)


def test_physical_tail_adds_last_activity_over_lambda() -> None:
    times_s = [2.0 * DAY, 5.0 * DAY]
    arrays = [np.full((2, 3, 4), 8.0e3), np.full((2, 3, 4), 6.0e3)]
    with_tail = voxel_absorbed_dose(_volumes(arrays), times_s, "Zr-89", tail="physical")
    without = voxel_absorbed_dose(_volumes(arrays), times_s, "Zr-89", tail="none")
    # Without a tail: 8e3 × 2 d held back to the injection + trapezoid (8e3 + 6e3)/2 × 3 d.
    assert without.tia_bq_s_per_ml[0, 0, 0] == pytest.approx(8.0e3 * 2 * DAY + 7.0e3 * 3 * DAY)
    tail = with_tail.tia_bq_s_per_ml - without.tia_bq_s_per_ml
    assert np.allclose(tail, 6.0e3 / LAMBDA_ZR89, rtol=1e-12, atol=0.0)


def test_exponential_tail_uses_the_two_point_decline_when_faster_than_decay() -> None:
    """Four voxels: fast decline, slower than decay, rising, last point zero; one at 0 before."""
    t1, t2 = 3.0 * DAY, 6.0 * DAY
    first = np.array([[[16.0e3, 10.0e3, 4.0e3, 5.0e3, 0.0]]])
    last = np.array([[[4.0e3, 9.0e3, 6.0e3, 0.0, 2.0e3]]])
    dose = voxel_absorbed_dose(_volumes([first, last]), [t1, t2], "Zr-89", tail="exponential")
    none = voxel_absorbed_dose(_volumes([first, last]), [t1, t2], "Zr-89", tail="none")
    tail = (dose.tia_bq_s_per_ml - none.tia_bq_s_per_ml)[0, 0]
    fast_per_s = math.log(4.0) / (t2 - t1)  # halves every 1.5 d, faster than 78.41 h
    assert fast_per_s > LAMBDA_ZR89
    assert tail[0] == pytest.approx(4.0e3 / fast_per_s, rel=1e-12)
    # 10 → 9 kBq/mL in 3 d is slower than physical decay (0.53 in 3 d): physical tail.
    assert tail[1] == pytest.approx(9.0e3 / LAMBDA_ZR89, rel=1e-12)
    assert tail[2] == pytest.approx(6.0e3 / LAMBDA_ZR89, rel=1e-12)  # rising
    assert tail[3] == 0.0  # nothing left at the last point
    assert tail[4] == pytest.approx(2.0e3 / LAMBDA_ZR89, rel=1e-12)  # no decline to fit
    assert dose.n_fitted_tail_voxels == 1


@pytest.mark.parametrize("head", ["constant", "linear"])
@pytest.mark.parametrize("tail", ["physical", "exponential", "none"])
def test_every_voxel_equals_the_scalar_time_integral(head: str, tail: str) -> None:
    rng = np.random.default_rng(8)
    times_s = np.array([0.5, 2.0, 4.0, 7.0]) * DAY
    arrays = rng.uniform(0.0, 2.0e4, size=(4, 3, 4, 5))
    arrays[:, 0, 0, :] = 0.0  # a cold row
    arrays[-1, 1, 0, :] = 0.0  # activity gone at the last point
    dose = voxel_absorbed_dose(
        _volumes(list(arrays.astype(np.float32))),
        times_s,
        "Zr-89",
        head=head,  # type: ignore[arg-type]
        tail=tail,  # type: ignore[arg-type]
    )
    values = arrays.astype(np.float32).astype(float).reshape(4, -1)
    expected = np.array(
        [
            time_integrated_activity_bq_s(
                times_s,
                values[:, i],
                half_life_s=ZR89_S,
                head=head,  # type: ignore[arg-type]
                tail=tail,  # type: ignore[arg-type]
            )
            for i in range(values.shape[1])
        ]
    )
    assert np.allclose(dose.tia_bq_s_per_ml.ravel(), expected, rtol=1e-12, atol=0.0)


def test_decay_corrected_input_is_decayed_back_to_the_acquisition() -> None:
    times_s = [1.0 * DAY, 4.0 * DAY]
    corrected = [np.full((1, 2, 2), 10.0e3), np.full((1, 2, 2), 8.0e3)]  # to the injection
    present = [c * 2.0 ** (-t / ZR89_S) for c, t in zip(corrected, times_s, strict=True)]
    timing = AcquisitionTiming(start=datetime(2026, 3, 3), decay_reference=datetime(2026, 3, 2))
    from_corrected = voxel_absorbed_dose(
        _volumes(corrected, timing=timing), times_s, "Zr-89", decay_reference_s=[0.0, 0.0]
    )
    direct = voxel_absorbed_dose(_volumes(present), times_s, "Zr-89")
    assert np.allclose(from_corrected.dose_gy, direct.dose_gy, rtol=1e-6, atol=0.0)  # float32
    with pytest.raises(TimingError, match="decay-corrected"):
        voxel_absorbed_dose(_volumes(corrected, timing=timing), times_s, "Zr-89")


def test_negative_voxels_are_set_to_zero_and_counted() -> None:
    dose = voxel_absorbed_dose(_volumes([np.array([[[-5.0, 1.0e3]]])]), [0.0], "Zr-89")
    assert dose.n_negative_voxels == 1
    assert dose.dose_gy[0, 0, 0] == 0.0


def test_inputs_are_checked() -> None:
    grid = np.ones((2, 2, 2))
    with pytest.raises(GeometryError, match="register"):
        voxel_absorbed_dose(
            [
                *_volumes([grid]),
                Volume(grid, np.eye(4), Quantity.ACTIVITY_CONCENTRATION),
            ],
            [0.0, DAY],
            "Zr-89",
        )
    with pytest.raises(InputError, match="activity concentration"):
        voxel_absorbed_dose([Volume(grid, AFFINE, Quantity.SUV_BW)], [0.0], "Zr-89")
    with pytest.raises(TimingError, match="increasing"):
        voxel_absorbed_dose(_volumes([grid, grid]), [DAY, DAY], "Zr-89")
    with pytest.raises(InputError, match="NaN"):
        voxel_absorbed_dose(_volumes([np.full((1, 1, 2), np.nan)]), [0.0], "Zr-89")


def _known_dose(values_gy: np.ndarray) -> VoxelDose:
    """A 1×1×n dose map holding ``values_gy`` (Ã/mL chosen to match E_np of ⁸⁹Zr)."""
    energy_j = _non_penetrating_j("Zr-89")
    dose_gy = values_gy.reshape(1, 1, -1).astype(float)
    return VoxelDose(
        dose_gy=dose_gy,
        tia_bq_s_per_ml=dose_gy * DENSITY_KG_PER_ML / energy_j,
        affine=AFFINE,
        nuclide="Zr-89",
        times_s=(0.0,),
        head="constant",
        tail="physical",
        non_penetrating_j_per_decay=energy_j,
        density_g_per_ml=1.0,
        n_negative_voxels=0,
        n_fitted_tail_voxels=0,
    )


def test_lesion_statistics_of_a_known_dose_pattern() -> None:
    """Doses 10, 1, 9, 2, … in 10 voxels plus 2 voxels outside the VOI (100 Gy)."""
    inside = np.array([10.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0])
    dose = _known_dose(np.concatenate([inside, [100.0, 100.0]]))
    mask = np.zeros((1, 1, 12), bool)
    mask[..., :10] = True
    stats = lesion_dose_statistics(dose, mask, dose_levels_gy=[5.0, 9.5, 0.0])
    # Sorted 10 ≥ 9 ≥ … ≥ 1; D_x = the k-th highest, k = ⌈x·n/100⌉: D90 → 9th = 2, D50 → 5th
    # = 6, D10 → 1st = 10 (at least 90 % of the VOI gets ≥ 2 Gy; only 80 % gets ≥ 3 Gy).
    assert (stats["d90_gy"], stats["d50_gy"], stats["d10_gy"]) == (2.0, 6.0, 10.0)
    assert (stats["mean_gy"], stats["min_gy"], stats["max_gy"]) == (5.5, 1.0, 10.0)
    assert stats["n_voxels"] == 10
    assert [p["volume_fraction"] for p in stats["v_gy"]] == [0.6, 0.1, 1.0]
    assert stats["v_gy"][0]["volume_ml"] == pytest.approx(0.6 * 10 * VOXEL_ML)
    # Seven voxels 1…7 Gy: D90 → k = ⌈6.3⌉ = 7 → 1; D50 → ⌈3.5⌉ = 4 → 4; D10 → ⌈0.7⌉ = 1 → 7.
    seven = lesion_dose_statistics(_known_dose(np.arange(1.0, 8.0)), np.ones((1, 1, 7), bool))
    assert (seven["d90_gy"], seven["d50_gy"], seven["d10_gy"]) == (1.0, 4.0, 7.0)
    with pytest.raises(InputError, match="empty"):
        lesion_dose_statistics(dose, np.zeros((1, 1, 12), bool))


def _sphere(radius_mm: float, shape: tuple[int, int, int]) -> np.ndarray:
    centre = (np.array(shape) - 1) / 2.0
    grid = np.indices(shape).astype(float)
    distance_mm = VOXEL_MM * np.sqrt(sum((grid[i] - centre[i]) ** 2 for i in range(3)))
    return np.asarray(distance_mm <= radius_mm)


@pytest.mark.parametrize("nuclide", ["Y-90", "Zr-89"])
def test_uniform_sphere_agrees_with_the_lesion_dose_but_for_photons(nuclide: str) -> None:
    """A uniformly filled sphere of about 10 mL (radius 13.4 mm on a 4 mm grid)."""
    half_life_s = {"Y-90": 64.10 * HOUR, "Zr-89": ZR89_S}[nuclide]  # ICRP-107
    sphere = _sphere(13.4, (11, 11, 11))
    times_s = [1.0 * DAY, 2.0 * DAY, 4.0 * DAY]
    arrays = [np.where(sphere, c, 0.0) for c in (30.0e3, 22.0e3, 10.0e3)]
    dose = voxel_absorbed_dose(_volumes(arrays), times_s, nuclide)
    stats = lesion_dose_statistics(dose, sphere)
    volume_ml = float(sphere.sum()) * VOXEL_ML
    concentration = [30.0e3, 22.0e3, 10.0e3]
    tia_per_ml = (
        concentration[0] * times_s[0]
        + 0.5 * (concentration[0] + concentration[1]) * DAY
        + 0.5 * (concentration[1] + concentration[2]) * 2 * DAY
        + concentration[2] * half_life_s / math.log(2.0)
    )
    local_gy = tia_per_ml * _non_penetrating_j(nuclide) / DENSITY_KG_PER_ML
    assert stats["mean_gy"] == pytest.approx(local_gy, rel=1e-9)
    assert stats["d90_gy"] == stats["d10_gy"] == pytest.approx(local_gy, rel=1e-9)
    sphere_gy = lesion_absorbed_dose_gy(stats["tia_bq_s"], volume_ml, nuclide)
    assert stats["mean_with_photons_gy"] == pytest.approx(sphere_gy, rel=1e-12)
    if nuclide == "Y-90":  # no photons to speak of: the two methods agree
        assert stats["photon_self_dose_gy"] / local_gy < 2e-6
    else:
        # Photons absorbed per decay: the Y X-rays (7.40 keV, ≤ 20 keV: local) and the
        # first-flight fraction ¾·μ_en·R of the 1150.7 keV of γ + annihilation photons.
        radius_cm = (3.0 * volume_ml / (4.0 * math.pi)) ** (1.0 / 3.0)
        absorbed_kev = 7.40 + 0.75 * 0.032 * radius_cm * 1150.7
        expected = local_gy * absorbed_kev / 101.943
        assert stats["photon_self_dose_gy"] == pytest.approx(expected, rel=0.05)
        assert 0.35 < stats["photon_self_dose_gy"] / local_gy < 0.5
