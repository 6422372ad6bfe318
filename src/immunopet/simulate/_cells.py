r"""Where the infused CAR T cells and their label are, over days after infusion.

A small compartment model, vectorised over time (days after infusion, ≥ 0), and a pure
function of a :class:`~immunopet.simulate._scenario.PatientSpec` and a label.

Live cells
----------
The total number of live CAR T cells is ``N(t) = infused × L(t)``, with L the relative level
of the patient's :class:`~immunopet.kinetics.Stein2019CellularKinetics` (1 at infusion,
``foldx`` at ``Tmax``; the same model object, so the simulated counts have exactly its
doubling time and decline half-lives). The blood curve is assumed to scale the whole body.

Trafficking
-----------
The live cells are shared among sites named after phantom labels (``lungs``, ``liver``,
``spleen``, ``red_marrow``, ``lymph_node``, ``heart`` = blood pool, ``muscle`` = the rest of
the body) by time-dependent fractions of ``data/cell_trafficking.toml``: lung first pass at
1 h (Lee 2020: lung 24.4 %ID, liver 22.9 %ID), cells moving to liver, spleen, marrow and nodes
by ~1 day, liver dominant at day 7 (Lee 2020: liver 36.4 %ID, lung 3.9 %ID). Fractions are
linear in time between knots and held outside them. Each lesion receives
``h × enrichment × V(t) / V_body`` of the live cells (h its ``car_t_homing``, V its volume on
that day, the body at 1 g/mL), ramped in from 0 at the first knot to full at ``ramp_end_d``;
the normal sites give that share up in proportion (the lesions' total is capped).
``expansion_sites`` of the scenario are not used: expansion is spread like the cells.

Direct labels
-------------
The cells carry ``A0`` Bq at infusion (default ``infused × offered Bq/cell × labelling
efficiency``). Label on live cells::

    B(t) = A0 · D(t) · exp(−k_efflux t) · S(t),   S(t) = L(t) / L(min(t, Tmax))

with D the physical decay. During expansion S = 1: dividing cells share their label, so the
population's label is conserved and each cell's label diluted. During contraction S is the
fraction of the label-carrying lineage still alive: dying cells release their label.
Cell-bound label is spread like the live cells (each cell carries the same label). Free
label ``F(t) = A0 · D(t) − B(t)`` (effluxed plus dead-cell label) is taken up by liver and
spleen in fixed shares (ASSUMED, ``[free_label]``); excretion is ignored, so
``B + F = A0 · D`` at every time.

Reporter genes
--------------
The probe is injected before each scan and taken up by live reporter cells: the signal of a
site is its live cells × uptake Bq/cell (no dilution, no efflux; probe background not modelled).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.physics import nuclide
from immunopet.planning import DirectLabel, ReporterLabel
from immunopet.simulate._scenario import PatientLesion, PatientSpec
from immunopet.units import S_PER_DAY

__all__ = [
    "LabelActivity",
    "direct_label_activity",
    "live_cells_by_site",
    "normal_sites",
    "reporter_activity",
    "site_fractions",
    "total_live_cells",
]

_TABLE: Final = "cell_trafficking.toml"
_ML_PER_MM3: Final = 1.0e-3
_ML_PER_KG: Final = 1000.0  # body at 1 g/mL

FloatArray = npt.NDArray[np.float64]


def _days(days: object) -> FloatArray:
    times = np.atleast_1d(np.asarray(days, dtype=np.float64))
    if times.ndim != 1 or not np.all(np.isfinite(times)) or np.any(times < 0.0):
        raise InputError(
            f"days after infusion must be a finite 1-D sequence >= 0, got {days!r}", field="days"
        )
    return times


def _table() -> dict[str, Any]:
    return read_toml(_TABLE)


def normal_sites() -> tuple[str, ...]:
    """Normal sites of the trafficking table (phantom label names), in table order."""
    return tuple(_table()["trafficking"]["fractions"])


def total_live_cells(patient: PatientSpec, days: object) -> FloatArray:
    """Live CAR T cells in the body: infused × the Stein relative level, shape ``(n_days,)``."""
    times = _days(days)
    return patient.infused_cells * np.asarray(
        patient.kinetics.relative_level(times), dtype=np.float64
    )


def _lesion_volume_ml(lesion: PatientLesion, times: FloatArray) -> FloatArray:
    points = np.asarray(lesion.relative_size, dtype=np.float64)
    diameter = lesion.diameter_mm * np.interp(times, points[:, 0], points[:, 1])
    if lesion.appears_day is not None:
        diameter = np.where(times < lesion.appears_day, 0.0, diameter)
    volume: FloatArray = math.pi / 6.0 * diameter**3 * _ML_PER_MM3
    return volume


def site_fractions(patient: PatientSpec, days: object) -> dict[str, FloatArray]:
    """Fraction of the live cells in each normal site and each lesion (sums to 1 per day).

    Returns
    -------
    dict
        Site or lesion name → fractions, shape ``(n_days,)``; normal sites first.

    """
    times = _days(days)
    table = _table()
    knots = np.asarray(table["trafficking"]["knot_days"], dtype=np.float64)
    normal = {
        site: np.interp(times, knots, np.asarray(values, dtype=np.float64))
        for site, values in table["trafficking"]["fractions"].items()
    }
    homing = table["homing"]
    ramp = np.clip((times - knots[0]) / (float(homing["ramp_end_d"]) - knots[0]), 0.0, 1.0)
    body_ml = patient.weight_kg * _ML_PER_KG
    lesions = {
        lesion.name: lesion.car_t_homing
        * float(homing["enrichment"])
        * _lesion_volume_ml(lesion, times)
        / body_ml
        * ramp
        for lesion in patient.lesions
    }
    total = np.sum(list(lesions.values()), axis=0) if lesions else np.zeros_like(times)
    cap = float(homing["max_total_fraction"])
    scale = np.where(total > cap, cap / np.where(total > 0.0, total, 1.0), 1.0)
    lesions = {name: value * scale for name, value in lesions.items()}
    lesion_total = total * scale
    result = {site: value * (1.0 - lesion_total) for site, value in normal.items()}
    result.update(lesions)
    return result


def live_cells_by_site(patient: PatientSpec, days: object) -> dict[str, FloatArray]:
    """Live CAR T cells in each normal site and lesion, shape ``(n_days,)`` each."""
    total = total_live_cells(patient, days)
    return {site: fraction * total for site, fraction in site_fractions(patient, days).items()}


@dataclass(frozen=True)
class LabelActivity:
    """Activity of a direct label, Bq, at the given days (arrays of shape ``(n_days,)``).

    Attributes
    ----------
    days : ndarray
        Days after infusion.
    bound_bq : ndarray
        Label on live cells, whole body.
    free_bq : ndarray
        Label off the cells (efflux and dead cells), whole body.
    by_site_bq : dict
        Site or lesion name → bound plus free label there.

    """

    days: FloatArray
    bound_bq: FloatArray
    free_bq: FloatArray
    by_site_bq: Mapping[str, FloatArray]


def _physical(nuclide_name: str, times: FloatArray) -> FloatArray:
    half_life_s = nuclide(nuclide_name).half_life_s
    remaining: FloatArray = np.exp(-math.log(2.0) * times * S_PER_DAY / half_life_s)
    return remaining


def direct_label_activity(
    patient: PatientSpec,
    label: DirectLabel,
    days: object,
    *,
    bound_bq_at_infusion: float | None = None,
) -> LabelActivity:
    """Cell-bound and free activity of a direct label, whole body and per site.

    Parameters
    ----------
    patient : PatientSpec
        Infused cells, kinetics, lesions and weight.
    label : DirectLabel
        Bound Bq/cell, efflux rate and nuclide.
    days : array_like of float
        Days after infusion, ≥ 0.
    bound_bq_at_infusion : float, optional
        Label on the cells at infusion, Bq (default: infused cells × bound Bq/cell).

    Returns
    -------
    LabelActivity

    """
    times = _days(days)
    initial = (
        patient.infused_cells * label.bound_bq_per_cell
        if bound_bq_at_infusion is None
        else bound_bq_at_infusion
    )
    if not (math.isfinite(initial) and initial >= 0.0):
        raise InputError(f"bound activity must be >= 0 Bq, got {initial!r}")
    kinetics = patient.kinetics
    level = np.asarray(kinetics.relative_level(times), dtype=np.float64)
    peak_so_far = np.asarray(
        kinetics.relative_level(np.minimum(times, kinetics.tmax_d)), dtype=np.float64
    )
    surviving = level / peak_so_far
    decayed = initial * _physical(label.nuclide, times)
    bound = decayed * np.exp(-label.efflux_per_day * times) * surviving
    free = decayed - bound
    by_site = {site: bound * f for site, f in site_fractions(patient, times).items()}
    for site, share in _table()["free_label"].items():
        if site == "confidence":
            continue
        by_site[site] = by_site[site] + free * float(share)
    return LabelActivity(days=times, bound_bq=bound, free_bq=free, by_site_bq=by_site)


def reporter_activity(
    patient: PatientSpec, label: ReporterLabel, days: object
) -> dict[str, FloatArray]:
    """Probe activity taken up by live reporter cells in each site, Bq (live cells × uptake)."""
    return {
        site: cells * label.uptake_bq_per_cell
        for site, cells in live_cells_by_site(patient, days).items()
    }
