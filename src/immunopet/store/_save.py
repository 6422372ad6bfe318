"""Save a results document to the database in one transaction, and read it back.

Saving a study again replaces it: the study row (natural key ``study_key``) is updated and all
its rows in the other tables are deleted and inserted anew, inside the same transaction that
adds the run's row to ``runs``. Re-running a study therefore updates it and never duplicates
it, and a save that fails or is killed leaves the database exactly as it was (see
:mod:`immunopet.store._engine` for why that holds for SQLite).

The document is checked completely before the database is opened, against the column types of
:mod:`immunopet.store._models`: a required value missing, a wrong type, a string too long for
its column, a date-time that is not ISO 8601, a number that is NaN or infinite, a key repeated
(two measurements of the same VOI, timepoint and tracer) or a reference to an unknown
timepoint is an :class:`~immunopet.errors.InputError` naming the place in the document.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from numbers import Integral, Real
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Double,
    Integer,
    String,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, defer

from immunopet.errors import InputError
from immunopet.store._engine import ABSENT_COLUMNS, DB_FIELD, DEFAULT_LOCK_TIMEOUT_S, open_session
from immunopet.store._models import (
    Base,
    Event,
    LesionObservation,
    LesionRow,
    Measurement,
    Run,
    Scan,
    Study,
    Timepoint,
)

__all__ = ["RESULTS_SCHEMA_MAJOR", "SaveSummary", "load_results", "save_results"]

RESULTS_SCHEMA_MAJOR = 1
"""Major version of the results document (``results["schema_version"]``) this store reads."""

_TOP_LEVEL = (
    "schema_version",
    "software",
    "study",
    "timepoints",
    "lesions",
    "measurements",
    "events",
    "warnings",
)

# Insert order (parents first); deletion runs in the reverse order.
_CHILDREN: tuple[type[Base], ...] = (
    Timepoint,
    LesionRow,
    Scan,
    LesionObservation,
    Measurement,
    Event,
)

_FIX_HINT = "the results document is malformed: report this as a bug of the code that built it"


@dataclass(frozen=True)
class SaveSummary:
    """What :func:`save_results` stored.

    Attributes
    ----------
    study_key : str
        The study's natural key.
    run_id : str
        Identifier of the run row written with the results (hex UUID4).
    created : bool
        True when the study was new to the database, False when it replaced a previous run.
    rows : Mapping[str, int]
        Rows the study now has per table (``timepoints``, ``scans``, ``lesions``,
        ``lesion_observations``, ``measurements``, ``events``).
    url : str
        The database URL, password hidden.

    """

    study_key: str
    run_id: str
    created: bool
    rows: Mapping[str, int]
    url: str


@dataclass(frozen=True)
class _Document:
    study: dict[str, Any]
    run: dict[str, Any]
    schema_version: str
    children: dict[type[Base], list[dict[str, Any]]]


def _error(where: str, problem: str) -> InputError:
    return InputError(f"results document: {problem}", field=where, hint=_FIX_HINT)


class _InvalidValueError(ValueError):
    """A value that its column cannot hold; the caller adds where it is."""


def _checked_json(value: Any, where: str) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _error(where, f"is not plain finite JSON ({exc})") from exc
    return value


@cache
def _checker(column: Column[Any]) -> Callable[[Any], Any]:
    """Return the check of one column: the value to store, or :class:`_InvalidValueError`."""
    kind = column.type
    nullable = bool(column.nullable)

    def missing() -> None:
        if not nullable:
            raise _InvalidValueError("is missing or null")

    def boolean(value: Any) -> Any:
        if value is None:
            return missing()
        if not isinstance(value, bool):
            raise _InvalidValueError(f"must be true or false, not {value!r}")
        return value

    def number(value: Any) -> Any:
        if value is None:
            return missing()
        if type(value) is not float:
            if isinstance(value, bool) or not isinstance(value, Real):
                raise _InvalidValueError(f"must be a number, not {value!r}")
            value = float(value)
        if not math.isfinite(value):
            raise _InvalidValueError(f"is {value}; use null for a value that cannot be computed")
        return value

    def integer(value: Any) -> Any:
        if value is None:
            return missing()
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise _InvalidValueError(f"must be an integer, not {value!r}")
        return int(value)

    length = getattr(kind, "length", None)
    iso = bool(column.info.get("iso_datetime"))

    def string(value: Any) -> Any:
        if value is None:
            return missing()
        if not isinstance(value, str):
            raise _InvalidValueError(f"must be a string, not {value!r}")
        if length is not None and len(value) > length:
            raise _InvalidValueError(f"is longer than {length} characters")
        if iso:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise _InvalidValueError(f"{value!r} is not an ISO 8601 date-time") from None
        return value

    def plain_json(value: Any) -> Any:
        if value is None:
            return missing()
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise _InvalidValueError(f"is not plain finite JSON ({exc})") from exc
        return value

    checks: tuple[tuple[type[Any], Callable[[Any], Any]], ...] = (
        (Boolean, boolean),
        (Double, number),
        (Integer, integer),
        (String, string),
        (JSON, plain_json),
    )
    for column_type, check in checks:
        if isinstance(kind, column_type):
            return check
    raise TypeError(f"no check for column type {kind!r}")  # pragma: no cover - schema bug


@cache
def _fields(model: type[Base]) -> tuple[tuple[str, str, Callable[[Any], Any]], ...]:
    """``(document key, attribute, check)`` of each document column of ``model``."""
    columns = sa_inspect(model).columns
    return tuple(
        (key, attribute, _checker(columns[attribute]))
        for key, attribute in model.document_keys.items()
    )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _error(where, "must be an object")
    return value


def _sequence(value: Any, where: str) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _error(where, "must be a list")
    return value


def _row(
    model: type[Base], item: Any, where: str, *, nested: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Return the column values of ``model`` from one object of the document.

    Keys in ``nested`` are handled by the caller; other unknown keys go to ``extra``; optional
    keys the object lacks are listed in ``absent_keys``.
    """
    fields = _mapping(item, where)
    row: dict[str, Any] = {}
    absent: list[str] = []
    for key, attribute, check in _fields(model):
        if key not in fields:
            absent.append(key)
        try:
            row[attribute] = check(fields.get(key))
        except _InvalidValueError as problem:
            raise _error(f"{where}.{key}", str(problem)) from None
    for key, attributes in model.triples.items():
        if key not in fields:
            absent.append(key)
        row |= _triple(model, attributes, fields.get(key), f"{where}.{key}")
    known = model.document_keys.keys() | model.triples.keys() | nested
    extra = {k: v for k, v in fields.items() if k not in known}
    row["extra"] = _checked_json(extra, where) if extra else None
    row["absent_keys"] = absent or None
    return row


