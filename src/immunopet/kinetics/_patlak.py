"""Patlak graphical analysis of irreversible uptake from a few scans days apart.

Patlak, Blasberg & Fenstermacher 1983 [1]_: when a tissue holds a reversible pool in equilibrium
with plasma and an irreversible pool fed at rate K_i, its concentration divided by the plasma
concentration is a straight line in "normalised time"::

    C_T(t)/Cp(t) = K_i · ∫₀ᵗ Cp(τ) dτ / Cp(t) + V₀

The slope K_i (mL of plasma cleared per g of tissue per s; 1 g of tissue taken as 1 mL, so
concentrations in Bq/mL) is the net influx rate, the intercept V₀ (mL/g) the distribution volume
of the reversible pool plus the vascular blood (``v_B·Cb/Cp``). Jauw et al. 2019 [2]_ applied it
to ⁸⁹Zr-labelled antibodies with serum samples and PET on a few days: K_i separates target
engagement (irreversible: bound, internalised, residualised ⁸⁹Zr) from antibody that is only
present (reversible: plasma and interstitial). Literature units: µL/g/h (Jauw), mL/g/min (FDG);
see :func:`ki_in_unit`.

Loss of trapped label. If trapped label leaves the tissue at rate k_loss (catabolites of
non-residualising labels, slow efflux of residualised metals), the classic plot bends down and
K_i is underestimated. Patlak & Blasberg 1985 [3]_ generalised the plot for such a loss: with
``∫₀ᵗ Cp(τ)·exp(−k_loss·(t − τ)) dτ`` in place of ``∫₀ᵗ Cp`` the plot is straight again, with the
same slope K_i. Give ``loss_rate_per_s`` when k_loss is known (default 0: the 1983 plot). For the
IgG tumour of :class:`immunopet.tracers.TwoTissueVectorModel` (residualising label, loss T½
300 h; blood-pool input with a 1-h plasma sample) the classic plot gives K_i 14.5 % low on days
1, 3, 6 and 25.5 % low on days 3, 5, 7, with r ≥ 0.997: the r > 0.9 check of Jauw et al. does
not reveal it. With the loss rate given the bias is +7.2 % on days 1, 3, 6 (the reversible pool
is not yet in equilibrium on day 1) and +1.4 % on days 3, 5, 7; a loss half-life stated as
200 h or 450 h instead of 300 h gives +18 % or −8.5 % (``tests/kinetics/test_patlak.py``).

Uncertainty. With the SD of each tissue value and of each plasma sample
(:class:`~immunopet.kinetics.PlasmaInput`), the fit is generalised least squares with the
covariance of the Patlak residuals propagated to first order: tissue noise enters through
``1/Cp(t_i)``, each plasma sample through both coordinates of every point (∂y/∂p − K_i·∂x/∂p,
central differences of the closed-form input). Standard errors are then those of known
noise (normal intervals), and χ² tests the fit. Without SDs the fit is ordinary least squares with
standard errors from the scatter (Student t with n − 2 degrees of freedom; none from 2 points).

References
----------
.. [1] Patlak CS, Blasberg RG, Fenstermacher JD. Graphical evaluation of blood-to-brain transfer
   constants from multiple-time uptake data. J Cereb Blood Flow Metab 1983;3:1-7.
.. [2] Jauw YWS et al. 89Zr-immuno-PET: toward a noninvasive clinical tool to measure target
   engagement of therapeutic antibodies in vivo. J Nucl Med 2019;60:1825-1832. READ (thesis
   reproduction, p. 186): Patlak linearisation per tissue, slope K_i and offset V_T of a linear
   fit to the last three time points, r > 0.9 in 71/80 fits. RECALLED: serum samples drawn at
   each scan (days 0-7).
.. [3] Patlak CS, Blasberg RG. Graphical evaluation of blood-to-brain transfer constants from
   multiple-time uptake data. Generalizations. J Cereb Blood Flow Metab 1985;5:584-590
   (RECALLED).
.. [4] Wijngaarden JE et al. Optimal imaging time points considering accuracy and precision of
   Patlak linearization for 89Zr-immuno-PET: a simulation study. EJNMMI Res 2022;12,
   doi:10.1186/s13550-022-00927-6 (READ abstract: time points 24-192 h, noise 5-15 %,
   1000 repetitions; "K_i is always underestimated").

"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.kinetics._input import PlasmaInput
from immunopet.units import S_PER_DAY, S_PER_HOUR, S_PER_MINUTE

__all__ = [
    "KiUnit",
    "Patlak1983",
    "PatlakFit",
    "PatlakMaps",
    "ki_from_unit",
    "ki_in_unit",
]

_TABLE: Final = "kinetic_models.toml"
#: Microlitres per millilitre (Jauw et al. report K_i in µL/g/h).
_UL_PER_ML: Final = 1000.0
#: Relative step of the central differences with respect to each plasma sample.
_RELATIVE_STEP: Final = 1.0e-4
#: Reweighting passes of the generalised least squares (the covariance depends on K_i).
_GLS_PASSES: Final = 3
#: Voxels per chunk of the voxelwise fit (4 float32 work buffers of this size stay in cache).
_CHUNK_VOXELS: Final = 1 << 16
_TWO_PARAMETERS: Final = 2

#: Units K_i can be expressed in.
KiUnit = Literal["mL/g/s", "mL/g/min", "mL/g/h", "uL/g/h", "mL/g/d"]
_PER_ML_PER_G_PER_S: Final[dict[str, float]] = {
    "mL/g/s": 1.0,
    "mL/g/min": S_PER_MINUTE,
    "mL/g/h": S_PER_HOUR,
    "uL/g/h": S_PER_HOUR * _UL_PER_ML,
    "mL/g/d": S_PER_DAY,
}


def _factor(unit: str) -> float:
    if unit not in _PER_ML_PER_G_PER_S:
        raise InputError(
            f"unknown K_i unit {unit!r}", field="unit", hint=f"choose one of {get_args(KiUnit)}"
        )
    return _PER_ML_PER_G_PER_S[unit]


def ki_in_unit(ki_ml_per_g_per_s: ArrayLike, unit: KiUnit) -> NDArray[np.float64]:
    """Express K_i (canonical mL/g/s) in ``unit``.

    Examples
    --------
    >>> round(float(ki_in_unit(1.0e-6, "uL/g/h")), 12)  # 1e-6 mL/g/s = 3.6 µL/g/h
    3.6

    """
    result: NDArray[np.float64] = np.asarray(ki_ml_per_g_per_s, dtype=np.float64) * _factor(unit)
    return result


def ki_from_unit(value: ArrayLike, unit: KiUnit) -> NDArray[np.float64]:
    """Convert K_i from ``unit`` to the canonical mL/g/s.

    Examples
    --------
    >>> float(ki_from_unit(0.0036, "mL/g/h"))
    1e-06

    """
    result: NDArray[np.float64] = np.asarray(value, dtype=np.float64) / _factor(unit)
    return result


SeMethod = Literal["propagated", "residual", "none"]


@dataclass(frozen=True, eq=False)
class PatlakFit:
    """Result of :meth:`Patlak1983.fit` for one curve or a batch of curves.

    Arrays have the batch shape ``B`` of the input (``()`` for one curve).

    Parameters
    ----------
    ki_ml_per_g_per_s : ndarray of shape B
        Slope K_i, mL/g/s.
    intercept_ml_per_g : ndarray of shape B
        Intercept V₀, mL/g.
    ki_se_ml_per_g_per_s, intercept_se_ml_per_g : ndarray of shape B
        Standard errors (NaN when none can be given).
    covariance : ndarray of shape B + (2, 2)
        Covariance of (K_i, V₀).
    pearson_r : ndarray of shape B
        Correlation of the Patlak plot (NaN for 2 points).
    chi_square : ndarray of shape B
        Weighted residual sum of squares with the stated SDs (NaN without SDs).
    dof : int
        Degrees of freedom, n_points − 2.
    se_method : {"propagated", "residual", "none"}
        Where the standard errors come from (module docstring).
    normalised_time_s : ndarray of shape B + (n,)
        Patlak abscissa ∫Cp·e^(−k_loss…)/Cp at each time, s.
    ratio_ml_per_g : ndarray of shape B + (n,)
        Patlak ordinate C_T/Cp, mL/g.
    loss_rate_per_s : float
        k_loss used (0: the 1983 plot).
    warnings : tuple of str
        What a reader must know (too few points, r below the Jauw criterion, negative K_i,
        scatter beyond the stated SDs), with counts for batches.

    """

    ki_ml_per_g_per_s: NDArray[np.float64]
    intercept_ml_per_g: NDArray[np.float64]
    ki_se_ml_per_g_per_s: NDArray[np.float64]
    intercept_se_ml_per_g: NDArray[np.float64]
    covariance: NDArray[np.float64]
    pearson_r: NDArray[np.float64]
    chi_square: NDArray[np.float64]
    dof: int
    se_method: SeMethod
    normalised_time_s: NDArray[np.float64]
    ratio_ml_per_g: NDArray[np.float64]
    loss_rate_per_s: float
    warnings: tuple[str, ...]

    def ki_in(self, unit: KiUnit) -> NDArray[np.float64]:
        """K_i in ``unit`` (e.g. ``"uL/g/h"`` as Jauw et al. report it)."""
        return ki_in_unit(self.ki_ml_per_g_per_s, unit)

    def _quantile(self, level: float) -> float:
        if not 0.0 < level < 1.0:
            raise InputError(f"confidence level must be in (0, 1), got {level!r}", field="level")
        upper = 0.5 + 0.5 * level
        from scipy import special  # lazy: imported when needed: 0.1 s

        if self.se_method == "propagated":
            return float(special.ndtri(upper))
        if self.se_method == "residual":
            return float(special.stdtrit(self.dof, upper))
        return float("nan")

    def ki_interval(self, level: float = 0.95) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Two-sided confidence interval of K_i, mL/g/s: (lower, upper), each of shape B.

        Normal quantiles for propagated (known) SDs, Student t with :attr:`dof` degrees of
        freedom for standard errors from the scatter; NaN when there are none.
        """
        half = self._quantile(level) * self.ki_se_ml_per_g_per_s
        return self.ki_ml_per_g_per_s - half, self.ki_ml_per_g_per_s + half


