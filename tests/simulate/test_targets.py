"""Where the tracer's target is: normal tissue (on-target, off-tumour), CAR T cells, reporters."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from immunopet.data import read_toml
from immunopet.physics import decay_factor, nuclide
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._patient import simulate_patient
from immunopet.tracers import VectorFormat
from immunopet.tracers._pharmacokinetics import TwoTissueVectorModel, vector_pharmacokinetics


def _simulate(scenario: str, tmp: Path, scans: tuple[Any, ...], voxel_mm: float) -> dict[str, Any]:
    patient = draw_cohort(load_scenario(scenario), 1, seed=5)[0]
    patient = dataclasses.replace(patient, scans=scans)
    return simulate_patient(
        patient, tmp / "patient", noiseless=True, rng=np.random.default_rng(0), voxel_mm=voxel_mm
    )


def test_on_target_off_tumour_adds_the_specific_tumour_uptake_to_the_normal_organ(
    tmp_path: Path,
) -> None:
    scenario = load_scenario("on_target_off_tumor")
    caix = next(scan for scan in scenario.scans if scan.tracer == "caix_igg")
    truth = _simulate("on_target_off_tumor", tmp_path, (caix,), voxel_mm=10.0)
    assert not [item for item in truth["not_simulated"] if "normal_tissue" in item]
    scan = truth["scans"][0]
    # CAIX on liver (3000) and stomach (8000) cells, relative to the 5000 reference.
    assert scan["organ_antigen_density"] == {
        "liver": pytest.approx(3000 / 5000),
        "stomach": pytest.approx(8000 / 5000),
    }
    # Liver = its own IgG curve + tumour(0.6) − tumour(0), times activity and decay.
    parameters = vector_pharmacokinetics(VectorFormat.IGG)
    t = np.array([96.0 * 3600.0])

    def tumour(density: float) -> float:
        model = TwoTissueVectorModel(parameters, antigen_density=density)
        return float(model.tissue_percent_id_per_g("tumour", t)[0])

    liver = float(TwoTissueVectorModel(parameters).tissue_percent_id_per_g("liver", t)[0])
    expected_percent = liver + tumour(0.6) - tumour(0.0)
    physical = decay_factor(nuclide("Zr-89").half_life_s, 96.0 * 3600.0)
    # The reference body's %ID/g scaled to the patient's mass (same SUV).
    body_scale = TwoTissueVectorModel(parameters).body.body_mass_g / (
        truth["patient"]["weight_kg"] * 1000.0
    )
    expected = expected_percent / 100.0 * scan["injected_activity_bq"] * physical * body_scale
    assert scan["organ_bq_per_ml"]["liver"] == pytest.approx(expected, rel=1e-9)
    assert tumour(0.6) > tumour(0.0)  # the antigen adds uptake


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
    for day, scan in by_day.items():
        if day < 0:
            continue
        folder = str(Path(scan["folder"]).parent)
        cells = {
            **truth["timepoints"][folder]["live_car_t_cells"],
            **truth["timepoints"][folder]["live_car_t_cells_in_lesions"],
        }
        for site, bq in scan["reporter_cell_bq_by_site"].items():
            assert bq == pytest.approx(cells[site] * uptake, rel=1e-12)
    # Expansion: the spleen's reporter signal on day 7 exceeds day 1's, as its live cells do.
    spleen = {
        day: scan["reporter_cell_bq_by_site"].get("spleen", 0.0) for day, scan in by_day.items()
    }
    assert spleen[7.0 + 1 / 24] > spleen[1.0 + 1 / 24] > 0.0
    # Background of the probe: small-molecule kinetics, the same in both mice scans' muscle
    # apart from decay and the same 1 h delay (no reporter cells in muscle).
    muscle = [scan["organ_bq_per_ml"]["muscle"] for scan in by_day.values()]
    assert max(muscle) == pytest.approx(min(muscle), rel=1e-9)


def test_t_cell_marker_table_is_cited() -> None:
    table = read_toml("t_cell_markers.toml")
    assert table["tissue"]["cells_per_ml"] == 1.0e8
    for entry in table["markers"].values():
        assert entry["antigens_per_car_t_cell"] > 0
        assert entry["source"]
        assert entry["confidence"]
