"""Fitting CAR T-cell kinetics to sparse, noisy samples: Stein 2019 and a data-only fallback.

Both fits use the curve of :class:`~immunopet.kinetics.Stein2019CellularKinetics` (Stein et al.
2019 [1]_): exponential expansion from the infusion to ``Tmax``, then a biexponential decline::

    C(t) = Cmax · foldx^(t/Tmax − 1)                                     0 ≤ t < Tmax
    C(t) = Cmax · [(1 − FB) e^(−α (t − Tmax)) + FB e^(−β (t − Tmax))]   t ≥ Tmax

Times are days after the infusion (``time_d``), as in :mod:`immunopet.kinetics._cellular` and
the paper. ``values`` may be blood transgene levels (qPCR, copies/µg genomic DNA), blood CAR T
counts (flow, cells/µL) or image-derived cell numbers of one site; their unit is carried through
as ``value_unit`` and every level-valued output (Cmax, AUC) is in that unit.

What is fitted
--------------
The parameter vector is θ = (ln Cmax, ln Tmax, ln foldx, ln α, FB, ln β). With samples up to day
28 the memory phase (FB, β) is hardly seen: at the typical values it overtakes the effector
phase only ~31 days after the peak, and Stein's own η-shrinkage of FB (0.53) and β (0.82) shows
the trials' rich data hardly informed them. Yet a patient's FB does bend the day-28 sample and
with it the fitted contraction, Tmax and Cmax. :func:`fit_stein2019` therefore estimates all six
with their Table 1 population priors (``terminal_phase="population"``, the default with a prior;
lognormal for FB and β as for the others); ``terminal_phase="fixed"`` holds FB and β at the
typical values (``car_t_kinetics.toml``) or at ``fb=`` / ``beta_per_day=``. On 1000 patients
drawn from Table 1 with 6 samples (days 1, 4, 7, 10, 14, 28) the population form lowers the
median Cmax error from 6.5 % to 4.8 % at 5 % assay CV, from 10.1 % to 8.9 % at 10 % and from
16.7 % to 15.3 % at 20 % (``benchmarks/kinetics.py --stein``; ``docs/kinetics.md``).
:func:`fit_expansion_biexponential` fits (ln Cmax, ln Tmax, ln foldx, ln α) with FB and β held
(``terminal_phase="fixed"``) or all six without priors (``"fit"``, long follow-up).

Objective
---------
Weighted least squares on the log scale (Stein's residual model is constant on the log scale)::

    S(θ) = Σ_i [(ln C(t_i; θ) − ln y_i) / σ_i]²  +  Σ_k [(θ_k − μ_k) / (s · ω_k)]²

where σ_i is the log-scale SD of sample i (from ``log_sd``, from ``relative_sd`` = CV through
σ = sqrt(ln(1 + CV²)), or from an absolute ``sd`` through CV = sd/y [2]_). The second sum is the
optional population prior of :func:`fit_stein2019`: μ_k = ln of the Table 1 typical value and
ω_k² the Table 1 inter-individual variance (``car_t_fit.toml``) of ln Cmax, ln Tmax, ln foldx,
ln α and (population terminal phase) ln FB and ln β, widened by ``prior_sd_scale`` = s. With s = 1 the minimiser is the maximum a posteriori
("empirical Bayes", NONMEM POSTHOC) estimate of a patient of the Stein population [3]_; the
prior on Cmax only makes sense for copies/µg, so ``prior="stein2019_shape"`` keeps the priors on
Tmax, foldx and α (unit-free) and drops the one on Cmax. :func:`fit_expansion_biexponential`
uses no population information at all (no prior; FB and β fixed or fitted).

The objective has local minima (the curve has a kink at Tmax, so there can be one minimum per
interval between sample times), hence several starts: Tmax in the middle of each interval
between consecutive sample times (and between infusion and the first sample) and at the typical
Tmax, the other parameters from the log-linear slopes of the samples on either side. All starts
run at once through a batched projected Levenberg–Marquardt (analytic Jacobian, bounds of
``car_t_fit.toml`` ``[search]``); the best is polished by :func:`scipy.optimize.least_squares`
(trust-region reflective with the same bounds and Jacobian).

Confidence intervals
--------------------
Parametric bootstrap in its randomised-maximum-likelihood form [4]_ [5]_: each of
``n_bootstrap`` replicates adds lognormal noise of the stated σ_i to the observed values and,
when a prior is used, normal noise of SD s·ω_k to the prior means, and is refitted (the batched
Levenberg–Marquardt, from the estimate and from every start above). For a linear
model the replicates are exact draws from the posterior (with a prior) or from the sampling
distribution of the estimate (without); here they approximate them. Intervals are the central
``ci_level`` percentiles of the replicates of each reported quantity. The random numbers come
from :func:`numpy.random.default_rng` with ``seed``, so a fit is deterministic. Replicates that
do not converge are dropped (counted in ``n_bootstrap_failed``). With the population terminal
phase FB and β are part of every replicate (their prior means are perturbed like the others).
Held fixed in the estimate (``"fixed"``), they are drawn per replicate from their Table 1
population distribution when a prior is used (lognormal around the held value with the Table 1
ω²), so the intervals include what is not known about them; without a prior they are known
values and their intervals equal their value.

Non-expansion
-------------
Judged on the samples themselves, not on a fit (the Stein prior presumes an expansion and would
bias the call). ``non_expansion`` is true when no later sample rises above the first sample by
more than the reference change value (RCV) of two lognormal measurements [6]_ [7]_::

    expansion  ⇔  max_j  ln(y_j / y_first) / sqrt(σ_first² + σ_j²)  >  z,
    z = Φ⁻¹(1 − (1 − c)/m)

over the m samples later than the first, with c the one-sided confidence of ``car_t_fit.toml``
``[non_expansion]`` (95 %), Bonferroni-corrected over the m comparisons [8]_ so that a flat
series is called an expansion at most 5 % of the time. ``fold_rise`` is y_j/y_first of the
sample j with the largest statistic and ``non_expansion_threshold`` its RCV, exp(z·sqrt(σ_first²
+ σ_j²)); ``non_expansion`` ⇔ ``fold_rise ≤ non_expansion_threshold``. The rule only judges the
sampled window: an expansion that peaked before the first sample is not seen, so a baseline
sample near the infusion is needed to call non-expansion with confidence.

References
----------
.. [1] Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel model-based cellular kinetic
   analysis of chimeric antigen receptor-T cells. CPT Pharmacometrics Syst Pharmacol
   2019;8(5):285-295. doi:10.1002/psp4.12388
.. [2] Limpert E, Stahel WA, Abbt M. Log-normal distributions across the sciences: keys and
   clues. BioScience 2001;51(5):341-352.
.. [3] Sheiner LB, Beal SL. Bayesian individualization of pharmacokinetics: simple
   implementation and comparison with non-Bayesian methods. J Pharm Sci 1982;71(12):1344-1348.
.. [4] Oliver DS, He N, Reynolds AC. Conditioning permeability fields to pressure data.
   Proc. 5th European Conference on the Mathematics of Oil Recovery (ECMOR V), 1996.
.. [5] Bardsley JM, Solonen A, Haario H, Laine M. Randomize-then-optimize: a method for sampling
   from posterior distributions in nonlinear inverse problems. SIAM J Sci Comput
   2014;36(4):A1895-A1910.
.. [6] Fraser CG, Harris EK. Generation and application of data on biological variation in
   clinical chemistry. Crit Rev Clin Lab Sci 1989;27(5):409-437.
.. [7] Fokkema MR, Herrmann Z, Muskiet FAJ, Moecks J. Reference change values for brain
   natriuretic peptides revisited. Clin Chem 2006;52(8):1602-1603.
.. [8] Dunn OJ. Multiple comparisons among means. J Am Stat Assoc 1961;56(293):52-64.

"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.kinetics._cellular import Stein2019CellularKinetics

__all__ = [
    "CellularKineticsFit",
    "Estimate",
    "GoodnessOfFit",
    "fit_expansion_biexponential",
    "fit_stein2019",
]

Prior = Literal["stein2019", "stein2019_shape", "none"]
TerminalPhase = Literal["fixed", "fit"]
SteinTerminalPhase = Literal["population", "fixed"]
ModelName = Literal["stein2019", "expansion_biexponential"]

_FIT_TABLE: Final = "car_t_fit.toml"
_LN2: Final = math.log(2.0)
# Positions in the parameter vector θ.
_LN_CMAX, _LN_TMAX, _LN_FOLDX, _LN_ALPHA, _FB, _LN_BETA = range(6)
# Keys of car_t_fit.toml [stein2019_iiv] for ln Cmax, ln Tmax, ln foldx, ln α.
_PRIOR_KEYS: Final = ("cmax_copies_per_ug", "tmax_d", "fold_expansion", "alpha_per_day")
# Levenberg–Marquardt tolerances of the bootstrap refits (relative cost decrease, step size).
_LM_FTOL: Final = 1e-8
_LM_XTOL: Final = 1e-8
# Largest exponent evaluated in a Jacobian (e^100 ≈ 2.7e43 keeps JᵀJ finite).
_EXP_CAP: Final = 100.0
# Largest FB of a bootstrap replicate (FB = 1 would leave no effector phase).
_FB_MAX: Final = 1.0 - 1e-9
# Smallest FB of the search when FB carries its lognormal population prior (ln FB is finite).
_FB_MIN: Final = 1e-12

FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def _json_number(value: float) -> float | None:
    """``value`` as a JSON number, or ``None`` for NaN and ±inf (JSON has neither)."""
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Estimate:
    """A fitted quantity with its confidence interval (same unit as the field that holds it).

    Parameters
    ----------
    value : float
        The estimate. ``inf`` for a half-life of a zero rate.
    ci_low, ci_high : float
        Bounds of the central interval (``CellularKineticsFit.ci_level``); NaN without bootstrap,
        equal to ``value`` for a quantity held fixed.

    """

    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready mapping; NaN and ±inf become ``None``."""
        return {item.name: _json_number(getattr(self, item.name)) for item in fields(self)}


