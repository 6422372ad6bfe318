"""Fitting CAR T-cell kinetics: recovery from sparse noisy samples, intervals, non-expansion.

Ground truth is the forward model :class:`Stein2019CellularKinetics` with patients drawn from the
inter-individual variability of Stein et al. 2019 Table 1 (CPT Pharmacometrics Syst Pharmacol
2019;8:285, doi:10.1002/psp4.12388).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import optimize, stats

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.kinetics import Stein2019CellularKinetics
from immunopet.kinetics._cellular_fit import (
    CellularKineticsFit,
    _auc,
    _log_curve,
    fit_expansion_biexponential,
    fit_stein2019,
)

# Stein 2019 Table 1 inter-individual variances omega^2 of the log parameters (READ in nlmixr2lib
# Stein_2019_Tisagenlecleucel.R, commit 739494780d0e, and DOMAIN_NUMBERS.md section 4.1).
TABLE1_OMEGA2 = {
    "fold_expansion": 2.4,
    "tmax_d": 0.38,
    "cmax_copies_per_ug": 0.65,
    "alpha_per_day": 0.91,
    "beta_per_day": 0.86,
    "fb": 0.8,
}
# The sampling schedule of the brief: six blood samples over the first 28 days.
DAYS = np.array([1.0, 4.0, 7.0, 10.0, 14.0, 28.0])
# Measurement noise: 20 % CV, lognormal. ASSUMED (the order of qPCR transgene repeatability;
# no published figure was read for it).
CV = 0.2
LOG_SD = math.sqrt(math.log1p(CV**2))


@pytest.fixture(scope="module")
def typical() -> Stein2019CellularKinetics:
    return Stein2019CellularKinetics.published()


def draw_patients(rng: np.random.Generator, n: int) -> list[Stein2019CellularKinetics]:
    """Patients with lognormal parameters around Table 1 (redrawn until valid, as the simulator)."""
    typical = Stein2019CellularKinetics.published()
    patients: list[Stein2019CellularKinetics] = []
    while len(patients) < n:
        values = {
            name: getattr(typical, name) * math.exp(math.sqrt(omega2) * rng.standard_normal())
            for name, omega2 in TABLE1_OMEGA2.items()
        }
        try:
            patients.append(Stein2019CellularKinetics(**values))
        except InputError:
            continue
    return patients


def noisy(
    model: Stein2019CellularKinetics, rng: np.random.Generator, cv: float = CV
) -> NDArray[np.float64]:
    sigma = math.sqrt(math.log1p(cv**2))
    return model.concentration(DAYS) * np.exp(sigma * rng.standard_normal(DAYS.size))


def relative_errors(fits: list[CellularKineticsFit], truth: list[Stein2019CellularKinetics]):
    tmax = np.array([abs(f.tmax_d.value / p.tmax_d - 1) for f, p in zip(fits, truth, strict=True)])
    cmax = np.array(
        [abs(f.cmax.value / p.cmax_copies_per_ug - 1) for f, p in zip(fits, truth, strict=True)]
    )
    return tmax, cmax


# --------------------------------------------------------------------------------------------
# Data and the curve
# --------------------------------------------------------------------------------------------


def test_table1_variability_in_data_file() -> None:
    iiv = read_toml("car_t_fit.toml")["stein2019_iiv"]
    assert {name: iiv[name] for name in TABLE1_OMEGA2} == TABLE1_OMEGA2
    assert iiv["residual_log_sd"] == 0.56
    assert "psp4.12388" in iiv["source"]


def test_log_curve_is_the_forward_model() -> None:
    rng = np.random.default_rng(1)
    times = np.linspace(0.0, 400.0, 57)
    for model in draw_patients(rng, 20):
        theta4 = np.array(
            [
                [
                    math.log(model.cmax_copies_per_ug),
                    math.log(model.tmax_d),
                    math.log(model.fold_expansion),
                    math.log(model.alpha_per_day),
                ]
            ]
        )
        theta6 = np.append(theta4, [[model.fb, math.log(model.beta_per_day)]], axis=1)
        held = (np.array([model.fb]), np.array([model.beta_per_day]))
        expected = np.log(model.concentration(times))
        assert _log_curve(theta4, times, *held)[0][0] == pytest.approx(expected, rel=1e-12)
        assert _log_curve(theta6, times, np.array([0.5]), np.array([9.0]))[0][0] == pytest.approx(
            expected, rel=1e-12
        )


@pytest.mark.parametrize("n_params", [4, 6])
def test_jacobian_matches_finite_differences(n_params: int) -> None:
    rng = np.random.default_rng(2)
    times = np.array([0.0, 1.0, 3.0, 6.5, 11.0, 20.0, 60.0, 200.0])
    held = (np.array([0.01]), np.array([0.004]))
    for model in draw_patients(rng, 10):
        theta = np.array(
            [
                math.log(model.cmax_copies_per_ug),
                math.log(model.tmax_d),
                math.log(model.fold_expansion),
                math.log(model.alpha_per_day),
                model.fb,
                math.log(model.beta_per_day),
            ]
        )[:n_params]
        _, jac = _log_curve(theta[None, :], times, *held)
        step = 1e-6
        for k in range(n_params):
            up, down = theta.copy(), theta.copy()
            up[k] += step
            down[k] -= step
            numeric = (
                _log_curve(up[None, :], times, *held)[0][0]
                - _log_curve(down[None, :], times, *held)[0][0]
            ) / (2 * step)
            assert jac[0, :, k] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_auc_closed_form_matches_quadrature(typical: Stein2019CellularKinetics) -> None:
    rng = np.random.default_rng(3)
    grid = np.linspace(0.0, 28.0, 280_001)
    for model in [typical, *draw_patients(rng, 10), dataclasses.replace(typical, beta_per_day=0.0)]:
        quadrature = np.trapezoid(model.concentration(grid), grid)
        closed = _auc(
            *(
                np.array([v])
                for v in (
                    model.cmax_copies_per_ug,
                    model.tmax_d,
                    math.log(model.fold_expansion),
                    model.alpha_per_day,
                    model.beta_per_day,
                    model.fb,
                )
            ),
            28.0,
        )
        assert closed[0] == pytest.approx(quadrature, rel=1e-6)


# --------------------------------------------------------------------------------------------
# Recovery
# --------------------------------------------------------------------------------------------


def test_noiseless_typical_curve_recovered_with_prior(typical: Stein2019CellularKinetics) -> None:
    # The typical curve sits at the prior means: the MAP estimate is the truth.
    fit = fit_stein2019(DAYS, typical.concentration(DAYS), relative_sd=CV, n_bootstrap=0)
    assert fit.tmax_d.value == pytest.approx(9.3, rel=1e-3)
    assert fit.cmax.value == pytest.approx(24000.0, rel=1e-3)
    assert fit.fold_expansion.value == pytest.approx(3900.0, rel=1e-3)
    assert fit.alpha_per_day.value == pytest.approx(0.16, rel=1e-3)
    # Abstract of Stein 2019: doubling time 0.78 d, initial decline half-life 4.3 d.
    assert fit.doubling_time_d.value == pytest.approx(typical.doubling_time_d, rel=1e-3)
    assert fit.doubling_time_d.value == pytest.approx(0.78, abs=0.005)
    assert fit.alpha_half_life_d.value == pytest.approx(4.3, abs=0.05)
    grid = np.linspace(0.0, 28.0, 280_001)
    assert fit.auc_0_28d.value == pytest.approx(
        np.trapezoid(typical.concentration(grid), grid), rel=1e-3
    )
    assert fit.goodness_of_fit.chi_square == pytest.approx(0.0, abs=1e-10)
    # With the prior FB and beta are estimated too (at their prior medians here).
    assert fit.fixed_parameters == ()
    assert fit.fb.value == pytest.approx(0.0079, rel=1e-3)
    assert fit.beta_per_day.value == pytest.approx(0.0032, rel=1e-3)
    held = fit_stein2019(
        DAYS, typical.concentration(DAYS), relative_sd=CV, terminal_phase="fixed", n_bootstrap=0
    )
    assert held.fixed_parameters == ("fb", "beta_per_day")
    assert held.cmax.value == pytest.approx(24000.0, rel=1e-3)


def test_noiseless_atypical_patient_recovered_without_prior(
    typical: Stein2019CellularKinetics,
) -> None:
    truth = dataclasses.replace(
        typical, fold_expansion=800.0, tmax_d=6.2, cmax_copies_per_ug=5.1e4, alpha_per_day=0.33
    )
    for fit in (
        fit_stein2019(DAYS, truth.concentration(DAYS), relative_sd=CV, prior="none", n_bootstrap=0),
        fit_expansion_biexponential(DAYS, truth.concentration(DAYS), log_sd=0.1, n_bootstrap=0),
    ):
        assert fit.tmax_d.value == pytest.approx(6.2, rel=1e-3)
        assert fit.cmax.value == pytest.approx(5.1e4, rel=1e-3)
        assert fit.fold_expansion.value == pytest.approx(800.0, rel=1e-3)
        assert fit.alpha_per_day.value == pytest.approx(0.33, rel=1e-3)
        assert fit.predict(DAYS) == pytest.approx(truth.concentration(DAYS), rel=1e-6)


def test_fallback_fits_the_memory_phase_from_long_follow_up(
    typical: Stein2019CellularKinetics,
) -> None:
    truth = dataclasses.replace(typical, fb=0.03, beta_per_day=0.01)
    days = np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 14.0, 21.0, 28.0, 60.0, 90.0, 180.0, 365.0])
    fit = fit_expansion_biexponential(
        days, truth.concentration(days), relative_sd=0.1, terminal_phase="fit", n_bootstrap=0
    )
    assert fit.fixed_parameters == ()
    for name, value in (
        ("tmax_d", 9.3),
        ("cmax", 24000.0),
        ("fold_expansion", 3900.0),
        ("alpha_per_day", 0.16),
        ("fb", 0.03),
        ("beta_per_day", 0.01),
    ):
        assert getattr(fit, name).value == pytest.approx(value, rel=1e-3), name
    assert fit.beta_half_life_d.value == pytest.approx(math.log(2) / 0.01, rel=1e-3)


def _population_errors(cv: float, seed: int, **kwargs: object) -> tuple[NDArray, NDArray]:
    rng = np.random.default_rng(seed)
    patients = draw_patients(rng, 200)
    fits = [
        fit_stein2019(DAYS, noisy(p, rng, cv=cv), relative_sd=cv, n_bootstrap=0, **kwargs)  # type: ignore[arg-type]
        for p in patients
    ]
    # Every patient of the population expands (foldx > 18 for 99.9 %): none is flagged.
    assert not any(f.non_expansion for f in fits)
    return relative_errors(fits, patients)


@pytest.mark.slow
def test_population_recovery_six_samples_ten_percent_noise() -> None:
    """Acceptance (issue 8): Tmax and Cmax within 10 % (median) from 6 samples at 10 % CV.

    200 patients of the Stein 2019 population (all six parameters vary), samples on days 1, 4,
    7, 10, 14, 28, lognormal assay noise of 10 % CV (within-run precision of flow cytometric
    T-cell counts < 10 %, Scand J Clin Lab Invest 2024;84:273, READ abstract). Measured with
    this seed: median |error| Tmax 1.7 %, Cmax 8.2 %; within 10 %: 92 % and 57 %. Holding FB and
    beta at their typical values instead gives Cmax 10.6 % (the memory phase of the patient
    bends the fitted contraction). ``benchmarks/kinetics.py --stein`` has the full study.
    """
    tmax_error, cmax_error = _population_errors(0.1, 20190504)
    assert np.median(tmax_error) <= 0.05
    assert np.median(cmax_error) <= 0.10
    assert np.mean(tmax_error <= 0.10) >= 0.85
    assert np.mean(cmax_error <= 0.10) >= 0.5
    _, held = _population_errors(0.1, 20190504, terminal_phase="fixed")
    assert np.median(held) > np.median(cmax_error)


def test_population_recovery_six_samples_twenty_percent_noise() -> None:
    """Honest limit: at 20 % CV the Cmax target of 10 % is out of reach with 6 samples.

    20 % is within the precision acceptance limit of qPCR methods (CV ≤ 25 %, Table 2 of Regen Ther
    2021;18:202, READ). Measured with this seed: median |error| Tmax 3.1 %, Cmax 17.7 %; within
    10 %: 82 % and 30 %. The peak is extrapolated from the samples on both sides of the kink at
    Tmax; even the Bayes estimator with the true population prior (all six parameters) cannot do
    much better (``benchmarks/kinetics.py --stein``: median 14-18 % for every 6-sample schedule
    tried, 16 % with 7 samples).
    """
    tmax_error, cmax_error = _population_errors(0.2, 20190501)
    assert np.median(tmax_error) <= 0.10
    assert np.mean(tmax_error <= 0.10) >= 0.75
    assert np.median(cmax_error) <= 0.22
    assert np.mean(cmax_error <= 0.10) >= 0.25


def test_population_recovery_six_samples_five_percent_noise() -> None:
    """At 5 % CV: median |error| Tmax 0.8 %, Cmax 4.8 % (fixed FB and beta: 7.0 %)."""
    tmax_error, cmax_error = _population_errors(0.05, 20190502)
    assert np.median(tmax_error) <= 0.05
    assert np.median(cmax_error) <= 0.07
    assert np.mean(cmax_error <= 0.10) >= 0.65


@pytest.mark.parametrize("phase", ["population", "fixed"])
def test_estimate_is_the_global_minimum(typical: Stein2019CellularKinetics, phase: str) -> None:
    """An independent objective (forward model + Table 1 prior) and a dense grid of starts.

    All parameters on the log scale, as in Stein's model (nlmixr2lib: lognormal IIV on all six);
    with ``"fixed"`` FB and beta are held at the typical values.
    """
    rng = np.random.default_rng(4)
    n = 6 if phase == "population" else 4
    prior_mean = np.log([24000.0, 9.3, 3900.0, 0.16, 0.0079, 0.0032])[:n]
    prior_sd = np.sqrt([0.65, 0.38, 2.4, 0.91, 0.8, 0.86])[:n]
    for patient in draw_patients(rng, 8):
        values = noisy(patient, rng)

        def residuals(x: NDArray[np.float64], values: NDArray[np.float64] = values):
            terminal = {} if n == 4 else {"fb": math.exp(x[4]), "beta_per_day": math.exp(x[5])}
            model = dataclasses.replace(
                typical,
                cmax_copies_per_ug=math.exp(x[0]),
                tmax_d=math.exp(x[1]),
                fold_expansion=math.exp(x[2]),
                alpha_per_day=math.exp(x[3]),
                **terminal,
            )
            data = (np.log(model.concentration(DAYS)) - np.log(values)) / LOG_SD
            return np.concatenate([data, (x - prior_mean) / prior_sd])

        fit = fit_stein2019(DAYS, values, relative_sd=CV, n_bootstrap=0, terminal_phase=phase)  # type: ignore[arg-type]
        x_fit = np.log(
            [
                fit.cmax.value,
                fit.tmax_d.value,
                fit.fold_expansion.value,
                fit.alpha_per_day.value,
                fit.fb.value,
                fit.beta_per_day.value,
            ]
        )[:n]
        cost_fit = 0.5 * float(np.sum(residuals(x_fit) ** 2))
        # alpha > beta holds everywhere in this box: alpha >= 0.0033 > 0.00329 >= beta.
        bounds = (
            [-np.inf, math.log(0.1), 1e-3, math.log(0.0033), math.log(1e-6), math.log(1e-5)][:n],
            [np.inf, math.log(28), 23, 2, math.log(0.5), math.log(0.00329)][:n],
        )
        terminal_start = [math.log(0.0079), math.log(0.003)][: n - 4]
        dense = min(
            optimize.least_squares(
                residuals,
                [math.log(values.max()), math.log(t), 5.0, math.log(a), *terminal_start],
                bounds=bounds,
            ).cost
            for t in np.geomspace(0.3, 27.0, 15)
            for a in (0.05, 0.3)
        )
        assert cost_fit <= dense * (1 + 1e-6) + 1e-9


# --------------------------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_interval_coverage_over_the_population() -> None:
    """95 % intervals cover the truth for ≥ 85 % of 100 patients.

    Measured with this seed (FB and beta estimated with their priors, the default): Tmax 93,
    Cmax 87, AUC0-28d 90 of 100 (doubling time 95, initial half-life 93). With FB and beta held
    (and drawn from their population spread in the replicates) it was 88, 85, 89 (94, 88). The
    intervals are somewhat narrow for a nonlinear model with a kink at Tmax and peaks outside
    the samples.
    """
    rng = np.random.default_rng(20190503)
    patients = draw_patients(rng, 100)
    grid = np.linspace(0.0, 28.0, 28_001)
    covered = {"tmax_d": 0, "cmax": 0, "auc_0_28d": 0}
    for index, patient in enumerate(patients):
        fit = fit_stein2019(DAYS, noisy(patient, rng), relative_sd=CV, n_bootstrap=100, seed=index)
        truth = {
            "tmax_d": patient.tmax_d,
            "cmax": patient.cmax_copies_per_ug,
            "auc_0_28d": float(np.trapezoid(patient.concentration(grid), grid)),
        }
        for name, value in truth.items():
            estimate = getattr(fit, name)
            covered[name] += estimate.ci_low <= value <= estimate.ci_high
    for name, count in covered.items():
        assert count >= 85, (name, count)


def test_intervals_are_deterministic_per_seed(typical: Stein2019CellularKinetics) -> None:
    values = noisy(typical, np.random.default_rng(5))
    first = fit_stein2019(DAYS, values, relative_sd=CV, n_bootstrap=60, seed=7)
    again = fit_stein2019(DAYS, values, relative_sd=CV, n_bootstrap=60, seed=7)
    other = fit_stein2019(DAYS, values, relative_sd=CV, n_bootstrap=60, seed=8)
    assert first.to_dict() == again.to_dict()
    assert other.tmax_d.value == first.tmax_d.value
    assert other.tmax_d.ci_low != first.tmax_d.ci_low
    for name in ("cmax", "tmax_d", "doubling_time_d", "alpha_half_life_d", "auc_0_28d"):
        estimate = getattr(first, name)
        assert estimate.ci_low < estimate.value < estimate.ci_high, name
    assert first.n_bootstrap == 60
    assert first.n_bootstrap_failed == 0


def test_held_parameters_carry_population_spread_only_with_a_prior(
    typical: Stein2019CellularKinetics,
) -> None:
    values = noisy(typical, np.random.default_rng(6))
    # Lognormal central 95 % range of FB: 0.0079 · exp(±1.96 · sqrt(0.8)).
    spread = math.exp(1.959964 * math.sqrt(0.8))
    with_prior = fit_stein2019(
        DAYS, values, relative_sd=CV, n_bootstrap=400, terminal_phase="fixed"
    )
    assert with_prior.fb.ci_low == pytest.approx(0.0079 / spread, rel=0.2)
    assert with_prior.fb.ci_high == pytest.approx(0.0079 * spread, rel=0.2)
    assert with_prior.fb.value == 0.0079
    # Estimated with its prior: samples to day 28 hardly inform FB, so the estimate stays near
    # the prior median and the interval is about the population range (Stein's shrinkage 0.53).
    population = fit_stein2019(DAYS, values, relative_sd=CV, n_bootstrap=400)
    assert population.fixed_parameters == ()
    assert population.fb.value == pytest.approx(0.0079, rel=0.1)
    assert population.fb.ci_low == pytest.approx(0.0079 / spread, rel=0.3)
    assert population.fb.ci_high == pytest.approx(0.0079 * spread, rel=0.3)
    fallback = fit_expansion_biexponential(DAYS, values, relative_sd=CV, n_bootstrap=50)
    assert (fallback.fb.ci_low, fallback.fb.ci_high) == (0.0079, 0.0079)
    assert fallback.beta_half_life_d.ci_low == fallback.beta_half_life_d.value


def test_chi_square_is_calibrated_without_prior(typical: Stein2019CellularKinetics) -> None:
    """Correct model, stated noise: mean χ² ≈ degrees of freedom (6 samples − 4 parameters)."""
    rng = np.random.default_rng(7)
    truth = dataclasses.replace(typical, tmax_d=8.0, alpha_per_day=0.25, fold_expansion=2000.0)
    fits = [
        fit_stein2019(DAYS, noisy(truth, rng), relative_sd=CV, prior="none", n_bootstrap=0)
        for _ in range(120)
    ]
    chi2 = [fit.goodness_of_fit.chi_square for fit in fits]
    assert np.mean(chi2) == pytest.approx(2.0, abs=0.4)
    last = fits[-1].goodness_of_fit
    assert last.degrees_of_freedom == 2
    assert last.p_value == pytest.approx(stats.chi2.sf(last.chi_square, 2), rel=1e-12)


# --------------------------------------------------------------------------------------------
# Non-expansion
# --------------------------------------------------------------------------------------------


def test_flat_curves_are_non_expansion() -> None:
    flat = fit_stein2019(DAYS, np.full(6, 150.0), relative_sd=CV, n_bootstrap=0)
    assert flat.non_expansion
    assert flat.fold_rise == pytest.approx(1.0)
    # Threshold by hand: Bonferroni over 5 later samples, z = Φ⁻¹(0.99); RCV = exp(z √2 σ).
    z = stats.norm.ppf(1 - 0.05 / 5)
    assert flat.non_expansion_threshold == pytest.approx(math.exp(z * math.sqrt(2) * LOG_SD))
    rng = np.random.default_rng(8)
    calls = [
        (
            fit_stein2019(DAYS, series, relative_sd=CV, n_bootstrap=0).non_expansion,
            fit_expansion_biexponential(DAYS, series, relative_sd=CV, n_bootstrap=0).non_expansion,
        )
        for series in 150.0 * np.exp(LOG_SD * rng.standard_normal((80, 6)))
    ]
    # Family-wise false "expansion" rate ≤ 5 % by construction.
    assert np.mean([stein for stein, _ in calls]) >= 0.9
    assert [stein for stein, _ in calls] == [fallback for _, fallback in calls]


def test_typical_expander_and_a_weak_rise_are_not_flagged(
    typical: Stein2019CellularKinetics,
) -> None:
    assert not fit_stein2019(DAYS, typical.concentration(DAYS), relative_sd=CV).non_expansion
    # A 2.5-fold rise against a threshold of 1.92-fold.
    weak = np.array([100.0, 180.0, 250.0, 200.0, 150.0, 120.0])
    fit = fit_expansion_biexponential(DAYS, weak, relative_sd=CV, n_bootstrap=0)
    assert not fit.non_expansion
    assert fit.fold_rise == pytest.approx(2.5)


# --------------------------------------------------------------------------------------------
# Behaviour and output
# --------------------------------------------------------------------------------------------


def test_order_and_noise_statements_are_equivalent(typical: Stein2019CellularKinetics) -> None:
    values = noisy(typical, np.random.default_rng(9))
    base = fit_stein2019(DAYS, values, relative_sd=CV, n_bootstrap=0)
    order = np.array([3, 0, 5, 1, 4, 2])
    shuffled = fit_stein2019(DAYS[order], values[order], relative_sd=CV, n_bootstrap=0)
    by_sd = fit_stein2019(DAYS, values, sd=CV * values, n_bootstrap=0)
    by_log = fit_stein2019(DAYS, values, log_sd=LOG_SD, n_bootstrap=0)
    for other in (shuffled, by_sd, by_log):
        assert other.tmax_d.value == pytest.approx(base.tmax_d.value, rel=1e-9)
        assert other.cmax.value == pytest.approx(base.cmax.value, rel=1e-9)
    residuals = np.array(base.goodness_of_fit.log_residuals)
    assert shuffled.goodness_of_fit.log_residuals == pytest.approx(residuals[order], abs=1e-9)
    assert base.predict(DAYS) == pytest.approx(values * np.exp(-residuals), rel=1e-9)


def test_shape_prior_is_unit_free(typical: Stein2019CellularKinetics) -> None:
    values = noisy(typical, np.random.default_rng(10))
    kwargs = {"relative_sd": CV, "n_bootstrap": 0, "prior": "stein2019_shape"}
    small = fit_stein2019(DAYS, values, value_unit="copies/ug", **kwargs)  # type: ignore[arg-type]
    large = fit_stein2019(DAYS, 1e3 * values, value_unit="cells", **kwargs)  # type: ignore[arg-type]
    assert large.tmax_d.value == pytest.approx(small.tmax_d.value, rel=1e-6)
    assert large.cmax.value == pytest.approx(1e3 * small.cmax.value, rel=1e-6)
    assert large.value_unit == "cells"
    # The full prior pulls Cmax towards 24 000 copies/µg, so there the scale matters.
    full = fit_stein2019(DAYS, 1e3 * values, relative_sd=CV, n_bootstrap=0)
    assert full.cmax.value < 0.99 * large.cmax.value


def test_peak_after_the_last_sample_is_reported(typical: Stein2019CellularKinetics) -> None:
    late = dataclasses.replace(typical, tmax_d=40.0)
    fit = fit_expansion_biexponential(DAYS, late.concentration(DAYS), relative_sd=CV)
    assert fit.tmax_d.value == pytest.approx(28.0)
    assert fit.cmax.value <= late.cmax_copies_per_ug
    assert any("still rises at the last sample" in w for w in fit.warnings)


def test_to_dict_is_strict_json(typical: Stein2019CellularKinetics) -> None:
    values = typical.concentration(DAYS)
    fit = fit_expansion_biexponential(
        DAYS, values, relative_sd=CV, beta_per_day=0.0, value_unit="copies/ug", n_bootstrap=20
    )
    data = json.loads(json.dumps(fit.to_dict(), allow_nan=False))
    assert data["beta_half_life_d"] == {"value": None, "ci_low": None, "ci_high": None}
    assert data["tmax_d"]["value"] == pytest.approx(9.3, rel=1e-3)
    assert data["model"] == "expansion_biexponential"
    assert data["value_unit"] == "copies/ug"
    assert data["time_d"] == DAYS.tolist()
    assert data["goodness_of_fit"]["degrees_of_freedom"] == 2
    assert set(data) >= {"cmax", "doubling_time_d", "alpha_half_life_d", "auc_0_28d"}
    assert fit.kinetics().terminal_half_life_d == math.inf


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"time_d": [1.0, -2.0, 7.0, 10.0, 14.0, 28.0]}, "time_d"),
        ({"values": [1.0, 2.0, 0.0, 4.0, 5.0, 6.0]}, "values"),
        ({"time_d": [1.0, 4.0], "values": [1.0, 2.0]}, "time_d"),
        ({"time_d": [1.0, 1.0, 1.0], "values": [1.0, 2.0, 3.0]}, "time_d"),
        ({"relative_sd": None}, "sd"),
        ({"log_sd": 0.2}, "sd"),
        ({"relative_sd": [0.2, 0.2]}, "relative_sd"),
        ({"relative_sd": -0.1}, "relative_sd"),
        ({"prior": "flat"}, "prior"),
        ({"terminal_phase": "free"}, "terminal_phase"),
        ({"prior": "none", "terminal_phase": "population"}, "terminal_phase"),
        ({"fb": 0.0}, "fb"),
        ({"prior_sd_scale": 0.0}, "prior_sd_scale"),
        ({"n_bootstrap": -1}, "n_bootstrap"),
        ({"fb": 1.5}, "fb"),
        ({"beta_per_day": -0.1}, "beta_per_day"),
    ],
)
def test_bad_inputs_are_refused(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "time_d": DAYS.tolist(),
        "values": [1.0, 10.0, 100.0, 300.0, 100.0, 10.0],
        "relative_sd": CV,
        "n_bootstrap": 0,
        **kwargs,
    }
    with pytest.raises(InputError) as caught:
        fit_stein2019(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_fallback_refuses_too_few_samples_and_conflicting_terminal_phase() -> None:
    with pytest.raises(InputError, match="at least 5 samples"):
        fit_expansion_biexponential([1.0, 4.0, 7.0, 10.0], [1.0, 5.0, 9.0, 4.0], relative_sd=CV)
    with pytest.raises(InputError, match="at least 7 samples"):
        fit_expansion_biexponential(
            DAYS, [1.0, 5.0, 9.0, 4.0, 2.0, 1.0], relative_sd=CV, terminal_phase="fit"
        )
    with pytest.raises(InputError) as caught:
        fit_expansion_biexponential(
            DAYS, [1.0, 5.0, 9.0, 4.0, 2.0, 1.0], relative_sd=CV, terminal_phase="fit", fb=0.1
        )
    assert caught.value.field == "terminal_phase"
    # With the population prior, three samples suffice.
    fit = fit_stein2019([2.0, 9.0, 21.0], [50.0, 20000.0, 2000.0], relative_sd=CV)
    assert 2.0 < fit.tmax_d.value < 21.0
