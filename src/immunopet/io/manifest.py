"""The study manifest ``study.yaml``: what a clinical site knows beside the images.

A manifest is optional. It states what the image files cannot: the CAR T-cell product, its
target and the infusion date-time (days are counted from it), the tracers with their targets,
the body weight at each visit, the clinical course (temperature, blood pressure, oxygen, ICE
score, IL-6 …), CAR transgene counts in blood (qPCR or flow cytometry) and blood samples of a
tracer. The schema, field by field with units, is ``docs/study_manifest.md``.

Parsing is strict: an unknown or repeated key, a value of the wrong type or outside its range,
or a contradiction (a qPCR count in cells/µL, a vasopressor count that contradicts the stated
hypotension) raises :class:`~immunopet.errors.InputError` naming the file and the key path,
e.g. ``study.yaml: clinical[2].ice_score: must be between 0 and 10, got 11``.
Nothing is filled in: a field that is absent is ``None`` (or an empty tuple).

Times are site-local wall-clock times without a UTC offset, like the scan times in DICOM.
Clinical days follow the clinical convention: day 0 is the calendar day of the infusion, so an
observation given by its date-time falls on ``(date − infusion date)`` days.

Clinical observations become :class:`~immunopet.monitor.ClinicalObservation` for the ASTCT
grading of CRS and ICANS (Lee et al., Biol Blood Marrow Transplant 2019;25:625-638).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from os import PathLike
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast

import yaml

from immunopet.errors import InputError, NuclideError
from immunopet.io._atomic import atomic_path
from immunopet.io._fields import FieldReader, StrictLoader, join
from immunopet.monitor import (
    ClinicalObservation,
    Consciousness,
    Domain,
    Hypotension,
    IntracranialFinding,
    MotorFinding,
    OxygenSupport,
    Seizure,
)
from immunopet.physics import canonical_nuclide_name
from immunopet.tracers import VectorFormat
from immunopet.units import S_PER_DAY, S_PER_HOUR

__all__ = [
    "FDG_KEY",
    "BloodSample",
    "BodyWeight",
    "CarT",
    "CarTCount",
    "ClinicalRecord",
    "Manifest",
    "ManifestTracer",
    "load_manifest",
    "parse_manifest",
    "write_manifest",
]

#: Tracer key of ¹⁸F-FDG when no manifest entry names it (discovery recognises FDG by name).
FDG_KEY: Final = "fdg"

Species = Literal["adult", "mouse"]
CountUnit = Literal["copies_per_ug", "cells_per_ul"]
CountSource = Literal["qpcr", "flow"]
SampleKind = Literal["whole_blood", "plasma"]

_SPECIES: Final[tuple[Species, ...]] = ("adult", "mouse")
#: The unit each CAR T-cell count source reports (qPCR: transgene copies per µg genomic DNA;
#: flow cytometry: CAR+ cells per µL blood). Mixing them is refused.
_UNIT_OF_SOURCE: Final[dict[CountSource, CountUnit]] = {
    "qpcr": "copies_per_ug",
    "flow": "cells_per_ul",
}
_SAMPLE_KINDS: Final[tuple[SampleKind, ...]] = ("whole_blood", "plasma")

_TOP_KEYS: Final = (
    "patient_id",
    "species",
    "age_years",
    "developmental_delay",
    "car_t",
    "lesion_tracer",
    "tracers",
    "body_weight_kg",
    "clinical",
    "car_t_counts",
    "blood_samples",
    "hematocrit",
    "psf_fwhm_mm",
)
#: Clinical fields that feed the ASTCT grading (the others are kept for the report).
_GRADING_KEYS: Final = (
    "temperature_c",
    "hypotension",
    "vasopressors",
    "vasopressin",
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
    "other_cause",
)
_CLINICAL_KEYS: Final = (
    "day",
    "datetime",
    "systolic_bp_mmhg",
    *_GRADING_KEYS,
    "il6_pg_per_ml",
    "crp_mg_per_l",
)

_Choice = TypeVar("_Choice", bound=StrEnum)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CarT:
    """The CAR T-cell product.

    Parameters
    ----------
    product : str or None
        Product name as the site records it (e.g. ``"axicabtagene ciloleucel"``).
    target : str
        Antigen the CAR binds (e.g. ``"CD19"``).
    infusion_datetime : datetime.datetime or None
        Start of the infusion, site-local, naive; days are counted from it.
    infused_cells : float or None
        Number of CAR T cells infused.

    """

    product: str | None
    target: str
    infusion_datetime: datetime | None
    #: CAR T cells infused (a count); with a direct cell label it gives the activity per cell.
    infused_cells: float | None = None


@dataclass(frozen=True)
class ManifestTracer:
    """A tracer the site used, as the manifest names it.

    Parameters
    ----------
    key : str
        Short name used throughout the analysis (``"cd8_minibody"``).
    agent : str
        Radiopharmaceutical as the DICOM Radiopharmaceutical (0018,0031) or the PET-BIDS
        ``TracerName`` spells it (matched exactly, then ignoring case).
    target : str or None
        What the agent binds (``"CD8"``; ``"glucose metabolism"`` for FDG).
    vector_format : str or None
        A :class:`~immunopet.tracers.VectorFormat` value (``"minibody"``).
    nuclide : str or None
        Canonical nuclide name (``"Zr-89"``).
    cell_label : str or None
        The tracer is a CAR T-cell label: key of ``data/cell_labelling.toml`` (``"zr89-oxine"``,
        ``"hnet-mfbg"``); the analysis then reports cell numbers per VOI.
    bound_bq_per_cell : float or None
        Direct labels: activity bound per cell at injection, Bq (else injected activity /
        ``car_t.infused_cells``).
    reporter_uptake_bq_per_cell : float or None
        Reporter labels: probe activity per live reporter cell at the scan, Bq (the site's
        calibration; required for reporter cell numbers).
    efflux_per_day : float or None
        Direct labels: label loss from living cells, 1/day (else the table's value).

    """

    key: str
    agent: str
    target: str | None
    vector_format: str | None
    nuclide: str | None
    cell_label: str | None = None
    bound_bq_per_cell: float | None = None
    reporter_uptake_bq_per_cell: float | None = None
    efflux_per_day: float | None = None


@dataclass(frozen=True)
class BodyWeight:
    """Body weight measured at one visit: ``weight_kg`` (kg) on ``date``."""

    date: date
    weight_kg: float


@dataclass(frozen=True)
class ClinicalRecord:
    """What was recorded on one clinical day (the worst of the day in each field).

    ``day`` is the calendar day relative to the infusion day (day 0); ``datetime`` is set when
    the manifest gave the record by date-time. Every finding is ``None`` when not recorded.
    Units: temperature °C, systolic blood pressure mmHg, IL-6 pg/mL, CRP mg/L.
    ``hypotension`` is the stated category, or the one implied by ``vasopressors`` (number of
    vasopressors other than vasopressin) and ``vasopressin``
    (:meth:`~immunopet.monitor.Hypotension.from_vasopressors`); immunopet applies no blood
    pressure threshold of its own.
    """

    day: int
    datetime: datetime | None
    temperature_c: float | None
    systolic_bp_mmhg: float | None
    hypotension: Hypotension | None
    vasopressors: int | None
    vasopressin: bool | None
    oxygen: OxygenSupport | None
    ice_score: int | None
    capd_score: int | None
    consciousness: Consciousness | None
    seizure: Seizure | None
    motor: MotorFinding | None
    intracranial: IntracranialFinding | None
    antipyretic: bool
    tocilizumab: bool
    corticosteroids: bool
    other_anticytokine: bool
    other_cause: tuple[Domain, ...]
    il6_pg_per_ml: float | None
    crp_mg_per_l: float | None
    has_grading_data: bool


@dataclass(frozen=True)
class CarTCount:
    """CAR T cells in peripheral blood on ``day`` (days after infusion, fractional).

    ``unit`` is ``"copies_per_ug"`` (CAR transgene copies per µg genomic DNA, from
    ``source`` ``"qpcr"``) or ``"cells_per_ul"`` (CAR+ cells per µL blood, from ``"flow"``).
    """

    day: float
    value: float
    unit: CountUnit
    source: CountSource


@dataclass(frozen=True)
class BloodSample:
    """Activity concentration of a tracer in a blood sample.

    Exactly one of ``datetime`` (site-local) and ``time_after_injection_s`` (s after that
    tracer's injection) is set. ``bq_per_ml`` is Bq/mL at the sampling time (not decay-corrected).
    """

    datetime: datetime | None
    time_after_injection_s: float | None
    tracer: str
    bq_per_ml: float
    kind: SampleKind


@dataclass(frozen=True)
class Manifest:
    """A parsed ``study.yaml`` (see ``docs/study_manifest.md``).

    Every field that the file leaves out is ``None`` or an empty tuple.

    Examples
    --------
    >>> manifest = parse_manifest({
    ...     "patient_id": "P0001",
    ...     "car_t": {"product": "tisagenlecleucel", "target": "CD19",
    ...               "infusion_datetime": "2024-05-06T09:30:00"},
    ...     "age_years": 61,
    ...     "clinical": [{"day": 3, "temperature_c": 38.9, "oxygen": "none"}],
    ... })
    >>> manifest.infusion_datetime.isoformat(), manifest.clinical_observations()[3].temperature_c
    ('2024-05-06T09:30:00', 38.9)

    """

    path: Path | None
    patient_id: str | None
    species: Species | None
    age_years: float | None
    developmental_delay: bool
    car_t: CarT | None
    lesion_tracer: str | None
    tracers: tuple[ManifestTracer, ...]
    body_weight_kg: tuple[BodyWeight, ...]
    clinical: tuple[ClinicalRecord, ...]
    car_t_counts: tuple[CarTCount, ...]
    blood_samples: tuple[BloodSample, ...]
    hematocrit: float | None
    #: The PET system's spatial resolution (isotropic Gaussian FWHM, mm) for partial-volume
    #: correction; None: not given, no correction.
    psf_fwhm_mm: float | None = None

    @property
    def infusion_datetime(self) -> datetime | None:
        """The CAR T-cell infusion (``car_t.infusion_datetime``), or ``None``."""
        return None if self.car_t is None else self.car_t.infusion_datetime

    def tracer_for(self, radiopharmaceutical: str) -> ManifestTracer | None:
        """The tracer whose agent is ``radiopharmaceutical``: exactly, else ignoring case.

        Parameters
        ----------
        radiopharmaceutical : str
            The name the image file gives.

        Returns
        -------
        ManifestTracer or None
            ``None`` when no agent matches.

        """
        text = radiopharmaceutical.strip()
        for tracer in self.tracers:
            if tracer.agent == text:
                return tracer
        folded = text.casefold()
        for tracer in self.tracers:
            if tracer.agent.casefold() == folded:
                return tracer
        return None

    def weight_kg_on(self, day: date) -> float | None:
        """Body weight (kg) measured on the calendar ``day``, or ``None``."""
        for entry in self.body_weight_kg:
            if entry.date == day:
                return entry.weight_kg
        return None

    def clinical_observations(self) -> dict[int, ClinicalObservation]:
        """The clinical records that hold grading data, for ASTCT CRS/ICANS grading.

        Returns
        -------
        dict of int to ClinicalObservation
            Keyed by clinical day (day 0 = infusion day), ready for
            :func:`immunopet.monitor.grade_course`. Records with only laboratory values
            (IL-6, CRP) or blood pressure are left out.

        """
        return {
            record.day: _observation(record, self.age_years, self.developmental_delay)
            for record in self.clinical
            if record.has_grading_data
        }


# --------------------------------------------------------------------------- reading


class _Reader(FieldReader):
    """The manifest's value kinds on top of :class:`~immunopet.io._fields.FieldReader`."""

    def whole(self, value: object, where: str, *, low: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be a whole number, got {value!r}")
        if low is not None and value < low:
            raise self.fail(where, f"must be >= {low}, got {value}")
        return value

    def boolean(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"must be true or false, got {value!r}")
        return value

    def choice(self, value: object, where: str, options: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in options:
            raise self.fail(where, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def member(self, value: object, where: str, enum: type[_Choice]) -> _Choice:
        options = tuple(member.value for member in enum)
        return enum(self.choice(value, where, options))

    def datetime(self, value: object, where: str) -> datetime:
        hint = "write a site-local date and time, e.g. 2024-05-06T09:30:00"
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.fail(where, f"{value!r} is not an ISO 8601 date-time", hint) from None
        if isinstance(value, date) and not isinstance(value, datetime):
            raise self.fail(where, f"{value.isoformat()} has no time of day", hint)
        if not isinstance(value, datetime):
            raise self.fail(where, f"must be a date-time, got {value!r}", hint)
        if value.tzinfo is not None:
            raise self.fail(
                where,
                f"{value.isoformat()} carries a UTC offset; times are site-local",
                "write the local wall-clock time without an offset, as the scanner does",
            )
        return value

    def date(self, value: object, where: str) -> date:
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                raise self.fail(
                    where, f"{value!r} is not a date", "write YYYY-MM-DD, e.g. 2024-05-06"
                ) from None
        if isinstance(value, datetime) or not isinstance(value, date):
            raise self.fail(where, f"must be a date (YYYY-MM-DD), got {value!r}")
        return value


def _car_t(reader: _Reader, value: object) -> CarT:
    body = reader.mapping(
        value,
        "car_t",
        required=("target",),
        optional=("product", "infusion_datetime", "infused_cells"),
    )
    product = body.get("product")
    infusion = body.get("infusion_datetime")
    cells = body.get("infused_cells")
    return CarT(
        infused_cells=None
        if cells is None
        else reader.number(cells, "car_t.infused_cells", low=0.0, low_inclusive=False),
        product=None if product is None else reader.text(product, "car_t.product"),
        target=reader.text(body["target"], "car_t.target"),
        infusion_datetime=None
        if infusion is None
        else reader.datetime(infusion, "car_t.infusion_datetime"),
    )


def _cell_label_facts(reader: _Reader, body: dict[str, Any], where: str) -> dict[str, Any]:
    """``cell_label`` and its numbers of one ``tracers[]`` entry, checked against the label kind."""
    from immunopet.planning import cell_label, known_cell_labels

    facts: dict[str, Any] = {
        key: None
        if body.get(key) is None
        else reader.number(
            body[key], f"{where}.{key}", low=0.0, low_inclusive=key == "efflux_per_day"
        )
        for key in ("bound_bq_per_cell", "reporter_uptake_bq_per_cell", "efflux_per_day")
    }
    key = body.get("cell_label")
    if key is None:
        given = [name for name, value in facts.items() if value is not None]
        if given:
            raise reader.fail(f"{where}.{given[0]}", "only meaningful with cell_label")
        return {"cell_label": None, **facts}
    key = reader.text(key, f"{where}.cell_label")
    if key not in known_cell_labels():
        raise reader.fail(
            f"{where}.cell_label",
            f"unknown cell label {key!r}",
            f"use one of {', '.join(known_cell_labels())}",
        )
    kind = cell_label(key).kind
    wrong = (
        ("reporter_uptake_bq_per_cell",)
        if kind == "direct"
        else ("bound_bq_per_cell", "efflux_per_day")
    )
    for name in wrong:
        if facts[name] is not None:
            raise reader.fail(f"{where}.{name}", f"does not apply to the {kind} label {key!r}")
    return {"cell_label": key, **facts}


def _tracers(reader: _Reader, value: object) -> tuple[ManifestTracer, ...]:
    tracers: list[ManifestTracer] = []
    keys: dict[str, int] = {}
    agents: dict[str, int] = {}
    formats = tuple(member.value for member in VectorFormat)
    for index, item in enumerate(reader.sequence(value, "tracers", empty=True)):
        where = f"tracers[{index}]"
        body = reader.mapping(
            item,
            where,
            required=("key", "agent"),
            optional=(
                "target",
                "vector_format",
                "nuclide",
                "cell_label",
                "bound_bq_per_cell",
                "reporter_uptake_bq_per_cell",
                "efflux_per_day",
            ),
        )
        key = reader.text(body["key"], f"{where}.key")
        agent = reader.text(body["agent"], f"{where}.agent")
        if key in keys:
            raise reader.fail(f"{where}.key", f"{key!r} is already tracers[{keys[key]}].key")
        if agent.casefold() in agents:
            raise reader.fail(
                f"{where}.agent",
                f"{agent!r} is already tracers[{agents[agent.casefold()]}].agent (case ignored)",
                "one entry per agent: images are matched to tracers by agent",
            )
        keys[key] = agents[agent.casefold()] = index
        target = body.get("target")
        vector_format = body.get("vector_format")
        nuclide = body.get("nuclide")
        canonical = None
        if nuclide is not None:
            try:
                canonical = canonical_nuclide_name(reader.text(nuclide, f"{where}.nuclide"))
            except NuclideError as exc:
                raise reader.fail(f"{where}.nuclide", exc.message, exc.hint) from None
        tracers.append(
            ManifestTracer(
                key=key,
                agent=agent,
                target=None if target is None else reader.text(target, f"{where}.target"),
                vector_format=None
                if vector_format is None
                else reader.choice(vector_format, f"{where}.vector_format", formats),
                nuclide=canonical,
                **_cell_label_facts(reader, body, where),
            )
        )
    return tuple(tracers)


def _body_weights(reader: _Reader, value: object) -> tuple[BodyWeight, ...]:
    weights: list[BodyWeight] = []
    seen: dict[date, int] = {}
    for index, item in enumerate(reader.sequence(value, "body_weight_kg", empty=True)):
        where = f"body_weight_kg[{index}]"
        body = reader.mapping(item, where, required=("date", "weight_kg"), optional=())
        day = reader.date(body["date"], f"{where}.date")
        if day in seen:
            raise reader.fail(
                f"{where}.date", f"{day.isoformat()} is already body_weight_kg[{seen[day]}]"
            )
        seen[day] = index
        weight = reader.number(
            body["weight_kg"], f"{where}.weight_kg", low=0.0, low_inclusive=False
        )
        weights.append(BodyWeight(day, weight))
    return tuple(weights)


def _when(
    reader: _Reader, body: Mapping[str, Any], where: str, infusion: datetime | None
) -> tuple[datetime | None, float | None]:
    """``datetime`` or ``day`` of a record (exactly one); the day needs the infusion for a date-time."""
    has_day, has_datetime = body.get("day") is not None, body.get("datetime") is not None
    if has_day == has_datetime:
        raise reader.fail(
            where, "give exactly one of day and datetime", "day counts from the infusion (day 0)"
        )
    if has_day:
        return None, reader.number(body["day"], f"{where}.day")
    when = reader.datetime(body["datetime"], f"{where}.datetime")
    if infusion is None:
        raise reader.fail(
            f"{where}.datetime",
            "a date-time needs car_t.infusion_datetime to count days from",
            "add car_t.infusion_datetime or give day instead",
        )
    return when, None


def _hypotension(reader: _Reader, body: Mapping[str, Any], where: str) -> Hypotension | None:
    stated = (
        None
        if body.get("hypotension") is None
        else reader.member(body["hypotension"], f"{where}.hypotension", Hypotension)
    )
    count = body.get("vasopressors")
    vasopressin = body.get("vasopressin")
    n_vasopressors = 0 if count is None else reader.whole(count, f"{where}.vasopressors", low=0)
    with_vasopressin = (
        False if vasopressin is None else reader.boolean(vasopressin, f"{where}.vasopressin")
    )
    implied = None
    if n_vasopressors or with_vasopressin:
        implied = Hypotension.from_vasopressors(n_vasopressors, vasopressin=with_vasopressin)
    elif stated in (Hypotension.ONE_VASOPRESSOR, Hypotension.MULTIPLE_VASOPRESSORS) and (
        count is not None or vasopressin is not None
    ):
        implied = Hypotension.NONE  # stated vasopressors, but none recorded as running
    if stated is not None and implied is not None and stated is not implied:
        raise reader.fail(
            f"{where}.hypotension",
            f"{stated.value!r} contradicts vasopressors={n_vasopressors}, "
            f"vasopressin={str(with_vasopressin).lower()}",
            "correct one of them, or leave hypotension out to derive it from the vasopressors",
        )
    return stated if stated is not None else implied


def _clinical_record(
    reader: _Reader,
    item: object,
    where: str,
    infusion: datetime | None,
) -> ClinicalRecord:
    body = reader.mapping(item, where, required=(), optional=_CLINICAL_KEYS)
    when, day_value = _when(reader, body, where, infusion)
    if when is not None:
        assert infusion is not None
        day = (when.date() - infusion.date()).days
    else:
        assert day_value is not None
        if day_value != round(day_value):
            raise reader.fail(
                f"{where}.day",
                f"must be a whole day (day 0 = infusion day), got {body['day']!r}",
                "clinical observations are per day; record the worst of the day",
            )
        day = round(day_value)

    def number(key: str, **limits: Any) -> float | None:
        value = body.get(key)
        return None if value is None else reader.number(value, f"{where}.{key}", **limits)

    def flag(key: str) -> bool:
        value = body.get(key)
        return False if value is None else reader.boolean(value, f"{where}.{key}")

    def score(key: str) -> int | None:
        value = body.get(key)
        return None if value is None else reader.whole(value, f"{where}.{key}")

    def member(key: str, enum: type[_Choice]) -> _Choice | None:
        value = body.get(key)
        return None if value is None else reader.member(value, f"{where}.{key}", enum)

    causes = body.get("other_cause")
    other_cause: tuple[Domain, ...] = ()
    if causes is not None:
        domains = tuple(member.value for member in Domain)
        other_cause = tuple(
            Domain(reader.choice(cause, f"{where}.other_cause[{index}]", domains))
            for index, cause in enumerate(
                reader.sequence(causes, f"{where}.other_cause", empty=True)
            )
        )
    vasopressors = body.get("vasopressors")
    vasopressin = body.get("vasopressin")
    return ClinicalRecord(
        day=day,
        datetime=when,
        temperature_c=number("temperature_c"),
        systolic_bp_mmhg=number("systolic_bp_mmhg", low=0.0, low_inclusive=False),
        hypotension=_hypotension(reader, body, where),
        vasopressors=None
        if vasopressors is None
        else reader.whole(vasopressors, f"{where}.vasopressors", low=0),
        vasopressin=None
        if vasopressin is None
        else reader.boolean(vasopressin, f"{where}.vasopressin"),
        oxygen=member("oxygen", OxygenSupport),
        ice_score=score("ice_score"),
        capd_score=score("capd_score"),
        consciousness=member("consciousness", Consciousness),
        seizure=member("seizure", Seizure),
        motor=member("motor", MotorFinding),
        intracranial=member("intracranial", IntracranialFinding),
        antipyretic=flag("antipyretic"),
        tocilizumab=flag("tocilizumab"),
        corticosteroids=flag("corticosteroids"),
        other_anticytokine=flag("other_anticytokine"),
        other_cause=other_cause,
        il6_pg_per_ml=number("il6_pg_per_ml", low=0.0),
        crp_mg_per_l=number("crp_mg_per_l", low=0.0),
        has_grading_data=any(body.get(key) is not None for key in _GRADING_KEYS),
    )


def _observation(
    record: ClinicalRecord, age_years: float | None, developmental_delay: bool
) -> ClinicalObservation:
    if age_years is None:
        raise InputError(
            "age_years is needed for clinical grading (ICE from 12 years, CAPD below)",
            field="age_years",
        )
    return ClinicalObservation(
        age_years=age_years,
        temperature_c=record.temperature_c,
        hypotension=record.hypotension,
        oxygen=record.oxygen,
        ice_score=record.ice_score,
        capd_score=record.capd_score,
        consciousness=record.consciousness,
        seizure=record.seizure,
        motor=record.motor,
        intracranial=record.intracranial,
        antipyretic=record.antipyretic,
        tocilizumab=record.tocilizumab,
        corticosteroids=record.corticosteroids,
        other_anticytokine=record.other_anticytokine,
        developmental_delay=developmental_delay,
        other_cause=frozenset(record.other_cause),
    )


def _clinical(
    reader: _Reader,
    value: object,
    infusion: datetime | None,
    age_years: float | None,
    developmental_delay: bool,
) -> tuple[ClinicalRecord, ...]:
    records: list[ClinicalRecord] = []
    days: dict[int, int] = {}
    for index, item in enumerate(reader.sequence(value, "clinical", empty=True)):
        where = f"clinical[{index}]"
        record = _clinical_record(reader, item, where, infusion)
        if record.day in days:
            raise reader.fail(
                where,
                f"day {record.day} is already clinical[{days[record.day]}]",
                "one record per day: the worst of the day in each field",
            )
        days[record.day] = index
        if record.has_grading_data:
            if age_years is None:
                raise reader.fail(
                    "age_years",
                    f"missing: {where} holds grading data and ASTCT chooses the "
                    "encephalopathy score by age (ICE from 12 years, CAPD below)",
                    "add age_years at the top of the manifest",
                )
            try:
                _observation(record, age_years, developmental_delay)
            except InputError as exc:
                raise reader.fail(join(where, exc.field or ""), exc.message, exc.hint) from None
        records.append(record)
    return tuple(sorted(records, key=lambda record: record.day))


def _car_t_counts(
    reader: _Reader, value: object, infusion: datetime | None
) -> tuple[CarTCount, ...]:
    counts: list[CarTCount] = []
    for index, item in enumerate(reader.sequence(value, "car_t_counts", empty=True)):
        where = f"car_t_counts[{index}]"
        body = reader.mapping(
            item, where, required=("value", "unit", "source"), optional=("day", "datetime")
        )
        when, day = _when(reader, body, where, infusion)
        if when is not None:
            assert infusion is not None
            day = (when - infusion).total_seconds() / S_PER_DAY
        assert day is not None
        unit = cast(
            CountUnit, reader.choice(body["unit"], f"{where}.unit", tuple(_UNIT_OF_SOURCE.values()))
        )
        source = cast(
            CountSource, reader.choice(body["source"], f"{where}.source", tuple(_UNIT_OF_SOURCE))
        )
        if _UNIT_OF_SOURCE[source] != unit:
            raise reader.fail(
                f"{where}.unit",
                f"{source} reports {_UNIT_OF_SOURCE[source]}, not {unit}",
                "qpcr: copies_per_ug (transgene copies per µg DNA); flow: cells_per_ul",
            )
        counts.append(
            CarTCount(day, reader.number(body["value"], f"{where}.value", low=0.0), unit, source)
        )
    return tuple(sorted(counts, key=lambda count: count.day))


def _blood_samples(
    reader: _Reader, value: object, tracer_keys: tuple[str, ...]
) -> tuple[BloodSample, ...]:
    samples: list[BloodSample] = []
    known = (*tracer_keys, *((FDG_KEY,) if FDG_KEY not in tracer_keys else ()))
    for index, item in enumerate(reader.sequence(value, "blood_samples", empty=True)):
        where = f"blood_samples[{index}]"
        body = reader.mapping(
            item,
            where,
            required=("tracer", "bq_per_ml", "kind"),
            optional=("datetime", "time_after_injection_h"),
        )
        has_datetime = body.get("datetime") is not None
        if has_datetime == (body.get("time_after_injection_h") is not None):
            raise reader.fail(where, "give exactly one of datetime and time_after_injection_h")
        when = reader.datetime(body["datetime"], f"{where}.datetime") if has_datetime else None
        after_s = (
            None
            if has_datetime
            else reader.number(
                body["time_after_injection_h"], f"{where}.time_after_injection_h", low=0.0
            )
            * S_PER_HOUR
        )
        tracer = reader.text(body["tracer"], f"{where}.tracer")
        if tracer not in known:
            raise reader.fail(
                f"{where}.tracer",
                f"{tracer!r} is not a tracer key",
                f"use one of {', '.join(known)} (tracers[].key)",
            )
        samples.append(
            BloodSample(
                datetime=when,
                time_after_injection_s=after_s,
                tracer=tracer,
                bq_per_ml=reader.number(body["bq_per_ml"], f"{where}.bq_per_ml", low=0.0),
                kind=cast(SampleKind, reader.choice(body["kind"], f"{where}.kind", _SAMPLE_KINDS)),
            )
        )
    return tuple(samples)


def parse_manifest(data: object, *, path: str | PathLike[str] | None = None) -> Manifest:
    """Validate a manifest already read from YAML (or built in code) and return it typed.

    Parameters
    ----------
    data : mapping
        The manifest's content, as ``yaml.safe_load`` gives it. Date-times may be
        :class:`datetime.datetime` or ISO 8601 strings; dates likewise.
    path : str or os.PathLike, optional
        The file it came from, for messages.

    Returns
    -------
    Manifest

    Raises
    ------
    InputError
        Naming the file and the key path (``clinical[2].ice_score``) of the first problem.

    """
    reader = _Reader(None if path is None else str(path))
    if data is None:
        data = {}
    body = reader.mapping(data, "", required=(), optional=_TOP_KEYS)
    car_t = None if body.get("car_t") is None else _car_t(reader, body["car_t"])
    infusion = None if car_t is None else car_t.infusion_datetime
    age = body.get("age_years")
    age_years = None if age is None else reader.number(age, "age_years", low=0.0)
    delay = body.get("developmental_delay")
    developmental_delay = False if delay is None else reader.boolean(delay, "developmental_delay")
    tracers = () if body.get("tracers") is None else _tracers(reader, body["tracers"])
    keys = tuple(tracer.key for tracer in tracers)
    lesion_tracer = body.get("lesion_tracer")
    if lesion_tracer is not None:
        lesion_tracer = reader.text(lesion_tracer, "lesion_tracer")
        if lesion_tracer not in keys and lesion_tracer != FDG_KEY:
            raise reader.fail(
                "lesion_tracer",
                f"{lesion_tracer!r} is not a tracer key",
                f"use one of {', '.join((*keys, FDG_KEY))}",
            )
    species = body.get("species")
    hematocrit = body.get("hematocrit")
    patient_id = body.get("patient_id")
    psf = body.get("psf_fwhm_mm")
    return Manifest(
        path=None if path is None else Path(path),
        patient_id=None if patient_id is None else reader.text(patient_id, "patient_id"),
        species=None
        if species is None
        else cast(Species, reader.choice(species, "species", _SPECIES)),
        age_years=age_years,
        developmental_delay=developmental_delay,
        car_t=car_t,
        lesion_tracer=lesion_tracer,
        tracers=tracers,
        body_weight_kg=()
        if body.get("body_weight_kg") is None
        else _body_weights(reader, body["body_weight_kg"]),
        clinical=()
        if body.get("clinical") is None
        else _clinical(reader, body["clinical"], infusion, age_years, developmental_delay),
        car_t_counts=()
        if body.get("car_t_counts") is None
        else _car_t_counts(reader, body["car_t_counts"], infusion),
        blood_samples=()
        if body.get("blood_samples") is None
        else _blood_samples(reader, body["blood_samples"], keys),
        hematocrit=None
        if hematocrit is None
        else reader.number(
            hematocrit,
            "hematocrit",
            low=0.0,
            low_inclusive=False,
            high=1.0,
            high_inclusive=False,
            hint="give a fraction, e.g. 0.42 for 42 %",
        ),
        psf_fwhm_mm=None
        if psf is None
        else reader.number(psf, "psf_fwhm_mm", low=0.0, low_inclusive=False, high=50.0),
    )


def load_manifest(path: str | PathLike[str]) -> Manifest:
    """Read and validate a ``study.yaml`` manifest.

    Parameters
    ----------
    path : str or os.PathLike
        The YAML file (schema: ``docs/study_manifest.md``).

    Returns
    -------
    Manifest

    Raises
    ------
    InputError
        The file is missing, is not YAML, repeats a key, or breaks the schema; the message
        names the file and the key path.

    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such manifest file", path=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the manifest ({exc})", path=source) from None
    try:
        data = yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = None if mark is None else f"line {mark.line + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"not valid YAML ({problem})", path=source, field=where) from None
    return parse_manifest(data, path=source)


def write_manifest(data: Mapping[str, Any], path: str | PathLike[str]) -> Path:
    """Validate a manifest dict and write it as YAML, atomically.

    Parameters
    ----------
    data : mapping
        The manifest content (e.g. from
        :func:`immunopet.simulate._manifest.manifest_for_simulated_patient`); date-times as
        ISO 8601 strings or :class:`datetime.datetime`.
    path : str or os.PathLike
        Target file, normally ``study.yaml`` in the patient's folder; replaced if present.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InputError
        If ``data`` breaks the schema (nothing is written).

    """
    target = Path(path)
    parse_manifest(dict(data), path=target)
    text = "# immunopet study manifest; schema: docs/study_manifest.md\n" + yaml.safe_dump(
        dict(data), sort_keys=False, allow_unicode=True
    )
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return target
