"""Stein 2019 CAR T-cell kinetics: the abstract's numbers, continuity and shape."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.kinetics import Stein2019CellularKinetics

# Stein AM et al. CPT Pharmacometrics Syst Pharmacol 2019;8:285, abstract: "doubling time of
# 0.78 days", "initial decline half-life of 4.3 days" and "terminal half-life of 220 days"
# (the last rounded: Table 1 beta = 0.0032/day gives ln 2/0.0032 = 216.6 days).
ABSTRACT_DOUBLING_TIME_D = 0.78
ABSTRACT_INITIAL_HALF_LIFE_D = 4.3
ABSTRACT_TERMINAL_HALF_LIFE_D = 220.0


@pytest.fixture
def model() -> Stein2019CellularKinetics:
    return Stein2019CellularKinetics.published()


def test_published_table1_values(model: Stein2019CellularKinetics) -> None:
    assert (model.fold_expansion, model.tmax_d, model.cmax_copies_per_ug) == (3900.0, 9.3, 24000.0)
    assert (model.alpha_per_day, model.beta_per_day, model.fb) == (0.16, 0.0032, 0.0079)
    assert "Stein" in model.source
    assert "psp4.12388" in model.source


def test_abstract_doubling_and_half_lives(model: Stein2019CellularKinetics) -> None:
    assert model.doubling_time_d == pytest.approx(ABSTRACT_DOUBLING_TIME_D, abs=0.005)
    assert model.initial_decline_half_life_d == pytest.approx(
        ABSTRACT_INITIAL_HALF_LIFE_D, abs=0.05
    )
    assert model.terminal_half_life_d == pytest.approx(216.6, abs=0.05)
    assert model.terminal_half_life_d == pytest.approx(ABSTRACT_TERMINAL_HALF_LIFE_D, rel=0.02)


def test_cmax_at_tmax_and_it_is_the_maximum(model: Stein2019CellularKinetics) -> None:
    assert model.concentration(model.tmax_d) == pytest.approx(24000.0, rel=1e-12)
    assert model.relative_level(model.tmax_d) == pytest.approx(3900.0, rel=1e-12)
    grid = np.linspace(0.0, 400.0, 40001)
    levels = model.concentration(grid)
    assert grid[int(np.argmax(levels))] == pytest.approx(model.tmax_d, abs=0.01)
    assert levels.max() <= 24000.0 * (1 + 1e-12)


def test_continuous_at_tmax(model: Stein2019CellularKinetics) -> None:
    eps = 1e-9
    before = model.concentration(model.tmax_d - eps)
    after = model.concentration(model.tmax_d + eps)
    assert before == pytest.approx(after, rel=1e-7)


def test_level_one_at_infusion_and_baseline(model: Stein2019CellularKinetics) -> None:
    assert model.relative_level(0.0) == pytest.approx(1.0, rel=1e-12)
    assert model.concentration(0.0) == pytest.approx(24000.0 / 3900.0, rel=1e-12)
    assert model.baseline_copies_per_ug == pytest.approx(24000.0 / 3900.0)


def test_exponential_expansion_doubles_every_doubling_time(
    model: Stein2019CellularKinetics,
) -> None:
    t = 2.0
    ratio = model.relative_level(t + model.doubling_time_d) / model.relative_level(t)
    assert ratio == pytest.approx(2.0, rel=1e-12)
    assert model.expansion_rate_per_day == pytest.approx(math.log(3900.0) / 9.3)


def test_biexponential_decline(model: Stein2019CellularKinetics) -> None:
    t = model.tmax_d + 30.0
    expected = 24000.0 * ((1 - 0.0079) * math.exp(-0.16 * 30.0) + 0.0079 * math.exp(-0.0032 * 30.0))
    assert model.concentration(t) == pytest.approx(expected, rel=1e-12)
    # Terminal slope is beta once the fast phase has gone.
    late = np.array([500.0, 501.0])
    slope = float(np.diff(np.log(model.concentration(late)))[0])
    assert slope == pytest.approx(-0.0032, rel=1e-6)
    # Early after the peak the slope is close to -alpha (memory fraction is small).
    early = np.array([model.tmax_d, model.tmax_d + 0.01])
    early_slope = float(np.diff(np.log(model.concentration(early)))[0] / 0.01)
    assert early_slope == pytest.approx(-(1 - 0.0079) * 0.16 - 0.0079 * 0.0032, rel=1e-3)


def test_vectorised_keeps_shape(model: Stein2019CellularKinetics) -> None:
    times = np.array([[0.0, 1.0], [9.3, 100.0]])
    levels = model.relative_level(times)
    assert levels.shape == (2, 2)
    assert levels[1, 0] == pytest.approx(3900.0)
    assert [model.relative_level(float(t)) for t in times.ravel()] == pytest.approx(levels.ravel())
    assert isinstance(model.relative_level(1.0), float)
    assert model.concentration([0.0, 9.3]) == pytest.approx([24000.0 / 3900.0, 24000.0])


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_times_before_infusion_are_refused(model: Stein2019CellularKinetics, bad: float) -> None:
    with pytest.raises(InputError, match="from the infusion on"):
        model.relative_level(bad)
    with pytest.raises(InputError):
        model.concentration(np.array([1.0, bad]))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fold_expansion": 1.0}, "fold_expansion"),
        ({"tmax_d": 0.0}, "tmax_d"),
        ({"cmax_copies_per_ug": -1.0}, "cmax_copies_per_ug"),
        ({"alpha_per_day": 0.001}, "alpha_per_day"),
        ({"beta_per_day": -0.1}, "beta_per_day"),
        ({"fb": 1.5}, "fb"),
        ({"tmax_d": math.nan}, "tmax_d"),
    ],
)
def test_parameters_are_validated(
    model: Stein2019CellularKinetics, change: dict[str, float], field: str
) -> None:
    with pytest.raises(InputError, match=field):
        dataclasses.replace(model, **change)


def test_frozen_and_no_memory_phase_limit(model: Stein2019CellularKinetics) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.tmax_d = 1.0  # type: ignore[misc]
    flat = dataclasses.replace(model, beta_per_day=0.0)
    assert flat.terminal_half_life_d == math.inf
    assert flat.relative_level(10000.0) == pytest.approx(3900.0 * 0.0079, rel=1e-9)
