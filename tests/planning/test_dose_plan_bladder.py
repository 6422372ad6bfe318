"""The planner's dose budget puts the model's urinary excretion in the bladder contents."""

from __future__ import annotations

import numpy as np
import pytest

from immunopet.dosimetry import URINARY_BLADDER_CONTENTS
from immunopet.physics import decay_factor, nuclide
from immunopet.planning import _dose as dose_module
from immunopet.planning._dose import _URINE_GRID_S, _bladder_contents_per_bq_s, plan_dose
from immunopet.tracers._pharmacokinetics import TwoTissueVectorModel, vector_pharmacokinetics


def test_bladder_contents_hold_less_than_all_urine_ever_excreted() -> None:
    # Voiding removes urine: the contents' decays are positive and below those of the urine
    # kept forever, renal share x ∫ U(t) 2^(-t/T) dt (U cumulative excreted fraction).
    model = TwoTissueVectorModel(vector_pharmacokinetics("minibody"))
    half_life_s = nuclide("Cu-64").half_life_s
    contents_s = _bladder_contents_per_bq_s(model, "Cu-64")
    excreted = model.organ_percent_id(_URINE_GRID_S)["excreted"] / 100.0
    decay = np.array([decay_factor(half_life_s, float(t)) for t in _URINE_GRID_S])
    kept_s = model.parameters.renal_fraction * float(np.trapezoid(excreted * decay, _URINE_GRID_S))
    assert 0.0 < contents_s < kept_s
    # ... and the voiding matters: a 3.5 h schedule keeps well under half of it.
    assert contents_s < 0.5 * kept_s


def test_the_bladder_wall_dose_includes_the_contents(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_dose("minibody", "Cu-64", [("scan", 185e6)])
    assert URINARY_BLADDER_CONTENTS not in plan.organ_decays_per_bq_s  # model regions only
    with_urine = plan.budget.per_bq.organ_doses_gy
    # Without the contents source (urine leaving the body at once, as before) the wall gets
    # ~27 % less (5.0 vs 3.7 x the muscle dose); other organs barely change.
    monkeypatch.setattr(dose_module, "_bladder_contents_per_bq_s", lambda model, name: 0.0)
    without = plan_dose("minibody", "Cu-64", [("scan", 185e6)]).budget.per_bq.organ_doses_gy
    assert with_urine["urinary_bladder"] > 1.2 * without["urinary_bladder"]
    assert with_urine["liver"] == pytest.approx(without["liver"], rel=0.05)