def _triple(
    model: type[Base], attributes: tuple[str, str, str], value: Any, where: str
) -> dict[str, Any]:
    """Split ``[L, P, S]`` (mm) into its three columns; ``None`` into three ``NULL``."""
    if value is None:
        return dict.fromkeys(attributes)
    coordinates = _sequence(value, where)
    if len(coordinates) != len(attributes):
        raise _error(where, f"must hold 3 coordinates (L, P, S in mm), not {len(coordinates)}")
    columns = sa_inspect(model).columns
    values = {}
    for i, (attribute, coordinate) in enumerate(zip(attributes, coordinates, strict=True)):
        try:
            values[attribute] = _checker(columns[attribute])(coordinate)
        except _InvalidValueError as problem:
            raise _error(f"{where}[{i}]", str(problem)) from None
    return values


def _check_unique(model: type[Base], rows: list[dict[str, Any]], places: list[str]) -> None:
    """Refuse two rows of ``model`` with the same natural key (its unique constraint)."""
    table = Base.metadata.tables[model.__tablename__]
    for constraint in table.constraints:
        if not isinstance(constraint, UniqueConstraint):
            continue
        names = [c.name for c in constraint.columns if c.name != "study_id"]
        seen: dict[tuple[Any, ...], str] = {}
        for row, place in zip(rows, places, strict=True):
            key = tuple(row[name] for name in names)
            if None in key:  # SQL unique constraints do not compare NULLs
                continue
            if key in seen:
                raise _error(
                    place, f"repeats the key {dict(zip(names, key, strict=True))} of {seen[key]}"
                )
            seen[key] = place


