"""Where the tracer's target is: normal tissue (on-target, off-tumour), CAR T cells, reporters."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from immunopet.data import read_toml
from immunopet.image import Quantity
from immunopet.io import read_nifti
from immunopet.physics import decay_factor, nuclide
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._patient import _with_sink, simulate_patient
from immunopet.tracers import VectorFormat
from immunopet.tracers._pharmacokinetics import TwoTissueVectorModel, vector_pharmacokinetics


def _simulate(scenario: str, tmp: Path, scans: tuple[Any, ...], voxel_mm: float) -> dict[str, Any]:
    patient = draw_cohort(load_scenario(scenario), 1, seed=5)[0]
    patient = dataclasses.replace(patient, scans=scans)
    return simulate_patient(
        patient, tmp / "patient", noiseless=True, rng=np.random.default_rng(0), voxel_mm=voxel_mm
    )


def _label_volumes_ml(tmp: Path, truth: dict[str, Any], scan: dict[str, Any]) -> dict[str, float]:
    """Volume of every label of a scan's visit, mL, counted on the truth label map."""
    timepoint = truth["timepoints"][str(Path(scan["folder"]).parent)]
    labels = read_nifti(tmp / timepoint["labels_file"], quantity=Quantity.UNITLESS)
    voxel_ml = abs(float(np.linalg.det(labels.affine[:3, :3]))) * 1e-3
    return {
        name: float(np.sum(labels.array == index)) * voxel_ml
        for name, index in timepoint["labels"].items()
    }


def test_on_target_off_tumour_adds_the_specific_tumour_uptake_to_the_normal_organ(
    tmp_path: Path,
) -> None:
    scenario = load_scenario("on_target_off_tumor")
    caix = next(scan for scan in scenario.scans if scan.tracer == "caix_igg")
    truth = _simulate("on_target_off_tumor", tmp_path, (caix,), voxel_mm=10.0)
    assert not [item for item in truth["not_simulated"] if "normal_tissue" in item]
    scan = truth["scans"][0]
    # CAIX on liver (3000) and stomach (8000) cells, relative to the 5000 reference.
    density = scan["organ_antigen_density"]
    assert density == {"liver": pytest.approx(3000 / 5000), "stomach": pytest.approx(8000 / 5000)}
    density = density | scan["lesion_antigen_density"]
    # The antigen is a sink: its specific trapping clears plasma at K_i,specific x density x
    # mass, the mass of each label counted on the label map and scaled to the reference body.
    parameters = vector_pharmacokinetics(VectorFormat.IGG)
    reference = TwoTissueVectorModel(parameters)
    body_scale = reference.body.body_mass_g / (truth["patient"]["weight_kg"] * 1000.0)
    volume_ml = _label_volumes_ml(tmp_path / "patient", truth, scan)
    clearance_ml_per_s = parameters.tumour_specific_ki_ml_per_g_per_s * sum(
        value * volume_ml[name] * body_scale for name, value in density.items()
    )
    assert scan["specific_sink"]["clearance_ml_per_h"] == pytest.approx(
        clearance_ml_per_s * 3600.0, rel=1e-9
    )
    # Liver = its own IgG curve + 0.6 x (tumour(1) - tumour(0)), of the depleted plasma,
    # times activity, decay and the body scale.
    depleted = _with_sink(parameters, scan["specific_sink"]["clearance_ml_per_h"] / 3600.0)
    t = np.array([96.0 * 3600.0])

    def tumour(model_parameters: Any, relative: float) -> float:
        model = TwoTissueVectorModel(model_parameters, antigen_density=relative)
        return float(model.tissue_percent_id_per_g("tumour", t)[0])

    liver = float(TwoTissueVectorModel(depleted).tissue_percent_id_per_g("liver", t)[0])
    expected_percent = liver + 0.6 * (tumour(depleted, 1.0) - tumour(depleted, 0.0))
    physical = decay_factor(nuclide("Zr-89").half_life_s, 96.0 * 3600.0)
    expected = expected_percent / 100.0 * scan["injected_activity_bq"] * physical * body_scale
    assert scan["organ_bq_per_ml"]["liver"] == pytest.approx(expected, rel=1e-9)
    # The sink takes a visible share: per-antigen uptake falls, yet the antigen adds uptake.
    free = tumour(parameters, 1.0) - tumour(parameters, 0.0)
    specific = tumour(depleted, 1.0) - tumour(depleted, 0.0)
    assert scan["specific_sink"]["uptake_factor"] == pytest.approx(specific / free, rel=1e-9)
    assert 0.5 < scan["specific_sink"]["uptake_factor"] < 0.99
    assert specific > 0.0
    assert scan["normal_tissue_scale"] == 1.0


