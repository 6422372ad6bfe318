"""Dose budget of an imaging schedule, with published effective doses beside the model's.

Each administration is independent and doses are linear in activity (MIRD schema): the
estimate per becquerel administered, from the time-integrated activity coefficients of a
pharmacokinetic model (Ã/A₀ per region, s), is scaled by each scan's injected activity and the
scans' effective doses add up. Published effective doses of immuno-PET agents
(``data/published_doses.toml``) come with the budget so a report can show them side by side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from immunopet.data import read_toml
from immunopet.dosimetry._mird import DoseEstimate, estimate_dose
from immunopet.errors import InputError
from immunopet.physics import canonical_nuclide_name
from immunopet.units import BQ_PER_MBQ

__all__ = ["DoseBudget", "PublishedDose", "ScanDose", "dose_budget", "published_doses"]


def _sv_per_msv() -> float:
    from scipy import constants  # imported on first use: keeps `import immunopet` light

    return float(constants.milli)


@dataclass(frozen=True)
class PublishedDose:
    """A published effective dose of a radiolabelled agent (``data/published_doses.toml``).

    Parameters
    ----------
    key : str
        Identifier in the data file.
    agent : str
        The radiopharmaceutical, e.g. ``"[89Zr]Zr-DFO-trastuzumab"``.
    nuclide : str
        Canonical nuclide name.
    vector : str
        Vector class (``"IgG"``, ``"minibody"`` …).
    effective_dose_sv_per_bq : float
        Published mean effective dose, Sv per Bq administered.
    highest_dose_organ : str
        Organ with the highest published absorbed dose.
    highest_organ_dose_gy_per_bq : float
        Its published dose, Gy per Bq.
    method : str
        Software, phantom and tissue weights used by the authors.
    citation : str
        The paper.
    confidence : str
        READ (read in this project's sources) or RECALLED.

    """

    key: str
    agent: str
    nuclide: str
    vector: str
    effective_dose_sv_per_bq: float
    highest_dose_organ: str
    highest_organ_dose_gy_per_bq: float
    method: str
    citation: str
    confidence: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary in canonical units."""
        return {
            "key": self.key,
            "agent": self.agent,
            "nuclide": self.nuclide,
            "vector": self.vector,
            "effective_dose_sv_per_bq": self.effective_dose_sv_per_bq,
            "highest_dose_organ": self.highest_dose_organ,
            "highest_organ_dose_gy_per_bq": self.highest_organ_dose_gy_per_bq,
            "method": self.method,
            "citation": self.citation,
            "confidence": self.confidence,
        }


@cache
def _all_published() -> tuple[PublishedDose, ...]:
    per_mbq_to_per_bq = _sv_per_msv() / BQ_PER_MBQ
    rows = read_toml("published_doses.toml")["agent"]
    return tuple(
        PublishedDose(
            key=str(row["key"]),
            agent=str(row["agent"]),
            nuclide=canonical_nuclide_name(str(row["nuclide"])),
            vector=str(row["vector"]),
            effective_dose_sv_per_bq=float(row["effective_dose_msv_per_mbq"]) * per_mbq_to_per_bq,
            highest_dose_organ=str(row["highest_dose_organ"]),
            highest_organ_dose_gy_per_bq=float(row["highest_organ_dose_mgy_per_mbq"])
            * per_mbq_to_per_bq,
            method=str(row["method"]),
            citation=str(row["citation"]),
            confidence=str(row["confidence"]),
        )
        for row in rows
    )


def published_doses(nuclide_name: str | None = None) -> tuple[PublishedDose, ...]:
    """Published effective doses, all or those of one nuclide.

    Examples
    --------
    >>> all(entry.nuclide == "Zr-89" for entry in published_doses("89Zr"))
    True

    """
    entries = _all_published()
    if nuclide_name is None:
        return entries
    name = canonical_nuclide_name(nuclide_name)
    return tuple(entry for entry in entries if entry.nuclide == name)


@dataclass(frozen=True)
class ScanDose:
    """Dose of one administration in a schedule.

    Parameters
    ----------
    label : str
        The scan's name in the schedule (``"baseline"``, ``"CRS window"`` …).
    injected_activity_bq : float
        Activity administered, Bq.
    effective_dose_sv : float
        Effective dose of this administration, Sv.
    cumulative_effective_dose_sv : float
        Effective dose of this and all earlier administrations, Sv.
    organ_doses_gy : dict of str to float
        Absorbed dose per tissue from this administration, Gy.

    """

    label: str
    injected_activity_bq: float
    effective_dose_sv: float
    cumulative_effective_dose_sv: float
    organ_doses_gy: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary in canonical units."""
        return {
            "label": self.label,
            "injected_activity_bq": self.injected_activity_bq,
            "effective_dose_sv": self.effective_dose_sv,
            "cumulative_effective_dose_sv": self.cumulative_effective_dose_sv,
            "organ_doses_gy": dict(self.organ_doses_gy),
        }


@dataclass(frozen=True)
class DoseBudget:
    """Effective dose per becquerel, per scan and in total for an imaging schedule.

    Parameters
    ----------
    per_bq : DoseEstimate
        Organ and effective doses per becquerel administered (Gy/Bq, Sv/Bq).
    scans : tuple of ScanDose
        One entry per administration, in schedule order.
    published : tuple of PublishedDose
        Published effective doses of agents with the same nuclide, for comparison.

    """

    per_bq: DoseEstimate
    scans: tuple[ScanDose, ...]
    published: tuple[PublishedDose, ...]

    @property
    def effective_dose_sv_per_bq(self) -> float:
        """Model effective dose per becquerel administered, Sv/Bq."""
        return self.per_bq.effective_dose_sv

    @property
    def total_effective_dose_sv(self) -> float:
        """Effective dose of the whole schedule, Sv."""
        return self.scans[-1].cumulative_effective_dose_sv if self.scans else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary in canonical units (Bq, Gy, Sv)."""
        return {
            "nuclide": self.per_bq.nuclide,
            "effective_dose_sv_per_bq": self.effective_dose_sv_per_bq,
            "total_effective_dose_sv": self.total_effective_dose_sv,
            "scans": [scan.as_dict() for scan in self.scans],
            "per_bq": self.per_bq.as_dict(),
            "published": [entry.as_dict() for entry in self.published],
        }


def dose_budget(
    schedule: Sequence[tuple[str, float]],
    organ_tiac_s: Mapping[str, float],
    nuclide_name: str,
) -> DoseBudget:
    """Effective dose per scan and cumulative for a planned tracer and imaging schedule.

    Parameters
    ----------
    schedule : sequence of (str, float)
        ``(label, injected_activity_bq)`` per administration, e.g.
        ``[("baseline", 37e6), ("CRS window", 37e6), ("response", 37e6)]``.
    organ_tiac_s : mapping of str to float
        Time-integrated activity coefficient per source region, Ã/A₀ in s (Bq·s per Bq
        administered; MIRD Pamphlet 21), from the pharmacokinetic model. Keys as for
        :func:`immunopet.dosimetry.absorbed_doses_gy`, including ``"rest_of_body"``.
    nuclide_name : str
        The radionuclide.

    Returns
    -------
    DoseBudget

    Raises
    ------
    InputError
        If a label is empty or an activity is not a positive finite number.

    Examples
    --------
    >>> tiac_s = {"liver": 0.12 * 4.07e5, "rest_of_body": 0.88 * 3.36e5}
    >>> budget = dose_budget([("baseline", 37e6), ("response", 37e6)], tiac_s, "Zr-89")
    >>> budget.total_effective_dose_sv == 2 * budget.scans[0].effective_dose_sv
    True

    """
    per_bq = estimate_dose(organ_tiac_s, nuclide_name)
    scans: list[ScanDose] = []
    cumulative_sv = 0.0
    for label, activity in schedule:
        activity_bq = float(activity)
        if not str(label).strip():
            raise InputError("every scan in the schedule needs a label", field="schedule")
        if not math.isfinite(activity_bq) or activity_bq <= 0.0:
            raise InputError(
                f"injected activity of {label!r} must be a positive number of Bq, got {activity!r}",
                field="schedule",
            )
        scan = per_bq.scaled(activity_bq)
        cumulative_sv += scan.effective_dose_sv
        scans.append(
            ScanDose(
                label=str(label),
                injected_activity_bq=activity_bq,
                effective_dose_sv=scan.effective_dose_sv,
                cumulative_effective_dose_sv=cumulative_sv,
                organ_doses_gy=scan.organ_doses_gy,
            )
        )
    return DoseBudget(per_bq=per_bq, scans=tuple(scans), published=published_doses(nuclide_name))