@dataclass(frozen=True)
class GoodnessOfFit:
    """How well the fitted curve matches the samples (data part of the objective only).

    Parameters
    ----------
    chi_square : float
        Σ ((ln ŷ_i − ln y_i)/σ_i)² over the samples.
    degrees_of_freedom : int
        Samples minus fitted parameters (can be ≤ 0 for a prior-supported fit).
    p_value : float
        Upper tail of χ² with ``degrees_of_freedom`` (NaN when they are ≤ 0). With a prior the
        statistic is not exactly χ²-distributed; read it as a screen for misfit.
    rms_log_residual : float
        Root-mean-square of ln ŷ_i − ln y_i.
    log_residuals : tuple of float
        ln y_i − ln ŷ_i per sample, in the order of the samples as given.

    """

    chi_square: float
    degrees_of_freedom: int
    p_value: float
    rms_log_residual: float
    log_residuals: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping; NaN becomes ``None``."""
        return {
            "chi_square": _json_number(self.chi_square),
            "degrees_of_freedom": self.degrees_of_freedom,
            "p_value": _json_number(self.p_value),
            "rms_log_residual": _json_number(self.rms_log_residual),
            "log_residuals": [_json_number(r) for r in self.log_residuals],
        }


@dataclass(frozen=True)
class CellularKineticsFit:
    """CAR T-cell kinetics fitted to one series of samples (see the module docstring).

    Level-valued fields (``cmax``, ``auc_0_28d``) are in ``value_unit`` (AUC in
    ``value_unit``·day); times and half-lives in days; rates per day.

    Parameters
    ----------
    model : {"stein2019", "expansion_biexponential"}
        Which fit produced this.
    value_unit : str
        Unit of the input values, e.g. ``"copies/ug"`` (transgene copies/µg genomic DNA).
    cmax : Estimate
        Peak level, ``value_unit``.
    tmax_d : Estimate
        Time of the peak after infusion, days.
    fold_expansion : Estimate
        Peak over the level at infusion, Cmax/C(0).
    expansion_rate_per_day : Estimate
        ρ = ln(foldx)/Tmax, 1/day.
    doubling_time_d : Estimate
        ln 2/ρ, days.
    alpha_per_day, beta_per_day : Estimate
        Contraction (effector) and persistence (memory) rates, 1/day.
    fb : Estimate
        Fraction of the peak in the persistence phase.
    alpha_half_life_d, beta_half_life_d : Estimate
        ln 2/α and ln 2/β, days (``inf`` for β = 0).
    auc_0_28d : Estimate
        ∫ C dt from infusion to day 28 (``car_t_fit.toml`` ``auc_end_d``), ``value_unit``·day.
    fixed_parameters : tuple of str
        Parameters held fixed (not fitted), e.g. ``("fb", "beta_per_day")``.
    prior : str
        ``"stein2019"``, ``"stein2019_shape"`` or ``"none"``.
    prior_sd_scale : float
        Factor on the prior SDs (1 = Table 1 variability).
    goodness_of_fit : GoodnessOfFit
        Residuals and χ² of the estimate.
    non_expansion : bool
        True when ``fold_rise`` ≤ ``non_expansion_threshold`` (module docstring).
    fold_rise : float
        Observed rise over the first sample, y_j/y_first, of the sample most significantly above
        it.
    non_expansion_threshold : float
        The reference change value (fold) of that pair of samples.
    ci_level : float
        Two-sided level of the intervals (0.95).
    ci_method : str
        How the intervals were computed.
    n_bootstrap : int
        Replicates requested.
    n_bootstrap_failed : int
        Replicates dropped because their refit did not converge.
    seed : int
        Seed of :func:`numpy.random.default_rng` for the replicates.
    time_d : tuple of float
        Sample times, days after infusion, as given.
    values : tuple of float
        Sample values, ``value_unit``, as given.
    log_sd : tuple of float
        Log-scale SD used for each sample.
    warnings : tuple of str
        Conditions the reader should know (peak at the last sample, parameters on a bound …).

    """

    model: ModelName
    value_unit: str
    cmax: Estimate
    tmax_d: Estimate
    fold_expansion: Estimate
    expansion_rate_per_day: Estimate
    doubling_time_d: Estimate
    alpha_per_day: Estimate
    beta_per_day: Estimate
    fb: Estimate
    alpha_half_life_d: Estimate
    beta_half_life_d: Estimate
    auc_0_28d: Estimate
    fixed_parameters: tuple[str, ...]
    prior: str
    prior_sd_scale: float
    goodness_of_fit: GoodnessOfFit
    non_expansion: bool
    fold_rise: float
    non_expansion_threshold: float
    ci_level: float
    ci_method: str
    n_bootstrap: int
    n_bootstrap_failed: int
    seed: int
    time_d: tuple[float, ...]
    values: tuple[float, ...]
    log_sd: tuple[float, ...]
    warnings: tuple[str, ...]

    def kinetics(self) -> Stein2019CellularKinetics:
        """The fitted curve as a :class:`Stein2019CellularKinetics`.

        Its ``cmax_copies_per_ug`` holds the fitted Cmax in ``value_unit`` (copies/µg only
        when the values were).
        """
        return Stein2019CellularKinetics(
            fold_expansion=self.fold_expansion.value,
            tmax_d=self.tmax_d.value,
            cmax_copies_per_ug=self.cmax.value,
            alpha_per_day=self.alpha_per_day.value,
            beta_per_day=self.beta_per_day.value,
            fb=self.fb.value,
            source=f"fitted ({self.model}, prior {self.prior}) to {len(self.time_d)} samples",
        )

    def predict(self, time_d: ArrayLike) -> FloatArray:
        """Fitted level at ``time_d`` (days ≥ 0, any shape), ``value_unit``."""
        return np.asarray(
            self.kinetics().concentration(np.asarray(time_d, dtype=np.float64)),
            dtype=np.float64,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping of every field (NaN and ±inf become ``None``)."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Estimate | GoodnessOfFit):
                out[item.name] = value.to_dict()
            elif isinstance(value, tuple):
                out[item.name] = [_json_number(v) if isinstance(v, float) else v for v in value]
            elif isinstance(value, float):
                out[item.name] = _json_number(value)
            else:
                out[item.name] = value
        return out


# --------------------------------------------------------------------------------------------
# The curve on the log scale, batched, with its Jacobian
# --------------------------------------------------------------------------------------------


def _log_curve(
    theta: FloatArray,
    time_d: FloatArray,
    fb_held: FloatArray,
    beta_held: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Log-level ln C(t; θ) and its Jacobian ∂ln C/∂θ for a batch of parameter vectors.

    Parameters
    ----------
    theta : ndarray of shape (B, P)
        P = 4 (FB and β held at ``fb_held``, ``beta_held``) or 6 (both in θ).
    time_d : ndarray of shape (N,)
        Days after infusion, ≥ 0.
    fb_held, beta_held : ndarray of shape (B,)
        FB and β (1/day) of each row when P = 4 (ignored when P = 6).

    Returns
    -------
    log_level : ndarray of shape (B, N)
    jacobian : ndarray of shape (B, N, P)

    """
    n_params = theta.shape[1]
    t = time_d[None, :]
    tmax = np.exp(theta[:, _LN_TMAX, None])
    ln_foldx = theta[:, _LN_FOLDX, None]
    alpha = np.exp(theta[:, _LN_ALPHA, None])
    if n_params == 6:
        fb = theta[:, _FB, None]
        beta = np.exp(theta[:, _LN_BETA, None])
    else:
        fb = fb_held[:, None]
        beta = beta_held[:, None]
    rising = t < tmax
    tau = np.maximum(t - tmax, 0.0)
    # ln D = ln[(1 − FB) e^(−α τ) + FB e^(−β τ)] by log-sum-exp (no underflow for long τ).
    with np.errstate(divide="ignore"):
        log_fast = np.log1p(-fb) - alpha * tau
        log_slow = np.log(fb) - beta * tau
    log_d = np.logaddexp(log_fast, log_slow)
    share_fast = np.exp(log_fast - log_d)  # (1 − FB) e^(−α τ) / D
    share_slow = np.exp(log_slow - log_d)  # FB e^(−β τ) / D
    ratio = t / tmax
    log_level = theta[:, _LN_CMAX, None] + np.where(rising, ln_foldx * (ratio - 1.0), log_d)

    jacobian = np.zeros((theta.shape[0], time_d.size, n_params))
    jacobian[:, :, _LN_CMAX] = 1.0
    jacobian[:, :, _LN_TMAX] = np.where(
        rising, -ln_foldx * ratio, tmax * (alpha * share_fast + beta * share_slow)
    )
    jacobian[:, :, _LN_FOLDX] = np.where(rising, ratio - 1.0, 0.0)
    jacobian[:, :, _LN_ALPHA] = np.where(rising, 0.0, -alpha * tau * share_fast)
    if n_params == 6:
        # ∂ln D/∂FB = (e^(−β τ) − e^(−α τ))/D; exponents capped where D underflows (the
        # derivative is then astronomically large and only its size matters to the step).
        d_fb = np.exp(np.minimum(-beta * tau - log_d, _EXP_CAP)) - np.exp(
            np.minimum(-alpha * tau - log_d, _EXP_CAP)
        )
        jacobian[:, :, _FB] = np.where(rising, 0.0, d_fb)
        jacobian[:, :, _LN_BETA] = np.where(rising, 0.0, -beta * tau * share_slow)
    return log_level, jacobian


