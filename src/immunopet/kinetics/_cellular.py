"""CAR T-cell cellular kinetics: the Stein et al. 2019 expansion–contraction model.

Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel model-based cellular kinetic
analysis of chimeric antigen receptor-T cells. CPT Pharmacometrics Syst Pharmacol
2019;8(5):285–295. doi:10.1002/psp4.12388

The CAR transgene level in peripheral blood (copies/µg genomic DNA) grows
exponentially from infusion to ``Tmax`` and then declines biexponentially, a fast
contraction of effector cells (rate α) and a slow persistence of memory-like
cells (rate β, a fraction ``FB`` of the peak)::

    C(t) = R0 · exp(ρ t)                                       0 ≤ t < Tmax
    C(t) = Cmax · [(1 − FB) e^(−α (t − Tmax)) + FB e^(−β (t − Tmax))]   t ≥ Tmax

with ρ = ln(foldx)/Tmax and R0 = Cmax/foldx, so that both pieces equal ``Cmax``
at ``Tmax``. Times are in days throughout this module (the paper's unit); every
name says so (``tmax_d``, ``alpha_per_day``).

The comedication factors of the paper (tocilizumab, corticosteroids) and its
inter-individual variability are not part of this class: it is the typical
(population) curve, to be reused for planning, simulation and later fitting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from immunopet.data import read_toml
from immunopet.errors import InputError

__all__ = ["Stein2019CellularKinetics"]

_TABLE = "car_t_kinetics.toml"
_PUBLISHED_KEY = "stein2019_tisagenlecleucel"
_LN2 = math.log(2.0)


@dataclass(frozen=True)
class Stein2019CellularKinetics:
    """Typical CAR T-cell expansion and contraction after one infusion (Stein et al. 2019).

    Parameters
    ----------
    fold_expansion : float
        ``foldx``: peak level over the level at infusion, > 1.
    tmax_d : float
        Time of the peak after infusion, days, > 0.
    cmax_copies_per_ug : float
        Peak transgene level, copies/µg genomic DNA, > 0.
    alpha_per_day : float
        Rate of the fast (effector) decline, 1/day, > ``beta_per_day``.
    beta_per_day : float
        Rate of the slow (memory) decline, 1/day, ≥ 0.
    fb : float
        Fraction of the peak in the slow phase, 0 ≤ FB ≤ 1.
    source : str, optional
        Where the values come from.

    Examples
    --------
    >>> model = Stein2019CellularKinetics.published()
    >>> round(model.doubling_time_d, 2), round(model.initial_decline_half_life_d, 1)
    (0.78, 4.3)
    >>> float(model.concentration(model.tmax_d))
    24000.0
    >>> model.relative_level([0.0, 9.3]).round(1).tolist()
    [1.0, 3900.0]

    """

    fold_expansion: float
    tmax_d: float
    cmax_copies_per_ug: float
    alpha_per_day: float
    beta_per_day: float
    fb: float
    source: str = ""

    def __post_init__(self) -> None:
        for item in fields(self):
            if item.name == "source":
                continue
            value = getattr(self, item.name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(f"{item.name} must be a finite number, got {value!r}")
        checks = (
            ("fold_expansion", self.fold_expansion > 1.0, "> 1"),
            ("tmax_d", self.tmax_d > 0.0, "> 0 days"),
            ("cmax_copies_per_ug", self.cmax_copies_per_ug > 0.0, "> 0"),
            ("beta_per_day", self.beta_per_day >= 0.0, ">= 0 per day"),
            ("alpha_per_day", self.alpha_per_day > self.beta_per_day, "> beta_per_day"),
            ("fb", 0.0 <= self.fb <= 1.0, "between 0 and 1"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise InputError(
                    f"{name} must be {expected}, got {getattr(self, name)!r}", field=name
                )

    @classmethod
    def published(cls) -> Stein2019CellularKinetics:
        """Typical values of Stein 2019 Table 1 (tisagenlecleucel, paediatric B-ALL).

        Read from ``data/car_t_kinetics.toml``, which records the source.
        """
        entry: dict[str, Any] = read_toml(_TABLE)[_PUBLISHED_KEY]
        return cls(
            fold_expansion=float(entry["fold_expansion"]),
            tmax_d=float(entry["tmax_d"]),
            cmax_copies_per_ug=float(entry["cmax_copies_per_ug"]),
            alpha_per_day=float(entry["alpha_per_day"]),
            beta_per_day=float(entry["beta_per_day"]),
            fb=float(entry["fb"]),
            source=str(entry["source"]),
        )

    @property
    def expansion_rate_per_day(self) -> float:
        """ρ = ln(foldx)/Tmax, 1/day."""
        return math.log(self.fold_expansion) / self.tmax_d

    @property
    def baseline_copies_per_ug(self) -> float:
        """R0 = Cmax/foldx: the level at infusion, copies/µg."""
        return self.cmax_copies_per_ug / self.fold_expansion

    @property
    def doubling_time_d(self) -> float:
        """Doubling time during expansion, ln 2/ρ, days."""
        return _LN2 / self.expansion_rate_per_day

    @property
    def initial_decline_half_life_d(self) -> float:
        """Half-life of the fast contraction, ln 2/α, days."""
        return _LN2 / self.alpha_per_day

    @property
    def terminal_half_life_d(self) -> float:
        """Half-life of the slow persistence phase, ln 2/β, days (infinite for β = 0)."""
        return math.inf if self.beta_per_day == 0.0 else _LN2 / self.beta_per_day

    def _peak_relative(self, t_d: object) -> npt.NDArray[np.float64]:
        """C(t)/Cmax: exactly 1 at Tmax; both pieces meet there."""
        times = np.asarray(t_d, dtype=np.float64)
        if not np.all(np.isfinite(times)) or np.any(times < 0.0):
            raise InputError(
                "cellular kinetics are defined from the infusion on: times must be finite and "
                f">= 0 days, got {t_d!r}",
                field="t_d",
            )
        # foldx^(t/Tmax - 1) = exp(rho (t - Tmax)) before Tmax; 1 from Tmax on.
        expanding = np.power(
            self.fold_expansion, np.minimum(times, self.tmax_d) / self.tmax_d - 1.0
        )
        after = np.maximum(times - self.tmax_d, 0.0)
        # Before Tmax ``after`` is 0 and the decline factor exactly 1.
        declining = (1.0 - self.fb) * np.exp(-self.alpha_per_day * after) + self.fb * np.exp(
            -self.beta_per_day * after
        )
        result: npt.NDArray[np.float64] = expanding * declining
        return result

    @overload
    def relative_level(self, t_d: float) -> float: ...

    @overload
    def relative_level(
        self, t_d: npt.NDArray[np.float64] | list[float] | tuple[float, ...]
    ) -> npt.NDArray[np.float64]: ...

    def relative_level(
        self, t_d: float | npt.NDArray[np.float64] | list[float] | tuple[float, ...]
    ) -> float | npt.NDArray[np.float64]:
        """Level relative to the level at infusion, C(t)/R0 (1 at t = 0, foldx at Tmax).

        Parameters
        ----------
        t_d : float or array_like of float
            Days after infusion, ≥ 0. Any shape.

        Returns
        -------
        float or ndarray of float64
            Same shape as ``t_d``.

        Raises
        ------
        InputError
            If a time is negative or not finite.

        """
        level = self.fold_expansion * self._peak_relative(t_d)
        return float(level) if level.ndim == 0 else level

    @overload
    def concentration(self, t_d: float) -> float: ...

    @overload
    def concentration(
        self, t_d: npt.NDArray[np.float64] | list[float] | tuple[float, ...]
    ) -> npt.NDArray[np.float64]: ...

    def concentration(
        self, t_d: float | npt.NDArray[np.float64] | list[float] | tuple[float, ...]
    ) -> float | npt.NDArray[np.float64]:
        """Transgene level C(t), copies/µg genomic DNA (same shape as ``t_d``, days ≥ 0)."""
        level = self.cmax_copies_per_ug * self._peak_relative(t_d)
        return float(level) if level.ndim == 0 else level
