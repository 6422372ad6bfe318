"""Cell detectability against published measurements.

Agreement, stated plainly:

1. **In-vitro detection limit of ⁸⁹Zr-oxine-labelled T cells on clinical PET** (Lechermann LM,
   Manavaki R, Attili B, et al. Detection limit of ⁸⁹Zr-labeled T cells for cellular tracking: an
   in vitro imaging approach using clinical PET/CT and PET/MRI. EJNMMI Res 2020;10:82,
   doi:10.1186/s13550-020-00667-5, PMC7360010; READ abstract). Jurkat T cells in a 3 × 3 plate
   of 1 cm³ cubic wells (gel matrix), 30 min scans: 3.3 × 10⁴ cells were detected at
   15.4 kBq/10⁶ cells. The abstract does not name the scanners (GE Discovery 690 PET/CT and
   GE SIGNA PET/MR: RECALLED), nor the detection criterion (visual). Stand-in: the Biograph mCT
   entry (9.6 cps/kBq, FWHM 4.3 mm); the cube as a 1 mL sphere; no background (cells in gel).
   **The model with ideal Poisson noise (η = 1) predicts 6.1 × 10² cells, 54 times fewer than
   observed** (79 times with the Discovery MI entry). Without background the limit scales as
   η², so the observation corresponds to a reconstruction noise amplification η ≈ 7.4: real
   low-count PET images are far noisier than the counting statistics of the counts in the
   volume (randoms, the scanner's ¹⁷⁶Lu background, iterative reconstruction, visual reading
   voxel by voxel; and the study tested only 10⁴, 10⁵ and 10⁶ cells, so its limit is coarse).
   The test asserts the documented factor within 20-150 (the band covers the unknown scanner's
   sensitivity, 7.5-22 cps/kBq RECALLED for the two named systems). The model is therefore
   optimistic by about this factor in cell number when background is negligible, and by about
   √54 ≈ 7 when background dominates (N_min ∝ η): use --noise-amplification for realism.
   The 6-well-plate result of the same paper (6.8 × 10⁴ cells at 27.8 kBq/10⁶) is not compared:
   cells spread in a flat layer are not a sphere.

2. **Generic PET detection limit for direct labelling, ~10⁴ cells** (Regen Ther 2021;18:202-216,
   PMC8282960, Table 4; READ). An order of magnitude without stated conditions. For a mouse
   (25 g, 10⁷ ⁸⁹Zr-oxine CAR T cells at Weist 2018 labelling, 1 % in a 0.1 mL site, Inveon,
   10 min, day 1, default SUV-1 background) the model gives 3.3 × 10³ cells with η = 1 and
   2.9 × 10⁴ with the η ≈ 7.4 implied by comparison 1: the published order of magnitude lies
   between them; asserted: both within 10³-10⁵.

3. **Recovery coefficients against the EARL1 accreditation bands** (RCmean for 10-37 mm
   spheres, shared/reference/DOMAIN_NUMBERS.md section 2.2, READ): with one resolution,
   FWHM 7 mm, the model's recovery coefficient falls inside all six bands.

Not compared: the reporter-gene detection limits of Moroz et al. J Nucl Med 2015;56:1055
(hNET/[¹⁸F]MFBG < 10⁵, hNIS/[¹²⁴I]iodide ~10⁶, hdCKDM and HSV1-tk/[¹⁸F]FEAU ~3 × 10⁵ cells,
READ abstract) need the probe uptake per cell and the background, which the abstract does
not give; they are stored in data/cell_labelling.toml and printed beside the prediction.
"""

from __future__ import annotations

import math

import pytest

from immunopet.planning._cells import (
    CellDetectabilityInputs,
    DirectLabel,
    cell_label,
    predict_cell_detectability,
    resolve_cell_label,
    sphere_recovery_coefficient,
)
from immunopet.planning._scanner import scanner

LECHERMANN_CELLS = 3.3e4
LECHERMANN_BQ_PER_CELL = 15.4e3 / 1.0e6
LECHERMANN_SCAN_S = 30 * 60.0
DOCUMENTED_FACTOR = 54.0


def lechermann_cube(noise_amplification: float = 1.0) -> float:
    """Predicted minimum detectable cells in one 1 cm³ well (cell-bound activity measured)."""
    label = DirectLabel("zr89-oxine", "Zr-89", LECHERMANN_BQ_PER_CELL, 1.0, 0.0)
    result = predict_cell_detectability(
        CellDetectabilityInputs(
            cells_per_kg=LECHERMANN_CELLS,
            weight_kg=1.0,
            label=label,
            homing_fraction=1.0,
            site_volume_ml=1.0,
            scanner=scanner("biograph_mct"),
            days_after_infusion=0.0,
            kinetics=None,
            scan_time_s=LECHERMANN_SCAN_S,
            background_bq_per_ml=0.0,
            noise_amplification=noise_amplification,
        )
    )
    return result.min_detectable_cells


def test_lechermann_2020_in_vitro_limit_documented_factor() -> None:
    predicted = lechermann_cube()
    factor = LECHERMANN_CELLS / predicted
    assert predicted == pytest.approx(609.0, rel=0.01)
    assert factor == pytest.approx(DOCUMENTED_FACTOR, rel=0.02)
    assert 20.0 < factor < 150.0
    # The observed limit is reproduced with eta = sqrt(factor) (no background: N_min ∝ eta²).
    calibrated = lechermann_cube(noise_amplification=math.sqrt(factor))
    assert calibrated == pytest.approx(LECHERMANN_CELLS, rel=1e-9)


def mouse_limit(noise_amplification: float) -> float:
    label, _ = resolve_cell_label(cell_label("zr89-oxine"))
    result = predict_cell_detectability(
        CellDetectabilityInputs(
            cells_per_kg=1.0e7 / 0.025,
            weight_kg=0.025,
            label=label,
            homing_fraction=0.01,
            site_volume_ml=0.1,
            scanner=scanner("inveon"),
            days_after_infusion=1.0,
            kinetics=None,
            scan_time_s=600.0,
            noise_amplification=noise_amplification,
        )
    )
    return result.min_detectable_cells


def test_generic_pet_direct_labelling_limit_order_of_magnitude() -> None:
    published = 1.0e4  # PMC8282960 Table 4, also in data/cell_labelling.toml [generic]
    ideal = mouse_limit(1.0)
    realistic = mouse_limit(math.sqrt(DOCUMENTED_FACTOR))
    assert ideal == pytest.approx(3.3e3, rel=0.05)
    assert realistic == pytest.approx(2.9e4, rel=0.05)
    assert ideal < published < realistic
    for value in (ideal, realistic):
        assert 1.0e3 <= value <= 1.0e5


@pytest.mark.parametrize(
    ("diameter_mm", "low", "high"),
    [
        (10, 0.27, 0.43),
        (13, 0.44, 0.60),
        (17, 0.57, 0.73),
        (22, 0.63, 0.78),
        (28, 0.72, 0.85),
        (37, 0.76, 0.89),
    ],
)
def test_recovery_inside_earl1_rcmean_bands(diameter_mm: float, low: float, high: float) -> None:
    volume_ml = 4.0 / 3.0 * math.pi * (diameter_mm / 2.0) ** 3 * 1e-3
    assert low <= sphere_recovery_coefficient(volume_ml, 7.0) <= high
