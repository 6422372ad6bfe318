"""Blood input functions from sparse samples days apart: interpolation, integrals, convolutions.

Immuno-PET samples the blood a few times over a week (a blood-pool VOI on each scan, perhaps a
blood or serum sample at 1 h and on scan days), not every few seconds as brain PET does. The
Patlak plot and the compartment models need the plasma concentration ``Cp(t)`` at the scan times,
its integral ``∫₀ᵗ Cp`` and, for compartment models, its convolution with exponentials
``∫₀ᵗ Cp(τ)·exp(−k(t − τ)) dτ``. :class:`PlasmaInput` computes all three in closed form for the
interpolant chosen; nothing is integrated numerically.

Interpolants
------------
``"log_linear"`` (default)
    Piecewise linear in log concentration: between consecutive samples ``(t_j, p_j)`` and
    ``(t_{j+1}, p_{j+1})`` the curve is the exponential through both,
    ``Cp(t) = p_j·exp(−k_j (t − t_j))`` with ``k_j = ln(p_j/p_{j+1})/(t_{j+1} − t_j)``. It is exact
    for a mono-exponential stretch of the curve and needs no model. Before the first sample the
    first segment is extended back to the injection (t = 0, intravenous bolus); after the last
    sample the last segment may be extended by ``extrapolate_s`` (default 0: refused). Because the
    logarithm of a sum of decaying exponentials is convex, the chord between two samples lies
    above the curve, so the integral is slightly overestimated: for the IgG plasma biexponential
    of ``data/vector_pk.toml`` (T½ 20 h and 111 h) sampled at 1 h, 1, 3, 5 and 7 days, by 1.1,
    0.9 and 0.8 % at days 3, 5 and 7; without the 1-day sample by 4.0, 3.0 and 2.5 %
    (``tests/kinetics/test_patlak.py``).
``"biexponential"``
    ``Cp(t) = A₁·exp(−λ₁ t) + A₂·exp(−λ₂ t)`` fitted to ≥ 4 samples by least squares on log
    concentration (weights from the sample SDs when given). Exact when the plasma curve is
    biexponential, as antibody plasma curves are described (O'Donoghue et al. 2018 [2]_);
    available for one curve at a time (not batched).

Whole blood and plasma
----------------------
An image blood-pool VOI measures whole blood. Antibodies and their fragments stay in the plasma
(they do not enter red cells), so ``Cp = Cb / (1 − Hct)`` with the patient's haematocrit Hct; the
same relation is used by :class:`immunopet.tracers.TwoTissueVectorModel` (Cb = Cp·V_plasma/V_blood).
A tracer that enters red cells (e.g. some small molecules) needs a measured plasma-to-blood ratio
instead; pass plasma samples then.

Concentrations may be in any unit (Bq/mL canonical, %ID/mL …) as long as tissue and plasma use
the same one and are decay-corrected to the same instant (Patlak and compartment models describe
the biological kinetics; physical decay would otherwise act as a spurious loss).

Batches
-------
Sample values may carry leading batch dimensions, shape ``(..., n_samples)`` with one set of
sample times: every method then returns ``(..., n_times)``. Monte Carlo studies and the
finite-difference Jacobians of :mod:`immunopet.kinetics._patlak` use this.

References
----------
.. [1] Jauw YWS et al. 89Zr-immuno-PET: toward a noninvasive clinical tool to measure target
   engagement of therapeutic antibodies in vivo. J Nucl Med 2019;60:1825-1832 (serum samples on
   the scan days as the input of the Patlak plot; thesis p. 186, READ).
.. [2] O'Donoghue JA et al. Pharmacokinetics, biodistribution, and radiation dosimetry for
   89Zr-trastuzumab in patients with esophagogastric cancer. J Nucl Med 2018;59:161-166
   (biexponential plasma clearance, READ abstract).

"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from immunopet.errors import InputError

__all__ = ["InterpolationMethod", "PlasmaInput", "exponential_convolution"]

#: How concentrations are interpolated between samples (see the module docstring).
InterpolationMethod = Literal["log_linear", "biexponential"]

#: Below this |x| the factor (1 − e^(−x))/x is evaluated by its series 1 − x/2.
_SERIES_LIMIT = 1.0e-8
#: Parameters of a biexponential: two amplitudes and two rates.
_BIEXPONENTIAL_PARAMETERS = 4


def _phi(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """(1 − e^(−x))/x for x ≥ 0 (1 at x = 0), without cancellation."""
    safe = np.where(x < _SERIES_LIMIT, 1.0, x)
    result: NDArray[np.float64] = np.where(
        x < _SERIES_LIMIT, 1.0 - 0.5 * x, -np.expm1(-safe) / safe
    )
    return result


def exponential_convolution(
    rate_in_per_s: ArrayLike, rate_out_per_s: ArrayLike, duration_s: ArrayLike
) -> NDArray[np.float64]:
    """∫₀^Δ exp(−a·u)·exp(−b·(Δ − u)) du, in a form that neither cancels nor overflows.

    Equal to (e^(−aΔ) − e^(−bΔ))/(b − a), and to Δ·e^(−aΔ) when a = b. Written as
    e^(−min(a, b)·Δ) · Δ · φ(|b − a|·Δ) with φ(x) = (1 − e^(−x))/x.

    Parameters
    ----------
    rate_in_per_s, rate_out_per_s : array_like
        Rates a (of the input exponential) and b (of the response), 1/s; broadcast together.
    duration_s : array_like
        Δ ≥ 0, s.

    Returns
    -------
    ndarray
        The broadcast shape of the three arguments.

    Examples
    --------
    >>> round(float(exponential_convolution(0.0, 0.0, 5.0)), 12)  # ∫ 1 du over 5 s
    5.0
    >>> a, b, d = 1e-5, 3e-5, 7e4
    >>> bool(np.isclose(exponential_convolution(a, b, d), (np.exp(-a*d) - np.exp(-b*d))/(b - a)))
    True

    """
    a = np.asarray(rate_in_per_s, dtype=np.float64)
    b = np.asarray(rate_out_per_s, dtype=np.float64)
    delta = np.asarray(duration_s, dtype=np.float64)
    low = np.minimum(a, b)
    result: NDArray[np.float64] = np.exp(-low * delta) * delta * _phi(np.abs(b - a) * delta)
    return result


def _as_times(times_s: ArrayLike, name: str) -> NDArray[np.float64]:
    times = np.asarray(times_s, dtype=np.float64)
    if times.ndim != 1:
        raise InputError(
            f"{name} must be a 1-D array of seconds, got shape {times.shape}", field=name
        )
    if not np.all(np.isfinite(times)) or np.any(times < 0.0):
        raise InputError(f"{name} must be finite seconds after injection (>= 0)", field=name)
    return times


def _sorted_samples(
    times_s: ArrayLike,
    values: ArrayLike,
    sd: ArrayLike | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
    times = _as_times(times_s, "times_s")
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 0 or data.shape[-1] != times.size:
        raise InputError(
            f"sample values have shape {data.shape}; expected (..., {times.size}), one value per "
            "sample time",
            field="plasma_bq_per_ml",
        )
    spread = None
    if sd is not None:
        spread = np.broadcast_to(np.asarray(sd, dtype=np.float64), data.shape)
        if not np.all(np.isfinite(spread)) or np.any(spread < 0.0):
            raise InputError("sample SDs must be finite and >= 0", field="sd_bq_per_ml")
    order = np.argsort(times, kind="stable")
    times = times[order]
    if np.any(np.diff(times) <= 0.0):
        raise InputError(
            "two samples share one time; give each sample time once",
            field="times_s",
            hint="average replicate samples first",
        )
    data = np.array(data[..., order])
    if spread is not None:
        spread = np.array(spread[..., order])
    return times, data, spread


def _plasma_per_blood(haematocrit: float) -> float:
    """1/(1 − Hct): plasma concentration per whole-blood concentration of a plasma-bound tracer."""
    if not 0.0 < float(haematocrit) < 1.0:
        raise InputError(
            f"haematocrit must be a fraction between 0 and 1, got {haematocrit!r}",
            field="haematocrit",
            hint="give the patient's haematocrit, e.g. 0.42",
        )
    return 1.0 / (1.0 - float(haematocrit))


@dataclass(frozen=True, eq=False)
class PlasmaInput:
    """Plasma activity concentration from samples days apart, with closed-form integrals.

    Prefer the constructors :meth:`from_plasma`, :meth:`from_whole_blood` and
    :meth:`from_image_and_samples`; they sort and validate the samples.

    Parameters
    ----------
    times_s : ndarray of shape (n_samples,)
        Sample times, seconds after injection, strictly increasing.
    plasma_bq_per_ml : ndarray of shape (..., n_samples)
        Plasma concentrations (any unit shared with the tissue; Bq/mL canonical), decay-corrected.
        Must be > 0 for the log-linear interpolant.
    sd_bq_per_ml : ndarray of shape (..., n_samples) or None
        Standard deviation of each sample, same unit; None when unknown.
    method : {"log_linear", "biexponential"}
        Interpolant (module docstring).
    haematocrit : float or None
        Volume fraction of red cells, for :meth:`whole_blood`; None when unknown.
    extrapolate_s : float
        How far beyond the last sample the curve may be extended (log-linear: along the last
        segment), s. Default 0: times after the last sample are refused.
    source : str
        Where the samples come from, for reports.

    Examples
    --------
    >>> import numpy as np
    >>> h = 3600.0
    >>> cp = PlasmaInput.from_plasma([0.0, 72 * h, 144 * h], [100.0, 50.0, 25.0])
    >>> round(float(cp.concentration([108 * h])[0]), 4)  # 100·2^(-1.5): halfway on a log scale
    35.3553
    >>> round(float(cp.integral([144 * h])[0] / h), 2)  # (100 - 25)·72 h/ln 2, Bq/mL·h
    7790.55

    """

    times_s: NDArray[np.float64]
    plasma_bq_per_ml: NDArray[np.float64]
    sd_bq_per_ml: NDArray[np.float64] | None = None
    method: InterpolationMethod = "log_linear"
    haematocrit: float | None = None
    extrapolate_s: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        if self.method not in get_args(InterpolationMethod):
            raise InputError(
                f"unknown interpolation method {self.method!r}",
                field="method",
                hint=f"choose one of {', '.join(get_args(InterpolationMethod))}",
            )
        times = _as_times(self.times_s, "times_s")
        values = np.asarray(self.plasma_bq_per_ml, dtype=np.float64)
        if values.ndim == 0 or values.shape[-1] != times.size:
            raise InputError(
                f"plasma values have shape {values.shape}; expected (..., {times.size})",
                field="plasma_bq_per_ml",
            )
        if times.size < 2:
            raise InputError(
                f"an input function needs at least 2 samples, got {times.size}",
                field="times_s",
                hint="add a blood sample or a blood-pool value from another scan",
            )
        if np.any(np.diff(times) <= 0.0):
            raise InputError("sample times must be strictly increasing", field="times_s")
        if not np.all(np.isfinite(values)) or np.any(values <= 0.0):
            raise InputError(
                "plasma concentrations must be finite and > 0 (the interpolant is exponential "
                "between samples)",
                field="plasma_bq_per_ml",
                hint="check for empty blood-pool VOIs or samples below the detection limit",
            )
        if self.method == "biexponential":
            if values.ndim != 1:
                raise InputError(
                    "the biexponential interpolant is fitted to one curve at a time",
                    field="method",
                    hint="use method='log_linear' for batches of curves",
                )
            if times.size < _BIEXPONENTIAL_PARAMETERS:
                raise InputError(
                    f"a biexponential needs >= {_BIEXPONENTIAL_PARAMETERS} samples, got {times.size}",
                    field="method",
                    hint="use method='log_linear'",
                )
        if self.haematocrit is not None:
            _plasma_per_blood(self.haematocrit)
        if not np.isfinite(self.extrapolate_s) or self.extrapolate_s < 0.0:
            raise InputError("extrapolate_s must be finite and >= 0", field="extrapolate_s")
        spread = None
        if self.sd_bq_per_ml is not None:
            spread = np.broadcast_to(
                np.asarray(self.sd_bq_per_ml, dtype=np.float64), values.shape
            ).copy()
            spread.setflags(write=False)
        times = times.copy()
        values = values.copy()
        times.setflags(write=False)
        values.setflags(write=False)
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "plasma_bq_per_ml", values)
        object.__setattr__(self, "sd_bq_per_ml", spread)

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def from_plasma(
        cls,
        times_s: ArrayLike,
        plasma_bq_per_ml: ArrayLike,
        sd_bq_per_ml: ArrayLike | None = None,
        *,
        method: InterpolationMethod = "log_linear",
        haematocrit: float | None = None,
        extrapolate_s: float = 0.0,
        source: str = "plasma samples",
    ) -> PlasmaInput:
        """Input from plasma (or serum) samples, in any order.

        Parameters
        ----------
        times_s : array_like of shape (n_samples,)
            Seconds after injection.
        plasma_bq_per_ml : array_like of shape (..., n_samples)
            Decay-corrected plasma concentrations.
        sd_bq_per_ml : array_like, optional
            Their standard deviations (broadcast to the values' shape).
        method, haematocrit, extrapolate_s, source
            As the class parameters.

        """
        times, values, spread = _sorted_samples(times_s, plasma_bq_per_ml, sd_bq_per_ml)
        return cls(times, values, spread, method, haematocrit, extrapolate_s, source)

    @classmethod
    def from_whole_blood(
        cls,
        times_s: ArrayLike,
        blood_bq_per_ml: ArrayLike,
        haematocrit: float,
        sd_bq_per_ml: ArrayLike | None = None,
        *,
        method: InterpolationMethod = "log_linear",
        extrapolate_s: float = 0.0,
        source: str = "whole blood",
    ) -> PlasmaInput:
        """Input from whole-blood concentrations (blood-pool VOI or blood samples).

        ``Cp = Cb/(1 − Hct)``: the tracer is taken to stay in the plasma (true of antibodies and
        their fragments; see the module docstring). SDs are scaled the same way.

        Examples
        --------
        >>> cp = PlasmaInput.from_whole_blood([3600.0, 7200.0], [53.0, 26.5], haematocrit=0.47)
        >>> cp.plasma_bq_per_ml.round(6).tolist()
        [100.0, 50.0]

        """
        plasma_per_blood = _plasma_per_blood(haematocrit)
        blood = np.asarray(blood_bq_per_ml, dtype=np.float64)
        spread = None if sd_bq_per_ml is None else np.asarray(sd_bq_per_ml, np.float64)
        times, values, sorted_sd = _sorted_samples(
            times_s, blood * plasma_per_blood, None if spread is None else spread * plasma_per_blood
        )
        return cls(times, values, sorted_sd, method, float(haematocrit), extrapolate_s, source)

    @classmethod
    def from_image_and_samples(
        cls,
        image_times_s: ArrayLike,
        image_blood_bq_per_ml: ArrayLike,
        haematocrit: float,
        image_sd_bq_per_ml: ArrayLike | None = None,
        *,
        sample_times_s: ArrayLike = (),
        sample_plasma_bq_per_ml: ArrayLike = (),
        sample_sd_bq_per_ml: ArrayLike | None = None,
        method: InterpolationMethod = "log_linear",
        extrapolate_s: float = 0.0,
    ) -> PlasmaInput:
        """Image-derived input (blood-pool VOI on each scan) with optional plasma samples.

        The blood-pool values (whole blood) become plasma with the haematocrit
        (:meth:`from_whole_blood`); plasma or serum samples (e.g. at 1 h, before the first scan)
        are added as they are. Where a sample and a scan share a time exactly, the sample is
        kept and the image value dropped: a sample has no partial-volume or spill-over error.

        Parameters
        ----------
        image_times_s : array_like of shape (n_scans,)
            Scan times, s after injection.
        image_blood_bq_per_ml : array_like of shape (..., n_scans)
            Blood-pool VOI means (whole blood).
        haematocrit : float
            The patient's haematocrit.
        image_sd_bq_per_ml : array_like, optional
            SD of each VOI mean (whole blood units).
        sample_times_s, sample_plasma_bq_per_ml, sample_sd_bq_per_ml : array_like, optional
            Plasma samples; values of shape (..., n_samples).
        method, extrapolate_s
            As the class parameters.

        Examples
        --------
        >>> h = 3600.0
        >>> cp = PlasmaInput.from_image_and_samples(
        ...     [72 * h, 144 * h], [26.5, 13.25], 0.47,
        ...     sample_times_s=[1 * h], sample_plasma_bq_per_ml=[100.0])
        >>> (cp.times_s / h).tolist(), cp.plasma_bq_per_ml.round(6).tolist()
        ([1.0, 72.0, 144.0], [100.0, 50.0, 25.0])

        """
        plasma_per_blood = _plasma_per_blood(haematocrit)
        image_sd = None
        if image_sd_bq_per_ml is not None:
            image_sd = np.asarray(image_sd_bq_per_ml, dtype=np.float64) * plasma_per_blood
        image_t, image_p, image_s = _sorted_samples(
            image_times_s,
            np.asarray(image_blood_bq_per_ml, dtype=np.float64) * plasma_per_blood,
            image_sd,
        )
        sample_t = np.asarray(sample_times_s, dtype=np.float64)
        if sample_t.size == 0:
            return cls(
                image_t,
                image_p,
                image_s,
                method,
                float(haematocrit),
                extrapolate_s,
                "image-derived",
            )
        sample_t, sample_p, sample_s = _sorted_samples(
            sample_t, sample_plasma_bq_per_ml, sample_sd_bq_per_ml
        )
        if (image_s is None) != (sample_s is None):
            raise InputError(
                "give SDs for both the blood-pool values and the samples, or for neither",
                field="image_sd_bq_per_ml/sample_sd_bq_per_ml",
            )
        keep = ~np.isin(image_t, sample_t)
        batch = np.broadcast_shapes(image_p.shape[:-1], sample_p.shape[:-1])

        def merged(image_part: NDArray[np.float64], sample_part: NDArray[np.float64]) -> Any:
            return np.concatenate(
                [
                    np.broadcast_to(image_part[..., keep], (*batch, int(keep.sum()))),
                    np.broadcast_to(sample_part, (*batch, sample_t.size)),
                ],
                axis=-1,
            )

        spread = None if image_s is None or sample_s is None else merged(image_s, sample_s)
        return cls.from_plasma(
            np.concatenate([image_t[keep], sample_t]),
            merged(image_p, sample_p),
            spread,
            method=method,
            haematocrit=float(haematocrit),
            extrapolate_s=extrapolate_s,
            source="image-derived with plasma samples",
        )

    # -- derived ---------------------------------------------------------------------------
    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading (batch) dimensions of the sample values; () for one curve."""
        return tuple(self.plasma_bq_per_ml.shape[:-1])

    def with_values(self, plasma_bq_per_ml: ArrayLike) -> PlasmaInput:
        """The same input (times, method, SDs) with other sample values, e.g. perturbed."""
        values = np.asarray(plasma_bq_per_ml, dtype=np.float64)
        spread = self.sd_bq_per_ml
        if spread is not None and spread.shape != values.shape:
            spread = np.broadcast_to(spread, np.broadcast_shapes(spread.shape, values.shape))
        return dataclasses.replace(self, plasma_bq_per_ml=values, sd_bq_per_ml=spread)

    def _check_times(self, times_s: ArrayLike) -> NDArray[np.float64]:
        times = _as_times(times_s, "times_s")
        limit_s = self.times_s[-1] + self.extrapolate_s
        if np.any(times > limit_s):
            raise InputError(
                f"time {float(times.max()):.0f} s is after the last blood sample "
                f"({float(self.times_s[-1]):.0f} s); the input is not extrapolated that far",
                field="times_s",
                hint="add a blood sample (or blood-pool value) at or after the last scan, "
                "or allow extrapolation with extrapolate_s",
            )
        return times

    # log-linear pieces: piece j spans [start_j, end_j], value start_value_j·exp(−rate_j·(t − start_j))
    @cached_property
    def _pieces(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        t = self.times_s
        p = self.plasma_bq_per_ml
        rates = np.log(p[..., :-1] / p[..., 1:]) / np.diff(t)
        # Piece 0 extends the first segment back to t = 0; the last extends the last segment.
        piece_rates = np.concatenate([rates[..., :1], rates, rates[..., -1:]], axis=-1)
        start_values = np.concatenate([p[..., :1] * np.exp(rates[..., :1] * t[0]), p], axis=-1)
        starts = np.concatenate([[0.0], t])
        return starts, start_values, piece_rates

    @cached_property
    def biexponential_parameters(self) -> tuple[float, float, float, float]:
        """(A₁, λ₁, A₂, λ₂) of the fitted biexponential, concentration unit and 1/s (λ₁ ≥ λ₂).

        Raises
        ------
        InputError
            If the method is not ``"biexponential"`` or the fit fails.

        """
        if self.method != "biexponential":
            raise InputError(
                "this input is not biexponential",
                field="method",
                hint="construct it with method='biexponential'",
            )
        return _fit_biexponential(self.times_s, self.plasma_bq_per_ml, self.sd_bq_per_ml)

    def concentration(self, times_s: ArrayLike) -> NDArray[np.float64]:
        """Plasma concentration at ``times_s``, shape ``(..., n_times)``.

        Parameters
        ----------
        times_s : array_like of shape (n_times,)
            Seconds after injection, ≥ 0 and not after the last sample (+ ``extrapolate_s``).

        """
        times = self._check_times(times_s)
        if self.method == "biexponential":
            a1, l1, a2, l2 = self.biexponential_parameters
            result: NDArray[np.float64] = a1 * np.exp(-l1 * times) + a2 * np.exp(-l2 * times)
            return result
        starts, values, rates = self._pieces
        index = np.searchsorted(starts, times, side="right") - 1
        value: NDArray[np.float64] = values[..., index] * np.exp(
            -rates[..., index] * (times - starts[index])
        )
        return value

    def whole_blood(self, times_s: ArrayLike) -> NDArray[np.float64]:
        """Whole-blood concentration ``Cp·(1 − Hct)`` at ``times_s``, shape ``(..., n_times)``.

        Raises
        ------
        InputError
            If the haematocrit is unknown.

        """
        if self.haematocrit is None:
            raise InputError(
                "the haematocrit is needed to turn plasma into whole-blood concentration",
                field="haematocrit",
                hint="construct the input with haematocrit=<the patient's value>",
            )
        return self.concentration(times_s) * (1.0 - self.haematocrit)

    def integral(self, times_s: ArrayLike) -> NDArray[np.float64]:
        """∫₀ᵗ Cp(τ) dτ at each time (concentration × s), shape ``(..., n_times)``."""
        return self.convolve_exponential(0.0, times_s)

    def convolve_exponential(self, rate_per_s: float, times_s: ArrayLike) -> NDArray[np.float64]:
        """∫₀ᵗ Cp(τ)·exp(−k·(t − τ)) dτ at each time t, in closed form; shape ``(..., n_times)``.

        Parameters
        ----------
        rate_per_s : float
            k ≥ 0, 1/s (0 gives the integral).
        times_s : array_like of shape (n_times,)
            Seconds after injection.

        """
        rate = float(rate_per_s)
        if not np.isfinite(rate) or rate < 0.0:
            raise InputError(
                f"the rate must be finite and >= 0, got {rate_per_s!r}", field="rate_per_s"
            )
        times = self._check_times(times_s)
        if self.method == "biexponential":
            a1, l1, a2, l2 = self.biexponential_parameters
            result: NDArray[np.float64] = a1 * exponential_convolution(
                l1, rate, times
            ) + a2 * exponential_convolution(l2, rate, times)
            return result
        starts, values, rates = self._pieces
        ends = np.concatenate([starts[1:], [np.inf]])
        t = times[:, None]
        covered_end = np.minimum(ends[None, :], t)  # (n_times, n_pieces)
        length = np.maximum(covered_end - starts[None, :], 0.0)
        carried = np.exp(-rate * (t - covered_end))  # decay from the piece's end to t
        # (..., 1, n_pieces) against (n_times, n_pieces)
        terms = (
            values[..., None, :]
            * exponential_convolution(rates[..., None, :], rate, length)
            * carried
        )
        total: NDArray[np.float64] = np.where(length > 0.0, terms, 0.0).sum(axis=-1)
        return total


def _fit_biexponential(
    times: NDArray[np.float64], values: NDArray[np.float64], sd: NDArray[np.float64] | None
) -> tuple[float, float, float, float]:
    """Least-squares biexponential on log concentration; start from curve peeling."""
    from scipy.optimize import least_squares  # lazy: SciPy's optimiser: 0.4 s import

    log_values = np.log(values)
    sigma = np.ones_like(values) if sd is None else np.maximum(sd / values, np.finfo(float).tiny)
    half = max(2, times.size // 2)
    slope, intercept = np.polyfit(times[-half:], log_values[-half:], 1)
    slow_rate = max(-slope, 0.0)
    slow_amplitude = float(np.exp(intercept))
    early = values[: times.size - half + 1] - slow_amplitude * np.exp(
        -slow_rate * times[: times.size - half + 1]
    )
    if early.size >= 2 and np.all(early > 0.0):
        fast_slope, fast_intercept = np.polyfit(times[: early.size], np.log(early), 1)
        fast_rate = max(-fast_slope, 2.0 * slow_rate)
        fast_amplitude = float(np.exp(fast_intercept))
    else:
        fast_rate = 10.0 * max(slow_rate, 1.0 / float(times[-1]))
        fast_amplitude = 0.5 * float(values[0])
    slow_rate = max(slow_rate, 1.0e-3 / float(times[-1]))
    scale_rate = 1.0 / float(times[-1])
    start = np.log([fast_amplitude, fast_rate / scale_rate, slow_amplitude, slow_rate / scale_rate])

    def residual(theta: NDArray[np.float64]) -> NDArray[np.float64]:
        a1, l1, a2, l2 = np.exp(theta)
        model = a1 * np.exp(-l1 * scale_rate * times) + a2 * np.exp(-l2 * scale_rate * times)
        out: NDArray[np.float64] = (np.log(model) - log_values) / sigma
        return out

    solution: Any = least_squares(residual, start, method="lm" if times.size > 4 else "trf")
    if not solution.success or not np.all(np.isfinite(solution.x)):
        raise InputError(
            "the biexponential fit to the blood samples did not converge",
            field="method",
            hint="use method='log_linear'",
        )
    a1, l1, a2, l2 = (float(v) for v in np.exp(solution.x))
    l1, l2 = l1 * scale_rate, l2 * scale_rate
    if l1 < l2:
        a1, l1, a2, l2 = a2, l2, a1, l1
    return a1, l1, a2, l2