@dataclass(frozen=True)
class _Rows:
    """What differs between the rows of a batch: ln values, prior means and held FB, β."""

    log_targets: FloatArray  # (B, N)
    prior_means: FloatArray  # (B, K)
    fb: FloatArray  # (B,)
    beta_per_day: FloatArray  # (B,)

    def take(self, rows: NDArray[np.intp]) -> _Rows:
        """The rows ``rows``."""
        return _Rows(
            self.log_targets[rows], self.prior_means[rows], self.fb[rows], self.beta_per_day[rows]
        )

    def repeat(self, times: int) -> _Rows:
        """Each row ``times`` times in a row (row b becomes rows b·times … b·times + times − 1)."""
        return _Rows(
            np.repeat(self.log_targets, times, axis=0),
            np.repeat(self.prior_means, times, axis=0),
            np.repeat(self.fb, times),
            np.repeat(self.beta_per_day, times),
        )


@dataclass(frozen=True)
class _Problem:
    """One weighted log-scale least-squares problem (samples sorted by time)."""

    time_d: FloatArray  # (N,)
    log_values: FloatArray  # (N,)
    log_sd: FloatArray  # (N,)
    fb: float  # held FB of the estimate
    beta_per_day: float  # held β of the estimate
    n_parameters: int  # 4 or 6
    prior_index: NDArray[np.intp]  # (K,)
    prior_mean: FloatArray  # (K,)
    prior_sd: FloatArray  # (K,)
    lower: FloatArray  # (P,)
    upper: FloatArray  # (P,)
    #: Prior entries on the log of their parameter (FB, which θ holds linearly), shape (K,).
    prior_on_log: NDArray[np.bool_] | None = None

    def observed(self) -> _Rows:
        """The one row of the observed problem."""
        return _Rows(
            self.log_values[None, :],
            self.prior_mean[None, :],
            np.array([self.fb]),
            np.array([self.beta_per_day]),
        )

    def residuals(self, theta: FloatArray, rows: _Rows) -> tuple[FloatArray, FloatArray]:
        """Stacked weighted residuals ``(B, N + K)`` and their Jacobian ``(B, N + K, P)``."""
        log_level, jac = _log_curve(theta, self.time_d, rows.fb, rows.beta_per_day)
        data = (log_level - rows.log_targets) / self.log_sd
        value = theta[:, self.prior_index]
        slope = np.ones_like(value)
        if self.prior_on_log is not None and self.prior_on_log.any():
            # ln of a parameter held linearly in θ (FB > 0 by its search bound).
            logged = np.log(np.maximum(value[:, self.prior_on_log], _FB_MIN))
            slope[:, self.prior_on_log] = 1.0 / np.exp(logged)
            value = value.copy()
            value[:, self.prior_on_log] = logged
        prior = (value - rows.prior_means) / self.prior_sd
        jac_data = jac / self.log_sd[None, :, None]
        jac_prior = np.zeros((theta.shape[0], self.prior_index.size, self.n_parameters))
        jac_prior[:, np.arange(self.prior_index.size), self.prior_index] = slope / self.prior_sd
        return np.concatenate([data, prior], axis=1), np.concatenate([jac_data, jac_prior], axis=1)


