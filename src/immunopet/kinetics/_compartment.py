"""One- and two-tissue compartment models fitted to sparse multi-day tissue curves.

Each model is a linear system driven by the plasma input, so its tissue curve is a sum of
exponentials convolved with Cp, computed in closed form by
:meth:`~immunopet.kinetics.PlasmaInput.convolve_exponential` (Gunn, Gunn & Cunningham 2001 [4]_)::

    C_PET(t) = v_B · Cb(t) + Σ_j B_j · ∫₀ᵗ Cp(τ)·exp(−λ_j (t − τ)) dτ

with ``Cb`` the whole blood (``Cp·(1 − Hct)``) and ``v_B`` the vascular fraction (mL of blood per
mL of tissue; the additive form of :class:`immunopet.tracers.TwoTissueVectorModel`). The models:

=========================================  ======================  ==========================
class                                      parameters              impulse response B_j, λ_j
=========================================  ======================  ==========================
:class:`Kety1951OneTissue`                 K1, k2                  K1 at k2
:class:`Sokoloff1977TwoTissueIrreversible` K1, k2, k3 (k4 = 0)     K_i at 0; K1 − K_i at k2+k3
:class:`Phelps1979TwoTissueReversible`     K1, k2, k3, k4          two exponentials α₁ < α₂
=========================================  ======================  ==========================

K1 in mL/g/s (1 g of tissue = 1 mL), rates in 1/s. The reversible + irreversible decomposition of
the vector model (a reversible pool V_T with exchange rate k21, trapping K_i with label loss
k_loss) has the impulse response ``V_T·k21·e^(−k21 t) + K_i·e^(−k_loss t)``: exactly a two-tissue
reversible model (α₁ = k_loss, α₂ = k21), and for k_loss = 0 exactly the irreversible one
(K1 = K_i + V_T·k21, k2 + k3 = k21), so recovery tests have an exact truth.

Fitting: ``scipy.optimize.least_squares`` (trust-region reflective) with bounds (default: every
parameter ≥ 0), started from the best of a grid of impulse-response rates spanning the sampling
(for each rate set the amplitudes are a non-negative linear least-squares problem). Standard
errors come from the Jacobian at the solution: ``(JᵀWJ)⁻¹`` with the stated SDs, scaled by the
residual variance without them.

Identifiability is reported in the result, not as Python warnings: a fit is marked not
identifiable when the points do not outnumber the free parameters, the Jacobian is rank
deficient, a parameter's relative standard error exceeds the limit of ``data/kinetic_models.toml``
or two parameters correlate beyond its limit. Sparse immuno-PET (3–5 points over a week) rarely
identifies more than two or three parameters: the notes say which combination the data fix.

References
----------
.. [1] Kety SS. The theory and applications of the exchange of inert gas at the lungs and
   tissues. Pharmacol Rev 1951;3:1-41 (RECALLED).
.. [2] Sokoloff L et al. The [14C]deoxyglucose method for the measurement of local cerebral
   glucose utilization. J Neurochem 1977;28:897-916 (RECALLED).
.. [3] Phelps ME, Huang SC, Hoffman EJ, Selin C, Sokoloff L, Kuhl DE. Tomographic measurement
   of local cerebral glucose metabolic rate in humans with (F-18)2-fluoro-2-deoxy-D-glucose:
   validation of method. Ann Neurol 1979;6:371-388 (RECALLED).
.. [4] Gunn RN, Gunn SR, Cunningham VJ. Positron emission tomography compartmental models.
   J Cereb Blood Flow Metab 2001;21:635-652 (RECALLED).

"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.kinetics._input import PlasmaInput

__all__ = [
    "BLOOD_FRACTION",
    "CompartmentFit",
    "CompartmentModel",
    "Kety1951OneTissue",
    "Phelps1979TwoTissueReversible",
    "Sokoloff1977TwoTissueIrreversible",
]

_TABLE: Final = "kinetic_models.toml"
#: Name of the vascular fraction parameter (mL of blood per mL of tissue).
BLOOD_FRACTION: Final = "blood_fraction"
K1: Final = "k1_ml_per_g_per_s"
K2: Final = "k2_per_s"
K3: Final = "k3_per_s"
K4: Final = "k4_per_s"
#: Rates of the starting grid per decade of the sampling span.
_GRID_RATES: Final = 7
#: Starting points refined by the non-linear fit (the best of the grid).
_STARTS: Final = 3
#: Smallest amplitude of a starting point, as a fraction of their sum.
_FLOOR: Final = 1.0e-3
#: Relative step of the finite differences for macro-parameter standard errors.
_RELATIVE_STEP: Final = 1.0e-6


@dataclass(frozen=True, eq=False)
class CompartmentFit:
    """Result of :meth:`CompartmentModel.fit`.

    Parameters
    ----------
    model : str
        Class name of the model.
    values : Mapping[str, float]
        Every parameter (fixed ones included), canonical units (K1 mL/g/s, rates 1/s,
        ``blood_fraction`` mL/mL).
    standard_errors : Mapping[str, float]
        Standard error of each free parameter (NaN where not defined); fixed ones are absent.
    free : tuple of str
        Names of the fitted parameters, in the order of :attr:`correlation`.
    correlation : ndarray of shape (n_free, n_free)
        Correlation matrix of the free parameters (NaN where undefined).
    macro : Mapping[str, float]
        Derived quantities (V_T in mL/g, K_i in mL/g/s, …) of the model.
    macro_standard_errors : Mapping[str, float]
        Their standard errors (delta method).
    fitted_bq_per_ml : ndarray of shape (n_times,)
        Model curve at the scan times.
    chi_square : float
        Σ((data − model)/SD)² with SDs; the residual sum of squares without.
    n_points : int
        Number of tissue values.
    dof : int
        n_points − n_free.
    identifiable : bool
        False when the data do not determine the free parameters (see :attr:`identifiability`).
    identifiability : tuple of str
        Why (too few points, rank deficiency, undetermined or inseparable parameters) and
        notes (parameters at a bound).
    converged : bool
        Whether the optimiser reported success.

    """

    model: str
    values: Mapping[str, float]
    standard_errors: Mapping[str, float]
    free: tuple[str, ...]
    correlation: NDArray[np.float64]
    macro: Mapping[str, float]
    macro_standard_errors: Mapping[str, float]
    fitted_bq_per_ml: NDArray[np.float64]
    chi_square: float
    n_points: int
    dof: int
    identifiable: bool
    identifiability: tuple[str, ...]
    converged: bool


def _validated_curve(
    times_s: ArrayLike, tissue: ArrayLike, sd: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
    times = np.asarray(times_s, dtype=np.float64)
    values = np.asarray(tissue, dtype=np.float64)
    if times.ndim != 1 or values.shape != times.shape or times.size < 1:
        raise InputError(
            f"times {times.shape} and tissue values {values.shape} must be 1-D of one length",
            field="tissue_bq_per_ml",
        )
    if not np.all(np.isfinite(times)) or np.any(times <= 0.0) or np.any(np.diff(times) <= 0.0):
        raise InputError(
            "scan times must be finite, > 0 s and strictly increasing", field="times_s"
        )
    if not np.all(np.isfinite(values)):
        raise InputError("tissue values must be finite", field="tissue_bq_per_ml")
    spread = None
    if sd is not None:
        spread = np.broadcast_to(np.asarray(sd, dtype=np.float64), values.shape).copy()
        if not np.all(np.isfinite(spread)) or np.any(spread <= 0.0):
            raise InputError("tissue SDs must be finite and > 0", field="tissue_sd_bq_per_ml")
    return times, values, spread


class CompartmentModel:
    """Base of the compartment models: impulse response, curve, fit and identifiability.

    Subclasses define :attr:`parameter_names` (without the blood fraction),
    :meth:`impulse_response`, :meth:`from_impulse_response` and :meth:`macro_parameters`.
    """

    parameter_names: ClassVar[tuple[str, ...]] = ()
    #: Number of exponentials of the impulse response.
    n_exponentials: ClassVar[int] = 1
    #: Whether the slowest exponential has rate 0 (irreversible trapping).
    trapping: ClassVar[bool] = False

    def impulse_response(
        self, values: Mapping[str, float]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Amplitudes B_j (mL/g/s) and rates λ_j (1/s) of the tissue impulse response."""
        raise NotImplementedError

    def from_impulse_response(
        self, amplitudes: NDArray[np.float64], rates: NDArray[np.float64]
    ) -> dict[str, float]:
        """Micro-parameters with this impulse response (inverse of :meth:`impulse_response`)."""
        raise NotImplementedError

    def macro_parameters(self, values: Mapping[str, float]) -> dict[str, float]:
        """Derived quantities of the model (V_T, K_i, …)."""
        raise NotImplementedError

    # -- curve -----------------------------------------------------------------------------
    def curve(
        self, plasma: PlasmaInput, times_s: ArrayLike, values: Mapping[str, float]
    ) -> NDArray[np.float64]:
        """Model tissue concentration at ``times_s`` (the plasma's unit), shape ``(n_times,)``.

        Parameters
        ----------
        plasma : PlasmaInput
            One plasma curve (not a batch).
        times_s : array_like of shape (n_times,)
            Seconds after injection.
        values : Mapping[str, float]
            Every parameter of :attr:`parameter_names`, and ``blood_fraction`` (0 if absent).

        """
        missing = [name for name in self.parameter_names if name not in values]
        if missing:
            raise InputError(f"missing parameters {missing}", field="values")
        times = np.asarray(times_s, dtype=np.float64)
        amplitudes, rates = self.impulse_response(values)
        total = np.zeros(times.shape)
        for amplitude, rate in zip(amplitudes, rates, strict=True):
            total = total + amplitude * plasma.convolve_exponential(float(rate), times)
        blood_fraction = float(values.get(BLOOD_FRACTION, 0.0))
        if blood_fraction != 0.0:
            total = total + blood_fraction * plasma.whole_blood(times)
        return total

    # -- fit -------------------------------------------------------------------------------
    def fit(
        self,
        plasma: PlasmaInput,
        times_s: ArrayLike,
        tissue_bq_per_ml: ArrayLike,
        tissue_sd_bq_per_ml: ArrayLike | None = None,
        *,
        blood_fraction: float | None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
    ) -> CompartmentFit:
        """Fit the model to one tissue curve.

        Parameters
        ----------
        plasma : PlasmaInput
            One plasma curve (decay-corrected like the tissue); needs the haematocrit when
            ``blood_fraction`` is not 0.
        times_s : array_like of shape (n,)
            Scan times, s after injection.
        tissue_bq_per_ml : array_like of shape (n,)
            Decay-corrected tissue concentrations (VOI means), the plasma's unit.
        tissue_sd_bq_per_ml : array_like, optional
            Their SDs: weights and absolute standard errors. Without them the fit is unweighted
            and the standard errors are scaled by the residual variance.
        blood_fraction : float or None
            Vascular fraction v_B, fixed at this value (e.g. 0.05), or None to fit it. Required:
            sparse data rarely determine it.
        bounds : Mapping[str, tuple of float], optional
            (lower, upper) per parameter in canonical units; default (0, inf) for all.

        Returns
        -------
        CompartmentFit

        Raises
        ------
        InputError
            On malformed input, bounds or a failed fit.

        """
        from scipy.optimize import least_squares  # lazy: 0.4 s import, only when fitting

        times, data, sd = _validated_curve(times_s, tissue_bq_per_ml, tissue_sd_bq_per_ml)
        if plasma.batch_shape:
            raise InputError("compartment models fit one plasma curve, not a batch", field="plasma")
        free = list(self.parameter_names)
        fixed: dict[str, float] = {}
        if blood_fraction is None:
            free.append(BLOOD_FRACTION)
        else:
            if not 0.0 <= float(blood_fraction) < 1.0:
                raise InputError(
                    f"blood_fraction must be in [0, 1), got {blood_fraction!r}",
                    field="blood_fraction",
                )
            fixed[BLOOD_FRACTION] = float(blood_fraction)
        lower, upper = self._bounds(free, bounds)
        blood = (
            plasma.whole_blood(times)
            if blood_fraction is None or fixed[BLOOD_FRACTION] != 0.0
            else np.zeros_like(times)
        )
        weights = 1.0 / sd if sd is not None else np.full_like(data, 1.0 / np.mean(np.abs(data)))
        starts = self._starts(plasma, times, data, weights, blood, fixed, free, lower, upper)

        def full(theta: NDArray[np.float64]) -> dict[str, float]:
            return {**fixed, **dict(zip(free, (float(v) for v in theta), strict=True))}

        best: Any = None
        best_scale = np.ones(len(free))
        for start in starts:
            scale = np.where(np.abs(start) > 0.0, np.abs(start), 1.0)

            def residual(
                z: NDArray[np.float64], scale: NDArray[np.float64] = scale
            ) -> NDArray[np.float64]:
                model = self.curve(plasma, times, full(z * scale))
                out: NDArray[np.float64] = (model - data) * weights
                return out

            solution: Any = least_squares(
                residual,
                np.clip(start / scale, lower / scale, upper / scale),
                bounds=(lower / scale, upper / scale),
                method="trf",
                x_scale=1.0,
                xtol=1e-12,
                ftol=1e-12,
                gtol=1e-12,
            )
            if best is None or solution.cost < best.cost:
                best, best_scale = solution, scale
        theta = best.x * best_scale
        values = full(theta)
        return self._result(
            plasma, times, data, sd, weights, values, free, theta, best, best_scale, lower, upper
        )

    def _bounds(
        self, free: list[str], bounds: Mapping[str, tuple[float, float]] | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        given = dict(bounds or {})
        unknown = sorted(set(given) - set(free))
        if unknown:
            raise InputError(
                f"bounds given for {unknown}, which are not free parameters of "
                f"{type(self).__name__}",
                field="bounds",
                hint=f"free parameters: {free}",
            )
        lower = np.array([float(given.get(name, (0.0, math.inf))[0]) for name in free])
        upper = np.array([float(given.get(name, (0.0, math.inf))[1]) for name in free])
        if np.any(~(lower < upper)) or np.any(lower < 0.0):
            raise InputError("every bound must satisfy 0 <= lower < upper", field="bounds")
        return lower, upper

    def _starts(
        self,
        plasma: PlasmaInput,
        times: NDArray[np.float64],
        data: NDArray[np.float64],
        weights: NDArray[np.float64],
        blood: NDArray[np.float64],
        fixed: Mapping[str, float],
        free: list[str],
        lower: NDArray[np.float64],
        upper: NDArray[np.float64],
    ) -> list[NDArray[np.float64]]:
        """Best starting points from a grid of impulse-response rates (amplitudes by NNLS)."""
        from scipy.optimize import nnls

        span = float(times[-1])
        first = float(times[0])
        decades = max(1.0, math.log10(span / first)) + 2.0
        grid = np.geomspace(0.1 / span, 10.0 / first, int(_GRID_RATES * decades))
        fitted_blood = BLOOD_FRACTION in free
        target = data - fixed.get(BLOOD_FRACTION, 0.0) * blood
        basis = {float(rate): plasma.convolve_exponential(float(rate), times) for rate in grid}
        if self.trapping:
            basis[0.0] = plasma.integral(times)
        n_free_rates = self.n_exponentials - (1 if self.trapping else 0)
        candidates: list[tuple[float, NDArray[np.float64]]] = []
        for combination in itertools.combinations(grid, n_free_rates):
            rates = np.array(([0.0] if self.trapping else []) + list(combination))
            columns = [basis[float(rate)] for rate in rates]
            if fitted_blood:
                columns.append(blood)
            design = np.stack(columns, axis=-1) * weights[:, None]
            amplitudes, norm = nnls(design, target * weights)
            exponential = amplitudes[: rates.size]
            total = float(exponential.sum())
            if total <= 0.0:
                continue
            # A zero amplitude would put the start on a bound where the mapping is singular.
            exponential = np.maximum(exponential, _FLOOR * total)
            values = self.from_impulse_response(exponential, rates)
            if fitted_blood:
                values[BLOOD_FRACTION] = float(amplitudes[-1])
            start = np.array([values[name] for name in free])
            if np.all(np.isfinite(start)):
                candidates.append((float(norm), np.clip(start, lower, upper)))
        candidates.sort(key=lambda item: item[0])
        starts = [start for _, start in candidates[:_STARTS]]
        if not starts:
            raise InputError(
                f"{type(self).__name__}: no starting point with positive amplitudes fits the curve",
                field="tissue_bq_per_ml",
                hint="check that tissue and plasma share units and decay correction",
            )
        return starts

    def _result(
        self,
        plasma: PlasmaInput,
        times: NDArray[np.float64],
        data: NDArray[np.float64],
        sd: NDArray[np.float64] | None,
        weights: NDArray[np.float64],
        values: dict[str, float],
        free: list[str],
        theta: NDArray[np.float64],
        solution: Any,
        scale: NDArray[np.float64],
        lower: NDArray[np.float64],
        upper: NDArray[np.float64],
    ) -> CompartmentFit:
        settings = read_toml(_TABLE)["identifiability"]
        n, p = data.size, len(free)
        dof = n - p
        fitted = self.curve(plasma, times, values)
        chi_square = float(np.sum(((fitted - data) * weights) ** 2))
        if sd is None:
            chi_square = float(np.sum((fitted - data) ** 2))
        jacobian = np.asarray(solution.jac, dtype=np.float64) / scale[None, :]
        singular = np.linalg.svd(np.asarray(solution.jac, dtype=np.float64), compute_uv=False)
        notes: list[str] = []
        identifiable = True
        if dof <= 0:
            identifiable = False
            notes.append(
                f"{n} points for {p} free parameters: the curve is interpolated, the parameters "
                "are not determined; fix parameters (blood_fraction, a rate) or add timepoints"
            )
        rank_deficient = singular.size == 0 or singular[-1] <= float(
            settings["rank_tolerance"]
        ) * max(singular[0], np.finfo(float).tiny)
        if rank_deficient and dof > 0:
            identifiable = False
            notes.append("the Jacobian is rank deficient: some parameter combination is not fixed")
        covariance = np.full((p, p), np.nan)
        if dof > 0 and not rank_deficient:
            normal_inverse = np.linalg.inv(jacobian.T @ jacobian)
            variance_scale = 1.0 if sd is not None else float(np.sum((fitted - data) ** 2)) / dof
            if sd is None:
                # Residuals were scaled by the constant weight: undo it.
                normal_inverse = normal_inverse * float(weights[0]) ** 2
            covariance = normal_inverse * variance_scale
        errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = covariance / np.outer(errors, errors)
        max_relative = float(settings["max_relative_standard_error"])
        max_correlation = float(settings["max_abs_correlation"])
        if np.all(np.isfinite(covariance)):
            for name, value, error in zip(free, theta, errors, strict=True):
                if not error <= max_relative * abs(value):
                    identifiable = False
                    relative = error / abs(value) if value != 0.0 else math.inf
                    notes.append(
                        f"{name} not determined: standard error {100 * relative:.0f} % of its "
                        f"value (limit {100 * max_relative:.0f} %)"
                    )
            for i, j in itertools.combinations(range(p), 2):
                if abs(correlation[i, j]) > max_correlation:
                    identifiable = False
                    notes.append(
                        f"{free[i]} and {free[j]} not separable: correlation "
                        f"{correlation[i, j]:+.3f} (limit {max_correlation})"
                    )
        for name, value, low, high in zip(free, theta, lower, upper, strict=True):
            if value <= low or value >= high:
                notes.append(f"{name} at its bound ({value:.3g})")
        macro = self.macro_parameters(values)
        macro_errors = self._macro_errors(values, free, theta, covariance)
        return CompartmentFit(
            model=type(self).__name__,
            values=MappingProxyType(dict(values)),
            standard_errors=MappingProxyType(
                dict(zip(free, (float(e) for e in errors), strict=True))
            ),
            free=tuple(free),
            correlation=correlation,
            macro=MappingProxyType(macro),
            macro_standard_errors=MappingProxyType(macro_errors),
            fitted_bq_per_ml=fitted,
            chi_square=chi_square,
            n_points=n,
            dof=dof,
            identifiable=identifiable,
            identifiability=tuple(notes),
            converged=bool(solution.success),
        )

    def _macro_errors(
        self,
        values: Mapping[str, float],
        free: list[str],
        theta: NDArray[np.float64],
        covariance: NDArray[np.float64],
    ) -> dict[str, float]:
        base = self.macro_parameters(values)
        gradient = np.zeros((len(base), len(free)))
        for k, name in enumerate(free):
            step = _RELATIVE_STEP * max(abs(float(theta[k])), np.finfo(float).eps)
            up = dict(values)
            up[name] = float(theta[k]) + step
            down = dict(values)
            down[name] = max(float(theta[k]) - step, 0.0)
            width = up[name] - down[name]
            plus, minus = self.macro_parameters(up), self.macro_parameters(down)
            gradient[:, k] = [(plus[m] - minus[m]) / width for m in base]
        variance = np.einsum("ij,jk,ik->i", gradient, covariance, gradient)
        return {
            m: float(np.sqrt(v)) if v >= 0.0 else math.nan
            for m, v in zip(base, variance, strict=True)
        }


@dataclass(frozen=True)
class Kety1951OneTissue(CompartmentModel):
    """One-tissue (reversible) compartment model, Kety 1951: dC/dt = K1·Cp − k2·C.

    Impulse response K1·e^(−k2 t); distribution volume V_T = K1/k2 (mL/g).

    Examples
    --------
    >>> model = Kety1951OneTissue()
    >>> vt = model.macro_parameters({"k1_ml_per_g_per_s": 2e-6, "k2_per_s": 1e-5})["vt_ml_per_g"]
    >>> round(vt, 12)
    0.2

    """

    parameter_names: ClassVar[tuple[str, ...]] = (K1, K2)
    n_exponentials: ClassVar[int] = 1
    trapping: ClassVar[bool] = False

    def impulse_response(
        self, values: Mapping[str, float]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(K1,) at rate (k2,)."""
        return np.array([values[K1]]), np.array([values[K2]])

    def from_impulse_response(
        self, amplitudes: NDArray[np.float64], rates: NDArray[np.float64]
    ) -> dict[str, float]:
        """K1 = B, k2 = λ."""
        return {K1: float(amplitudes[0]), K2: float(rates[0])}

    def macro_parameters(self, values: Mapping[str, float]) -> dict[str, float]:
        """``vt_ml_per_g`` = K1/k2."""
        k2 = values[K2]
        return {"vt_ml_per_g": values[K1] / k2 if k2 > 0.0 else math.inf}


@dataclass(frozen=True)
class Sokoloff1977TwoTissueIrreversible(CompartmentModel):
    """Two-tissue irreversible model (k4 = 0), Sokoloff et al. 1977.

    dC1/dt = K1·Cp − (k2 + k3)·C1, dC2/dt = k3·C1. Impulse response
    K_i + (K1 − K_i)·e^(−(k2+k3) t) with the net influx rate K_i = K1·k3/(k2 + k3), the slope of
    the Patlak plot.

    Examples
    --------
    >>> model = Sokoloff1977TwoTissueIrreversible()
    >>> values = {"k1_ml_per_g_per_s": 3e-6, "k2_per_s": 2e-5, "k3_per_s": 1e-5}
    >>> round(model.macro_parameters(values)["ki_ml_per_g_per_s"] * 1e6, 9)
    1.0

    """

    parameter_names: ClassVar[tuple[str, ...]] = (K1, K2, K3)
    n_exponentials: ClassVar[int] = 2
    trapping: ClassVar[bool] = True

    def impulse_response(
        self, values: Mapping[str, float]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(K_i, K1 − K_i) at rates (0, k2 + k3)."""
        k1, k2, k3 = values[K1], values[K2], values[K3]
        total = k2 + k3
        ki = k1 * k3 / total if total > 0.0 else 0.0
        return np.array([ki, k1 - ki]), np.array([0.0, total])

    def from_impulse_response(
        self, amplitudes: NDArray[np.float64], rates: NDArray[np.float64]
    ) -> dict[str, float]:
        """K1 = B₀ + B₁, k3 = B₀·λ₁/K1, k2 = λ₁ − k3 (λ₀ = 0)."""
        ki, reversible = float(amplitudes[0]), float(amplitudes[1])
        total = float(rates[1])
        k1 = ki + reversible
        k3 = ki * total / k1
        return {K1: k1, K2: total - k3, K3: k3}

    def macro_parameters(self, values: Mapping[str, float]) -> dict[str, float]:
        """``ki_ml_per_g_per_s`` = K1·k3/(k2 + k3)."""
        total = values[K2] + values[K3]
        return {"ki_ml_per_g_per_s": values[K1] * values[K3] / total if total > 0.0 else 0.0}


@dataclass(frozen=True)
class Phelps1979TwoTissueReversible(CompartmentModel):
    """Two-tissue reversible model (with k4), Phelps et al. 1979.

    dC1/dt = K1·Cp − (k2 + k3)·C1 + k4·C2, dC2/dt = k3·C1 − k4·C2. Impulse response
    ``K1/(α₂ − α₁)·[(k3 + k4 − α₁)·e^(−α₁ t) + (α₂ − k3 − k4)·e^(−α₂ t)]`` with
    ``α₁,₂ = (k2 + k3 + k4 ∓ √((k2 + k3 + k4)² − 4·k2·k4))/2``. V_T = K1/k2·(1 + k3/k4).

    Examples
    --------
    >>> model = Phelps1979TwoTissueReversible()
    >>> values = {"k1_ml_per_g_per_s": 3e-6, "k2_per_s": 2e-5, "k3_per_s": 1e-5, "k4_per_s": 5e-6}
    >>> b, rates = model.impulse_response(values)
    >>> back = model.from_impulse_response(b, rates)
    >>> all(abs(back[k] / v - 1) < 1e-9 for k, v in values.items())
    True

    """

    parameter_names: ClassVar[tuple[str, ...]] = (K1, K2, K3, K4)
    n_exponentials: ClassVar[int] = 2
    trapping: ClassVar[bool] = False

    def impulse_response(
        self, values: Mapping[str, float]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Amplitudes and rates (α₁ ≤ α₂) of the two exponentials."""
        k1, k2, k3, k4 = values[K1], values[K2], values[K3], values[K4]
        total = k2 + k3 + k4
        root = math.sqrt(max(total * total - 4.0 * k2 * k4, 0.0))
        alpha1, alpha2 = 0.5 * (total - root), 0.5 * (total + root)
        if alpha2 - alpha1 <= 0.0:
            return np.array([k1, 0.0]), np.array([alpha1, alpha2])
        b1 = k1 * (k3 + k4 - alpha1) / (alpha2 - alpha1)
        return np.array([b1, k1 - b1]), np.array([alpha1, alpha2])

    def from_impulse_response(
        self, amplitudes: NDArray[np.float64], rates: NDArray[np.float64]
    ) -> dict[str, float]:
        """K1 = B₁ + B₂; k3 + k4 = α₁ + B₁(α₂ − α₁)/K1; k2 = α₁ + α₂ − (k3 + k4); k4 = α₁α₂/k2."""
        order = np.argsort(rates)
        b1, b2 = (float(v) for v in np.asarray(amplitudes)[order])
        alpha1, alpha2 = (float(v) for v in np.asarray(rates)[order])
        k1 = b1 + b2
        k34 = alpha1 + b1 * (alpha2 - alpha1) / k1
        k2 = alpha1 + alpha2 - k34
        k4 = alpha1 * alpha2 / k2 if k2 > 0.0 else 0.0
        return {K1: k1, K2: k2, K3: k34 - k4, K4: k4}

    def macro_parameters(self, values: Mapping[str, float]) -> dict[str, float]:
        """``vt_ml_per_g`` = K1/k2·(1 + k3/k4); ``influx_ml_per_g_per_s`` = K1·k3/(k2 + k3)."""
        k1, k2, k3, k4 = values[K1], values[K2], values[K3], values[K4]
        vt = k1 / k2 * (1.0 + k3 / k4) if k2 > 0.0 and k4 > 0.0 else math.inf
        influx = k1 * k3 / (k2 + k3) if k2 + k3 > 0.0 else 0.0
        return {"vt_ml_per_g": vt, "influx_ml_per_g_per_s": influx}
