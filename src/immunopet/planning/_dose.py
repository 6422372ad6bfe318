"""Dose budget of a planned tracer: the vector pharmacokinetics fed to the dosimetry.

One model end to end: :class:`~immunopet.tracers.TwoTissueVectorModel` gives the decays in
each region per becquerel injected (:func:`~immunopet.tracers.organ_decays_per_bq`), and
:func:`~immunopet.dosimetry.dose_budget` turns them into organ doses and ICRP 103 effective
dose per scan of a schedule, with published effective doses beside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from immunopet.dosimetry import (
    REST_OF_BODY,
    URINARY_BLADDER_CONTENTS,
    DoseBudget,
    bladder_contents_tiac_from_curve_s,
    dose_budget,
)
from immunopet.physics import nuclide
from immunopet.tracers import VectorFormat
from immunopet.tracers._pharmacokinetics import (
    TwoTissueVectorModel,
    organ_decays_per_bq,
    vector_pharmacokinetics,
)
from immunopet.units import S_PER_DAY, S_PER_MINUTE

__all__ = ["TracerDosePlan", "plan_dose"]

#: Regions of the pharmacokinetic model that the dosimetry has no organ for; their decays
#: are spread over the rest of the body.
_SPREAD_OVER_BODY = ("blood", "remainder")
_NOT_A_REGION = ("whole_body",)
#: Sample times of the cumulative urinary excretion for the bladder model: 0, then a
#: logarithmic grid from 1 min to 60 days (the excretion of an antibody goes on for weeks).
_URINE_GRID_S = np.concatenate(([0.0], np.geomspace(S_PER_MINUTE, 60.0 * S_PER_DAY, 2000)))


def _bladder_contents_per_bq_s(model: TwoTissueVectorModel, nuclide_name: str) -> float:
    """Ã/A₀ of the urinary-bladder contents: the model's urinary excretion, voided periodically.

    The cumulative excreted %ID (decay-corrected, ``organ_percent_id``'s ``excreted``) times the
    renal share of excretion is the cumulative urine fraction U(t) of
    :func:`immunopet.dosimetry.bladder_contents_tiac_from_curve_s` (default voiding schedule).
    """
    excreted = model.organ_percent_id(_URINE_GRID_S)["excreted"] / 100.0
    urine = np.clip(np.maximum.accumulate(excreted), 0.0, 1.0) * model.parameters.renal_fraction
    return bladder_contents_tiac_from_curve_s(
        _URINE_GRID_S, urine, half_life_s=nuclide(nuclide_name).half_life_s
    )


@dataclass(frozen=True)
class TracerDosePlan:
    """Effective dose of a schedule of administrations of one tracer, with its assumptions."""

    vector_format: VectorFormat
    nuclide: str
    antigen_density: float
    organ_decays_per_bq_s: dict[str, float]
    budget: DoseBudget
    assumptions: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "vector_format": self.vector_format.value,
            "nuclide": self.nuclide,
            "antigen_density": self.antigen_density,
            "organ_decays_per_bq_s": self.organ_decays_per_bq_s,
            **self.budget.as_dict(),
            "assumptions": list(self.assumptions),
        }


def plan_dose(
    vector_format: VectorFormat | str,
    nuclide_name: str,
    schedule: Sequence[tuple[str, float]],
    *,
    antigen_density: float = 1.0,
) -> TracerDosePlan:
    """Effective dose per scan and cumulative for ``schedule`` of a vector labelled with a nuclide.

    Parameters
    ----------
    vector_format : VectorFormat or str
        The vector (its pharmacokinetics come from ``data/vector_pk.toml``).
    nuclide_name : str
        The label.
    schedule : sequence of (str, float)
        ``(label, injected_activity_bq)`` per administration.
    antigen_density : float, optional
        Tumour antigen density relative to the reference tumour. The model's tumour is outside
        its mass balance and is not a dosimetry region, so the density does not change the
        dose (said in the assumptions).

    Returns
    -------
    TracerDosePlan

    Examples
    --------
    >>> plan = plan_dose("igg", "Zr-89", [("baseline", 37e6), ("day 28", 37e6)])
    >>> scans = plan.budget.scans
    >>> round(scans[1].cumulative_effective_dose_sv / scans[0].effective_dose_sv, 9)
    2.0

    """
    fmt = VectorFormat(vector_format)
    model = TwoTissueVectorModel(vector_pharmacokinetics(fmt), antigen_density=antigen_density)
    per_region = organ_decays_per_bq(model, nuclide_name)
    sources: dict[str, float] = {}
    for region, decays in per_region.items():
        if region in _NOT_A_REGION:
            continue
        key = REST_OF_BODY if region in _SPREAD_OVER_BODY else region
        sources[key] = sources.get(key, 0.0) + decays
    bladder_s = _bladder_contents_per_bq_s(model, nuclide_name)
    if bladder_s > 0.0:
        sources[URINARY_BLADDER_CONTENTS] = bladder_s
    budget = dose_budget(schedule, sources, nuclide_name)
    assumptions = (
        f"pharmacokinetics of the {fmt.value} format from data/vector_pk.toml "
        f"(antigen density {antigen_density:g} × reference)",
        "activity in blood and in the model's remainder is spread over the rest of the body: "
        "blood-rich organs (heart, lungs, red marrow) get no extra activity, which "
        "under-estimates their dose for long-circulating vectors",
        "urinary excretion (the model's renal share of excreted activity) fills the bladder "
        "contents, voided on the default schedule (dosimetry._bladder); hepatobiliary "
        "excretion leaves the body at once (no gut-wall dose)",
        "the tumour is outside the pharmacokinetic mass balance and is not a dosimetry region "
        "(small and patient-specific): antigen density does not change the dose",
        *budget.per_bq.assumptions,
    )
    return TracerDosePlan(
        vector_format=fmt,
        nuclide=budget.per_bq.nuclide,
        antigen_density=antigen_density,
        organ_decays_per_bq_s=dict(per_region),
        budget=budget,
        assumptions=tuple(dict.fromkeys(assumptions)),
    )