# --------------------------------------------------------------------------------------------
# Minimisation: multi-start least_squares for the estimate, batched LM for the replicates
# --------------------------------------------------------------------------------------------


def _starts(problem: _Problem, typical: Stein2019CellularKinetics) -> FloatArray:
    """Starting vectors: Tmax in each interval between sample times, and the typical Tmax."""
    t = problem.time_d
    y = problem.log_values
    lo, hi = math.exp(problem.lower[_LN_TMAX]), math.exp(problem.upper[_LN_TMAX])
    knots = np.unique(np.concatenate([[0.0], t]))
    candidates = [*(0.5 * (knots[:-1] + knots[1:])).tolist(), typical.tmax_d]
    tmax_starts = sorted({min(max(c, lo * 1.01), hi * 0.99) for c in candidates})
    starts = []
    for tmax in tmax_starts:
        ln_cmax = float(np.interp(tmax, t, y))
        before, after = t < tmax, t > tmax
        if before.any() and t[before][0] < tmax:
            slope = (ln_cmax - y[before][0]) / (tmax - t[before][0])
            ln_foldx = slope * tmax
        else:
            ln_foldx = math.log(typical.fold_expansion)
        if after.any():
            alpha = -(y[after][-1] - ln_cmax) / (t[after][-1] - tmax)
        else:
            alpha = typical.alpha_per_day
        theta = np.array([ln_cmax, math.log(tmax), ln_foldx, math.log(max(alpha, 1e-12))])
        if problem.n_parameters == 6:
            theta = np.append(theta, [problem.fb, math.log(problem.beta_per_day)])
        starts.append(np.clip(theta, problem.lower, problem.upper))
    return np.array(starts, dtype=np.float64)


def _fit_point(problem: _Problem, starts: FloatArray, max_iterations: int) -> FloatArray:
    """The minimiser of the objective: best of the batched starts, polished by least_squares."""
    from scipy.optimize import least_squares  # lazy: 0.4 s import, only when fitting

    observed = problem.observed()
    best, _, _ = _minimise(problem, starts, observed, max_iterations)

    def fun(theta: FloatArray) -> FloatArray:
        residuals: FloatArray = problem.residuals(theta[None, :], observed)[0][0]
        return residuals

    def jac(theta: FloatArray) -> FloatArray:
        jacobian: FloatArray = problem.residuals(theta[None, :], observed)[1][0]
        return jacobian

    result = least_squares(
        fun,
        _inside(problem, best[0]),
        jac=jac,
        bounds=(problem.lower, problem.upper),
        method="trf",
        x_scale="jac",
        ftol=1e-12,
        xtol=1e-12,
        gtol=1e-12,
    )
    polished = np.asarray(result.x, dtype=np.float64)
    before = 0.5 * float(np.sum(fun(best[0]) ** 2))
    return polished if float(result.cost) <= before else best[0]


def _inside(problem: _Problem, theta: FloatArray) -> FloatArray:
    """``theta`` moved strictly inside the search box (trust-region reflective needs it)."""
    span = problem.upper - problem.lower
    margin = np.where(np.isfinite(span), 1e-9 * span, 0.0)
    inside: FloatArray = np.clip(theta, problem.lower + margin, problem.upper - margin)
    return inside