def _parse_document(results: Any) -> _Document:
    document = _mapping(results, "results")
    for key in _TOP_LEVEL:
        if key not in document:
            raise _error(key, "is missing")
    version = document["schema_version"]
    if not isinstance(version, str) or version.split(".")[0] != str(RESULTS_SCHEMA_MAJOR):
        raise _error(
            "schema_version",
            f"is {version!r}; this store reads results schema {RESULTS_SCHEMA_MAJOR}.x",
        )
    run = _row(Run, document["software"], "software")
    study = _row(Study, document["study"], "study")
    warnings = _sequence(document["warnings"], "warnings")
    for i, text in enumerate(warnings):
        if not isinstance(text, str):
            raise _error(f"warnings[{i}]", f"must be a string, not {text!r}")
    study["warnings"] = list(warnings)
    extra = {k: v for k, v in document.items() if k not in _TOP_LEVEL}
    study["document_extra"] = _checked_json(extra, "results") if extra else None

    children: dict[type[Base], list[dict[str, Any]]] = {model: [] for model in _CHILDREN}
    places: dict[type[Base], list[str]] = {model: [] for model in _CHILDREN}

    def add(model: type[Base], row: dict[str, Any], place: str, position: int) -> None:
        row["position"] = position
        children[model].append(row)
        places[model].append(place)

    for i, item in enumerate(_sequence(document["timepoints"], "timepoints")):
        where = f"timepoints[{i}]"
        timepoint = _row(Timepoint, item, where, nested=frozenset({"scans"}))
        add(Timepoint, timepoint, where, i)
        scans = _sequence(_mapping(item, where).get("scans"), f"{where}.scans")
        for j, scan_item in enumerate(scans):
            scan = _row(Scan, scan_item, f"{where}.scans[{j}]")
            scan["timepoint_id"] = timepoint["timepoint_id"]
            add(Scan, scan, f"{where}.scans[{j}]", j)
    timepoint_ids = {row["timepoint_id"] for row in children[Timepoint]}

    def known_timepoint(timepoint_id: Any, where: str) -> None:
        if timepoint_id not in timepoint_ids:
            raise _error(where, f"names timepoint {timepoint_id!r}, not one of the timepoints")

    for i, item in enumerate(_sequence(document["lesions"], "lesions")):
        where = f"lesions[{i}]"
        lesion = _row(LesionRow, item, where, nested=frozenset({"timepoints"}))
        add(LesionRow, lesion, where, i)
        observed = _mapping(_mapping(item, where).get("timepoints"), f"{where}.timepoints")
        for k, (timepoint_id, observation_item) in enumerate(observed.items()):
            place = f"{where}.timepoints.{timepoint_id}"
            known_timepoint(timepoint_id, place)
            observation = _row(LesionObservation, observation_item, place)
            observation["tracking_id"] = lesion["tracking_id"]
            observation["timepoint_id"] = timepoint_id
            add(LesionObservation, observation, place, k)

    for i, item in enumerate(_sequence(document["measurements"], "measurements")):
        where = f"measurements[{i}]"
        measurement = _row(Measurement, item, where)
        known_timepoint(measurement["timepoint_id"], f"{where}.timepoint_id")
        add(Measurement, measurement, where, i)

    for i, item in enumerate(_sequence(document["events"], "events")):
        add(Event, _row(Event, item, f"events[{i}]"), f"events[{i}]", i)

    for model in _CHILDREN:
        _check_unique(model, children[model], places[model])
    return _Document(study=study, run=run, schema_version=version, children=children)


