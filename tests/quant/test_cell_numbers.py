"""CAR T-cell numbers from label activity (quant._cell_numbers) against the simulator's cells.

The simulator (simulate/_cells.py) places the label on cells its own way: decay, first-order
efflux and the surviving fraction of the infused cells. The estimator must give back those
cells from the activity alone, with only what a site knows (infused cells, injected activity,
the label's efflux from data/cell_labelling.toml).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.physics import nuclide
from immunopet.planning import DirectLabel, cell_label
from immunopet.quant._cell_numbers import CellNumberModel
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._cells import direct_label_activity, total_live_cells
from immunopet.units import S_PER_DAY

DAYS = np.array([0.5, 2.0, 6.0, 13.0])


def test_direct_label_gives_back_the_labelled_cells_of_the_simulator() -> None:
    """Bound activity / activity per cell = infused cells still alive (labelled-cell equivalents).

    Before the peak of expansion no infused cell has died in the Stein model, so the bound label
    counts exactly the infused cells; daughters share the label, so expansion never adds to it.
    """
    patient = draw_cohort(load_scenario("poor_homing"), 1, seed=3)[0]
    entry = cell_label("zr89-oxine")
    assert entry.efflux_per_day is not None
    label = DirectLabel("zr89-oxine", "Zr-89", 0.07, 0.75, entry.efflux_per_day)
    injected_bq = patient.infused_cells * label.bound_bq_per_cell
    activity = direct_label_activity(patient, label, DAYS, bound_bq_at_infusion=injected_bq)
    model = CellNumberModel(
        "direct",
        injected_bq / patient.infused_cells,  # what analyze derives from the manifest
        nuclide("Zr-89").half_life_s,
        entry.efflux_per_day,
        "zr89-oxine",
    )
    cells = [
        model.cells(float(a), None, d * S_PER_DAY).cells
        for a, d in zip(activity.bound_bq, DAYS, strict=True)
    ]
    before_peak = patient.kinetics.tmax_d > DAYS
    assert np.allclose(np.array(cells)[before_peak], patient.infused_cells, rtol=1e-9)
    # Live cells expand far beyond the labelled equivalents: the label cannot see expansion.
    assert total_live_cells(patient, DAYS)[-1] > 2 * cells[-1]


def test_reporter_counts_live_cells_with_the_sites_calibration() -> None:
    model = CellNumberModel("reporter", 0.05, nuclide("F-18").half_life_s, 0.0, "hnet-mfbg")
    numbers = model.cells(5000.0, 250.0, 7 * S_PER_DAY)
    assert numbers.cells == pytest.approx(1.0e5)
    assert numbers.cells_se == pytest.approx(5.0e3)


def test_direct_label_decay_and_efflux_by_hand() -> None:
    """In-111 (T½ 2.8047 d) with 0.744/d efflux (Charoenphun 2015, data/cell_labelling.toml)."""
    half_life_s = nuclide("In-111").half_life_s
    model = CellNumberModel("direct", 0.0148, half_life_s, 0.744, "in111-oxine")
    elapsed_s = 2.0 * S_PER_DAY
    per_cell = 0.0148 * math.exp(-math.log(2) * elapsed_s / half_life_s) * math.exp(-0.744 * 2.0)
    numbers = model.cells(1000.0, 100.0, elapsed_s)
    assert numbers.cells == pytest.approx(1000.0 / per_cell, rel=1e-12)
    assert numbers.cells_se == pytest.approx(100.0 / per_cell, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"bq_per_cell": 0.0}, "bound_bq_per_cell"),
        ({"efflux_per_day": -0.1}, "efflux_per_day"),
    ],
)
def test_impossible_models_are_refused(kwargs: dict[str, float], field: str) -> None:
    values = {"bq_per_cell": 0.05, "efflux_per_day": 0.0} | kwargs
    with pytest.raises(InputError) as caught:
        CellNumberModel("direct", values["bq_per_cell"], 1.0, values["efflux_per_day"], "x")
    assert caught.value.field == field


def test_a_scan_before_the_cells_is_refused() -> None:
    model = CellNumberModel("direct", 0.05, 3600.0, 0.0, "x")
    with pytest.raises(InputError, match="before the labelled cells"):
        model.cells(1.0, None, -3600.0)
