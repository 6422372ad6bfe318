"""CAR T-cell numbers in a VOI from the activity of a cell label or a reporter probe.

Two kinds of label (``data/cell_labelling.toml``; the planner's
:mod:`immunopet.planning._cells` reads the same entries):

* **direct** labels (e.g. ⁸⁹Zr-oxine, Weist et al., J Nucl Med 2018;59:1531) are bound to the
  cells before infusion. A labelled cell at time *t* after injection carries
  ``a0 · 2^(−t/T½) · exp(−k_efflux · t)``, with ``a0`` the activity bound per cell at
  injection. The number is in **labelled-cell equivalents**: cells that divided share their
  label between daughters, so expansion is invisible to a direct label (the review's point,
  Mulgaonkar et al. 2023, Front Med 10:1199146, section on cell tracking).
* **reporter** genes (e.g. hNET/[¹⁸F]MFBG) take up a probe injected before each scan:
  ``N = A / u`` with ``u`` the probe activity per live reporter cell at the scan, a
  calibration the site measures (no published value; never assumed here).

The activity of the VOI is at the scan's decay reference (what the SUV engine's factors give);
its standard error (count statistics) is propagated. The per-cell activity is taken as exact:
its uncertainty (labelling efficiency, efflux) is the user's to state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from immunopet.errors import InputError
from immunopet.units import S_PER_DAY

__all__ = ["CellNumberModel", "CellNumbers"]


@dataclass(frozen=True)
class CellNumbers:
    """Cells in a VOI: ``cells`` and its standard error ``cells_se`` (None: unknown)."""

    cells: float
    cells_se: float | None


@dataclass(frozen=True)
class CellNumberModel:
    """How activity in a VOI converts to CAR T cells.

    Parameters
    ----------
    kind : {"direct", "reporter"}
        Direct label bound before infusion, or reporter gene imaged with a probe.
    bq_per_cell : float
        Direct: activity bound per cell at the injection of the labelled cells, Bq (not
        decayed). Reporter: probe activity per live reporter cell at the scan reference, Bq.
    half_life_s : float
        Physical half-life of the label's nuclide, s (direct labels; unused for reporters).
    efflux_per_day : float
        First-order loss of label from living cells, 1/day (direct labels; 0 for reporters).
    label : str
        Name of the label for the methods text (e.g. ``"zr89-oxine"``).

    Examples
    --------
    A ⁸⁹Zr-oxine label (T½ 78.41 h) with 0.0525 Bq per cell and no efflux, 78.41 h after the
    infusion: each cell holds half its activity, so 0.0525 Bq in the VOI are two cells.

    >>> model = CellNumberModel("direct", 0.0525, 78.41 * 3600, 0.0, "zr89-oxine")
    >>> round(model.cells(0.0525, None, 78.41 * 3600).cells, 6)
    2.0

    """

    kind: Literal["direct", "reporter"]
    bq_per_cell: float
    half_life_s: float
    efflux_per_day: float
    label: str

    def __post_init__(self) -> None:
        if self.kind not in ("direct", "reporter"):
            raise InputError(f"cell label kind must be direct or reporter, got {self.kind!r}")
        if not (math.isfinite(self.bq_per_cell) and self.bq_per_cell > 0.0):
            raise InputError(
                f"activity per cell must be > 0 Bq, got {self.bq_per_cell!r}",
                field="bound_bq_per_cell"
                if self.kind == "direct"
                else "reporter_uptake_bq_per_cell",
            )
        if not (math.isfinite(self.half_life_s) and self.half_life_s > 0.0):
            raise InputError(f"half-life must be > 0 s, got {self.half_life_s!r}")
        if not (math.isfinite(self.efflux_per_day) and self.efflux_per_day >= 0.0):
            raise InputError(
                f"efflux rate must be >= 0 per day, got {self.efflux_per_day!r}",
                field="efflux_per_day",
            )

    def bq_per_cell_at(self, elapsed_s: float) -> float:
        """Activity one cell carries ``elapsed_s`` after injecting the labelled cells, Bq.

        Reporters: the calibrated probe uptake, whatever the time.
        """
        if self.kind == "reporter":
            return self.bq_per_cell
        if elapsed_s < 0.0:
            raise InputError(
                f"the scan is {-elapsed_s / 3600.0:.1f} h before the labelled cells were injected"
            )
        physical = math.exp(-math.log(2.0) * elapsed_s / self.half_life_s)
        retained = math.exp(-self.efflux_per_day * elapsed_s / S_PER_DAY)
        return self.bq_per_cell * physical * retained

    def cells(
        self, activity_bq: float, activity_se_bq: float | None, elapsed_s: float
    ) -> CellNumbers:
        """Cells holding ``activity_bq`` (at the scan reference, ``elapsed_s`` after injection).

        Parameters
        ----------
        activity_bq : float
            Activity in the VOI at the scan's decay reference, Bq.
        activity_se_bq : float or None
            Its standard error from count statistics, Bq.
        elapsed_s : float
            Scan reference time minus the injection of the labelled cells (direct labels) or
            unused (reporters), s.

        Returns
        -------
        CellNumbers
            Labelled-cell equivalents (direct) or live reporter cells, with standard error.

        """
        per_cell = self.bq_per_cell_at(elapsed_s)
        return CellNumbers(
            activity_bq / per_cell, None if activity_se_bq is None else activity_se_bq / per_cell
        )