def _utc_naive(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(
            f"started={moment.isoformat()} has no time zone",
            field="started",
            hint="pass an aware datetime, e.g. datetime.now(UTC)",
        )
    return moment.astimezone(UTC).replace(tzinfo=None)


def save_results(
    results: Mapping[str, Any],
    url: str,
    *,
    started: datetime | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> SaveSummary:
    """Save one study's results document in one transaction, replacing an earlier run of it.

    Parameters
    ----------
    results : Mapping[str, Any]
        The results document (``results.json``, schema 1.x). Keys this store does not know
        are kept (``extra`` columns) and read back by :func:`load_results`.
    url : str
        SQLAlchemy database URL, e.g. :func:`default_url` of the output folder,
        ``sqlite:///results.db`` or ``postgresql+psycopg://user@host/db``. An SQLite file and
        its tables are created when missing (its folder must exist).
    started : datetime, optional
        When the run started (time-zone aware); default: when the save starts.
    lock_timeout_s : float
        SQLite: how long to wait for another process's write lock (s).

    Returns
    -------
    SaveSummary
        The study key, run id, whether the study was new, and its row counts.

    Raises
    ------
    InputError
        The document is malformed (field: its place, e.g. ``measurements[3].suv_max``;
        nothing is written), or the database cannot be used (field ``--db``: bad URL,
        locked, not an immunopet database, newer schema). Either way the database is left
        as it was.

    Examples
    --------
    >>> import tempfile
    >>> from immunopet.store import default_url, load_results
    >>> doc = {"schema_version": "1.0", "software": {"name": "immunopet", "version": "0.1.0"},
    ...        "study": {"patient_id": "P1", "study_key": "k1", "lesion_tracer": "fdg",
    ...                  "infusion_datetime": "2026-03-02T09:00:00", "car_t_product": None,
    ...                  "car_t_target": None},
    ...        "timepoints": [], "lesions": [], "measurements": [], "events": [], "warnings": []}
    >>> with tempfile.TemporaryDirectory() as out:
    ...     summary = save_results(doc, default_url(out))
    ...     again = save_results(doc, default_url(out))
    ...     same = load_results(default_url(out), "k1") == doc
    >>> summary.created, again.created, same
    (True, False, True)

    """
    document = _parse_document(results)
    started_utc = _utc_naive(started)
    run_id = uuid.uuid4().hex
    study_key = document.study["study_key"]
    with open_session(url, write=True, lock_timeout_s=lock_timeout_s) as (session, shown):
        study = session.scalars(select(Study).where(Study.study_key == study_key)).one_or_none()
        created = study is None
        if study is None:
            study = Study(**document.study)
            session.add(study)
        else:
            for attribute, value in document.study.items():
                setattr(study, attribute, value)
            for model in reversed(_CHILDREN):
                session.execute(
                    delete(model).where(model.__table__.c.study_id == study.id),
                    execution_options={"synchronize_session": False},
                )
        session.flush()
        rows: dict[str, int] = {}
        for model in _CHILDREN:
            values = [{**row, "study_id": study.id} for row in document.children[model]]
            if values:
                session.execute(insert(model), values)
            rows[model.__tablename__] = len(values)
        session.add(
            Run(
                run_id=run_id,
                study_id=study.id,
                started_utc=started_utc,
                finished_utc=_utc_naive(None),
                results_schema_version=document.schema_version,
                status="complete",
                **document.run,
            )
        )
        session.flush()
    return SaveSummary(study_key=study_key, run_id=run_id, created=created, rows=rows, url=shown)


def _item(model_row: Base, *, nested: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the document object of one row: columns, triples, nested values, extra keys.

    Columns left out of the query (those an older schema lacks; :func:`_rows`) are skipped:
    such a database keeps their values in ``extra``.
    """
    unloaded = sa_inspect(model_row).unloaded
    item = {
        key: getattr(model_row, attribute)
        for key, attribute in model_row.document_keys.items()
        if attribute not in unloaded
    }
    for key, attributes in model_row.triples.items():
        values = [getattr(model_row, attribute) for attribute in attributes]
        item[key] = None if values[0] is None else values
    for key in getattr(model_row, "absent_keys", None) or ():
        item.pop(key, None)
    item.update(nested or {})
    item.update(getattr(model_row, "extra", None) or {})
    return item


def _rows(session: Session, model: type[Base], study_id: int) -> list[Any]:
    columns = model.__table__.c
    statement = select(model).where(columns.study_id == study_id).order_by(columns.position)
    absent = session.info.get(ABSENT_COLUMNS, {}).get(model.__tablename__, ())
    if absent:  # an older schema's database: leave out the columns it lacks
        statement = statement.options(
            *(defer(getattr(model, name), raiseload=True) for name in sorted(absent))
        )
    return list(session.scalars(statement))


def load_results(
    url: str, study_key: str, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> dict[str, Any]:
    """Read one study's results back in the shape of the document :func:`save_results` took.

    Parameters
    ----------
    url : str
        SQLAlchemy database URL (an SQLite file must exist).
    study_key : str
        The study's natural key (``results["study"]["study_key"]``).
    lock_timeout_s : float
        SQLite: how long to wait while another process commits (s).

    Returns
    -------
    dict
        The results document of the study's latest run: ``schema_version`` and ``software``
        of that run, every list in its saved order, floats exactly as saved, and the keys the
        schema does not know as they were given.

    Raises
    ------
    InputError
        No such study (the hint names some that exist) or the database cannot be read
        (field ``--db``).

    """
    with open_session(url, write=False, lock_timeout_s=lock_timeout_s) as (session, shown):
        study = session.scalars(select(Study).where(Study.study_key == study_key)).one_or_none()
        if study is None:
            count = session.scalar(select(func.count()).select_from(Study)) or 0
            known = session.scalars(select(Study.study_key).order_by(Study.id).limit(5)).all()
            raise InputError(
                f"the database {shown} holds no study {study_key!r}",
                field=DB_FIELD,
                hint=f"it holds {count} studies"
                + (f", e.g. {', '.join(map(repr, known))}" if known else ""),
            )
        run = session.scalars(
            select(Run).where(Run.study_id == study.id).order_by(Run.id.desc()).limit(1)
        ).one()
        scans: dict[str, list[dict[str, Any]]] = {}
        for scan in _rows(session, Scan, study.id):
            scans.setdefault(scan.timepoint_id, []).append(_item(scan))
        observations: dict[str, dict[str, Any]] = {}
        for observation in _rows(session, LesionObservation, study.id):
            by_timepoint = observations.setdefault(observation.tracking_id, {})
            by_timepoint[observation.timepoint_id] = _item(observation)
        document: dict[str, Any] = {
            "schema_version": run.results_schema_version,
            "software": _item(run),
            "study": _item(study),
            "timepoints": [
                _item(tp, nested={"scans": scans.get(tp.timepoint_id, [])})
                for tp in _rows(session, Timepoint, study.id)
            ],
            "lesions": [
                _item(lesion, nested={"timepoints": observations.get(lesion.tracking_id, {})})
                for lesion in _rows(session, LesionRow, study.id)
            ],
            "measurements": [_item(m) for m in _rows(session, Measurement, study.id)],
            "events": [_item(e) for e in _rows(session, Event, study.id)],
            "warnings": list(study.warnings),
        }
        document.update(study.document_extra or {})
    return document
