"""Scenarios as data: YAML files describing a virtual CAR T-cell patient, and virtual cohorts.

A scenario file says who is treated (species, sex, weight, height), with what (the CAR T
product, its target, infusion and cellular kinetics), which lesions there are and how their
antigen, PD-L1, hypoxia and FDG uptake change, which tracers are injected when and scanned
when, which organs are inflamed in which window, and which *truth events* the simulated study
contains. The schema is described in ``scenarios/README.md``; the built-in scenarios live in
``scenarios/*.yaml`` and are loaded by name.

Numbers that vary between patients are written as distributions (a fixed number,
``{normal: {mean, sd}}``, ``{lognormal: {median, gsd}}`` or ``{uniform: {low, high}}``);
:func:`draw_cohort` samples them with :func:`numpy.random.default_rng` into fixed-value
:class:`PatientSpec` objects.

Units are in the names: days after the CAR T-cell infusion (``_day``, negative before it),
hours after a tracer injection (``_h``), MBq, kg, cm, mm, antigens per cell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from immunopet.errors import InputError, NuclideError
from immunopet.io._fields import FieldReader, StrictLoader, join
from immunopet.kinetics import Stein2019CellularKinetics
from immunopet.physics import canonical_nuclide_name
from immunopet.planning import known_cell_labels, known_scanners
from immunopet.planning._cells import cell_label
from immunopet.tracers import VectorFormat, load_tracers

__all__ = [
    "CarTProduct",
    "Distribution",
    "EventType",
    "Inflammation",
    "Lesion",
    "LogNormal",
    "Normal",
    "NormalTissue",
    "PatientInflammation",
    "PatientLesion",
    "PatientSpec",
    "PatientTracer",
    "Scan",
    "Scenario",
    "Subject",
    "TimeSeries",
    "TracerSpec",
    "TruthEvent",
    "Uniform",
    "draw_cohort",
    "list_scenarios",
    "load_scenario",
    "series_value",
]

_PACKAGE_FOLDER = "scenarios"
_SUFFIXES = (".yaml", ".yml")
_MAX_REDRAWS = 1000
_H_PER_DAY = 24.0
_D_PER_WEEK = 7.0
_DURATION = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)\s*(h|d|w)\s*$")
#: Stein 2019 parameter names (the fields of :class:`Stein2019CellularKinetics` but ``source``).
_KINETIC_PARAMETERS = tuple(f.name for f in fields(Stein2019CellularKinetics) if f.name != "source")

TimeSeries = tuple[tuple[float, float], ...]
"""``((day, value), ...)``, days strictly increasing; see :func:`series_value`."""


class EventType(StrEnum):
    """The truth events a scenario can contain (the analysis reports the same vocabulary)."""

    ANTIGEN_LOSS = "antigen_loss"
    NEW_ANTIGEN_NEGATIVE_LESION = "new_antigen_negative_lesion"
    LINEAGE_SWITCH = "lineage_switch"
    CHECKPOINT_UPREGULATION = "checkpoint_upregulation"
    CAR_T_HOMING = "car_t_homing"
    HOMING_FAILURE = "homing_failure"
    CAR_T_EXPANSION = "car_t_expansion"
    T_CELL_ACTIVATION = "t_cell_activation"
    CRS_INFLAMMATION = "crs_inflammation"
    ICANS_INFLAMMATION = "icans_inflammation"
    ON_TARGET_OFF_TUMOR = "on_target_off_tumor"
    HYPOXIA = "hypoxia"


# --------------------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Fixed:
    """A value that is the same for every patient."""

    value: float

    @property
    def nominal(self) -> float:
        """The typical value (the value itself)."""
        return self.value

    def draw(self, rng: np.random.Generator) -> float:
        """Return the value (consumes no random numbers)."""
        return self.value


@dataclass(frozen=True)
class Normal:
    """Normal distribution with ``mean`` and standard deviation ``sd`` (> 0)."""

    mean: float
    sd: float

    @property
    def nominal(self) -> float:
        """The mean."""
        return self.mean

    def draw(self, rng: np.random.Generator) -> float:
        """One draw."""
        return float(rng.normal(self.mean, self.sd))


@dataclass(frozen=True)
class LogNormal:
    """Log-normal distribution: ``median`` (> 0) and geometric standard deviation ``gsd`` (> 1)."""

    median: float
    gsd: float

    @property
    def nominal(self) -> float:
        """The median."""
        return self.median

    def draw(self, rng: np.random.Generator) -> float:
        """One draw."""
        return float(rng.lognormal(math.log(self.median), math.log(self.gsd)))


@dataclass(frozen=True)
class Uniform:
    """Uniform distribution on ``[low, high)``."""

    low: float
    high: float

    @property
    def nominal(self) -> float:
        """The midpoint."""
        return 0.5 * (self.low + self.high)

    def draw(self, rng: np.random.Generator) -> float:
        """One draw."""
        return float(rng.uniform(self.low, self.high))


Distribution = Fixed | Normal | LogNormal | Uniform


# --------------------------------------------------------------------------- scenario classes


@dataclass(frozen=True)
class Subject:
    """Who is treated: species, sex (probabilities), weight and height distributions."""

    species: Literal["adult", "mouse"]
    sex_probabilities: tuple[tuple[Literal["female", "male"], float], ...]
    weight_kg: Distribution
    height_cm: Distribution | None


@dataclass(frozen=True)
class CarTProduct:
    """The CAR T-cell product, its infusion and its (Stein 2019) cellular kinetics.

    ``kinetics`` maps every :class:`Stein2019CellularKinetics` parameter to a distribution;
    parameters the file leaves out are fixed at the published values. Exactly one of
    ``infused_cells_per_kg`` and ``infused_cells`` is set.
    """

    name: str
    target: str
    disease: str
    infusion_datetime: datetime
    infused_cells_per_kg: Distribution | None
    infused_cells: Distribution | None
    kinetics: Mapping[str, Distribution]
    expansion_sites: tuple[str, ...]


@dataclass(frozen=True)
class Lesion:
    """One lesion; time series are in days after infusion (see :func:`series_value`)."""

    name: str
    site: str
    diameter_mm: Distribution
    appears_day: float | None
    relative_size: TimeSeries
    antigens_per_cell: Mapping[str, TimeSeries]
    antigen_scale: Distribution
    pd_l1_per_cell: TimeSeries
    hypoxic_fraction: Distribution
    fdg_suv: TimeSeries
    car_t_homing: Distribution


@dataclass(frozen=True)
class NormalTissue:
    """A normal tissue expressing a target antigen (on-target, off-tumour)."""

    site: str
    antigens_per_cell: Mapping[str, TimeSeries]


@dataclass(frozen=True)
class TracerSpec:
    """A tracer of the scenario; ``knowledge_base`` is True when the agent is a known row.

    Exactly one of ``activity_mbq`` and ``activity_mbq_per_kg`` is set.
    """

    key: str
    agent: str
    vector_format: VectorFormat
    target: str
    nuclide: str
    activity_mbq: Distribution | None
    activity_mbq_per_kg: Distribution | None
    cell_label: str | None
    knowledge_base: bool
    reporter_uptake_bq_per_cell: float | None = None


@dataclass(frozen=True)
class Scan:
    """One tracer injection (days after infusion) and the acquisitions after it (hours)."""

    tracer: str
    injection_day: float
    scan_delays_h: tuple[float, ...]
    scanner: str

    @property
    def scan_days(self) -> tuple[float, ...]:
        """Acquisition times in days after infusion."""
        return tuple(self.injection_day + delay / _H_PER_DAY for delay in self.scan_delays_h)


@dataclass(frozen=True)
class Inflammation:
    """Uptake multiplied by ``uptake_factor`` in ``organ`` from ``start_day`` to ``end_day``.

    ``tracers`` lists the tracer keys affected (empty: all tracers).
    """

    kind: Literal["crs", "icans", "other"]
    organ: str
    start_day: float
    end_day: float
    uptake_factor: Distribution
    tracers: tuple[str, ...]


@dataclass(frozen=True)
class TruthEvent:
    """An event the simulated study contains: what, where (lesion or site) and when."""

    type: EventType
    lesion: str | None
    site: str | None
    day: float
    note: str


@dataclass(frozen=True)
class Scenario:
    """A parsed and validated scenario file."""

    name: str
    description: str
    source: str
    subject: Subject
    car_t: CarTProduct
    lesions: tuple[Lesion, ...]
    normal_tissues: tuple[NormalTissue, ...]
    tracers: tuple[TracerSpec, ...]
    scans: tuple[Scan, ...]
    inflammation: tuple[Inflammation, ...]
    events: tuple[TruthEvent, ...]

    def lesion(self, name: str) -> Lesion:
        """The lesion called ``name``."""
        for lesion in self.lesions:
            if lesion.name == name:
                return lesion
        raise KeyError(name)


# --------------------------------------------------------------------------- patient classes


@dataclass(frozen=True)
class PatientLesion:
    """A lesion of one patient, every value fixed (antigen densities already scaled)."""

    name: str
    site: str
    diameter_mm: float
    appears_day: float | None
    relative_size: TimeSeries
    antigens_per_cell: Mapping[str, TimeSeries]
    pd_l1_per_cell: TimeSeries
    hypoxic_fraction: float
    fdg_suv: TimeSeries
    car_t_homing: float


@dataclass(frozen=True)
class PatientTracer:
    """A tracer of one patient with its injected activity resolved, MBq."""

    key: str
    agent: str
    vector_format: VectorFormat
    target: str
    nuclide: str
    activity_mbq: float
    cell_label: str | None
    reporter_uptake_bq_per_cell: float | None = None


@dataclass(frozen=True)
class PatientInflammation:
    """An inflammation window of one patient with its uptake factor drawn."""

    kind: Literal["crs", "icans", "other"]
    organ: str
    start_day: float
    end_day: float
    uptake_factor: float
    tracers: tuple[str, ...]


@dataclass(frozen=True)
class PatientSpec:
    """One virtual patient: every distribution of the scenario resolved to a value."""

    patient_id: str
    scenario: str
    seed: int
    species: Literal["adult", "mouse"]
    sex: Literal["female", "male"]
    weight_kg: float
    height_cm: float | None
    infusion_datetime: datetime
    car_t_target: str
    infused_cells: float
    kinetics: Stein2019CellularKinetics
    lesions: tuple[PatientLesion, ...]
    normal_tissues: tuple[NormalTissue, ...]
    tracers: tuple[PatientTracer, ...]
    scans: tuple[Scan, ...]
    inflammation: tuple[PatientInflammation, ...]
    events: tuple[TruthEvent, ...]
    car_t_product: str = ""


# --------------------------------------------------------------------------- reading


def series_value(series: TimeSeries, day: float) -> float:
    """Value of a time series on ``day``: linear between points, held outside them.

    Examples
    --------
    >>> series_value(((0.0, 10.0), (10.0, 0.0)), 2.5), series_value(((0.0, 10.0),), 99.0)
    (7.5, 10.0)

    """
    days = [point[0] for point in series]
    values = [point[1] for point in series]
    return float(np.interp(day, days, values))


class _Reader(FieldReader):
    """The scenario's value kinds on top of :class:`~immunopet.io._fields.FieldReader`.

    A lower bound is exclusive unless a call says otherwise (sizes, doses: > 0).
    """

    low_inclusive = False

    def day(self, value: object, where: str) -> float:
        """Days: a number, or a string with a unit ``h``, ``d`` or ``w`` (``"36h"``, ``"-7d"``)."""
        if isinstance(value, str):
            match = _DURATION.match(value)
            if match is None:
                raise self.fail(
                    where, f"cannot read {value!r} as a time", "write days or e.g. 36h, -7d, 12w"
                )
            amount = float(match[1])
            return {"h": amount / _H_PER_DAY, "d": amount, "w": amount * _D_PER_WEEK}[match[2]]
        return self.number(value, where)

    def distribution(
        self,
        value: object,
        where: str,
        *,
        low: float | None = None,
        low_inclusive: bool = False,
        high: float | None = None,
    ) -> Distribution:
        """A fixed number or a one-key mapping naming the distribution."""
        if not isinstance(value, dict):
            return Fixed(self.number(value, where, low=low, low_inclusive=low_inclusive, high=high))
        if len(value) != 1:
            raise self.fail(
                where, "a distribution has one key", "write normal, lognormal or uniform"
            )
        ((kind, parameters),) = value.items()
        inner = join(where, str(kind))
        if kind == "normal":
            body = self.mapping(parameters, inner, required=("mean", "sd"))
            return Normal(
                self.number(body["mean"], f"{inner}.mean", low=low, high=high),
                self.number(body["sd"], f"{inner}.sd", low=0.0),
            )
        if kind == "lognormal":
            body = self.mapping(parameters, inner, required=("median", "gsd"))
            if low is not None and low < 0.0:
                low = None
            return LogNormal(
                self.number(body["median"], f"{inner}.median", low=0.0, high=high),
                self.number(body["gsd"], f"{inner}.gsd", low=1.0, low_inclusive=True),
            )
        if kind == "uniform":
            body = self.mapping(parameters, inner, required=("low", "high"))
            lowest = self.number(body["low"], f"{inner}.low", low=low, high=high)
            highest = self.number(body["high"], f"{inner}.high", low=low, high=high)
            if highest < lowest:
                raise self.fail(f"{inner}.high", f"must be >= low ({lowest:g})")
            return Uniform(lowest, highest)
        raise self.fail(
            join(where, str(kind)), "unknown distribution", "write normal, lognormal or uniform"
        )

    def series(self, value: object, where: str, *, low: float = 0.0) -> TimeSeries:
        """A constant (number) or a list of ``[day, value]`` pairs, days increasing."""
        if not isinstance(value, list):
            return ((0.0, self.number(value, where, low=low, low_inclusive=True)),)
        points: list[tuple[float, float]] = []
        for index, pair in enumerate(self.sequence(value, where)):
            item = f"{where}[{index}]"
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.fail(item, f"must be a [day, value] pair, got {pair!r}")
            day = self.day(pair[0], f"{item}[0]")
            if points and day <= points[-1][0]:
                raise self.fail(f"{item}[0]", "days must increase")
            points.append((day, self.number(pair[1], f"{item}[1]", low=low, low_inclusive=True)))
        return tuple(points)

    def choice(self, value: object, where: str, allowed: tuple[str, ...], hint: str = "") -> str:
        text = self.text(value, where)
        if text not in allowed:
            raise self.fail(where, f"{text!r} is not one of: {', '.join(allowed)}", hint or None)
        return text


def _one_of(
    reader: _Reader, body: dict[str, Any], where: str, keys: tuple[str, str], low: float
) -> tuple[Distribution | None, Distribution | None]:
    present = [key for key in keys if key in body]
    if len(present) != 1:
        raise reader.fail(where, f"give exactly one of {keys[0]} and {keys[1]}")
    first = keys[0] in body
    value = reader.distribution(body[present[0]], join(where, present[0]), low=low)
    return (value, None) if first else (None, value)


def _subject(reader: _Reader, raw: object) -> Subject:
    where = "subject"
    body = reader.mapping(
        raw, where, required=("species", "sex", "weight_kg"), optional=("height_cm",)
    )
    species = reader.choice(body["species"], f"{where}.species", ("adult", "mouse"))
    sex: list[tuple[Literal["female", "male"], float]]
    raw_sex = body["sex"]
    if isinstance(raw_sex, dict):
        choices = reader.mapping(raw_sex, f"{where}.sex", required=("choice",))
        weights = reader.mapping(
            choices["choice"], f"{where}.sex.choice", optional=("female", "male")
        )
        sex = [
            (
                "female" if key == "female" else "male",
                reader.number(p, f"{where}.sex.choice.{key}", low=0.0, low_inclusive=True),
            )
            for key, p in weights.items()
        ]
        if not math.isclose(sum(p for _, p in sex), 1.0, abs_tol=1e-9):
            raise reader.fail(f"{where}.sex.choice", "probabilities must add up to 1")
    else:
        chosen = reader.choice(raw_sex, f"{where}.sex", ("female", "male"))
        sex = [("female" if chosen == "female" else "male", 1.0)]
    height = body.get("height_cm")
    if species == "adult" and height is None:
        raise reader.fail(f"{where}.height_cm", "missing", "an adult needs a height (cm)")
    return Subject(
        species="adult" if species == "adult" else "mouse",
        sex_probabilities=tuple(sex),
        weight_kg=reader.distribution(body["weight_kg"], f"{where}.weight_kg", low=0.0),
        height_cm=None
        if height is None
        else reader.distribution(height, f"{where}.height_cm", low=0.0),
    )


def _car_t(reader: _Reader, raw: object) -> CarTProduct:
    where = "car_t"
    body = reader.mapping(
        raw,
        where,
        required=("product", "target", "disease", "infusion_datetime"),
        optional=("infused_cells_per_kg", "infused_cells", "kinetics", "expansion_sites"),
    )
    infusion = body["infusion_datetime"]
    if isinstance(infusion, str):
        try:
            infusion = datetime.fromisoformat(infusion)
        except ValueError:
            raise reader.fail(
                f"{where}.infusion_datetime",
                f"cannot read {infusion!r} as a date and time",
                "write e.g. 2024-03-04T10:00:00",
            ) from None
    if not isinstance(infusion, datetime):
        kind = "a date without a time" if isinstance(infusion, date) else repr(infusion)
        raise reader.fail(
            f"{where}.infusion_datetime",
            f"must be a date and time, got {kind}",
            "write e.g. 2024-03-04T10:00:00",
        )
    if infusion.tzinfo is not None:
        raise reader.fail(
            f"{where}.infusion_datetime", "must be site-local time without a UTC offset"
        )
    per_kg, total = _one_of(reader, body, where, ("infused_cells_per_kg", "infused_cells"), 0.0)
    published = Stein2019CellularKinetics.published()
    kinetics: dict[str, Distribution] = {
        name: Fixed(float(getattr(published, name))) for name in _KINETIC_PARAMETERS
    }
    if "kinetics" in body:
        inner = f"{where}.kinetics"
        spec = reader.mapping(
            body["kinetics"], inner, required=("model",), optional=_KINETIC_PARAMETERS
        )
        reader.choice(spec["model"], f"{inner}.model", ("stein2019",))
        for name in _KINETIC_PARAMETERS:
            if name in spec:
                kinetics[name] = reader.distribution(spec[name], f"{inner}.{name}", low=0.0)
        try:
            _stein({n: d.nominal for n, d in kinetics.items()}, "")
        except InputError as exc:
            raise reader.fail(inner, f"typical values: {exc.message}") from None
    sites = body.get("expansion_sites", [])
    return CarTProduct(
        name=reader.text(body["product"], f"{where}.product"),
        target=reader.text(body["target"], f"{where}.target"),
        disease=reader.text(body["disease"], f"{where}.disease"),
        infusion_datetime=infusion,
        infused_cells_per_kg=per_kg,
        infused_cells=total,
        kinetics=kinetics,
        expansion_sites=tuple(
            reader.text(site, f"{where}.expansion_sites[{i}]")
            for i, site in enumerate(reader.sequence(sites, f"{where}.expansion_sites", empty=True))
        ),
    )


def _antigens(reader: _Reader, raw: object, where: str) -> dict[str, TimeSeries]:
    body = reader.mapping(
        raw, where, optional=tuple(str(k) for k in raw) if isinstance(raw, dict) else ()
    )
    return {
        reader.text(key, where): reader.series(value, join(where, str(key)))
        for key, value in body.items()
    }


def _lesion(reader: _Reader, raw: object, where: str) -> Lesion:
    body = reader.mapping(
        raw,
        where,
        required=("name", "site", "diameter_mm"),
        optional=(
            "appears_day",
            "relative_size",
            "antigens_per_cell",
            "antigen_scale",
            "pd_l1_per_cell",
            "hypoxic_fraction",
            "fdg_suv",
            "car_t_homing",
        ),
    )
    return Lesion(
        name=reader.text(body["name"], f"{where}.name"),
        site=reader.text(body["site"], f"{where}.site"),
        diameter_mm=reader.distribution(body["diameter_mm"], f"{where}.diameter_mm", low=0.0),
        appears_day=None
        if body.get("appears_day") is None
        else reader.day(body["appears_day"], f"{where}.appears_day"),
        relative_size=reader.series(body.get("relative_size", 1.0), f"{where}.relative_size"),
        antigens_per_cell=_antigens(
            reader, body.get("antigens_per_cell", {}), f"{where}.antigens_per_cell"
        ),
        antigen_scale=reader.distribution(
            body.get("antigen_scale", 1.0), f"{where}.antigen_scale", low=0.0
        ),
        pd_l1_per_cell=reader.series(body.get("pd_l1_per_cell", 0.0), f"{where}.pd_l1_per_cell"),
        hypoxic_fraction=reader.distribution(
            body.get("hypoxic_fraction", 0.0),
            f"{where}.hypoxic_fraction",
            low=0.0,
            low_inclusive=True,
            high=1.0,
        ),
        fdg_suv=reader.series(body.get("fdg_suv", 1.0), f"{where}.fdg_suv"),
        car_t_homing=reader.distribution(
            body.get("car_t_homing", 1.0), f"{where}.car_t_homing", low=0.0, low_inclusive=True
        ),
    )


@cache
def _knowledge_base() -> dict[str, tuple[str, str, str]]:
    """Agent name → (vector format, target, nuclide), first row of each agent."""
    table: dict[str, tuple[str, str, str]] = {}
    for tracer in load_tracers():
        table.setdefault(
            tracer.agent, (tracer.vector_format.value, tracer.target, tracer.radionuclide)
        )
    return table


def _nuclide(reader: _Reader, value: object, where: str) -> str:
    text = reader.text(value, where)
    try:
        return canonical_nuclide_name(text)
    except NuclideError as exc:
        raise reader.fail(where, exc.message, exc.hint) from None


def _tracer(reader: _Reader, raw: object, where: str) -> TracerSpec:
    body = reader.mapping(
        raw,
        where,
        required=("key", "agent"),
        optional=(
            "nuclide",
            "vector_format",
            "target",
            "activity_mbq",
            "activity_mbq_per_kg",
            "cell_label",
            "reporter_uptake_bq_per_cell",
        ),
    )
    agent = reader.text(body["agent"], f"{where}.agent")
    known = _knowledge_base().get(agent)
    given: dict[str, str] = {}
    if "nuclide" in body:
        given["nuclide"] = _nuclide(reader, body["nuclide"], f"{where}.nuclide")
    if "vector_format" in body:
        given["vector_format"] = reader.choice(
            body["vector_format"], f"{where}.vector_format", tuple(f.value for f in VectorFormat)
        )
    if "target" in body:
        given["target"] = reader.text(body["target"], f"{where}.target")
    if known is not None:
        for key, value in zip(("vector_format", "target", "nuclide"), known, strict=True):
            if key in given and given[key] != value:
                raise reader.fail(
                    f"{where}.{key}",
                    f"{given[key]!r} contradicts the knowledge base ({agent}: {value!r})",
                    f"remove {key} or correct it",
                )
            given[key] = value
    for key in ("vector_format", "target", "nuclide"):
        if key not in given:
            raise reader.fail(
                f"{where}.{key}",
                "missing",
                f"{agent!r} is not in the knowledge base (immunopet tracers), so give {key}",
            )
    label = body.get("cell_label")
    if label is not None:
        label = reader.choice(label, f"{where}.cell_label", known_cell_labels())
        entry = cell_label(label)
        expected = (
            VectorFormat.CELL_LABEL if entry.kind == "direct" else VectorFormat.REPORTER_SUBSTRATE
        )
        if given["vector_format"] != expected.value:
            raise reader.fail(
                f"{where}.vector_format", f"a {entry.kind} cell label needs {expected.value}"
            )
        if canonical_nuclide_name(entry.nuclide) != given["nuclide"]:
            raise reader.fail(f"{where}.nuclide", f"label {label!r} uses {entry.nuclide}")
    uptake = body.get("reporter_uptake_bq_per_cell")
    reporter = label is not None and cell_label(label).kind == "reporter"
    if reporter and uptake is None:
        raise reader.fail(
            f"{where}.reporter_uptake_bq_per_cell",
            "missing",
            "a reporter gene needs the probe activity per live reporter cell at the scan (Bq); "
            "the label table has none",
        )
    if uptake is not None:
        if not reporter:
            raise reader.fail(
                f"{where}.reporter_uptake_bq_per_cell", "applies to reporter-gene cell labels only"
            )
        uptake = reader.number(
            uptake, f"{where}.reporter_uptake_bq_per_cell", low=0.0, low_inclusive=False
        )
    fixed, per_kg = _one_of(reader, body, where, ("activity_mbq", "activity_mbq_per_kg"), 0.0)
    return TracerSpec(
        key=reader.text(body["key"], f"{where}.key"),
        agent=agent,
        vector_format=VectorFormat(given["vector_format"]),
        target=given["target"],
        nuclide=given["nuclide"],
        activity_mbq=fixed,
        activity_mbq_per_kg=per_kg,
        cell_label=label,
        knowledge_base=known is not None,
        reporter_uptake_bq_per_cell=uptake,
    )


def _scan(reader: _Reader, raw: object, where: str, default_scanner: str | None) -> Scan:
    body = reader.mapping(
        raw, where, required=("tracer", "injection_day", "scan_delays_h"), optional=("scanner",)
    )
    delays = body["scan_delays_h"]
    values = delays if isinstance(delays, list) else [delays]
    scan_delays = tuple(
        reader.number(v, f"{where}.scan_delays_h[{i}]", low=0.0, low_inclusive=True)
        for i, v in enumerate(reader.sequence(values, f"{where}.scan_delays_h"))
    )
    if list(scan_delays) != sorted(set(scan_delays)):
        raise reader.fail(f"{where}.scan_delays_h", "must increase")
    if "scanner" in body:
        scanner = reader.choice(body["scanner"], f"{where}.scanner", known_scanners())
    elif default_scanner is None:
        raise reader.fail(f"{where}.scanner", "missing", "give scanner here or at the top level")
    else:
        scanner = default_scanner
    return Scan(
        tracer=reader.text(body["tracer"], f"{where}.tracer"),
        injection_day=reader.day(body["injection_day"], f"{where}.injection_day"),
        scan_delays_h=scan_delays,
        scanner=scanner,
    )


def _inflammation(reader: _Reader, raw: object, where: str) -> Inflammation:
    body = reader.mapping(
        raw, where, required=("kind", "organ", "window_day", "uptake_factor"), optional=("tracers",)
    )
    window = reader.sequence(body["window_day"], f"{where}.window_day")
    if len(window) != 2:
        raise reader.fail(f"{where}.window_day", "must be [start, end]")
    start = reader.day(window[0], f"{where}.window_day[0]")
    end = reader.day(window[1], f"{where}.window_day[1]")
    if end <= start:
        raise reader.fail(f"{where}.window_day[1]", "must be after the start")
    kind = reader.choice(body["kind"], f"{where}.kind", ("crs", "icans", "other"))
    tracers = reader.sequence(body.get("tracers", []), f"{where}.tracers", empty=True)
    return Inflammation(
        kind="crs" if kind == "crs" else "icans" if kind == "icans" else "other",
        organ=reader.text(body["organ"], f"{where}.organ"),
        start_day=start,
        end_day=end,
        uptake_factor=reader.distribution(body["uptake_factor"], f"{where}.uptake_factor", low=0.0),
        tracers=tuple(reader.text(t, f"{where}.tracers[{i}]") for i, t in enumerate(tracers)),
    )


def _event(reader: _Reader, raw: object, where: str) -> TruthEvent:
    body = reader.mapping(raw, where, required=("type", "day"), optional=("lesion", "site", "note"))
    kind = reader.choice(body["type"], f"{where}.type", tuple(e.value for e in EventType))
    if ("lesion" in body) == ("site" in body):
        raise reader.fail(where, "give exactly one of lesion and site")
    return TruthEvent(
        type=EventType(kind),
        lesion=reader.text(body["lesion"], f"{where}.lesion") if "lesion" in body else None,
        site=reader.text(body["site"], f"{where}.site") if "site" in body else None,
        day=reader.day(body["day"], f"{where}.day"),
        note=reader.text(body["note"], f"{where}.note") if "note" in body else "",
    )


def _unique(reader: _Reader, names: list[str], where: str, what: str) -> None:
    for index, name in enumerate(names):
        if name in names[:index]:
            raise reader.fail(f"{where}[{index}]", f"{what} {name!r} appears twice")


def _cross_check(reader: _Reader, scenario: Scenario) -> None:
    """References between sections: tracers of scans, lesions and sites of events."""
    tracer_keys = [t.key for t in scenario.tracers]
    _unique(reader, tracer_keys, "tracers", "key")
    _unique(reader, [lesion.name for lesion in scenario.lesions], "lesions", "name")
    tracers = {t.key: t for t in scenario.tracers}
    for index, scan in enumerate(scenario.scans):
        if scan.tracer not in tracers:
            raise reader.fail(
                f"scans[{index}].tracer",
                f"unknown tracer {scan.tracer!r}",
                f"choose one of {', '.join(tracer_keys)}",
            )
        if (
            tracers[scan.tracer].vector_format is VectorFormat.CELL_LABEL
            and scan.injection_day != 0
        ):
            raise reader.fail(
                f"scans[{index}].injection_day",
                "directly labelled cells are injected with the infusion",
                "write injection_day: 0",
            )
    used = {scan.tracer for scan in scenario.scans}
    for index, key in enumerate(tracer_keys):
        if key not in used:
            raise reader.fail(f"tracers[{index}].key", f"tracer {key!r} is never scanned")
    for index, item in enumerate(scenario.inflammation):
        for position, key in enumerate(item.tracers):
            if key not in tracers:
                raise reader.fail(
                    f"inflammation[{index}].tracers[{position}]", f"unknown tracer {key!r}"
                )
    lesions = {lesion.name: lesion for lesion in scenario.lesions}
    sites = {
        *(lesion.site for lesion in scenario.lesions),
        *(item.organ for item in scenario.inflammation),
        *(tissue.site for tissue in scenario.normal_tissues),
        *scenario.car_t.expansion_sites,
    }
    for index, event in enumerate(scenario.events):
        if event.lesion is not None and event.lesion not in lesions:
            raise reader.fail(
                f"events[{index}].lesion",
                f"unknown lesion {event.lesion!r}",
                f"choose one of {', '.join(lesions)}",
            )
        if event.site is not None and event.site not in sites:
            raise reader.fail(
                f"events[{index}].site",
                f"site {event.site!r} is not named elsewhere in the file",
                f"choose one of {', '.join(sorted(sites))}",
            )


def _parse(text: str, label: str, name: str) -> Scenario:
    reader = _Reader(label)
    try:
        raw = yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = "" if mark is None else f"line {mark.line + 1}"
        raise reader.fail(
            where, f"not valid YAML ({getattr(exc, 'problem', None) or exc})"
        ) from None
    body = reader.mapping(
        raw,
        "",
        required=("description", "subject", "car_t", "lesions", "tracers", "scans", "events"),
        optional=("source", "scanner", "normal_tissues", "inflammation"),
    )
    default_scanner = (
        reader.choice(body["scanner"], "scanner", known_scanners()) if "scanner" in body else None
    )
    scenario = Scenario(
        name=name,
        description=reader.text(body["description"], "description"),
        source=reader.text(body["source"], "source") if "source" in body else "",
        subject=_subject(reader, body["subject"]),
        car_t=_car_t(reader, body["car_t"]),
        lesions=tuple(
            _lesion(reader, item, f"lesions[{i}]")
            for i, item in enumerate(reader.sequence(body["lesions"], "lesions"))
        ),
        normal_tissues=tuple(
            NormalTissue(
                site=reader.text(
                    reader.mapping(
                        item, f"normal_tissues[{i}]", required=("site", "antigens_per_cell")
                    )["site"],
                    f"normal_tissues[{i}].site",
                ),
                antigens_per_cell=_antigens(
                    reader, item["antigens_per_cell"], f"normal_tissues[{i}].antigens_per_cell"
                ),
            )
            for i, item in enumerate(
                reader.sequence(body.get("normal_tissues", []), "normal_tissues", empty=True)
            )
        ),
        tracers=tuple(
            _tracer(reader, item, f"tracers[{i}]")
            for i, item in enumerate(reader.sequence(body["tracers"], "tracers"))
        ),
        scans=tuple(
            _scan(reader, item, f"scans[{i}]", default_scanner)
            for i, item in enumerate(reader.sequence(body["scans"], "scans"))
        ),
        inflammation=tuple(
            _inflammation(reader, item, f"inflammation[{i}]")
            for i, item in enumerate(
                reader.sequence(body.get("inflammation", []), "inflammation", empty=True)
            )
        ),
        events=tuple(
            _event(reader, item, f"events[{i}]")
            for i, item in enumerate(reader.sequence(body["events"], "events"))
        ),
    )
    _cross_check(reader, scenario)
    return scenario


def _builtin_names() -> tuple[str, ...]:
    folder = files(__package__ or "immunopet.simulate").joinpath(_PACKAGE_FOLDER)
    return tuple(
        sorted(
            entry.name.rsplit(".", 1)[0]
            for entry in folder.iterdir()
            if entry.name.endswith(_SUFFIXES)
        )
    )


@cache
def _builtin(name: str) -> Scenario:
    folder = files(__package__ or "immunopet.simulate").joinpath(_PACKAGE_FOLDER)
    file_name = f"{name}.yaml"
    return _parse(folder.joinpath(file_name).read_text(encoding="utf-8"), file_name, name)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a built-in scenario by name, or a user's scenario file by path.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        A built-in name (see :func:`list_scenarios`, e.g. ``"cd19_negative_relapse"``) or the
        path of a ``.yaml``/``.yml`` file (copy a built-in file and edit it).

    Returns
    -------
    Scenario
        Validated; the name of a user file is its stem.

    Raises
    ------
    InputError
        If the name is unknown, the file cannot be read, or a value is missing, unknown or
        out of range; the message names the file and the key path, e.g.
        ``crs.yaml: lesions[2].diameter_mm: must be > 0, got -4``.

    Examples
    --------
    >>> scenario = load_scenario("cd19_negative_relapse")
    >>> scenario.car_t.target, [event.type.value for event in scenario.events][:2]
    ('CD19', ['car_t_expansion', 'car_t_homing'])

    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and not text.endswith(_SUFFIXES):
        if text not in _builtin_names():
            raise InputError(
                f"unknown scenario {text!r}",
                field="--scenario",
                hint=f"choose one of {', '.join(_builtin_names())} or give a .yaml file",
            )
        return _builtin(text)
    path = Path(name_or_path)
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the scenario file ({exc.strerror})", path=path) from None
    return _parse(content, str(path), path.stem)


def list_scenarios() -> tuple[tuple[str, str], ...]:
    """The built-in scenarios as ``(name, one-line description)``, sorted by name.

    Examples
    --------
    >>> dict(list_scenarios())["crs"][:30]
    'Cytokine release syndrome: spl'

    """
    return tuple((name, _builtin(name).description) for name in _builtin_names())


# --------------------------------------------------------------------------- cohorts


def _draw(
    distribution: Distribution,
    rng: np.random.Generator,
    where: str,
    *,
    low_inclusive: bool = False,
    high: float = math.inf,
) -> float:
    """One draw inside ``(0, high]`` (``[0, high]`` with ``low_inclusive``), redrawn if outside."""
    for _ in range(_MAX_REDRAWS):
        value = distribution.draw(rng)
        if (value > 0.0 or (low_inclusive and value == 0.0)) and value <= high:
            return value
    raise InputError(
        f"{_MAX_REDRAWS} draws all fell outside the valid range (0, {high:g}]",
        field=where,
        hint="narrow the distribution",
    )


def _stein(values: Mapping[str, float], source: str) -> Stein2019CellularKinetics:
    return Stein2019CellularKinetics(
        fold_expansion=values["fold_expansion"],
        tmax_d=values["tmax_d"],
        cmax_copies_per_ug=values["cmax_copies_per_ug"],
        alpha_per_day=values["alpha_per_day"],
        beta_per_day=values["beta_per_day"],
        fb=values["fb"],
        source=source,
    )


def _kinetics(scenario: Scenario, rng: np.random.Generator) -> Stein2019CellularKinetics:
    """Draw the kinetic parameters jointly until they form a valid model (e.g. α > β)."""
    source = f"Stein 2019 structure; parameters drawn for scenario {scenario.name}"
    for _ in range(_MAX_REDRAWS):
        values = {
            name: _draw(scenario.car_t.kinetics[name], rng, f"car_t.kinetics.{name}")
            for name in _KINETIC_PARAMETERS
        }
        try:
            return _stein(values, source)
        except InputError:
            continue
    raise InputError(
        "no valid kinetic parameter set in 1000 draws",
        field="car_t.kinetics",
        hint="narrow the distributions",
    )


def _patient(scenario: Scenario, rng: np.random.Generator, index: int, seed: int) -> PatientSpec:
    """Draw one patient; the order of draws is fixed (documented in the README)."""
    subject = scenario.subject
    sexes = [sex for sex, _ in subject.sex_probabilities]
    probabilities = [p for _, p in subject.sex_probabilities]
    sex = sexes[int(rng.choice(len(sexes), p=probabilities))]
    weight_kg = _draw(subject.weight_kg, rng, "subject.weight_kg")
    height_cm = (
        None if subject.height_cm is None else _draw(subject.height_cm, rng, "subject.height_cm")
    )
    car_t = scenario.car_t
    if car_t.infused_cells_per_kg is not None:
        infused = _draw(car_t.infused_cells_per_kg, rng, "car_t.infused_cells_per_kg") * weight_kg
    else:
        assert car_t.infused_cells is not None
        infused = _draw(car_t.infused_cells, rng, "car_t.infused_cells")
    kinetics = _kinetics(scenario, rng)
    lesions = []
    for number, lesion in enumerate(scenario.lesions):
        where = f"lesions[{number}]"
        scale = _draw(lesion.antigen_scale, rng, f"{where}.antigen_scale")
        lesions.append(
            PatientLesion(
                name=lesion.name,
                site=lesion.site,
                diameter_mm=_draw(lesion.diameter_mm, rng, f"{where}.diameter_mm"),
                appears_day=lesion.appears_day,
                relative_size=lesion.relative_size,
                antigens_per_cell={
                    target: tuple((day, value * scale) for day, value in series)
                    for target, series in lesion.antigens_per_cell.items()
                },
                pd_l1_per_cell=tuple((day, value * scale) for day, value in lesion.pd_l1_per_cell),
                hypoxic_fraction=_draw(
                    lesion.hypoxic_fraction,
                    rng,
                    f"{where}.hypoxic_fraction",
                    low_inclusive=True,
                    high=1.0,
                ),
                fdg_suv=lesion.fdg_suv,
                car_t_homing=_draw(
                    lesion.car_t_homing, rng, f"{where}.car_t_homing", low_inclusive=True
                ),
            )
        )
    tracers = []
    for number, tracer in enumerate(scenario.tracers):
        if tracer.activity_mbq is not None:
            activity = _draw(tracer.activity_mbq, rng, f"tracers[{number}].activity_mbq")
        else:
            assert tracer.activity_mbq_per_kg is not None
            activity = weight_kg * _draw(
                tracer.activity_mbq_per_kg, rng, f"tracers[{number}].activity_mbq_per_kg"
            )
        tracers.append(
            PatientTracer(
                key=tracer.key,
                agent=tracer.agent,
                vector_format=tracer.vector_format,
                target=tracer.target,
                nuclide=tracer.nuclide,
                activity_mbq=activity,
                cell_label=tracer.cell_label,
                reporter_uptake_bq_per_cell=tracer.reporter_uptake_bq_per_cell,
            )
        )
    inflammation = tuple(
        PatientInflammation(
            kind=item.kind,
            organ=item.organ,
            start_day=item.start_day,
            end_day=item.end_day,
            uptake_factor=_draw(item.uptake_factor, rng, f"inflammation[{number}].uptake_factor"),
            tracers=item.tracers,
        )
        for number, item in enumerate(scenario.inflammation)
    )
    return PatientSpec(
        patient_id=f"P{index + 1:04d}",
        scenario=scenario.name,
        seed=seed,
        species=subject.species,
        sex=sex,
        weight_kg=weight_kg,
        height_cm=height_cm,
        infusion_datetime=car_t.infusion_datetime,
        car_t_target=car_t.target,
        car_t_product=car_t.name,
        infused_cells=infused,
        kinetics=kinetics,
        lesions=tuple(lesions),
        normal_tissues=scenario.normal_tissues,
        tracers=tuple(tracers),
        scans=scenario.scans,
        inflammation=inflammation,
        events=scenario.events,
    )


def draw_cohort(scenario: Scenario, n: int, seed: int) -> tuple[PatientSpec, ...]:
    """Draw ``n`` virtual patients from the scenario's distributions, deterministically.

    Each patient gets its own generator, spawned from ``np.random.default_rng(seed)``, so
    the same seed gives the same cohort and patient *i* is the same whatever ``n`` is.
    Values outside their valid range (a negative weight, a hypoxic fraction above 1, a
    kinetic parameter set with α ≤ β) are redrawn.

    Parameters
    ----------
    scenario : Scenario
        From :func:`load_scenario`.
    n : int
        Number of patients, ≥ 1.
    seed : int
        Seed, ≥ 0.

    Returns
    -------
    tuple of PatientSpec
        Patient ids ``P0001``, ``P0002``, ...

    Raises
    ------
    InputError
        If ``n`` < 1 or ``seed`` < 0.

    Examples
    --------
    >>> scenario = load_scenario("crs")
    >>> first, second = draw_cohort(scenario, 2, seed=7)
    >>> first.patient_id, first == draw_cohort(scenario, 1, seed=7)[0], first == second
    ('P0001', True, False)

    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"cohort size must be a whole number >= 1, got {n!r}", field="--cohort")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}", field="--seed")
    generators = np.random.default_rng(seed).spawn(n)
    return tuple(_patient(scenario, rng, index, seed) for index, rng in enumerate(generators))