def _minimise(
    problem: _Problem,
    starts: FloatArray,
    rows: _Rows,
    max_iterations: int,
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Minimise B problems from S starts each (B·S Levenberg–Marquardt runs in one batch).

    Parameters
    ----------
    problem : _Problem
        Times, σ, bounds and prior SDs shared by all problems.
    starts : ndarray of shape (S, P)
        Starting vectors, used for every problem.
    rows : _Rows
        The B problems (ln values, prior means, held FB and β).
    max_iterations : int
        Iteration limit.

    Returns
    -------
    theta : ndarray of shape (B, P)
        Lowest-cost solution of each problem.
    cost : ndarray of shape (B,)
        Its cost, ½ Σ r².
    converged : ndarray of bool, shape (B,)
        Whether that solution's run converged.

    """
    n_starts, n_problems = starts.shape[0], rows.fb.size
    theta, cost, converged = _levenberg_marquardt(
        problem, np.tile(starts, (n_problems, 1)), rows.repeat(n_starts), max_iterations
    )
    pick = np.argmin(cost.reshape(n_problems, n_starts), axis=1)
    best = np.arange(n_problems) * n_starts + pick
    return theta[best], cost[best], converged[best]


def _levenberg_marquardt(
    problem: _Problem,
    theta0: FloatArray,
    rows: _Rows,
    max_iterations: int,
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Minimise a batch of problems by projected Levenberg–Marquardt.

    Parameters
    ----------
    problem : _Problem
        Times, σ, bounds and prior SDs shared by all rows.
    theta0 : ndarray of shape (B, P)
        Start of each row.
    rows : _Rows
        The problem of each row.
    max_iterations : int
        Iteration limit.

    Returns
    -------
    theta : ndarray of shape (B, P)
    cost : ndarray of shape (B,)
        ½ Σ r² at ``theta``.
    converged : ndarray of bool, shape (B,)

    Notes
    -----
    Marquardt's scaling of the damping by diag(JᵀJ); a parameter on a bound whose gradient
    points out of the box is frozen for the step (active set), the step is projected on the box
    and accepted only if the cost falls, so the cost never rises.

    """
    batch, n_params = theta0.shape
    eye = np.eye(n_params)
    theta = np.clip(theta0, problem.lower, problem.upper)
    res, jac = problem.residuals(theta, rows)
    cost = 0.5 * np.einsum("bm,bm->b", res, res)
    damping = np.full(batch, 1e-3)
    done = np.zeros(batch, dtype=bool)
    finite_lower = np.where(np.isfinite(problem.lower), problem.lower, 0.0)
    finite_upper = np.where(np.isfinite(problem.upper), problem.upper, 0.0)
    lower_tol = 1e-10 * np.maximum(1.0, np.abs(finite_lower))
    upper_tol = 1e-10 * np.maximum(1.0, np.abs(finite_upper))
    for _ in range(max_iterations):
        # Work on the rows still running only.
        running = np.flatnonzero(~done)
        if running.size == 0:
            break
        th, r, jc = theta[running], res[running], jac[running]
        cst, lam = cost[running], damping[running]
        grad = np.einsum("bmp,bm->bp", jc, r)
        hess = np.einsum("bmp,bmq->bpq", jc, jc)
        active = ((th <= problem.lower + lower_tol) & (grad > 0)) | (
            (th >= problem.upper - upper_tol) & (grad < 0)
        )
        diag = np.diagonal(hess, axis1=1, axis2=2)
        floor = 1e-12 * np.maximum(diag.max(axis=1, keepdims=True), 1.0)
        system = hess + lam[:, None, None] * (np.maximum(diag, floor)[:, :, None] * eye)
        keep = ~active
        system = system * keep[:, :, None] * keep[:, None, :] + eye * active[:, :, None]
        step = np.linalg.solve(system, (-grad * keep)[:, :, None])[:, :, 0]
        trial = np.clip(th + step, problem.lower, problem.upper)
        res_t, jac_t = problem.residuals(trial, rows.take(running))
        cost_t = 0.5 * np.einsum("bm,bm->b", res_t, res_t)
        better = np.isfinite(cost_t) & (cost_t < cst)
        moved = np.max(np.abs(trial - th), axis=1)
        small = better & (
            (cst - cost_t <= _LM_FTOL * (1.0 + cst))
            | (moved <= _LM_XTOL * (1.0 + np.max(np.abs(th), axis=1)))
        )
        accepted = running[better]
        theta[accepted] = trial[better]
        res[accepted] = res_t[better]
        jac[accepted] = jac_t[better]
        cost[accepted] = cost_t[better]
        lam = np.where(better, np.maximum(lam * 0.3, 1e-12), lam * 4.0)
        damping[running] = lam
        done[running] = small | (~better & (lam > 1e12))
    return theta, cost, done


# --------------------------------------------------------------------------------------------
# Reported quantities
# --------------------------------------------------------------------------------------------


def _ordered(theta: FloatArray) -> FloatArray:
    """Label the faster decline α (swap (α, 1 − FB) with (β, FB) where the fit found α < β)."""
    if theta.shape[1] != 6:
        return theta
    out = theta.copy()
    swap = out[:, _LN_ALPHA] < out[:, _LN_BETA]
    out[swap, _LN_ALPHA], out[swap, _LN_BETA] = theta[swap, _LN_BETA], theta[swap, _LN_ALPHA]
    out[swap, _FB] = 1.0 - theta[swap, _FB]
    return out


def _quantities(
    theta: FloatArray, fb_held: FloatArray, beta_held: FloatArray, auc_end_d: float
) -> dict[str, FloatArray]:
    """Reported quantities for each row of ``theta`` (B, P); each value has shape (B,).

    ``fb_held`` and ``beta_held`` (shape (B,)) are used when θ does not hold FB and β.
    """
    theta = _ordered(theta)
    cmax = np.exp(theta[:, _LN_CMAX])
    tmax = np.exp(theta[:, _LN_TMAX])
    ln_foldx = theta[:, _LN_FOLDX]
    alpha = np.exp(theta[:, _LN_ALPHA])
    if theta.shape[1] == 6:
        fb = theta[:, _FB]
        beta = np.exp(theta[:, _LN_BETA])
    else:
        fb = fb_held
        beta = beta_held
    rho = ln_foldx / tmax
    with np.errstate(divide="ignore"):
        beta_half_life = _LN2 / beta
    return {
        "cmax": cmax,
        "tmax_d": tmax,
        "fold_expansion": np.exp(ln_foldx),
        "expansion_rate_per_day": rho,
        "doubling_time_d": _LN2 / rho,
        "alpha_per_day": alpha,
        "beta_per_day": beta,
        "fb": fb,
        "alpha_half_life_d": _LN2 / alpha,
        "beta_half_life_d": beta_half_life,
        "auc_0_28d": _auc(cmax, tmax, ln_foldx, alpha, beta, fb, auc_end_d),
    }


def _auc(
    cmax: FloatArray,
    tmax: FloatArray,
    ln_foldx: FloatArray,
    alpha: FloatArray,
    beta: FloatArray,
    fb: FloatArray,
    end_d: float,
) -> FloatArray:
    """∫₀^end C dt of the curve in closed form, ``value_unit``·day (shape of ``cmax``).

    Rise: ∫₀^min(Tmax, end) Cmax e^(ρ(t − Tmax)) dt = (Cmax/ρ) e^(−ln foldx) (e^(ρ·min(Tmax, end)) − 1);
    decline over τ_e = max(end − Tmax, 0): Cmax[(1 − FB)(1 − e^(−α τ_e))/α + FB(1 − e^(−β τ_e))/β],
    the last term FB·τ_e when β = 0.
    """
    rho = ln_foldx / tmax
    rise = cmax / rho * np.exp(-ln_foldx) * np.expm1(rho * np.minimum(tmax, end_d))
    tau = np.maximum(end_d - tmax, 0.0)
    fast = (1.0 - fb) * -np.expm1(-alpha * tau) / alpha
    positive = beta > 0.0
    slow = fb * np.where(positive, -np.expm1(-beta * tau) / np.where(positive, beta, 1.0), tau)
    result: FloatArray = rise + cmax * (fast + slow)
    return result


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _samples(time_d: ArrayLike, values: ArrayLike) -> tuple[FloatArray, FloatArray]:
    times = np.asarray(time_d, dtype=np.float64)
    levels = np.asarray(values, dtype=np.float64)
    if times.ndim != 1 or levels.shape != times.shape:
        raise InputError(
            "time_d and values must be 1-D and of the same length, got shapes "
            f"{times.shape} and {levels.shape}",
            field="time_d",
        )
    if not np.all(np.isfinite(times)) or np.any(times < 0.0):
        raise InputError(
            f"sample times must be finite and >= 0 days after infusion, got {times.tolist()}",
            field="time_d",
        )
    if not np.all(np.isfinite(levels)) or np.any(levels <= 0.0):
        raise InputError(
            f"values must be finite and > 0 (the fit is on the log scale), got {levels.tolist()}",
            field="values",
            hint="leave out samples below the limit of quantification",
        )
    return times, levels


def _log_sd(
    levels: FloatArray,
    sd: ArrayLike | None,
    relative_sd: ArrayLike | None,
    log_sd: ArrayLike | None,
) -> FloatArray:
    """σ_i on the log scale from exactly one of the three noise statements."""
    given = {
        name: value
        for name, value in (("sd", sd), ("relative_sd", relative_sd), ("log_sd", log_sd))
        if value is not None
    }
    if len(given) != 1:
        raise InputError(
            f"state the measurement noise once, got {sorted(given) or 'none'}",
            field="sd",
            hint="pass exactly one of sd=, relative_sd= (e.g. 0.2 for 20 %) or log_sd=",
        )
    ((name, value),) = given.items()
    array = np.asarray(value, dtype=np.float64)
    if array.ndim > 1 or (array.ndim == 1 and array.size != levels.size):
        raise InputError(
            f"{name} must be one number or one per sample ({levels.size}), got shape {array.shape}",
            field=name,
        )
    if not np.all(np.isfinite(array)) or np.any(array <= 0.0):
        raise InputError(f"{name} must be finite and > 0, got {array.tolist()}", field=name)
    spread = np.broadcast_to(array, levels.shape)
    if name == "log_sd":
        return np.array(spread, dtype=np.float64)
    cv = spread / levels if name == "sd" else spread
    return np.sqrt(np.log1p(cv**2))


def _fixed_terminal(fb: float | None, beta_per_day: float | None) -> tuple[float, float]:
    typical = Stein2019CellularKinetics.published()
    fb_value = typical.fb if fb is None else float(fb)
    beta_value = typical.beta_per_day if beta_per_day is None else float(beta_per_day)
    if not 0.0 <= fb_value < 1.0:
        raise InputError(f"fb must be in [0, 1), got {fb_value!r}", field="fb")
    if not (math.isfinite(beta_value) and beta_value >= 0.0):
        raise InputError(
            f"beta_per_day must be finite and >= 0, got {beta_value!r}", field="beta_per_day"
        )
    return fb_value, beta_value


# --------------------------------------------------------------------------------------------
# The shared engine
# --------------------------------------------------------------------------------------------


def _fit(
    *,
    model: ModelName,
    time_d: ArrayLike,
    values: ArrayLike,
    sd: ArrayLike | None,
    relative_sd: ArrayLike | None,
    log_sd: ArrayLike | None,
    prior: Prior,
    prior_sd_scale: float,
    free_terminal: bool,
    fb: float,
    beta_per_day: float,
    value_unit: str,
    n_bootstrap: int,
    seed: int,
    terminal_prior: bool = False,
) -> CellularKineticsFit:
    """Fit engine of both public fits.

    ``free_terminal`` fits FB and β; ``terminal_prior`` (with ``free_terminal``) adds their
    lognormal Table 1 priors, centred on ``fb`` and ``beta_per_day``.
    """
    from scipy import special  # lazy: imported when fitting

    times, levels = _samples(time_d, values)
    sigma = _log_sd(levels, sd, relative_sd, log_sd)
    if prior not in get_args(Prior):
        raise InputError(f"prior must be one of {get_args(Prior)}, got {prior!r}", field="prior")
    if not (math.isfinite(prior_sd_scale) and prior_sd_scale > 0.0):
        raise InputError(
            f"prior_sd_scale must be finite and > 0, got {prior_sd_scale!r}",
            field="prior_sd_scale",
        )
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise InputError(
            f"n_bootstrap must be an integer >= 0, got {n_bootstrap!r}", field="n_bootstrap"
        )
    table = read_toml(_FIT_TABLE)
    search: dict[str, Any] = table["search"]
    iiv: dict[str, Any] = table["stein2019_iiv"]
    typical = Stein2019CellularKinetics.published()

    order = np.argsort(times, kind="stable")
    t_sorted, log_sorted, sigma_sorted = times[order], np.log(levels[order]), sigma[order]

    # Prior terms.
    prior_params = {"stein2019": (0, 1, 2, 3), "stein2019_shape": (1, 2, 3), "none": ()}[prior]
    typical_theta = (
        math.log(typical.cmax_copies_per_ug),
        math.log(typical.tmax_d),
        math.log(typical.fold_expansion),
        math.log(typical.alpha_per_day),
    )
    prior_index = np.array(prior_params, dtype=np.intp)
    prior_mean = np.array([typical_theta[i] for i in prior_params], dtype=np.float64)
    prior_sd = prior_sd_scale * np.sqrt(
        np.array([float(iiv[_PRIOR_KEYS[i]]) for i in prior_params], dtype=np.float64)
    )
    prior_on_log = np.zeros(prior_index.size, dtype=bool)
    if terminal_prior:
        # Table 1 IIV is lognormal for FB and β too (nlmixr2lib: FB <- exp(lfb + etalfb)).
        prior_index = np.append(prior_index, [_FB, _LN_BETA]).astype(np.intp)
        prior_mean = np.append(prior_mean, [math.log(fb), math.log(beta_per_day)])
        prior_sd = np.append(
            prior_sd,
            prior_sd_scale * np.sqrt([float(iiv["fb"]), float(iiv["beta_per_day"])]),
        )
        prior_on_log = np.append(prior_on_log, [True, False])

    n_params = 6 if free_terminal else 4
    minimum = max(3, n_params + 1 - prior_index.size)
    if times.size < minimum:
        raise InputError(
            f"{model} fit with prior {prior!r} needs at least {minimum} samples, got {times.size}",
            field="time_d",
            hint="add samples or use a population prior (fit_stein2019)",
        )
    if np.unique(times).size < 3:
        raise InputError(
            f"the fit needs samples at 3 or more different times, got {np.unique(times).tolist()}",
            field="time_d",
        )
    tmax_min = float(search["tmax_min_d"])
    t_last = float(t_sorted[-1])
    if t_last <= tmax_min:
        raise InputError(
            f"the last sample ({t_last} d) must be later than {tmax_min} d after infusion",
            field="time_d",
        )

    alpha_min = max(float(search["alpha_min_per_day"]), 0.0 if free_terminal else beta_per_day)
    alpha_min *= 1.0 + 1e-9
    lower = [
        -np.inf,
        math.log(tmax_min),
        float(search["ln_fold_expansion_min"]),
        math.log(alpha_min),
    ]
    upper = [
        np.inf,
        math.log(t_last),
        float(search["ln_fold_expansion_max"]),
        math.log(float(search["alpha_max_per_day"])),
    ]
    if free_terminal:
        lower += [_FB_MIN if terminal_prior else 0.0, math.log(float(search["beta_min_per_day"]))]
        upper += [1.0, math.log(float(search["beta_max_per_day"]))]
    problem = _Problem(
        time_d=t_sorted,
        log_values=log_sorted,
        log_sd=sigma_sorted,
        fb=fb,
        beta_per_day=beta_per_day,
        n_parameters=n_params,
        prior_index=prior_index,
        prior_mean=prior_mean,
        prior_sd=prior_sd,
        lower=np.array(lower, dtype=np.float64),
        upper=np.array(upper, dtype=np.float64),
        prior_on_log=prior_on_log,
    )

    max_iterations = int(search["max_iterations"])
    starts = _starts(problem, typical)
    theta_hat = _fit_point(problem, starts, max_iterations)
    observed = problem.observed()
    auc_end_d = float(table["exposure"]["auc_end_d"])
    point = {
        name: float(value[0])
        for name, value in _quantities(
            theta_hat[None, :], observed.fb, observed.beta_per_day, auc_end_d
        ).items()
    }

    # Bootstrap (randomised maximum likelihood / a posteriori).
    confidence: dict[str, Any] = table["confidence"]
    ci_level = float(confidence["ci_level"])
    held = () if free_terminal else ("fb", "beta_per_day")
    # With population information, held FB and β vary between replicates as between patients.
    propagate_held = bool(held) and prior_index.size > 0
    rng = np.random.default_rng(seed)
    failed = 0
    intervals: dict[str, tuple[float, float]] = dict.fromkeys(point, (math.nan, math.nan))
    if n_bootstrap > 0:
        noise = rng.standard_normal((n_bootstrap, log_sorted.size))
        prior_noise = rng.standard_normal((n_bootstrap, prior_mean.size))
        held_noise = rng.standard_normal((n_bootstrap, 2))
        if propagate_held:
            held_sd = np.sqrt([float(iiv["fb"]), float(iiv["beta_per_day"])])
            fb_rows = np.minimum(fb * np.exp(held_sd[0] * held_noise[:, 0]), _FB_MAX)
            beta_rows = beta_per_day * np.exp(held_sd[1] * held_noise[:, 1])
        else:
            fb_rows = np.full(n_bootstrap, fb)
            beta_rows = np.full(n_bootstrap, beta_per_day)
        rows = _Rows(
            log_sorted[None, :] + sigma_sorted[None, :] * noise,
            prior_mean[None, :] + prior_sd[None, :] * prior_noise,
            fb_rows,
            beta_rows,
        )
        replicates, _, converged = _minimise(
            problem, np.vstack([theta_hat, starts]), rows, max_iterations
        )
        failed = int(np.count_nonzero(~converged))
        draws = _quantities(
            replicates[converged], fb_rows[converged], beta_rows[converged], auc_end_d
        )
        tail = 50.0 * (1.0 - ci_level)
        for name, sample in draws.items():
            if sample.size:
                # No interpolation between infinite half-lives (β = 0).
                finite = bool(np.all(np.isfinite(sample)))
                low, high = np.percentile(
                    sample, [tail, 100.0 - tail], method="linear" if finite else "inverted_cdf"
                )
                intervals[name] = (float(low), float(high))
    if held and not propagate_held:
        for name in (*held, "beta_half_life_d"):
            intervals[name] = (point[name], point[name])
    estimates = {name: Estimate(point[name], *intervals[name]) for name in point}

    # Goodness of fit, in the caller's sample order.
    fitted_sorted, _ = _log_curve(theta_hat[None, :], t_sorted, observed.fb, observed.beta_per_day)
    residual_sorted = log_sorted - fitted_sorted[0]
    log_residuals = np.empty_like(residual_sorted)
    log_residuals[order] = residual_sorted
    chi_square = float(np.sum((residual_sorted / sigma_sorted) ** 2))
    dof = int(times.size - n_params)
    goodness = GoodnessOfFit(
        chi_square=chi_square,
        degrees_of_freedom=dof,
        p_value=float(special.chdtrc(dof, chi_square)) if dof > 0 else math.nan,
        rms_log_residual=float(np.sqrt(np.mean(log_residuals**2))),
        log_residuals=tuple(float(r) for r in log_residuals),
    )

    fold_rise, threshold = _rise(
        t_sorted,
        log_sorted,
        sigma_sorted,
        float(table["non_expansion"]["one_sided_confidence"]),
    )

    notes = _warnings(
        problem, theta_hat, failed, n_bootstrap, float(confidence["max_failed_fraction"])
    )
    estimator = "a posteriori" if prior_index.size else "likelihood"
    ci_method = (
        f"parametric bootstrap (randomised maximum {estimator}): {n_bootstrap} replicates, "
        f"central {100 * ci_level:g} % percentile interval"
        if n_bootstrap > 0
        else "none (n_bootstrap = 0)"
    )
    return CellularKineticsFit(
        model=model,
        value_unit=value_unit,
        **estimates,
        fixed_parameters=held,
        prior=prior,
        prior_sd_scale=float(prior_sd_scale),
        goodness_of_fit=goodness,
        non_expansion=fold_rise <= threshold,
        fold_rise=fold_rise,
        non_expansion_threshold=threshold,
        ci_level=ci_level,
        ci_method=ci_method,
        n_bootstrap=n_bootstrap,
        n_bootstrap_failed=failed,
        seed=seed,
        time_d=tuple(float(t) for t in times),
        values=tuple(float(v) for v in levels),
        log_sd=tuple(float(s) for s in sigma),
        warnings=notes,
    )


def _rise(
    time_d: FloatArray, log_values: FloatArray, log_sd: FloatArray, confidence: float
) -> tuple[float, float]:
    """(fold rise, its RCV threshold) of the non-expansion rule (module docstring).

    Samples sorted by time; the first is the reference, the samples strictly later are compared.
    """
    from scipy.special import ndtri  # lazy: imported when fitting

    later = time_d > time_d[0]
    pair_sd = np.hypot(log_sd[0], log_sd[later])
    statistic = (log_values[later] - log_values[0]) / pair_sd
    z = float(ndtri(1.0 - (1.0 - confidence) / int(np.count_nonzero(later))))
    best = int(np.argmax(statistic))
    fold_rise = math.exp(float(log_values[later][best] - log_values[0]))
    return fold_rise, math.exp(z * float(pair_sd[best]))


def _warnings(
    problem: _Problem, theta: FloatArray, failed: int, n_bootstrap: int, max_failed: float
) -> tuple[str, ...]:
    notes = []
    near = 1e-6
    if theta[_LN_TMAX] >= problem.upper[_LN_TMAX] - near:
        notes.append(
            "the level still rises at the last sample: Tmax is put at the last sample and Cmax "
            "is a lower bound; sample later to locate the peak"
        )
    if theta[_LN_TMAX] <= problem.lower[_LN_TMAX] + near:
        notes.append("Tmax is at the lower search bound: the peak precedes the samples")
    if theta[_LN_FOLDX] <= problem.lower[_LN_FOLDX] + near:
        notes.append("fold expansion is at its lower bound (no rise from infusion)")
    if theta[_LN_ALPHA] >= problem.upper[_LN_ALPHA] - near:
        notes.append("the contraction rate alpha is at its upper search bound")
    if theta[_LN_ALPHA] <= problem.lower[_LN_ALPHA] + near:
        notes.append("the contraction rate alpha is at its lower bound (no decline seen)")
    if n_bootstrap and failed > max_failed * n_bootstrap:
        notes.append(f"{failed} of {n_bootstrap} bootstrap refits did not converge")
    return tuple(notes)


# --------------------------------------------------------------------------------------------
# Public fits
# --------------------------------------------------------------------------------------------


def fit_stein2019(
    time_d: ArrayLike,
    values: ArrayLike,
    *,
    sd: ArrayLike | None = None,
    relative_sd: ArrayLike | None = None,
    log_sd: ArrayLike | None = None,
    prior: Prior = "stein2019",
    prior_sd_scale: float = 1.0,
    terminal_phase: SteinTerminalPhase | None = None,
    fb: float | None = None,
    beta_per_day: float | None = None,
    value_unit: str = "copies/ug",
    n_bootstrap: int = 200,
    seed: int = 0,
) -> CellularKineticsFit:
    """Fit the Stein 2019 model (Cmax, Tmax, foldx, α; FB and β) to sparse samples.

    Weighted least squares on ln(values) with the Stein 2019 Table 1 population prior (a
    maximum a posteriori estimate), intervals by randomised-MAP parametric bootstrap and the
    RCV non-expansion rule: see the module docstring. With a prior, FB and β are estimated with
    their Table 1 lognormal priors too (``terminal_phase="population"``: all six random effects
    of the paper, the empirical-Bayes estimate of a Stein patient); ``"fixed"`` holds them.

    Parameters
    ----------
    time_d : array_like of float, shape (N,)
        Sample times, days after the infusion (≥ 0), any order.
    values : array_like of float, shape (N,)
        Levels > 0 in ``value_unit`` (transgene copies/µg genomic DNA for the full prior).
    sd, relative_sd, log_sd : float or array_like of shape (N,), optional
        Measurement noise, exactly one: absolute SD in ``value_unit``, relative SD (CV, e.g.
        0.2), or SD of ln(value) (Stein's population residual was 0.56).
    prior : {"stein2019", "stein2019_shape", "none"}, optional
        Population prior on ln Cmax, ln Tmax, ln foldx and ln α (Table 1 IIV);
        ``"stein2019_shape"`` leaves Cmax free (for values not in copies/µg); ``"none"`` is a
        pure least-squares fit. Default ``"stein2019"``.
    prior_sd_scale : float, optional
        Widen (> 1) or narrow the prior SDs. Default 1.
    terminal_phase : {"population", "fixed"}, optional
        ``"population"``: FB and β are fitted with their Table 1 lognormal priors (median
        ``fb``, ``beta_per_day``; ω² 0.8 and 0.86), so that a patient whose memory phase differs
        from the typical one does not bend the fitted α, Tmax and Cmax. ``"fixed"``: both held
        at ``fb`` and ``beta_per_day``. Default: ``"population"`` with a prior, ``"fixed"`` with
        ``prior="none"`` (without a prior the memory phase is not identifiable from samples up
        to day 28).
    fb, beta_per_day : float, optional
        Median of the prior (``"population"``) or held value (``"fixed"``) of the memory
        fraction and rate (1/day); default Stein 2019 Table 1 (0.0079 and 0.0032/day).
    value_unit : str, optional
        Unit of ``values``, carried into the result. Default ``"copies/ug"``.
    n_bootstrap : int, optional
        Bootstrap replicates for the intervals (0: point estimates only, intervals NaN).
        Default 200.
    seed : int, optional
        Seed of the replicates. Default 0.

    Returns
    -------
    CellularKineticsFit
        ``model == "stein2019"``; ``fixed_parameters`` is ``()`` for ``"population"`` and
        ``("fb", "beta_per_day")`` for ``"fixed"``.

    Raises
    ------
    InputError
        For times < 0, values ≤ 0, noise not stated exactly once, too few samples (3 with a
        prior, 5 without; at 3 or more different times), an unknown prior or terminal phase,
        or ``terminal_phase="population"`` without a prior.

    Examples
    --------
    >>> from immunopet.kinetics import Stein2019CellularKinetics
    >>> days = [1.0, 4.0, 7.0, 10.0, 14.0, 28.0]
    >>> levels = Stein2019CellularKinetics.published().concentration(days)
    >>> fit = fit_stein2019(days, levels, relative_sd=0.2, n_bootstrap=50)
    >>> round(fit.tmax_d.value, 2), round(fit.cmax.value, -2), fit.non_expansion
    (9.3, 24000.0, False)
    >>> fit.tmax_d.ci_low < 9.3 < fit.tmax_d.ci_high
    True

    """
    phase = terminal_phase
    if phase is None:
        phase = "fixed" if prior == "none" else "population"
    if phase not in get_args(SteinTerminalPhase):
        raise InputError(
            f"terminal_phase must be 'population' or 'fixed', got {terminal_phase!r}",
            field="terminal_phase",
        )
    if phase == "population" and prior == "none":
        raise InputError(
            "terminal_phase='population' draws FB and beta from the Stein 2019 population: it "
            "needs a prior",
            field="terminal_phase",
            hint="use prior='stein2019' or 'stein2019_shape', or terminal_phase='fixed'",
        )
    fb_value, beta_value = _fixed_terminal(fb, beta_per_day)
    population = phase == "population"
    if population and (fb_value <= 0.0 or beta_value <= 0.0):
        raise InputError(
            "the lognormal population prior needs fb > 0 and beta_per_day > 0, got "
            f"{fb_value!r} and {beta_value!r}",
            field="fb" if fb_value <= 0.0 else "beta_per_day",
            hint="use terminal_phase='fixed' to hold a zero value",
        )
    return _fit(
        model="stein2019",
        time_d=time_d,
        values=values,
        sd=sd,
        relative_sd=relative_sd,
        log_sd=log_sd,
        prior=prior,
        prior_sd_scale=prior_sd_scale,
        free_terminal=population,
        fb=fb_value,
        beta_per_day=beta_value,
        value_unit=value_unit,
        n_bootstrap=n_bootstrap,
        seed=seed,
        terminal_prior=population,
    )


def fit_expansion_biexponential(
    time_d: ArrayLike,
    values: ArrayLike,
    *,
    sd: ArrayLike | None = None,
    relative_sd: ArrayLike | None = None,
    log_sd: ArrayLike | None = None,
    terminal_phase: TerminalPhase = "fixed",
    fb: float | None = None,
    beta_per_day: float | None = None,
    value_unit: str = "",
    n_bootstrap: int = 200,
    seed: int = 0,
) -> CellularKineticsFit:
    """Fallback: exponential expansion to Tmax, then biexponential decline, with no prior.

    The same curve as :func:`fit_stein2019` fitted by plain weighted least squares on the log
    scale, using no population information, so it suits any unit (image-derived cells per
    site, cells/µL) and any product. With long follow-up (``terminal_phase="fit"``, ≥ 7
    samples) it also fits the persistence phase FB and β, which the sparse Stein fit holds
    fixed.

    Parameters
    ----------
    time_d : array_like of float, shape (N,)
        Sample times, days after the infusion (≥ 0), any order.
    values : array_like of float, shape (N,)
        Levels > 0 in ``value_unit``.
    sd, relative_sd, log_sd : float or array_like of shape (N,), optional
        Measurement noise, exactly one (see :func:`fit_stein2019`).
    terminal_phase : {"fixed", "fit"}, optional
        Hold FB and β (``"fixed"``, default) or fit them (``"fit"``).
    fb, beta_per_day : float, optional
        Values held with ``terminal_phase="fixed"``; default Stein 2019 Table 1. Not accepted
        with ``"fit"``.
    value_unit : str, optional
        Unit of ``values``, carried into the result.
    n_bootstrap : int, optional
        Bootstrap replicates (0: none). Default 200.
    seed : int, optional
        Seed of the replicates. Default 0.

    Returns
    -------
    CellularKineticsFit
        ``model == "expansion_biexponential"``, ``prior == "none"``.

    Raises
    ------
    InputError
        As :func:`fit_stein2019`; needs ≥ 5 samples (≥ 7 with ``terminal_phase="fit"``).

    Examples
    --------
    >>> import numpy as np
    >>> days = np.array([0.5, 2.0, 5.0, 8.0, 12.0, 20.0])
    >>> cells = 1e6 * np.minimum(np.exp(0.9 * (days - 8.0)), np.exp(-0.2 * (days - 8.0)))
    >>> fit = fit_expansion_biexponential(
    ...     days, cells, relative_sd=0.1, fb=0.0, value_unit="cells", n_bootstrap=0
    ... )
    >>> round(fit.tmax_d.value, 3), round(fit.doubling_time_d.value, 3)
    (8.0, 0.77)

    """
    if terminal_phase not in get_args(TerminalPhase):
        raise InputError(
            f"terminal_phase must be 'fixed' or 'fit', got {terminal_phase!r}",
            field="terminal_phase",
        )
    free = terminal_phase == "fit"
    if free and (fb is not None or beta_per_day is not None):
        raise InputError(
            "fb and beta_per_day are held values; with terminal_phase='fit' they are fitted",
            field="terminal_phase",
            hint="leave out fb= and beta_per_day=, or use terminal_phase='fixed'",
        )
    fb_value, beta_value = _fixed_terminal(fb, beta_per_day)
    return _fit(
        model="expansion_biexponential",
        time_d=time_d,
        values=values,
        sd=sd,
        relative_sd=relative_sd,
        log_sd=log_sd,
        prior="none",
        prior_sd_scale=1.0,
        free_terminal=free,
        fb=fb_value,
        beta_per_day=beta_value,
        value_unit=value_unit,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
