"""Shared fixtures: scanner-like PET series written through immunopet's own DICOM writer.

Expected values in tests are computed by hand from ICRP-107 half-lives written
here as literals (ICRP Publication 107; see shared/reference/DOMAIN_NUMBERS.md
§1.1), never from the engine under test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset

from immunopet.image import DecayCorrection, Quantity, Volume
from immunopet.io.dicom import PetSeriesSpec, pet_series_datasets, write_datasets
from phantoms import AFFINE, PetWriter


@pytest.fixture
def write_pet(tmp_path: Path) -> PetWriter:
    """Write a PET series; ``values`` in Bq/mL (array or scalar); ``mutate(ds, index)`` edits headers."""
    counter = {"n": 0}

    def _write(
        *,
        values: Any,
        nuclide: str = "Zr-89",
        activity_bq: float = 37.0e6,
        injection: datetime = datetime(2026, 3, 2, 9, 0, 0),
        scan: datetime = datetime(2026, 3, 6, 9, 0, 0),
        decay_correction: DecayCorrection = DecayCorrection.START,
        weight_kg: float | None = 70.0,
        height_cm: float | None = 175.0,
        sex: str | None = "F",
        frame_duration_s: float = 600.0,
        slices_per_bed: int | None = None,
        shape: tuple[int, int, int] = (6, 8, 8),
        mutate: Callable[[Dataset, int], None] | None = None,
    ) -> Path:
        array = np.broadcast_to(np.asarray(values, dtype=np.float32), shape).copy()
        volume = Volume(array, AFFINE, Quantity.ACTIVITY_CONCENTRATION)
        spec = PetSeriesSpec(
            nuclide=nuclide,
            injected_activity_bq=activity_bq,
            injection_datetime=injection,
            series_datetime=scan,
            frame_duration_s=frame_duration_s,
            weight_kg=weight_kg,
            height_cm=height_cm,
            sex=sex,
            decay_correction=decay_correction,
            slices_per_bed=slices_per_bed,
        )
        datasets = pet_series_datasets(volume, spec)
        if mutate is not None:
            for index, ds in enumerate(datasets):
                mutate(ds, index)
        counter["n"] += 1
        folder = tmp_path / f"pet{counter['n']}"
        write_datasets(datasets, folder)
        return folder

    return _write