@dataclass(frozen=True, eq=False)
class PatlakMaps:
    """Voxelwise Patlak result of :meth:`Patlak1983.fit_voxels`; arrays of the spatial shape.

    Parameters
    ----------
    ki_ml_per_g_per_s, intercept_ml_per_g : ndarray
        Slope K_i (mL/g/s) and intercept V₀ (mL/g) per voxel (NaN outside the mask).
    ki_se_ml_per_g_per_s, intercept_se_ml_per_g : ndarray
        Standard errors from each voxel's scatter about its line (NaN when dof = 0).
    times_s : ndarray of shape (n_times,)
        Scan times used.
    dof : int
        Degrees of freedom per voxel, n_times − 2.
    loss_rate_per_s : float
        k_loss used.
    warnings : tuple of str
        E.g. no standard errors from 2 timepoints.

    """

    ki_ml_per_g_per_s: NDArray[np.floating[Any]]
    intercept_ml_per_g: NDArray[np.floating[Any]]
    ki_se_ml_per_g_per_s: NDArray[np.floating[Any]]
    intercept_se_ml_per_g: NDArray[np.floating[Any]]
    times_s: NDArray[np.float64]
    dof: int
    loss_rate_per_s: float
    warnings: tuple[str, ...]


def _swap(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.swapaxes(matrix, -1, -2)


def _gls(
    x: NDArray[np.float64], y: NDArray[np.float64], sigma: NDArray[np.float64] | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(beta of shape (..., 2), (X'Σ⁻¹X)⁻¹ of shape (..., 2, 2)) of the line y = K_i·x + V₀."""
    design: NDArray[np.float64] = np.stack([x, np.ones_like(x)], axis=-1)
    weighted = design if sigma is None else np.asarray(np.linalg.solve(sigma, design), np.float64)
    try:
        inverse = np.asarray(np.linalg.inv(_swap(design) @ weighted), dtype=np.float64)
    except np.linalg.LinAlgError:
        raise InputError(
            "the Patlak abscissae do not spread: the line cannot be fitted",
            field="times_s",
            hint="use timepoints on different days",
        ) from None
    beta: NDArray[np.float64] = (inverse @ (_swap(weighted) @ y[..., None]))[..., 0]
    return beta, inverse


def _validated_times(times_s: ArrayLike) -> NDArray[np.float64]:
    times = np.asarray(times_s, dtype=np.float64)
    if times.ndim != 1 or times.size < _TWO_PARAMETERS:
        raise InputError(
            f"Patlak needs a 1-D array of >= 2 scan times, got shape {times.shape}",
            field="times_s",
        )
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0.0) or times[0] <= 0.0:
        raise InputError(
            "scan times must be finite, > 0 s after injection and strictly increasing",
            field="times_s",
        )
    return times


def _count(condition: NDArray[np.bool_], message: str) -> list[str]:
    hits = int(np.count_nonzero(condition))
    if hits == 0:
        return []
    total = condition.size
    return [message if total == 1 else f"{message} ({hits} of {total} curves)"]


@dataclass(frozen=True)
class Patlak1983:
    """Patlak plot (Patlak, Blasberg & Fenstermacher 1983) on sparse multi-day timepoints.

    Parameters
    ----------
    plasma : PlasmaInput
        The plasma input (samples, interpolant, SDs). Decay-corrected like the tissue values.
    loss_rate_per_s : float, optional
        Loss rate of trapped label k_loss, 1/s, for the generalised plot of Patlak & Blasberg
        1985; 0 (default) is the 1983 plot.

    Examples
    --------
    A tissue that traps 2 µL/g/h of plasma activity and holds 0.1 mL/g reversibly, plasma
    falling with a 100 h half-life (exact for the log-linear input):

    >>> import numpy as np
    >>> h = 3600.0
    >>> rate = np.log(2) / (100 * h)
    >>> t = np.array([24.0, 72.0, 144.0]) * h
    >>> cp = PlasmaInput.from_plasma([0.0, *t], 50.0 * np.exp(-rate * np.array([0.0, *t])))
    >>> ki = float(ki_from_unit(2.0, "uL/g/h"))
    >>> tissue = ki * 50.0 * (1 - np.exp(-rate * t)) / rate + 0.1 * cp.concentration(t)
    >>> fit = Patlak1983(cp).fit(t, tissue)
    >>> round(float(fit.ki_in("uL/g/h")), 6), round(float(fit.intercept_ml_per_g), 6)
    (2.0, 0.1)

    """

    plasma: PlasmaInput
    loss_rate_per_s: float = 0.0

    def __post_init__(self) -> None:
        rate = float(self.loss_rate_per_s)
        if not np.isfinite(rate) or rate < 0.0:
            raise InputError(
                f"loss_rate_per_s must be finite and >= 0, got {self.loss_rate_per_s!r}",
                field="loss_rate_per_s",
            )

    def _abscissa_and_inverse(
        self, plasma: PlasmaInput, times: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        inverse_cp = 1.0 / plasma.concentration(times)
        return plasma.convolve_exponential(self.loss_rate_per_s, times) * inverse_cp, inverse_cp

    def coordinates(
        self, times_s: ArrayLike, tissue_bq_per_ml: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Patlak plot coordinates (x in s, y in mL/g), broadcast to shape ``(..., n_times)``.

        Parameters
        ----------
        times_s : array_like of shape (n_times,)
            Scan times, s after injection (≤ the last plasma sample).
        tissue_bq_per_ml : array_like of shape (..., n_times)
            Decay-corrected tissue concentrations, the plasma's unit.

        """
        times = _validated_times(times_s)
        tissue = np.asarray(tissue_bq_per_ml, dtype=np.float64)
        if tissue.ndim == 0 or tissue.shape[-1] != times.size:
            raise InputError(
                f"tissue values have shape {tissue.shape}; expected (..., {times.size})",
                field="tissue_bq_per_ml",
            )
        x, inverse_cp = self._abscissa_and_inverse(self.plasma, times)
        y = tissue * inverse_cp
        return np.broadcast_to(x, y.shape), y

    def _plasma_jacobians(
        self, times: NDArray[np.float64], tissue: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """∂x/∂p and ∂y/∂p by central differences, each of shape (..., n_times, n_samples)."""
        values = self.plasma.plasma_bq_per_ml
        dx, dy = [], []
        for k in range(values.shape[-1]):
            step = _RELATIVE_STEP * values[..., k]
            shifted = []
            for sign in (1.0, -1.0):
                perturbed = values.copy()
                perturbed[..., k] += sign * step
                x, inverse_cp = self._abscissa_and_inverse(
                    self.plasma.with_values(perturbed), times
                )
                shifted.append((x, tissue * inverse_cp))
            (x_up, y_up), (x_down, y_down) = shifted
            dx.append((x_up - x_down) / (2.0 * step[..., None]))
            dy.append((y_up - y_down) / (2.0 * step[..., None]))
        return np.stack(dx, axis=-1), np.stack(dy, axis=-1)

    def fit(
        self,
        times_s: ArrayLike,
        tissue_bq_per_ml: ArrayLike,
        tissue_sd_bq_per_ml: ArrayLike | None = None,
    ) -> PatlakFit:
        """Fit the Patlak line to one tissue curve or a batch of curves.

        Parameters
        ----------
        times_s : array_like of shape (n_times,)
            Scan times, s after injection (all points are used: pass only those after the
            reversible pool has equilibrated, e.g. from day 1 on for IgG).
        tissue_bq_per_ml : array_like of shape (..., n_times)
            Decay-corrected tissue concentrations (VOI means), the plasma's unit.
        tissue_sd_bq_per_ml : array_like, optional
            SD of each tissue value (broadcast). With it (and the plasma SDs, if any) the
            standard errors are propagated; without, they come from the scatter.

        Returns
        -------
        PatlakFit

        Raises
        ------
        InputError
            On malformed times or values, or times outside the plasma samples.

        """
        from scipy import special  # lazy: imported when needed: 0.1 s

        times = _validated_times(times_s)
        x, y = self.coordinates(times, tissue_bq_per_ml)
        tissue = np.asarray(tissue_bq_per_ml, dtype=np.float64)
        n = times.size
        dof = n - _TWO_PARAMETERS
        settings = read_toml(_TABLE)
        messages: list[str] = []
        beta, unscaled = _gls(x, y, None)
        chi_square = np.full(beta.shape[:-1], np.nan)
        se_method: SeMethod
        if tissue_sd_bq_per_ml is None:
            if self.plasma.sd_bq_per_ml is not None:
                messages.append(
                    "plasma SDs were given without tissue SDs: standard errors come from the "
                    "scatter of the points, not from the stated SDs"
                )
            residual = y - beta[..., :1] * x - beta[..., 1:]
            if dof > 0:
                scale = np.sum(residual**2, axis=-1) / dof
                covariance = unscaled * scale[..., None, None]
                se_method = "residual"
            else:
                covariance = np.full_like(unscaled, np.nan)
                se_method = "none"
                messages.append(
                    "2 timepoints: the line passes through both, so the scatter gives no "
                    "standard error; give the SDs of the values to propagate them"
                )
        else:
            sd = np.broadcast_to(np.asarray(tissue_sd_bq_per_ml, dtype=np.float64), tissue.shape)
            if not np.all(np.isfinite(sd)) or np.any(sd <= 0.0):
                raise InputError("tissue SDs must be finite and > 0", field="tissue_sd_bq_per_ml")
            _, inverse_cp = self._abscissa_and_inverse(self.plasma, times)
            tissue_part = np.zeros((*y.shape, n))
            diagonal = np.arange(n)
            tissue_part[..., diagonal, diagonal] = (sd * inverse_cp) ** 2
            plasma_sd = self.plasma.sd_bq_per_ml
            jacobians = None if plasma_sd is None else self._plasma_jacobians(times, tissue)
            for _ in range(_GLS_PASSES):
                sigma = tissue_part
                if jacobians is not None and plasma_sd is not None:
                    dx, dy = jacobians
                    j = dy - beta[..., 0, None, None] * dx
                    sigma = sigma + (j * (plasma_sd**2)[..., None, :]) @ _swap(j)
                beta, covariance = _gls(x, y, sigma)
            residual = y - beta[..., :1] * x - beta[..., 1:]
            chi_square = (residual[..., None, :] @ np.linalg.solve(sigma, residual[..., None]))[
                ..., 0, 0
            ]
            se_method = "propagated"
            if dof > 0:
                p_value = special.chdtrc(dof, chi_square)
                threshold = float(settings["goodness_of_fit"]["chi_square_p_value"])
                messages += _count(
                    p_value < threshold,
                    f"scatter about the line exceeds the stated SDs (chi-square p < {threshold}): "
                    "SDs too small, or the Patlak line does not hold (reversible pool not in "
                    "equilibrium, loss of trapped label)",
                )
        pearson = np.full(beta.shape[:-1], np.nan)
        if dof > 0:
            xc = x - x.mean(axis=-1, keepdims=True)
            yc = y - y.mean(axis=-1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                pearson = np.sum(xc * yc, axis=-1) / np.sqrt(
                    np.sum(xc**2, axis=-1) * np.sum(yc**2, axis=-1)
                )
            min_r = float(settings["patlak"]["min_pearson_r"])
            messages += _count(
                ~(pearson > min_r),
                f"Patlak plot r <= {min_r} (the criterion of Jauw et al. 2019): the points are "
                "not on a line",
            )
        messages += _count(
            beta[..., 0] < 0.0, "negative K_i: no net irreversible uptake is measurable"
        )
        standard_errors = np.sqrt(np.diagonal(covariance, axis1=-2, axis2=-1))
        return PatlakFit(
            ki_ml_per_g_per_s=beta[..., 0],
            intercept_ml_per_g=beta[..., 1],
            ki_se_ml_per_g_per_s=standard_errors[..., 0],
            intercept_se_ml_per_g=standard_errors[..., 1],
            covariance=covariance,
            pearson_r=pearson,
            chi_square=chi_square,
            dof=dof,
            se_method=se_method,
            normalised_time_s=x,
            ratio_ml_per_g=y,
            loss_rate_per_s=float(self.loss_rate_per_s),
            warnings=tuple(messages),
        )

    def fit_voxels(
        self,
        times_s: ArrayLike,
        tissue_bq_per_ml: NDArray[np.floating[Any]],
        *,
        weights: ArrayLike | None = None,
        mask: NDArray[np.bool_] | None = None,
    ) -> PatlakMaps:
        """Voxelwise Patlak: closed-form weighted least squares for every voxel, no voxel loop.

        All voxels share the abscissae x_t and 1/Cp(t), so K_i and V₀ of a voxel are two fixed
        linear combinations of its T values (``(X'WX)⁻¹X'W`` computed once); the residual sum
        of squares gives the standard errors (``s²·(X'WX)⁻¹``, s² = RSS/(T − 2)). The volume is
        processed in chunks of 65 536 voxels so the work buffers stay in cache: the memory traffic
        is one read of the input and one write of the four maps (``benchmarks/kinetics.py``).
        Single-threaded: threads over chunks were slower on 2 cores (the GIL is taken between
        NumPy calls on chunks this small).

        Parameters
        ----------
        times_s : array_like of shape (T,)
            Scan times, s after injection.
        tissue_bq_per_ml : ndarray of shape (T, ...)
            Decay-corrected activity concentrations, one volume per time, any spatial shape;
            float32 is computed in float32, float64 in float64. Not modified.
        weights : array_like of shape (T,), optional
            Weight of each timepoint in the fit (e.g. 1/relative variance); default equal.
        mask : ndarray of bool, spatial shape, optional
            Voxels to report; the others are NaN.

        Returns
        -------
        PatlakMaps
            Maps of the spatial shape, in the input's floating dtype (float32 for integers).

        Examples
        --------
        >>> import numpy as np
        >>> h = 3600.0
        >>> t = np.array([24.0, 72.0, 144.0]) * h
        >>> cp = PlasmaInput.from_plasma([0.0, *t], [40.0, 30.0, 20.0, 12.0])
        >>> x, _ = Patlak1983(cp).coordinates(t, np.ones(3))
        >>> ki = np.array([1e-6, 2e-6])[None, :, None]   # 2 x 1 voxels
        >>> tissue = (ki * x[:, None, None] + 0.1) * cp.concentration(t)[:, None, None]
        >>> maps = Patlak1983(cp).fit_voxels(t, tissue)
        >>> maps.ki_ml_per_g_per_s.shape, np.allclose(maps.ki_ml_per_g_per_s[:, 0], [1e-6, 2e-6])
        ((2, 1), True)

        """
        times = _validated_times(times_s)
        data = np.asarray(tissue_bq_per_ml)
        n = times.size
        if data.ndim < _TWO_PARAMETERS or data.shape[0] != n:
            raise InputError(
                f"tissue array has shape {data.shape}; expected ({n}, ...) with one volume per "
                "scan time",
                field="tissue_bq_per_ml",
            )
        if self.plasma.batch_shape:
            raise InputError("voxelwise Patlak takes one plasma curve, not a batch", field="plasma")
        spatial = data.shape[1:]
        if mask is not None and np.shape(mask) != spatial:
            raise InputError(f"mask has shape {np.shape(mask)}; expected {spatial}", field="mask")
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w <= 0.0):
            raise InputError(f"weights must be {n} finite values > 0", field="weights")
        x, inverse_cp = self._abscissa_and_inverse(self.plasma, times)
        design = np.stack([x, np.ones(n)], axis=-1)
        inverse = np.linalg.inv(design.T @ (design * w[:, None]))
        solve = inverse @ (design * w[:, None]).T  # (2, T)
        dtype = np.result_type(data.dtype, np.float32)
        if dtype.kind != "f":
            dtype = np.dtype(np.float32)
        coefficients = _VoxelCoefficients(
            ki=(solve[0] * inverse_cp).astype(dtype),
            intercept=(solve[1] * inverse_cp).astype(dtype),
            inverse_cp=inverse_cp.astype(dtype),
            x=x.astype(dtype),
            weights=w.astype(dtype),
            dof=n - _TWO_PARAMETERS,
            ki_variance=dtype.type(inverse[0, 0]),
            intercept_variance=dtype.type(inverse[1, 1]),
        )
        flat = data.reshape(n, -1)
        size = flat.shape[1]
        outputs = tuple(np.empty(size, dtype=dtype) for _ in range(4))
        blocks = [(s, min(s + _CHUNK_VOXELS, size)) for s in range(0, size, _CHUNK_VOXELS)]
        _fit_blocks(flat, outputs, coefficients, blocks)
        maps = [out.reshape(spatial) for out in outputs]
        if mask is not None:
            outside = ~np.asarray(mask, dtype=bool)
            for array in maps:
                array[outside] = np.nan
        messages = []
        if coefficients.dof == 0:
            messages.append(
                "2 timepoints: every voxel's line passes through both points; no standard errors"
            )
        return PatlakMaps(
            ki_ml_per_g_per_s=maps[0],
            intercept_ml_per_g=maps[1],
            ki_se_ml_per_g_per_s=maps[2],
            intercept_se_ml_per_g=maps[3],
            times_s=times,
            dof=coefficients.dof,
            loss_rate_per_s=float(self.loss_rate_per_s),
            warnings=tuple(messages),
        )


@dataclass(frozen=True)
class _VoxelCoefficients:
    """Per-time constants shared by every voxel (in the computing dtype)."""

    ki: NDArray[Any]
    intercept: NDArray[Any]
    inverse_cp: NDArray[Any]
    x: NDArray[Any]
    weights: NDArray[Any]
    dof: int
    ki_variance: Any
    intercept_variance: Any


def _fit_blocks(
    flat: NDArray[Any],
    outputs: tuple[NDArray[Any], ...],
    c: _VoxelCoefficients,
    blocks: list[tuple[int, int]],
) -> None:
    """Fill ``outputs`` (K_i, V₀, SE K_i, SE V₀) for the voxel ranges ``blocks``."""
    ki_out, v_out, ki_se_out, v_se_out = outputs
    dtype = ki_out.dtype
    buffer = np.empty(_CHUNK_VOXELS, dtype=dtype)
    scratch = np.empty(_CHUNK_VOXELS, dtype=dtype)
    value = np.empty(_CHUNK_VOXELS, dtype=dtype)
    n = flat.shape[0]
    for start, stop in blocks:
        width = stop - start
        tmp, tmp2, val = buffer[:width], scratch[:width], value[:width]
        ki, v = ki_out[start:stop], v_out[start:stop]
        rss, v_se = ki_se_out[start:stop], v_se_out[start:stop]
        ki.fill(0.0)
        v.fill(0.0)
        for t in range(n):
            np.copyto(val, flat[t, start:stop], casting="unsafe")
            np.multiply(val, c.ki[t], out=tmp)
            np.add(ki, tmp, out=ki)
            np.multiply(val, c.intercept[t], out=tmp)
            np.add(v, tmp, out=v)
        if c.dof == 0:
            rss.fill(np.nan)
            v_se.fill(np.nan)
            continue
        rss.fill(0.0)
        for t in range(n):
            np.copyto(val, flat[t, start:stop], casting="unsafe")
            np.multiply(val, c.inverse_cp[t], out=tmp)
            np.multiply(ki, c.x[t], out=tmp2)
            np.subtract(tmp, tmp2, out=tmp)
            np.subtract(tmp, v, out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            np.multiply(tmp, c.weights[t], out=tmp)
            np.add(rss, tmp, out=rss)
        np.divide(rss, c.dof, out=rss)
        np.multiply(rss, c.intercept_variance, out=v_se)
        np.sqrt(v_se, out=v_se)
        np.multiply(rss, c.ki_variance, out=rss)
        np.sqrt(rss, out=rss)
