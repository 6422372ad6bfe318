"""The SUV engine's factors by hand, its refusals and its warnings."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import numpy as np
import pytest

from immunopet.errors import InputError, TimingError
from immunopet.image import AcquisitionTiming, DecayCorrection, PetAcquisition, Quantity, Volume
from immunopet.quant import resolve_suv_inputs, standardize
from phantoms import remaining

INJECTION = datetime(2026, 3, 2, 9, 0)
SCAN = INJECTION + timedelta(hours=96)
ACTIVITY = 37.0e6


def zr_acquisition(**changes: object) -> PetAcquisition:
    facts: dict[str, object] = {
        "nuclide": "Zr-89",
        "injected_activity_bq": ACTIVITY,
        "injection_datetime": INJECTION,
        "patient_weight_kg": 70.0,
        "patient_height_cm": 175.0,
        "patient_sex": "F",
        "decay_correction": DecayCorrection.START,
    }
    facts.update(changes)
    return PetAcquisition(**facts)  # type: ignore[arg-type]


def image(value: float, *, source: str = "phantom") -> Volume:
    return Volume(
        np.full((2, 3, 4), value, np.float32),
        np.eye(4),
        Quantity.ACTIVITY_CONCENTRATION,
        timing=AcquisitionTiming(SCAN, 600.0, decay_reference=SCAN),
        source=source,
    )


def test_every_factor_by_hand() -> None:
    acquisition = zr_acquisition()
    inputs, _ = resolve_suv_inputs(acquisition, SCAN, tissue_density_g_per_ml=1.05)
    _, factors = standardize(image(100.0), acquisition, inputs)
    decayed = ACTIVITY * remaining("Zr-89", 96 * 3600.0)
    bmi = 70.0 / 1.75**2
    lbm_janmahasatian_g = 9270.0 * 70.0 / (8780.0 + 244.0 * bmi) * 1000  # women
    lbm_james_g = (1.07 * 70.0 - 148.0 * (70.0 / 175.0) ** 2) * 1000  # women
    bsa_cm2 = 71.84 * 70.0**0.425 * 175.0**0.725  # Du Bois, cm²
    assert factors.decayed_dose_bq == pytest.approx(decayed, rel=1e-9)
    assert factors.suv_bw_factor == pytest.approx(70.0e3 / decayed, rel=1e-9)
    assert factors.suv_lbm_janmahasatian_factor == pytest.approx(
        lbm_janmahasatian_g / decayed, rel=1e-9
    )
    assert factors.suv_lbm_james_factor == pytest.approx(lbm_james_g / decayed, rel=1e-9)
    assert factors.suv_bsa_factor == pytest.approx(bsa_cm2 / decayed, rel=1e-9)
    assert factors.percent_id_per_ml_factor == pytest.approx(100.0 / decayed, rel=1e-12)
    assert factors.percent_id_per_g_factor == pytest.approx(100.0 / decayed / 1.05, rel=1e-12)


def test_apply_gives_the_quantity_asked_for() -> None:
    acquisition = zr_acquisition()
    inputs, _ = resolve_suv_inputs(acquisition, SCAN)
    activity, factors = standardize(image(250.0), acquisition, inputs)
    suv_lbm = factors.apply(activity, Quantity.SUV_LBM)
    assert suv_lbm.quantity is Quantity.SUV_LBM
    assert float(suv_lbm.array.max()) == pytest.approx(
        250.0 * factors.suv_lbm_janmahasatian_factor, rel=1e-6
    )  # type: ignore[operator]
    with pytest.raises(TimingError):
        factors.apply(image(1.0).with_timing(AcquisitionTiming(SCAN)))  # not at the reference


@pytest.mark.parametrize(
    ("nuclide", "uptake_h"), [("Cu-64", 24.5), ("Tc-99m", 24.0), ("I-123", 24.0)]
)
def test_time_of_day_injection_refused_for_nuclides_imaged_next_day(
    nuclide: str, uptake_h: float
) -> None:
    # Cu-64 fragments are imaged at 24-48 h; placing the injection on the scan date would make
    # a 24.5 h uptake look like 0.5 h (SUV off by 3.7x for Cu-64).
    acquisition = zr_acquisition(
        nuclide=nuclide, injection_datetime=None, injection_time_of_day=time(9, 0)
    )
    with pytest.raises(TimingError, match="--injection-datetime"):
        resolve_suv_inputs(acquisition, INJECTION + timedelta(hours=uptake_h))


def test_residual_warnings_and_refusal() -> None:
    acquisition = zr_acquisition()
    _, warnings = resolve_suv_inputs(acquisition, SCAN, residual_activity_bq=1.0e6)
    assert any("measured at injection" in w for w in warnings)
    _, warnings = resolve_suv_inputs(acquisition, SCAN, residual_datetime=INJECTION)
    assert any("ignored" in w for w in warnings)
    with pytest.raises(TimingError, match="before the injection"):
        resolve_suv_inputs(
            acquisition,
            SCAN,
            residual_activity_bq=1.0e6,
            residual_datetime=INJECTION - timedelta(minutes=5),
        )
    inputs, _ = resolve_suv_inputs(acquisition, SCAN, residual_activity_bq=ACTIVITY * 2)
    with pytest.raises(InputError, match="not less than"):
        standardize(image(1.0), acquisition, inputs)


def test_unit_slips_are_flagged() -> None:
    # 37 "Bq" (MBq written as Bq) and 154 "kg" of a 70 kg patient in pounds are not refused —
    # a mouse gets a few MBq — but they are flagged, and so is the absurd SUV they cause.
    acquisition = zr_acquisition(injected_activity_bq=37.0)
    inputs, warnings = resolve_suv_inputs(acquisition, SCAN, weight_kg=340.0)
    assert any("Bq, not MBq" in w for w in warnings)
    assert any("kg, not lb" in w for w in warnings)
    _, factors = standardize(image(100.0), acquisition, inputs)
    assert any("implausible" in w for w in factors.warnings)


def test_injection_after_the_scan_names_the_file() -> None:
    acquisition = zr_acquisition(injection_datetime=SCAN + timedelta(hours=1))
    inputs, _ = resolve_suv_inputs(acquisition, SCAN)
    with pytest.raises(TimingError, match="after the image's reference time") as info:
        standardize(image(1.0, source="/data/pet"), acquisition, inputs)
    assert info.value.path == "/data/pet"


def test_counts_are_refused() -> None:
    acquisition = zr_acquisition()
    inputs, _ = resolve_suv_inputs(acquisition, SCAN)
    counts = image(1.0).with_array(np.ones((2, 3, 4), np.float32), Quantity.COUNTS)
    with pytest.raises(InputError, match="activity-concentration"):
        standardize(counts, acquisition, inputs)
