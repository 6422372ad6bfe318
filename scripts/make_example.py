"""Rebuild the example PET series shipped in src/immunopet/data/examples/.

A ⁸⁹Zr-antibody-like phantom imaged 4 days (96 h) after injection of 37 MBq:
a 70 kg, 175 cm woman as a uniform cylinder of SUV 1 with a 24 mm "lesion" of
SUV 5, decay-corrected to the scan start (DICOM Decay Correction START), two bed
positions. The expected answer is SUVbw max 5.0 (to int16 rounding).

Run: .venv/bin/python scripts/make_example.py
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np

from immunopet.image import DecayCorrection, Quantity, Volume
from immunopet.io.dicom import PetSeriesSpec, pet_series_datasets, write_datasets
from immunopet.physics import decay_factor, nuclide

TARGET = (
    Path(__file__).resolve().parents[1] / "src" / "immunopet" / "data" / "examples" / "zr89_day4"
)
SHAPE = (16, 32, 32)
SPACING_MM = 4.0
INJECTION = datetime(2026, 3, 2, 9, 0, 0)
SCAN = datetime(2026, 3, 6, 9, 0, 0)
ACTIVITY_BQ = 37.0e6
WEIGHT_KG, HEIGHT_CM = 70.0, 175.0
LESION_SUV, BACKGROUND_SUV = 5.0, 1.0
LESION_RADIUS_MM, BODY_RADIUS_MM = 12.0, 56.0


def main() -> None:
    decayed = ACTIVITY_BQ * decay_factor(
        nuclide("Zr-89").half_life_s, (SCAN - INJECTION).total_seconds()
    )
    suv_to_bq_per_ml = decayed / (WEIGHT_KG * 1000.0)
    k, j, i = np.indices(SHAPE) * SPACING_MM
    centre = (np.array(SHAPE) - 1) / 2 * SPACING_MM
    body = (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= BODY_RADIUS_MM**2
    lesion = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (
        i - centre[2] - 20.0
    ) ** 2 <= LESION_RADIUS_MM**2
    suv = np.where(body, BACKGROUND_SUV, 0.0)
    suv[lesion] = LESION_SUV
    affine = np.array(
        [
            [0, 0, SPACING_MM, -62.0],
            [0, SPACING_MM, 0, -62.0],
            [SPACING_MM, 0, 0, -30.0],
            [0, 0, 0, 1.0],
        ]
    )
    volume = Volume(
        (suv * suv_to_bq_per_ml).astype(np.float32), affine, Quantity.ACTIVITY_CONCENTRATION
    )
    spec = PetSeriesSpec(
        nuclide="Zr-89",
        injected_activity_bq=ACTIVITY_BQ,
        injection_datetime=INJECTION,
        series_datetime=SCAN,
        frame_duration_s=600.0,
        weight_kg=WEIGHT_KG,
        height_cm=HEIGHT_CM,
        sex="F",
        decay_correction=DecayCorrection.START,
        radiopharmaceutical="89Zr-DFO-antibody (example)",
        slices_per_bed=8,
        patient_id="IMMUNOPET-EXAMPLE",
    )
    datasets = pet_series_datasets(volume, spec)
    # Fixed UIDs would be nicer for diffs, but generated ones are what scanners write.
    shutil.rmtree(TARGET, ignore_errors=True)
    write_datasets(datasets, TARGET)
    print(f"wrote {len(datasets)} files to {TARGET}")


if __name__ == "__main__":
    main()
