"""ASTCT consensus grading of CRS and ICANS from daily clinical observations (Lee et al. 2019).

Lee DW, Santomasso BD, Locke FL, et al. ASTCT consensus grading for cytokine release syndrome
and neurologic toxicity associated with immune effector cells. Biol Blood Marrow Transplant
2019;25(4):625–638. doi:10.1016/j.bbmt.2018.12.758

The criteria live in ``data/astct_grading.toml`` (each cell with its source and whether it was
read or recalled); this module only applies them:

* **CRS** needs fever (≥ 38.0 °C, not attributable to another cause). Its grade is the more
  severe of hypotension (none / not requiring vasopressors / one vasopressor with or without
  vasopressin / multiple vasopressors excluding vasopressin) and hypoxia (low-flow nasal cannula
  ≤ 6 L/min or blow-by / high-flow cannula, facemask, non-rebreather or Venturi mask / positive
  pressure). Once CRS has been diagnosed and antipyretic or anti-cytokine therapy (tocilizumab,
  corticosteroids …) has started, fever is no longer required: the grade is driven by
  hypotension and hypoxia. Organ toxicities are graded by CTCAE and never change the CRS grade.
* **ICANS** is the most severe of five domains not attributable to another cause: the
  encephalopathy score (ICE for patients aged 12 or more; CAPD for children under 12 and for
  patients with developmental delay), depressed level of consciousness, seizure, motor findings,
  and raised intracranial pressure / cerebral oedema.

Clinical grades are the physician's record; imaging shown beside them localises, it never
overrides a grade.

Nothing is assumed. A finding that was not recorded is ``None``; the grade is then a lower bound
(the grade with every unknown finding absent) and ``highest_possible`` is the grade with every
unknown finding at its worst. ``complete`` is true when the two agree: the unknowns could not have
changed the grade.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar

from immunopet.data import read_toml
from immunopet.errors import InputError

__all__ = [
    "ClinicalObservation",
    "Consciousness",
    "CrsGrade",
    "DayGrades",
    "Domain",
    "DomainGrade",
    "EncephalopathyTool",
    "Hypotension",
    "IcansGrade",
    "IntracranialFinding",
    "MotorFinding",
    "OxygenSupport",
    "Seizure",
    "grade_course",
    "grade_crs",
    "grade_icans",
]

_TABLE = "astct_grading.toml"


# --------------------------------------------------------------------------- vocabularies


class Domain(StrEnum):
    """A row of the ASTCT grading tables: the evidence a grade is read from."""

    FEVER = "fever"
    HYPOTENSION = "hypotension"
    HYPOXIA = "hypoxia"
    ENCEPHALOPATHY = "encephalopathy"
    """The ICE score (age ≥ 12) or the CAPD score (children < 12, developmental delay)."""
    CONSCIOUSNESS = "consciousness"
    SEIZURE = "seizure"
    MOTOR = "motor"
    INTRACRANIAL = "intracranial"
    """Elevated intracranial pressure / cerebral oedema."""


_ICANS_DOMAINS = (
    Domain.ENCEPHALOPATHY,
    Domain.CONSCIOUSNESS,
    Domain.SEIZURE,
    Domain.MOTOR,
    Domain.INTRACRANIAL,
)


class Hypotension(StrEnum):
    """CRS hypotension row: whether hypotension is present and what it needs."""

    NONE = "none"
    NOT_REQUIRING_VASOPRESSORS = "not_requiring_vasopressors"
    ONE_VASOPRESSOR = "one_vasopressor"
    """One vasopressor, with or without vasopressin."""
    MULTIPLE_VASOPRESSORS = "multiple_vasopressors"
    """Two or more vasopressors, vasopressin not counted."""

    @classmethod
    def from_vasopressors(cls, n_vasopressors: int, *, vasopressin: bool) -> Hypotension:
        """Category of a hypotensive patient from the vasopressors running.

        Parameters
        ----------
        n_vasopressors : int
            Number of vasopressors running other than vasopressin (norepinephrine,
            phenylephrine, epinephrine, dopamine …), ≥ 0.
        vasopressin : bool
            Whether vasopressin is running too.

        Returns
        -------
        Hypotension
            ``MULTIPLE_VASOPRESSORS`` for two or more non-vasopressin agents (the criteria say
            "excluding vasopressin"), ``ONE_VASOPRESSOR`` for one agent with or without
            vasopressin, or vasopressin alone (it is a vasopressor requirement), otherwise
            ``NOT_REQUIRING_VASOPRESSORS``.

        Examples
        --------
        >>> Hypotension.from_vasopressors(1, vasopressin=True).value
        'one_vasopressor'
        >>> Hypotension.from_vasopressors(2, vasopressin=False).value
        'multiple_vasopressors'

        """
        if isinstance(n_vasopressors, bool) or not isinstance(n_vasopressors, int):
            raise InputError(
                f"must be a whole number, got {n_vasopressors!r}", field="n_vasopressors"
            )
        if n_vasopressors < 0:
            raise InputError(f"must be >= 0, got {n_vasopressors}", field="n_vasopressors")
        if n_vasopressors >= 2:
            return cls.MULTIPLE_VASOPRESSORS
        if n_vasopressors == 1 or vasopressin:
            return cls.ONE_VASOPRESSOR
        return cls.NOT_REQUIRING_VASOPRESSORS


class OxygenSupport(StrEnum):
    """CRS hypoxia row: the oxygen support the patient needs (the highest of the day)."""

    NONE = "none"
    LOW_FLOW_NASAL_CANNULA = "low_flow_nasal_cannula"
    """Nasal cannula at ≤ 6 L/min."""
    BLOW_BY = "blow_by"
    HIGH_FLOW_NASAL_CANNULA = "high_flow_nasal_cannula"
    """Nasal cannula at > 6 L/min."""
    FACEMASK = "facemask"
    NON_REBREATHER = "non_rebreather"
    VENTURI = "venturi"
    CPAP = "cpap"
    BIPAP = "bipap"
    MECHANICAL_VENTILATION = "mechanical_ventilation"
    """Intubation and mechanical ventilation."""

    @classmethod
    def nasal_cannula(cls, flow_l_per_min: float) -> OxygenSupport:
        """Low- or high-flow nasal cannula from the oxygen flow.

        Parameters
        ----------
        flow_l_per_min : float
            Oxygen flow through the nasal cannula, L/min, > 0.

        Returns
        -------
        OxygenSupport
            ``LOW_FLOW_NASAL_CANNULA`` at ≤ 6 L/min, ``HIGH_FLOW_NASAL_CANNULA`` above
            (the limit is in ``data/astct_grading.toml``).

        Examples
        --------
        >>> OxygenSupport.nasal_cannula(6.0).value, OxygenSupport.nasal_cannula(6.5).value
        ('low_flow_nasal_cannula', 'high_flow_nasal_cannula')

        """
        if (
            isinstance(flow_l_per_min, bool)
            or not isinstance(flow_l_per_min, int | float)
            or not math.isfinite(flow_l_per_min)
            or flow_l_per_min <= 0.0
        ):
            raise InputError(
                f"must be a finite number > 0 L/min, got {flow_l_per_min!r}",
                field="flow_l_per_min",
            )
        if flow_l_per_min <= _criteria().low_flow_max_l_per_min:
            return cls.LOW_FLOW_NASAL_CANNULA
        return cls.HIGH_FLOW_NASAL_CANNULA


class Consciousness(StrEnum):
    """ICANS depressed level of consciousness (not attributable to another cause, e.g. sedation)."""

    ALERT = "alert"
    """Fully awake: no depressed level of consciousness."""
    AWAKENS_SPONTANEOUSLY = "awakens_spontaneously"
    AWAKENS_TO_VOICE = "awakens_to_voice"
    AWAKENS_TO_TACTILE_STIMULUS = "awakens_to_tactile_stimulus"
    UNAROUSABLE = "unarousable"
    """Unarousable, or needs vigorous or repetitive tactile stimuli; stupor or coma."""


class Seizure(StrEnum):
    """ICANS seizure row (the most severe seizure of the day)."""

    NONE = "none"
    CLINICAL_RAPIDLY_RESOLVING = "clinical_rapidly_resolving"
    """Any clinical seizure, focal or generalised, that resolves rapidly."""
    NONCONVULSIVE_RESOLVING_WITH_INTERVENTION = "nonconvulsive_resolving_with_intervention"
    """Non-convulsive seizures on EEG that resolve with intervention."""
    PROLONGED = "prolonged"
    """Life-threatening prolonged seizure (> 5 min)."""
    REPETITIVE_WITHOUT_RETURN_TO_BASELINE = "repetitive_without_return_to_baseline"
    """Repetitive clinical or electrical seizures without return to baseline in between."""


class MotorFinding(StrEnum):
    """ICANS motor row."""

    NONE = "none"
    TREMOR_OR_MYOCLONUS = "tremor_or_myoclonus"
    """Graded by CTCAE v5.0; does not influence the ICANS grade."""
    DEEP_FOCAL_WEAKNESS = "deep_focal_weakness"
    """Deep focal motor weakness such as hemiparesis or paraparesis."""


class IntracranialFinding(StrEnum):
    """ICANS elevated intracranial pressure / cerebral oedema row (the most severe finding)."""

    NONE = "none"
    INTRACRANIAL_HEMORRHAGE = "intracranial_hemorrhage"
    """Excluded from ICANS (with or without oedema); graded by CTCAE v5.0."""
    FOCAL_EDEMA = "focal_edema"
    DIFFUSE_EDEMA = "diffuse_edema"
    POSTURING = "posturing"
    """Decerebrate or decorticate posturing."""
    CRANIAL_NERVE_VI_PALSY = "cranial_nerve_vi_palsy"
    PAPILLEDEMA = "papilledema"
    CUSHINGS_TRIAD = "cushings_triad"


class EncephalopathyTool(StrEnum):
    """The encephalopathy score ASTCT uses for the patient."""

    ICE = "ICE"
    """Immune effector Cell-associated Encephalopathy score, 0–10 (age ≥ 12 years)."""
    CAPD = "CAPD"
    """Cornell Assessment of Pediatric Delirium, 0–32 (age < 12, or developmental delay)."""


# --------------------------------------------------------------------------- criteria (data)


@dataclass(frozen=True)
class _Band:
    low: int
    high: int
    grade: int
    criterion: str


@dataclass(frozen=True)
class _Criteria:
    fever_threshold_c: float
    low_flow_max_l_per_min: float
    capd_below_age_years: float
    age_max_years: float
    temperature_min_c: float
    temperature_max_c: float
    ice_max: int
    capd_max: int
    ice_bands: tuple[_Band, ...]
    capd_bands: tuple[_Band, ...]
    categories: Mapping[str, Mapping[str, tuple[int, str]]]


@cache
def _criteria() -> _Criteria:
    """The ASTCT criteria from ``data/astct_grading.toml`` (read once)."""
    table = read_toml(_TABLE)
    crs, icans = table["crs"], table["icans"]

    def categories(section: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
        return {key: (int(row["grade"]), str(row["criterion"])) for key, row in section.items()}

    def bands(rows: Iterable[Mapping[str, Any]]) -> tuple[_Band, ...]:
        return tuple(
            _Band(int(r["low"]), int(r["high"]), int(r["grade"]), str(r["criterion"])) for r in rows
        )

    return _Criteria(
        fever_threshold_c=float(crs["fever_threshold_c"]),
        low_flow_max_l_per_min=float(crs["low_flow_max_l_per_min"]),
        capd_below_age_years=float(icans["capd_below_age_years"]),
        age_max_years=float(icans["age_max_years"]),
        temperature_min_c=float(table["validation"]["temperature_min_c"]),
        temperature_max_c=float(table["validation"]["temperature_max_c"]),
        ice_max=sum(int(points) for points in icans["ice_items"].values()),
        capd_max=int(icans["capd"]["items"]) * int(icans["capd"]["item_max_points"]),
        ice_bands=bands(icans["ice_bands"]),
        capd_bands=bands(icans["capd_bands"]),
        categories={
            "hypotension": categories(crs["hypotension"]),
            "oxygen": categories(crs["oxygen"]),
            "consciousness": categories(icans["consciousness"]),
            "seizure": categories(icans["seizure"]),
            "motor": categories(icans["motor"]),
            "intracranial": categories(icans["intracranial"]),
        },
    )


# --------------------------------------------------------------------------- observation

_E = TypeVar("_E", bound=StrEnum)


def _coerce_enum(value: object, enum: type[_E], name: str) -> _E | None:
    if value is None or isinstance(value, enum):
        return value
    allowed = ", ".join(member.value for member in enum)
    if isinstance(value, str) and value in enum.__members__.values():
        return enum(value)
    raise InputError(f"unknown value {value!r}", field=name, hint=f"use one of: {allowed}")


def _check_score(value: object, name: str, maximum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"must be a whole number 0-{maximum}, got {value!r}", field=name)
    if not 0 <= value <= maximum:
        raise InputError(f"must be between 0 and {maximum}, got {value}", field=name)


@dataclass(frozen=True)
class ClinicalObservation:
    """What was recorded about one patient on one day, for ASTCT CRS and ICANS grading.

    Record the worst of the day in each field (the highest temperature, the most support).
    ``None`` means *not recorded*: the grade is then a lower bound and the field is named in the
    grade's ``missing``. Enum fields also accept their string values (e.g. from a manifest).

    Parameters
    ----------
    age_years : float
        Age at the observation, years, 0–130. Chooses the encephalopathy tool: CAPD below 12,
        ICE from 12 (Lee 2019).
    temperature_c : float, optional
        Highest body temperature of the day, °C (plausible range 25–45 °C; a value in °F is
        refused). Fever is ≥ 38.0 °C as recorded, without rounding.
    hypotension : Hypotension, optional
        Hypotension and its vasopressor need (see :meth:`Hypotension.from_vasopressors`).
    oxygen : OxygenSupport, optional
        Oxygen support needed (see :meth:`OxygenSupport.nasal_cannula`).
    ice_score : int, optional
        ICE score 0–10; only for patients graded with ICE.
    capd_score : int, optional
        CAPD score 0–32; only for patients graded with CAPD.
    consciousness : Consciousness, optional
        Level of consciousness.
    seizure : Seizure, optional
        Most severe seizure.
    motor : MotorFinding, optional
        Motor finding.
    intracranial : IntracranialFinding, optional
        Most severe sign of raised intracranial pressure / cerebral oedema.
    antipyretic, tocilizumab, corticosteroids, other_anticytokine : bool, optional
        Therapy given this day. After CRS has been diagnosed, any of them removes the need for
        fever in the grading of that and later days (:func:`grade_course`).
    developmental_delay : bool, optional
        Baseline developmental delay: CAPD is used whatever the age.
    other_cause : iterable of Domain, optional
        Domains whose finding the treating physician attributes to another cause (e.g. fever of
        an infection, consciousness depressed by sedation). They are reported, never graded.

    Examples
    --------
    >>> obs = ClinicalObservation(age_years=54, temperature_c=38.6, hypotension="none",
    ...                           oxygen="low_flow_nasal_cannula")
    >>> obs.oxygen is OxygenSupport.LOW_FLOW_NASAL_CANNULA
    True

    """

    age_years: float
    temperature_c: float | None = None
    hypotension: Hypotension | None = None
    oxygen: OxygenSupport | None = None
    ice_score: int | None = None
    capd_score: int | None = None
    consciousness: Consciousness | None = None
    seizure: Seizure | None = None
    motor: MotorFinding | None = None
    intracranial: IntracranialFinding | None = None
    antipyretic: bool = False
    tocilizumab: bool = False
    corticosteroids: bool = False
    other_anticytokine: bool = False
    developmental_delay: bool = False
    other_cause: frozenset[Domain] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        limits = _criteria()
        age = self.age_years
        if isinstance(age, bool) or not isinstance(age, int | float) or not math.isfinite(age):
            raise InputError(f"must be a finite number of years, got {age!r}", field="age_years")
        if not 0.0 <= age <= limits.age_max_years:
            raise InputError(
                f"must be between 0 and {limits.age_max_years:g} years, got {age:g}",
                field="age_years",
            )
        temp = self.temperature_c
        if temp is not None:
            if (
                isinstance(temp, bool)
                or not isinstance(temp, int | float)
                or not math.isfinite(temp)
            ):
                raise InputError(f"must be a finite number, got {temp!r}", field="temperature_c")
            low, high = limits.temperature_min_c, limits.temperature_max_c
            if not low <= temp <= high:
                raise InputError(
                    f"{temp:g} °C is outside the plausible {low:g}-{high:g} °C",
                    field="temperature_c",
                    hint="give the temperature in °C: (°F − 32) × 5/9"
                    if temp > high
                    else "check the recorded value",
                )
        for name, enum in (
            ("hypotension", Hypotension),
            ("oxygen", OxygenSupport),
            ("consciousness", Consciousness),
            ("seizure", Seizure),
            ("motor", MotorFinding),
            ("intracranial", IntracranialFinding),
        ):
            object.__setattr__(self, name, _coerce_enum(getattr(self, name), enum, name))
        for name in (
            "antipyretic",
            "tocilizumab",
            "corticosteroids",
            "other_anticytokine",
            "developmental_delay",
        ):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"must be true or false, got {getattr(self, name)!r}", field=name)
        other_cause: object = self.other_cause
        if isinstance(other_cause, str) or not isinstance(other_cause, Iterable):
            raise InputError(
                f"must be a collection of domain names, got {other_cause!r}",
                field="other_cause",
                hint=f"e.g. other_cause=[{other_cause!r}]"
                if isinstance(other_cause, str)
                else "e.g. other_cause=['consciousness']",
            )
        causes: set[Domain] = set()
        for item in other_cause:
            domain = _coerce_enum(item, Domain, "other_cause")
            if domain is None:
                raise InputError("holds None; name the domains", field="other_cause")
            causes.add(domain)
        object.__setattr__(self, "other_cause", frozenset(causes))
        _check_score(self.ice_score, "ice_score", limits.ice_max)
        _check_score(self.capd_score, "capd_score", limits.capd_max)
        if self.tool is EncephalopathyTool.CAPD and self.ice_score is not None:
            raise InputError(
                "ASTCT grades children under 12 and patients with developmental delay with "
                "the CAPD, not the ICE score",
                field="ice_score",
                hint="record capd_score instead",
            )
        if self.tool is EncephalopathyTool.ICE and self.capd_score is not None:
            raise InputError(
                "ASTCT grades patients aged 12 or more with the ICE score, not the CAPD",
                field="capd_score",
                hint="record ice_score, or set developmental_delay=True if that is why CAPD was used",
            )

    @property
    def tool(self) -> EncephalopathyTool:
        """The encephalopathy score ASTCT uses for this patient (CAPD below 12 years)."""
        if self.developmental_delay or self.age_years < _criteria().capd_below_age_years:
            return EncephalopathyTool.CAPD
        return EncephalopathyTool.ICE

    @property
    def masking_therapy(self) -> bool:
        """Whether antipyretic or anti-cytokine therapy was given this day."""
        return (
            self.antipyretic or self.tocilizumab or self.corticosteroids or self.other_anticytokine
        )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DomainGrade:
    """One row of the grading table as read for this observation.

    Attributes
    ----------
    domain : Domain
        The row.
    grade : int
        The row's grade, 0–4 (0: the row's criterion is absent); a lower bound when unknown.
    highest_possible : int
        The row's grade if the unknown finding were at its worst (equal to ``grade`` if known).
    finding : str
        What was recorded and the criterion it meets, in words.

    """

    domain: Domain
    grade: int
    highest_possible: int
    finding: str


@dataclass(frozen=True)
class _AstctGrade:
    grade: int
    highest_possible: int
    domains: tuple[DomainGrade, ...]
    missing: tuple[str, ...]
    notes: tuple[str, ...]

    _name = ""

    @property
    def complete(self) -> bool:
        """True when no unknown finding could change the grade."""
        return self.grade == self.highest_possible

    @property
    def deciding(self) -> tuple[Domain, ...]:
        """The domains that set the grade (empty for grade 0)."""
        if self.grade == 0:
            return ()
        return tuple(d.domain for d in self.domains if d.grade == self.grade)

    def describe(self) -> str:
        """One line for a report: the grade, or its bounds, and the deciding criteria."""
        if self.complete:
            head = f"{self._name} grade {self.grade}"
        else:
            head = (
                f"{self._name} grade ≥ {self.grade} (up to {self.highest_possible}; "
                f"not recorded: {', '.join(self.missing)})"
            )
        reasons = [d.finding for d in self.domains if self.grade and d.grade == self.grade]
        return f"{head}: {'; '.join(reasons)}" if reasons else head


@dataclass(frozen=True)
class CrsGrade(_AstctGrade):
    """ASTCT CRS grade of one day, with the evidence it was read from.

    Attributes
    ----------
    grade : int
        0–4; a lower bound when ``complete`` is false.
    highest_possible : int
        The grade if every unrecorded finding were at its worst.
    domains : tuple of DomainGrade
        Fever, hypotension and hypoxia as read.
    missing : tuple of str
        Names of the :class:`ClinicalObservation` fields that were not recorded.
    notes : tuple of str
        Rules applied (fever not required, findings attributed to another cause …).
    fever_required : bool
        False once CRS was diagnosed and antipyretic or anti-cytokine therapy started.

    """

    fever_required: bool = True
    _name = "CRS"


@dataclass(frozen=True)
class IcansGrade(_AstctGrade):
    """ASTCT ICANS grade of one day, with the evidence it was read from.

    Attributes
    ----------
    grade : int
        0–4; a lower bound when ``complete`` is false.
    highest_possible : int
        The grade if every unrecorded finding were at its worst.
    domains : tuple of DomainGrade
        Encephalopathy score, consciousness, seizure, motor and intracranial rows as read.
    missing : tuple of str
        Names of the :class:`ClinicalObservation` fields that were not recorded.
    notes : tuple of str
        Rules applied (findings attributed to another cause, excluded findings …).
    tool : EncephalopathyTool
        ICE or CAPD.

    """

    tool: EncephalopathyTool = EncephalopathyTool.ICE
    _name = "ICANS"


@dataclass(frozen=True)
class DayGrades:
    """CRS and ICANS grades of one day of a course (``day`` counted from infusion, day 0)."""

    day: int
    crs: CrsGrade
    icans: IcansGrade


# --------------------------------------------------------------------------- grading


def _category_row(
    domain: Domain, section: str, value: StrEnum | None, obs: ClinicalObservation, name: str
) -> tuple[DomainGrade, str | None]:
    """Grade of one categorical row; returns the row and the missing field name, if any."""
    table = _criteria().categories[section]
    if domain in obs.other_cause:
        text = "not recorded" if value is None else table[value.value][1]
        return DomainGrade(domain, 0, 0, f"{text}; attributed to another cause, not graded"), None
    if value is None:
        worst = max(grade for grade, _ in table.values())
        return DomainGrade(domain, 0, worst, f"{name} not recorded"), name
    grade, criterion = table[value.value]
    return DomainGrade(domain, grade, grade, criterion), None


def _band_row(
    obs: ClinicalObservation,
) -> tuple[DomainGrade, str | None]:
    """Grade of the encephalopathy row from the ICE or CAPD score."""
    criteria = _criteria()
    if obs.tool is EncephalopathyTool.ICE:
        score, bands, name = obs.ice_score, criteria.ice_bands, "ice_score"
    else:
        score, bands, name = obs.capd_score, criteria.capd_bands, "capd_score"
    domain = Domain.ENCEPHALOPATHY
    if domain in obs.other_cause:
        text = f"{name} {'not recorded' if score is None else score}"
        return DomainGrade(domain, 0, 0, f"{text}; attributed to another cause, not graded"), None
    if score is None:
        worst = max(band.grade for band in bands)
        return DomainGrade(domain, 0, worst, f"{name} not recorded"), name
    band = next(b for b in bands if b.low <= score <= b.high)
    return DomainGrade(domain, band.grade, band.grade, band.criterion), None


def grade_crs(
    obs: ClinicalObservation,
    *,
    fever_seen_before: bool,
    masking_therapy_before: bool = False,
) -> CrsGrade:
    """ASTCT consensus CRS grade of one day (Lee et al. 2019).

    Parameters
    ----------
    obs : ClinicalObservation
        The day's observation.
    fever_seen_before : bool
        CRS was diagnosed (fever not attributable to another cause) on an earlier day.
    masking_therapy_before : bool, optional
        Antipyretic or anti-cytokine therapy was given on an earlier day after CRS began.
        Together with ``fever_seen_before`` (or therapy given this day) fever is no longer
        required; :func:`grade_course` tracks both over a course.

    Returns
    -------
    CrsGrade
        Grade 0–4 (the more severe of hypotension and hypoxia; 1 for fever alone), the rows it
        was read from, and whether unrecorded fields leave it a lower bound.

    Examples
    --------
    The footnote example of the criteria: a febrile patient on a single vasopressor and a
    low-flow nasal cannula has grade 3 CRS.

    >>> obs = ClinicalObservation(age_years=60, temperature_c=39.2, hypotension="one_vasopressor",
    ...                           oxygen="low_flow_nasal_cannula")
    >>> crs = grade_crs(obs, fever_seen_before=False)
    >>> crs.grade, crs.complete, [d.value for d in crs.deciding]
    (3, True, ['hypotension'])

    Without a recorded temperature the grade is only a lower bound:

    >>> crs = grade_crs(ClinicalObservation(age_years=60, hypotension="none", oxygen="none"),
    ...                 fever_seen_before=False)
    >>> crs.grade, crs.highest_possible, crs.missing
    (0, 1, ('temperature_c',))

    """
    if not isinstance(obs, ClinicalObservation):
        raise InputError(f"expected a ClinicalObservation, got {type(obs).__name__}", field="obs")
    criteria = _criteria()
    notes: list[str] = []
    missing: list[str] = []

    waived = fever_seen_before and (masking_therapy_before or obs.masking_therapy)
    if waived:
        notes.append(
            "fever not required: CRS diagnosed earlier and antipyretic or anti-cytokine "
            "therapy started (Lee 2019)"
        )

    threshold = criteria.fever_threshold_c
    temp = obs.temperature_c
    if temp is None:
        fever = DomainGrade(Domain.FEVER, 0, 1, "temperature_c not recorded")
        missing.append("temperature_c")
    elif temp >= threshold and Domain.FEVER in obs.other_cause:
        fever = DomainGrade(
            Domain.FEVER, 0, 0, f"{temp:g} °C; attributed to another cause, not graded"
        )
    elif temp >= threshold:
        fever = DomainGrade(Domain.FEVER, 1, 1, f"fever {temp:g} °C ≥ {threshold:g} °C")
    else:
        fever = DomainGrade(Domain.FEVER, 0, 0, f"no fever: {temp:g} °C < {threshold:g} °C")

    hypotension, miss_h = _category_row(
        Domain.HYPOTENSION, "hypotension", obs.hypotension, obs, "hypotension"
    )
    hypoxia, miss_o = _category_row(Domain.HYPOXIA, "oxygen", obs.oxygen, obs, "oxygen")
    missing += [m for m in (miss_h, miss_o) if m]
    rows = (fever, hypotension, hypoxia)

    gate_low = waived or fever.grade == 1
    gate_high = waived or fever.highest_possible == 1
    grade = max(r.grade for r in rows) if gate_low else 0
    highest = max(r.highest_possible for r in rows) if gate_high else 0
    if not gate_low and max(hypotension.grade, hypoxia.grade) > 0:
        notes.append(
            "hypotension or hypoxia without CRS fever is not graded as CRS "
            "(fever is required until CRS is diagnosed and treated)"
        )
    return CrsGrade(
        grade=grade,
        highest_possible=highest,
        domains=rows,
        missing=tuple(missing),
        notes=tuple(notes),
        fever_required=not waived,
    )


def grade_icans(obs: ClinicalObservation) -> IcansGrade:
    """ASTCT consensus ICANS grade of one day (Lee et al. 2019).

    The grade is the most severe of the encephalopathy score (ICE for age ≥ 12; CAPD for
    children under 12 and for developmental delay), depressed level of consciousness, seizure,
    motor findings and raised intracranial pressure / cerebral oedema, leaving out the domains
    the physician attributes to another cause.

    Parameters
    ----------
    obs : ClinicalObservation
        The day's observation.

    Returns
    -------
    IcansGrade
        Grade 0–4, the rows it was read from, the tool used, and whether unrecorded fields
        leave it a lower bound.

    Examples
    --------
    The footnote example: an ICE score of 3 with a generalised seizure is grade 3.

    >>> obs = ClinicalObservation(age_years=45, ice_score=3, consciousness="alert",
    ...                           seizure="clinical_rapidly_resolving", motor="none",
    ...                           intracranial="none")
    >>> icans = grade_icans(obs)
    >>> icans.grade, icans.complete, [d.value for d in icans.deciding]
    (3, True, ['seizure'])

    """
    if not isinstance(obs, ClinicalObservation):
        raise InputError(f"expected a ClinicalObservation, got {type(obs).__name__}", field="obs")
    encephalopathy, miss_e = _band_row(obs)
    others = [
        _category_row(
            Domain.CONSCIOUSNESS, "consciousness", obs.consciousness, obs, "consciousness"
        ),
        _category_row(Domain.SEIZURE, "seizure", obs.seizure, obs, "seizure"),
        _category_row(Domain.MOTOR, "motor", obs.motor, obs, "motor"),
        _category_row(Domain.INTRACRANIAL, "intracranial", obs.intracranial, obs, "intracranial"),
    ]
    rows = (encephalopathy, *(row for row, _ in others))
    missing = tuple(m for m in (miss_e, *(m for _, m in others)) if m)
    notes = [
        f"{d.value}: attributed to another cause, not graded"
        for d in _ICANS_DOMAINS
        if d in obs.other_cause
    ]
    if obs.motor is MotorFinding.TREMOR_OR_MYOCLONUS:
        notes.append("tremor and myoclonus are graded by CTCAE v5.0 and do not change ICANS")
    if obs.intracranial is IntracranialFinding.INTRACRANIAL_HEMORRHAGE:
        notes.append("intracranial haemorrhage is excluded from ICANS (graded by CTCAE v5.0)")
    return IcansGrade(
        grade=max(r.grade for r in rows),
        highest_possible=max(r.highest_possible for r in rows),
        domains=rows,
        missing=missing,
        notes=tuple(notes),
        tool=obs.tool,
    )


def grade_course(observations_by_day: Mapping[int, ClinicalObservation]) -> tuple[DayGrades, ...]:
    """ASTCT CRS and ICANS grades of every observed day of a course.

    Carries the one rule that spans days: once CRS has been diagnosed (a day of CRS grade ≥ 1)
    and antipyretic or anti-cytokine therapy has been given on or after that day, fever is no
    longer required from the day of that therapy on (at the earliest the day after diagnosis),
    so a patient whose fever is masked by tocilizumab is graded on hypotension and hypoxia alone.
    Therapy given before CRS began does not waive fever. A day whose CRS grade is only a lower
    bound counts as diagnosed only if that lower bound is ≥ 1.

    Parameters
    ----------
    observations_by_day : mapping of int to ClinicalObservation
        Observations keyed by day relative to infusion (day 0; negative days allowed).

    Returns
    -------
    tuple of DayGrades
        One entry per observed day, in day order.

    Examples
    --------
    Fever on day 2 and tocilizumab; on day 3 the fever is gone but a vasopressor is needed:

    >>> course = grade_course({
    ...     2: ClinicalObservation(age_years=60, temperature_c=39.0, hypotension="none",
    ...                            oxygen="none", tocilizumab=True),
    ...     3: ClinicalObservation(age_years=60, temperature_c=37.1,
    ...                            hypotension="one_vasopressor", oxygen="none"),
    ... })
    >>> [(d.day, d.crs.grade, d.crs.fever_required) for d in course]
    [(2, 1, True), (3, 3, False)]

    """
    if not isinstance(observations_by_day, Mapping):
        raise InputError(
            f"expected a mapping of day to ClinicalObservation, got "
            f"{type(observations_by_day).__name__}",
            field="observations_by_day",
        )
    for day, obs in observations_by_day.items():
        if isinstance(day, bool) or not isinstance(day, int):
            raise InputError(
                f"days must be whole numbers relative to infusion, got {day!r}",
                field="observations_by_day",
            )
        if not isinstance(obs, ClinicalObservation):
            raise InputError(
                f"day {day}: expected a ClinicalObservation, got {type(obs).__name__}",
                field="observations_by_day",
            )
    result: list[DayGrades] = []
    crs_diagnosed = False
    masked_since_diagnosis = False
    for day in sorted(observations_by_day):
        obs = observations_by_day[day]
        crs = grade_crs(
            obs, fever_seen_before=crs_diagnosed, masking_therapy_before=masked_since_diagnosis
        )
        result.append(DayGrades(day=day, crs=crs, icans=grade_icans(obs)))
        crs_diagnosed = crs_diagnosed or crs.grade >= 1
        masked_since_diagnosis = masked_since_diagnosis or (crs_diagnosed and obs.masking_therapy)
    return tuple(result)