def test_sink_matches_the_two_compartment_equations() -> None:
    """Closed-form depleted plasma and sink content against a numerical ODE solution."""
    parameters = vector_pharmacokinetics(VectorFormat.MINIBODY)
    reference = TwoTissueVectorModel(parameters)
    k12, k21, k10 = reference.micro_constants_per_s
    plasma_ml = reference.body.plasma_volume_ml
    clearance_ml_per_s = 2000.0 / 3600.0  # about 20 x the format's own elimination clearance
    depleted = TwoTissueVectorModel(_with_sink(parameters, clearance_ml_per_s))
    loss = depleted.label_loss_rate_per_s

    def rates(_: float, y: np.ndarray) -> list[float]:
        central, peripheral, sink = y  # %ID
        return [
            -(k12 + k10 + clearance_ml_per_s / plasma_ml) * central + k21 * peripheral,
            k12 * central - k21 * peripheral,
            clearance_ml_per_s * central / plasma_ml - loss * sink,
        ]

    times_s = np.array([0.5, 3.0, 6.0, 24.0, 72.0]) * 3600.0
    solution = solve_ivp(
        rates, (0.0, times_s[-1]), [100.0, 0.0, 0.0], t_eval=times_s, rtol=1e-11, atol=1e-12
    )
    plasma = solution.y[0] / plasma_ml
    assert depleted.plasma_percent_id_per_ml(times_s) == pytest.approx(plasma, rel=1e-6)
    # What the sink removed from plasma is the specific uptake of its labels.
    specific = depleted.tissue_percent_id_per_g("tumour", times_s) - TwoTissueVectorModel(
        depleted.parameters, antigen_density=0.0
    ).tissue_percent_id_per_g("tumour", times_s)
    sink_mass_g = clearance_ml_per_s / parameters.tumour_specific_ki_ml_per_g_per_s
    assert specific * sink_mass_g == pytest.approx(solution.y[2], rel=1e-6)
    # The organs and the remainder trap and distribute as tabulated.
    assert depleted.remainder_ki_ml_per_g_per_s == pytest.approx(
        reference.remainder_ki_ml_per_g_per_s, rel=1e-9
    )
    assert depleted.remainder_distribution_volume_ml_per_g == pytest.approx(
        reference.remainder_distribution_volume_ml_per_g, rel=1e-9
    )
    # The body plus the sink never hold more than was injected.
    held = depleted.whole_body_percent_id(times_s) + solution.y[2]
    assert np.all(held <= 100.0 + 1e-9)
    assert _with_sink(parameters, 0.0) is parameters


def test_reporter_probe_follows_live_cells(tmp_path: Path) -> None:
    scenario = load_scenario("reporter_homing")
    truth = _simulate("reporter_homing", tmp_path, scenario.scans, voxel_mm=1.0)
    assert [item for item in truth["not_simulated"] if "tracer" in item] == []
    uptake = 0.05  # reporter_uptake_bq_per_cell of the scenario
    by_day = {scan["day"]: scan for scan in truth["scans"]}
    assert len(by_day) == 5
    baseline = min(by_day)
    assert baseline < 0
    assert by_day[baseline]["reporter_cell_bq_by_site"] == {}
    assert by_day[baseline]["specific_sink"] == {"clearance_ml_per_h": 0.0, "uptake_factor": 1.0}
    cells_on_day: dict[float, float] = {}
    for day, scan in by_day.items():
        if day < 0:
            continue
        folder = str(Path(scan["folder"]).parent)
        cells = {
            **truth["timepoints"][folder]["live_car_t_cells"],
            **truth["timepoints"][folder]["live_car_t_cells_in_lesions"],
        }
        # Every cell holds the same share of the probe: the uptake per cell times the
        # depletion of the probe by all the cells, the same for every site of that scan.
        factor = scan["specific_sink"]["uptake_factor"]
        assert 0.0 < factor < 1.0
        for site, bq in scan["reporter_cell_bq_by_site"].items():
            assert bq == pytest.approx(cells[site] * uptake * factor, rel=1e-12)
        cells_on_day[day] = sum(cells[site] for site in scan["reporter_cell_bq_by_site"])
    # More reporter cells take a larger share of the probe: a lower factor.
    ordered = sorted(cells_on_day, key=cells_on_day.__getitem__)
    factors = [by_day[day]["specific_sink"]["uptake_factor"] for day in ordered]
    assert factors == sorted(factors, reverse=True)
    # Expansion: the spleen's reporter signal on day 7 exceeds day 1's, as its live cells do.
    spleen = {
        day: scan["reporter_cell_bq_by_site"].get("spleen", 0.0) for day, scan in by_day.items()
    }
    assert spleen[7.0 + 1 / 24] > spleen[1.0 + 1 / 24] > 0.0
    # Background of the probe: small-molecule kinetics; what the cells take is missing from
    # muscle (no reporter cells there), most on the day with the most cells.
    muscle = {day: scan["organ_bq_per_ml"]["muscle"] for day, scan in by_day.items()}
    assert max(muscle, key=muscle.__getitem__) == baseline
    assert min(muscle, key=muscle.__getitem__) == ordered[-1]


def test_t_cell_marker_table_is_cited() -> None:
    table = read_toml("t_cell_markers.toml")
    assert table["tissue"]["cells_per_ml"] == 1.0e8
    for entry in table["markers"].values():
        assert entry["antigens_per_car_t_cell"] > 0
        assert entry["source"]
        assert entry["confidence"]


def test_a_pd_l1_tracer_sees_the_lesions_pd_l1_series(tmp_path: Path) -> None:
    """t_cell_exhaustion: [89Zr]Zr-atezolizumab binds the lesions' pd_l1_per_cell (x10 by day 21)."""
    from immunopet.simulate._patient import REFERENCE_ANTIGENS_PER_CELL
    from immunopet.simulate._scenario import series_value

    scenario = load_scenario("t_cell_exhaustion")
    scans = tuple(scan for scan in scenario.scans if scan.tracer == "pd_l1_igg")
    truth = _simulate("t_cell_exhaustion", tmp_path, scans, voxel_mm=12.0)
    patient = draw_cohort(scenario, 1, seed=5)[0]
    lesions = {lesion.name: lesion for lesion in patient.lesions}
    for scan in truth["scans"]:
        for name, density in scan["lesion_antigen_density"].items():
            expected = series_value(lesions[name].pd_l1_per_cell, scan["day"])
            assert density == pytest.approx(expected / REFERENCE_ANTIGENS_PER_CELL, rel=1e-9)
    mass = [
        s["lesion_bq_per_ml"]["mesenteric_mass"] / s["injected_activity_bq"] for s in truth["scans"]
    ]
    # Up-regulation shows: the day-25 uptake per injected Bq exceeds the baseline one.
    assert mass[-1] > 1.5 * mass[0]
