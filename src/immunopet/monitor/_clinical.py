"""ASTCT CRS and ICANS grades per day from the manifest's clinical record, JSON-ready.

:func:`astct_grades` turns the clinical observations of a study manifest
(:meth:`immunopet.io.manifest.Manifest.clinical_observations`) into one plain dict per clinical day with
the ASTCT consensus grades (Lee et al., Biol Blood Marrow Transplant 2019;25:625–638; graded by
:func:`~immunopet.monitor._astct.grade_course`) and the inputs they were read from, for
``results.json`` (``clinical_grades``) beside the imaging events.

Clinical grades are the physician's record: imaging never overrides a grade. The imaging events
(``crs_inflammation``, ``icans_inflammation``) localise where inflammation is seen; nothing here
reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, Protocol

from immunopet.errors import InputError
from immunopet.monitor._astct import (
    ClinicalObservation,
    CrsGrade,
    DomainGrade,
    IcansGrade,
    grade_course,
)

__all__ = ["astct_grades"]


class _HasClinical(Protocol):
    def clinical_observations(self) -> dict[int, ClinicalObservation]: ...


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set | tuple | list):
        return sorted(_plain(item) for item in value)
    return value


def _inputs(obs: ClinicalObservation) -> dict[str, Any]:
    names = (
        "age_years",
        "temperature_c",
        "hypotension",
        "oxygen",
        "ice_score",
        "capd_score",
        "consciousness",
        "seizure",
        "motor",
        "intracranial",
        "antipyretic",
        "tocilizumab",
        "corticosteroids",
        "other_anticytokine",
        "developmental_delay",
        "other_cause",
    )
    return {name: _plain(getattr(obs, name)) for name in names}


def _rows(domains: tuple[DomainGrade, ...]) -> list[dict[str, Any]]:
    return [
        {
            "domain": row.domain.value,
            "grade": row.grade,
            "highest_possible": row.highest_possible,
            "finding": row.finding,
        }
        for row in domains
    ]


def _grade(prefix: str, grade: CrsGrade | IcansGrade) -> dict[str, Any]:
    return {
        f"{prefix}_grade": grade.grade,
        f"{prefix}_highest_possible": grade.highest_possible,
        f"{prefix}_complete": grade.complete,
        f"{prefix}_deciding": [domain.value for domain in grade.deciding],
        f"{prefix}_description": grade.describe(),
        f"{prefix}_domains": _rows(grade.domains),
        f"{prefix}_missing": list(grade.missing),
        f"{prefix}_notes": list(grade.notes),
    }


def astct_grades(
    clinical: _HasClinical | Mapping[int, ClinicalObservation] | None,
) -> list[dict[str, Any]]:
    """ASTCT CRS and ICANS grade of every clinical day, with the inputs used (JSON-ready).

    Parameters
    ----------
    clinical : Manifest, mapping of int to ClinicalObservation, or None
        The parsed study manifest (:func:`immunopet.io.manifest.load_manifest`; its clinical records
        with grading data are used), or the observations keyed by clinical day (day 0 = the
        infusion day), or ``None`` (no manifest: no grades).

    Returns
    -------
    list of dict
        One dict per observed day, in day order, with ``day``; ``crs_grade`` and
        ``icans_grade`` (0–4, a lower bound when ``*_complete`` is false), ``*_highest_possible``
        (with every unrecorded finding at its worst), ``*_complete``, ``*_deciding`` (the domains
        that set the grade), ``*_description`` (one line), ``*_domains`` (each table row as read:
        domain, grade, highest possible, finding), ``*_missing`` and ``*_notes``;
        ``crs_fever_required`` (false once CRS was diagnosed and antipyretic or anti-cytokine
        therapy started), ``icans_tool`` (ICE or CAPD); ``inputs`` (the observation as graded:
        age, temperature °C, hypotension and oxygen categories, ICE/CAPD score, consciousness,
        seizure, motor, intracranial findings, therapies, developmental delay, domains
        attributed to another cause); and ``criteria`` (the source).

    Raises
    ------
    InputError
        If ``clinical`` is neither a manifest nor a mapping of day to observation.

    Examples
    --------
    >>> from immunopet.monitor import ClinicalObservation
    >>> days = astct_grades({
    ...     2: ClinicalObservation(age_years=60, temperature_c=39.0, hypotension="none",
    ...                            oxygen="low_flow_nasal_cannula", ice_score=10,
    ...                            consciousness="alert", seizure="none", motor="none",
    ...                            intracranial="none"),
    ... })
    >>> days[0]["day"], days[0]["crs_grade"], days[0]["icans_grade"], days[0]["crs_deciding"]
    (2, 2, 0, ['hypoxia'])

    """
    if clinical is None:
        return []
    if isinstance(clinical, Mapping):
        observations: Mapping[int, ClinicalObservation] = clinical
    elif callable(getattr(clinical, "clinical_observations", None)):
        observations = clinical.clinical_observations()
    else:
        raise InputError(
            f"expected a Manifest or a mapping of day to ClinicalObservation, got "
            f"{type(clinical).__name__}",
            field="clinical",
        )
    result = []
    for day in grade_course(observations):
        result.append(
            {
                "day": day.day,
                **_grade("crs", day.crs),
                "crs_fever_required": day.crs.fever_required,
                **_grade("icans", day.icans),
                "icans_tool": day.icans.tool.value,
                "inputs": _inputs(observations[day.day]),
                "criteria": "ASTCT consensus grading, Lee DW et al. Biol Blood Marrow "
                "Transplant 2019;25:625-638",
            }
        )
    return result
