"""Every DICOM timing case of the quantitative-core issue, with hand-computed expected factors.

The phantom is uniform; its true activity concentration is chosen so that SUVbw
is exactly 1 when all timing is read right. Expected factors are computed here
from ICRP-107 half-lives (conftest.HALF_LIFE_S), not by the engine.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset

from immunopet.errors import InputError, TimingError
from immunopet.image import DecayCorrection
from immunopet.io import load_scan
from immunopet.quant import SuvFactors, standardize, standardize_scan
from phantoms import HALF_LIFE_S, PetWriter, remaining

ACTIVITY = 37.0e6
WEIGHT_G = 70.0e3
INJECTION = datetime(2026, 3, 2, 9, 0, 0)


def suv(folder: Path, **overrides: Any) -> tuple[SuvFactors, float, list[str]]:
    result = standardize_scan(load_scan(folder), **overrides)
    return result.factors, result.max_suv_bw, list(result.warnings)


def uniform_suv1(nuclide: str, uptake_s: float) -> float:
    """Bq/mL of a uniform phantom whose SUVbw is 1 at ``uptake_s`` after injection."""
    return ACTIVITY * remaining(nuclide, uptake_s) / WEIGHT_G


def drop_start_datetime(ds: Dataset, _: int) -> None:
    del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime


@pytest.mark.parametrize("days", [3, 6, 7])
def test_multi_day_zr89_uses_the_date(write_pet: PetWriter, days: int) -> None:
    scan = INJECTION + timedelta(days=days)
    folder = write_pet(values=uniform_suv1("Zr-89", days * 86400.0), scan=scan)
    factors, max_suv, _ = suv(folder)
    expected_dose = ACTIVITY * remaining("Zr-89", days * 86400.0)
    assert factors.decayed_dose_bq == pytest.approx(expected_dose, rel=1e-9)
    assert factors.suv_bw_factor == pytest.approx(WEIGHT_G / expected_dose, rel=1e-9)
    assert max_suv == pytest.approx(1.0, abs=1e-4)


def test_published_fixture_zr89_72h(write_pet: PetWriter) -> None:
    # 72 h: remaining fraction 0.529150 (radioactivedecay, DOMAIN_NUMBERS §1.2).
    folder = write_pet(values=1000.0, scan=INJECTION + timedelta(hours=72))
    factors, _, _ = suv(folder)
    assert factors.decayed_dose_bq / ACTIVITY == pytest.approx(0.529150, abs=1e-6)


def test_never_decay_corrects_twice(write_pet: PetWriter) -> None:
    # START-corrected uniform phantom 4 days after Zr-89 injection reads SUV 1.000, not the
    # 1/0.4287 ≈ 2.33 a tool that decay-corrects the pixels again would report.
    folder = write_pet(values=uniform_suv1("Zr-89", 4 * 86400.0))
    _, max_suv, _ = suv(folder)
    assert max_suv == pytest.approx(1.0, abs=1e-4)
    assert abs(max_suv - 1.0 / remaining("Zr-89", 4 * 86400.0)) > 1.0


def test_admin_corrected_image_uses_the_undecayed_dose(write_pet: PetWriter) -> None:
    # ADMIN: pixels already corrected to the injection; the dose is not decayed.
    folder = write_pet(values=ACTIVITY / WEIGHT_G, decay_correction=DecayCorrection.ADMIN)
    factors, max_suv, _ = suv(folder)
    assert factors.decayed_dose_bq == pytest.approx(ACTIVITY, rel=1e-12)
    assert factors.reference_datetime == INJECTION
    assert max_suv == pytest.approx(1.0, abs=1e-4)


def test_not_decay_corrected_whole_body_is_corrected_per_bed(write_pet: PetWriter) -> None:
    # NONE: each bed holds the mean activity over its own frame. Beds of 2 slices, 600 s each,
    # so bed k starts k·600 s after the first; F-18 decays 6 % per 600 s, which a per-series
    # correction would miss.
    nuclide, scan, frame = "F-18", INJECTION + timedelta(hours=1), 600.0
    half_life = HALF_LIFE_S[nuclide]
    lam = np.log(2) / half_life
    average = (1 - np.exp(-lam * frame)) / (lam * frame)
    at_scan = ACTIVITY * remaining(nuclide, 3600.0) / WEIGHT_G
    values = np.empty((6, 8, 8), np.float32)
    for index in range(6):
        bed_start = (index // 2) * frame
        values[index] = at_scan * remaining(nuclide, bed_start) * average
    folder = write_pet(
        values=values,
        nuclide=nuclide,
        scan=scan,
        decay_correction=DecayCorrection.NONE,
        slices_per_bed=2,
    )
    factors, _, warnings = suv(folder)
    scan_obj = load_scan(folder)
    activity, _ = standardize(scan_obj.volume, scan_obj.acquisition, factors.inputs)  # type: ignore[arg-type]
    suv_image = activity.array * factors.suv_bw_factor
    assert factors.reference_datetime == scan
    assert suv_image.min() == pytest.approx(1.0, abs=2e-4)
    assert suv_image.max() == pytest.approx(1.0, abs=2e-4)
    assert any("Decay Correction NONE" in w for w in warnings)


def test_time_only_injection_refused_for_multi_day_nuclide(write_pet: PetWriter) -> None:
    folder = write_pet(values=100.0, mutate=drop_start_datetime)
    with pytest.raises(TimingError, match="--injection-datetime"):
        suv(folder)


def test_time_only_injection_with_option(write_pet: PetWriter) -> None:
    folder = write_pet(values=uniform_suv1("Zr-89", 4 * 86400.0), mutate=drop_start_datetime)
    factors, max_suv, _ = suv(folder, injection_datetime=INJECTION)
    assert factors.uptake_time_s == pytest.approx(4 * 86400.0)
    assert max_suv == pytest.approx(1.0, abs=1e-4)


def test_time_only_injection_same_day_f18(write_pet: PetWriter) -> None:
    scan = INJECTION + timedelta(minutes=60)
    folder = write_pet(values=1.0, nuclide="F-18", scan=scan, mutate=drop_start_datetime)
    factors, _, warnings = suv(folder)
    assert factors.decayed_dose_bq / ACTIVITY == pytest.approx(
        0.684633, abs=1e-6
    )  # DOMAIN_NUMBERS §1.2
    assert any("time of day" in w for w in warnings)


def test_time_only_injection_before_midnight_scan_after(write_pet: PetWriter) -> None:
    injection = datetime(2026, 3, 2, 23, 30)
    scan = datetime(2026, 3, 3, 0, 30)
    folder = write_pet(
        values=1.0, nuclide="F-18", injection=injection, scan=scan, mutate=drop_start_datetime
    )
    factors, _, warnings = suv(folder)
    assert factors.inputs.injection_datetime == injection
    assert factors.decayed_dose_bq / ACTIVITY == pytest.approx(0.684633, abs=1e-6)
    assert any("previous day" in w for w in warnings)


def test_time_only_injection_refused_when_dates_disagree(write_pet: PetWriter) -> None:
    def shift_study_date(ds: Dataset, index: int) -> None:
        drop_start_datetime(ds, index)
        ds.StudyDate = "20260228"

    scan = INJECTION + timedelta(minutes=60)
    folder = write_pet(values=1.0, nuclide="F-18", scan=scan, mutate=shift_study_date)
    with pytest.raises(TimingError, match="dates disagree"):
        suv(folder)


def test_start_datetime_preferred_over_time(write_pet: PetWriter) -> None:
    # An anonymiser shifted the date-time but left the time-only field: the DateTime wins.
    def stale_time(ds: Dataset, _: int) -> None:
        ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime = "071500.000000"

    folder = write_pet(values=uniform_suv1("Zr-89", 4 * 86400.0), mutate=stale_time)
    factors, max_suv, warnings = suv(folder)
    assert factors.inputs.injection_datetime == INJECTION
    assert max_suv == pytest.approx(1.0, abs=1e-4)
    assert any("disagree" in w for w in warnings)


def test_scan_crossing_midnight_without_acquisition_dates(write_pet: PetWriter) -> None:
    # Series starts 23:50; the third bed starts 00:10 the next day and the files hold only
    # Acquisition Time. Not decay-corrected, so each bed's start time matters.
    nuclide, frame = "F-18", 600.0
    scan = datetime(2026, 3, 2, 23, 50)
    injection = scan - timedelta(minutes=60)

    def time_only(ds: Dataset, _: int) -> None:
        del ds.AcquisitionDate

    lam = np.log(2) / HALF_LIFE_S[nuclide]
    average = (1 - np.exp(-lam * frame)) / (lam * frame)
    at_scan = ACTIVITY * remaining(nuclide, 3600.0) / WEIGHT_G
    values = np.stack(
        [
            np.full((8, 8), at_scan * remaining(nuclide, (i // 2) * frame) * average)
            for i in range(6)
        ]
    )
    folder = write_pet(
        values=values,
        nuclide=nuclide,
        injection=injection,
        scan=scan,
        decay_correction=DecayCorrection.NONE,
        slices_per_bed=2,
        mutate=time_only,
    )
    loaded = load_scan(folder)
    assert loaded.volume.timing is not None
    assert sorted(loaded.volume.timing.frame_start_offsets_s) == [
        0.0,
        0.0,
        600.0,
        600.0,
        1200.0,
        1200.0,
    ]
    factors, _, _ = suv(folder)
    activity, _ = standardize(loaded.volume, loaded.acquisition, factors.inputs)  # type: ignore[arg-type]
    assert float((activity.array * factors.suv_bw_factor).max()) == pytest.approx(1.0, abs=2e-4)


def _post_processed(ds: Dataset, _: int) -> None:
    # Series Time rewritten 2 h after the acquisition by a reconstruction on the console.
    ds.SeriesTime = "110000.000000"


def test_series_time_after_acquisition_uses_ge_private_scan_time(write_pet: PetWriter) -> None:
    def ge(ds: Dataset, index: int) -> None:
        _post_processed(ds, index)
        block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
        block.add_new(0x0D, "DT", "20260306090000")
        ds.DecayFactor = None  # no help from the decay factor

    folder = write_pet(values=uniform_suv1("Zr-89", 4 * 86400.0), mutate=ge)
    factors, max_suv, warnings = suv(folder)
    assert factors.reference_datetime == datetime(2026, 3, 6, 9, 0)
    assert max_suv == pytest.approx(1.0, abs=1e-4)
    assert any("GE private" in w for w in warnings)


def test_series_time_after_acquisition_uses_decay_factor(write_pet: PetWriter) -> None:
    nuclide, uptake = "F-18", 3600.0
    folder = write_pet(
        values=uniform_suv1(nuclide, uptake),
        nuclide=nuclide,
        scan=INJECTION + timedelta(seconds=uptake),
        mutate=_post_processed,
    )
    factors, max_suv, warnings = suv(folder)
    assert (
        abs((factors.reference_datetime - (INJECTION + timedelta(seconds=uptake))).total_seconds())
        < 1.0
    )
    assert max_suv == pytest.approx(1.0, abs=1e-3)
    assert any("Decay Factor" in w for w in warnings)


def test_series_time_after_acquisition_without_clues_is_refused(write_pet: PetWriter) -> None:
    def no_clue(ds: Dataset, index: int) -> None:
        _post_processed(ds, index)
        del ds.DecayFactor

    folder = write_pet(values=1.0, mutate=no_clue)
    with pytest.raises(TimingError, match="Series Date/Time is after the acquisition"):
        suv(folder)


def test_residual_activity_is_subtracted_after_decaying_back(write_pet: PetWriter) -> None:
    nuclide = "F-18"
    scan = INJECTION + timedelta(minutes=60)
    folder = write_pet(values=1.0, nuclide=nuclide, scan=scan)
    residual, measured = 2.0e6, INJECTION + timedelta(minutes=30)
    factors, _, _ = suv(folder, residual_activity_bq=residual, residual_datetime=measured)
    net = ACTIVITY - residual / remaining(nuclide, 1800.0)
    assert factors.net_injected_activity_bq == pytest.approx(net, rel=1e-9)
    assert factors.decayed_dose_bq == pytest.approx(net * 0.684633, rel=2e-6)


def test_malformed_injection_datetime_is_a_clear_error(write_pet: PetWriter) -> None:
    def malformed(ds: Dataset, _: int) -> None:
        item = ds.RadiopharmaceuticalInformationSequence[0]
        item.RadiopharmaceuticalStartDateTime = "2026-03-02 09:00"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns on the invalid DT this test writes
        folder = write_pet(values=1.0, mutate=malformed)
    with pytest.raises(InputError, match="RadiopharmaceuticalStartDateTime") as info:
        load_scan(folder)
    assert str(folder) in info.value.one_line()


def test_injection_in_utc_is_converted_to_the_site_time(write_pet: PetWriter) -> None:
    # Injection written in UTC (08:00+0000) at a site on UTC+1: local 09:00, 96 h before the scan.
    def utc(ds: Dataset, _: int) -> None:
        ds.RadiopharmaceuticalInformationSequence[
            0
        ].RadiopharmaceuticalStartDateTime = "20260302080000+0000"
        ds.TimezoneOffsetFromUTC = "+0100"

    folder = write_pet(values=uniform_suv1("Zr-89", 4 * 86400.0), mutate=utc)
    factors, max_suv, _ = suv(folder)
    assert factors.inputs.injection_datetime == INJECTION
    assert max_suv == pytest.approx(1.0, abs=1e-4)


def test_acquisition_datetime_with_offset_is_read(write_pet: PetWriter) -> None:
    def offset(ds: Dataset, _: int) -> None:
        ds.AcquisitionDateTime = ds.AcquisitionDate + ds.AcquisitionTime + "+0100"

    folder = write_pet(values=uniform_suv1("Zr-89", 4 * 86400.0), mutate=offset)
    _, max_suv, warnings = suv(folder)
    assert max_suv == pytest.approx(1.0, abs=1e-4)
    assert any("UTC offset +0100" in w for w in warnings)


def test_time_only_acquisition_before_midnight_with_series_dated_after(
    write_pet: PetWriter,
) -> None:
    # Reprocessed series stamped 00:05 the next day; the acquisition ran at 23:50 (time only).
    nuclide = "F-18"
    scan = datetime(2026, 3, 2, 23, 50)

    def reprocessed(ds: Dataset, _: int) -> None:
        ds.SeriesDate, ds.SeriesTime = "20260303", "000500"
        del ds.AcquisitionDate

    folder = write_pet(
        values=uniform_suv1(nuclide, 3600.0),
        nuclide=nuclide,
        injection=scan - timedelta(hours=1),
        scan=scan,
        mutate=reprocessed,
    )
    factors, max_suv, _ = suv(folder)
    assert abs((factors.reference_datetime - scan).total_seconds()) < 1.0
    assert max_suv == pytest.approx(1.0, abs=1e-3)


def test_not_decay_corrected_slice_without_time_is_refused(write_pet: PetWriter) -> None:
    def drop_one(ds: Dataset, index: int) -> None:
        if index == 4:
            del ds.AcquisitionDate
            del ds.AcquisitionTime

    folder = write_pet(
        values=1.0, nuclide="F-18", decay_correction=DecayCorrection.NONE, mutate=drop_one
    )
    with pytest.raises(TimingError, match="no acquisition time") as info:
        load_scan(folder)
    assert "IMG" in info.value.one_line()  # names the slice's file


def test_slices_a_day_apart_are_refused(write_pet: PetWriter) -> None:
    def wrong_date(ds: Dataset, index: int) -> None:
        if index >= 3:
            ds.AcquisitionDate = "20260307"

    folder = write_pet(values=1.0, decay_correction=DecayCorrection.NONE, mutate=wrong_date)
    with pytest.raises(TimingError, match="dates are inconsistent"):
        load_scan(folder)


def test_absurd_header_half_life_gives_no_traceback(write_pet: PetWriter) -> None:
    def absurd(ds: Dataset, _: int) -> None:
        ds.RadiopharmaceuticalInformationSequence[0].RadionuclideHalfLife = "1e30"

    folder = write_pet(values=uniform_suv1("Zr-89", 4 * 86400.0), mutate=absurd)
    _, max_suv, warnings = suv(folder)
    assert max_suv == pytest.approx(1.0, abs=1e-4)
    assert any("ICRP-107 is used" in w for w in warnings)


def test_slices_disagreeing_on_decay_correction_are_refused(write_pet: PetWriter) -> None:
    def mixed(ds: Dataset, index: int) -> None:
        if index % 2:
            ds.DecayCorrection = "ADMIN"

    with pytest.raises(InputError, match="slices disagree"):
        load_scan(write_pet(values=1.0, mutate=mixed))
