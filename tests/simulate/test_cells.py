"""CAR T-cell compartment model: Stein kinetics reproduced, label efflux, mass balance, trafficking."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from immunopet.image import Quantity
from immunopet.io import load_scan, read_nifti
from immunopet.kinetics import Stein2019CellularKinetics
from immunopet.physics import nuclide
from immunopet.planning import DirectLabel, ReporterLabel
from immunopet.planning._cells import cell_label, resolve_cell_label
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._cells import (
    direct_label_activity,
    live_cells_by_site,
    normal_sites,
    reporter_activity,
    site_fractions,
    total_live_cells,
)
from immunopet.simulate._patient import simulate_patient
from immunopet.simulate._scenario import PatientSpec

OVERRIDDEN = Stein2019CellularKinetics(
    fold_expansion=50.0,
    tmax_d=5.0,
    cmax_copies_per_ug=1000.0,
    alpha_per_day=0.5,
    beta_per_day=0.02,
    fb=0.05,
)


@pytest.fixture(scope="module")
def mouse() -> PatientSpec:
    return draw_cohort(load_scenario("poor_homing"), 1, seed=7)[0]


def _direct(patient: PatientSpec) -> DirectLabel:
    label, _ = resolve_cell_label(cell_label("zr89-oxine"))
    assert isinstance(label, DirectLabel)
    return label


def _slope(times: np.ndarray, values: np.ndarray) -> float:
    return float(np.polyfit(times, np.log(values), 1)[0])


@pytest.mark.parametrize(
    "kinetics", [Stein2019CellularKinetics.published(), OVERRIDDEN], ids=["published", "overridden"]
)
def test_total_cells_reproduce_stein_kinetics(
    mouse: PatientSpec, kinetics: Stein2019CellularKinetics
) -> None:
    patient = dataclasses.replace(mouse, kinetics=kinetics)
    grid = np.linspace(0.0, 3.0 * kinetics.tmax_d, 30001)
    cells = total_live_cells(patient, grid)
    assert cells[0] == pytest.approx(patient.infused_cells, rel=1e-12)
    tmax = grid[int(np.argmax(cells))]
    assert tmax == pytest.approx(kinetics.tmax_d, rel=0.01)
    assert cells.max() == pytest.approx(patient.infused_cells * kinetics.fold_expansion, rel=0.01)
    # Doubling time from the log-slope of the expansion.
    expanding = np.linspace(0.1, 0.9, 9) * kinetics.tmax_d
    doubling = math.log(2.0) / _slope(expanding, total_live_cells(patient, expanding))
    assert doubling == pytest.approx(kinetics.doubling_time_d, rel=0.01)
    # Terminal half-life from the late log-slope; fast half-life by peeling the slow phase.
    late = kinetics.tmax_d + np.linspace(300.0, 400.0, 11)
    late_cells = total_live_cells(patient, late)
    late_slope, late_intercept = np.polyfit(late - kinetics.tmax_d, np.log(late_cells), 1)
    assert math.log(2.0) / -late_slope == pytest.approx(kinetics.terminal_half_life_d, rel=0.01)
    early = kinetics.tmax_d + np.linspace(0.0, 1.0 / kinetics.alpha_per_day, 11)
    residual = total_live_cells(patient, early) - np.exp(
        late_intercept + late_slope * (early - kinetics.tmax_d)
    )
    fast = math.log(2.0) / -_slope(early, residual)
    assert fast == pytest.approx(kinetics.initial_decline_half_life_d, rel=0.01)


def test_sites_share_all_live_cells(mouse: PatientSpec) -> None:
    days = np.array([0.0, 0.1, 1.0, 4.0, 30.0])
    fractions = site_fractions(mouse, days)
    assert set(fractions) == {*normal_sites(), *(lesion.name for lesion in mouse.lesions)}
    np.testing.assert_allclose(np.sum(list(fractions.values()), axis=0), 1.0, rtol=1e-12)
    by_site = live_cells_by_site(mouse, days)
    np.testing.assert_allclose(
        np.sum(list(by_site.values()), axis=0), total_live_cells(mouse, days), rtol=1e-12
    )
    tumour = fractions["flank_tumor"]
    assert tumour[0] == 0.0
    assert tumour[2] > 0.0


def test_lung_first_pass_then_liver_lee_2020(mouse: PatientSpec) -> None:
    grid = np.linspace(1.0 / 24.0, 14.0, 2000)
    fractions = site_fractions(mouse, grid)
    assert grid[int(np.argmax(fractions["lungs"]))] == pytest.approx(1.0 / 24.0)
    one_hour = {site: float(value[0]) for site, value in site_fractions(mouse, [1 / 24]).items()}
    assert max(one_hour, key=one_hour.__getitem__) == "lungs"
    day7 = {site: float(value[0]) for site, value in site_fractions(mouse, [7.0]).items()}
    assert max(day7, key=day7.__getitem__) == "liver"
    assert day7["liver"] > one_hour["liver"]
    assert day7["lungs"] < one_hour["lungs"]


def test_label_leaves_cells_at_the_efflux_rate(mouse: PatientSpec) -> None:
    # Expansion up to day 100: no cell dies in the first 10 days, label per lineage conserved.
    flat = dataclasses.replace(
        Stein2019CellularKinetics.published(), fold_expansion=1.0001, tmax_d=100.0
    )
    patient = dataclasses.replace(mouse, kinetics=flat)
    label = _direct(patient)
    days = np.linspace(0.0, 10.0, 21)
    activity = direct_label_activity(patient, label, days)
    initial = patient.infused_cells * label.bound_bq_per_cell
    assert activity.bound_bq[0] == pytest.approx(initial, rel=1e-12)
    physical = math.log(2.0) / (nuclide(label.nuclide).half_life_s / 86400.0)
    efflux = -_slope(days, activity.bound_bq) - physical
    assert efflux == pytest.approx(label.efflux_per_day, rel=0.01)
    np.testing.assert_allclose(
        activity.bound_bq, initial * np.exp(-(physical + label.efflux_per_day) * days), rtol=1e-9
    )


@pytest.mark.parametrize(
    "kinetics", [Stein2019CellularKinetics.published(), OVERRIDDEN], ids=["published", "overridden"]
)
def test_bound_plus_free_is_decayed_injected(
    mouse: PatientSpec, kinetics: Stein2019CellularKinetics
) -> None:
    patient = dataclasses.replace(mouse, kinetics=kinetics)
    label = _direct(patient)
    days = np.linspace(0.0, 60.0, 241)
    activity = direct_label_activity(patient, label, days, bound_bq_at_infusion=2.6e5)
    half_life_d = nuclide(label.nuclide).half_life_s / 86400.0
    expected = 2.6e5 * np.exp(-math.log(2.0) * days / half_life_d)
    np.testing.assert_allclose(activity.bound_bq + activity.free_bq, expected, rtol=1e-12)
    assert np.all(activity.free_bq >= -1e-9 * expected)
    np.testing.assert_allclose(
        np.sum(list(activity.by_site_bq.values()), axis=0), expected, rtol=1e-12
    )
    # Dead-cell and effluxed label goes to liver and spleen: their share grows.
    liver_share = activity.by_site_bq["liver"] / expected
    assert liver_share[-1] > liver_share[0]


def test_reporter_follows_live_cells(mouse: PatientSpec) -> None:
    label = ReporterLabel(name="hnet", nuclide="F-18", uptake_bq_per_cell=0.01)
    days = np.array([0.5, 7.0, 30.0])
    signal = reporter_activity(mouse, label, days)
    cells = live_cells_by_site(mouse, days)
    for site, value in signal.items():
        np.testing.assert_allclose(value, 0.01 * cells[site], rtol=1e-12)


def test_negative_days_refused(mouse: PatientSpec) -> None:
    from immunopet.errors import InputError

    with pytest.raises(InputError):
        total_live_cells(mouse, [-1.0])


def test_poor_homing_writes_cell_pet_and_live_cells(tmp_path: Path) -> None:
    patient = draw_cohort(load_scenario("poor_homing"), 1, seed=2)[0]
    scans = (dataclasses.replace(patient.scans[0], scan_delays_h=(24.0,)),)
    patient = dataclasses.replace(patient, scans=scans)
    truth = simulate_patient(
        patient, tmp_path, noiseless=True, rng=np.random.default_rng(0), voxel_mm=1.5
    )
    assert [scan["tracer"] for scan in truth["scans"]] == ["zr_oxine_cells"]
    assert not [item for item in truth["not_simulated"] if "tracer" in item]
    scan = truth["scans"][0]
    assert (tmp_path / scan["folder"] / "IMG0001.dcm").is_file()
    timepoint = truth["timepoints"][str(Path(scan["folder"]).parent)]
    cells = {**timepoint["live_car_t_cells"], **timepoint["live_car_t_cells_in_lesions"]}
    assert set(timepoint["live_car_t_cells"]) == set(normal_sites())
    assert set(timepoint["live_car_t_cells_in_lesions"]) == {"flank_tumor"}
    assert sum(cells.values()) == pytest.approx(float(total_live_cells(patient, [1.0])[0]))
    # The label in the image adds up to the bound plus free label on that day.
    labels = read_nifti(tmp_path / timepoint["labels_file"], quantity=Quantity.UNITLESS)
    voxel_ml = abs(float(np.linalg.det(labels.affine[:3, :3]))) * 1e-3
    image = load_scan(tmp_path / scan["folder"]).volume
    total = scan["cell_bound_bq"] + scan["free_label_bq"]
    assert float(image.array.sum()) * abs(float(np.linalg.det(image.affine[:3, :3]))) * 1e-3 == (
        pytest.approx(total, rel=0.05)
    )
    concentration = {**scan["organ_bq_per_ml"], **scan["lesion_bq_per_ml"]}
    truth_bq = sum(
        concentration[name] * float(np.sum(labels.array == index)) * voxel_ml
        for name, index in timepoint["labels"].items()
        if name in concentration
    )
    assert truth_bq == pytest.approx(total, rel=1e-6)
    assert scan["organ_bq_per_ml"]["spleen"] > scan["organ_bq_per_ml"]["muscle"] > 0.0
