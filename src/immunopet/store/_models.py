"""The results database schema: SQLAlchemy 2 declarative models of one analysed study.

One row of ``studies`` per study (natural key ``study_key``: a stable hash of the patient and
its series UIDs, made by the pipeline); every other table hangs off it by ``study_id`` and
holds the rows of one list of the results document (``results.json``, schema 1.x, described by
``data/results.schema.json``; the pipeline owns that layout, this module stores it):

========================  ============================================  ===================================
table                     one row per                                   natural key (unique)
========================  ============================================  ===================================
``studies``               study                                         ``study_key``
``timepoints``            ``timepoints[i]``                             study, ``timepoint_id``
``scans``                 ``timepoints[i].scans[j]``                    study, ``series_uid``
``lesions``               ``lesions[i]``                                study, ``tracking_id``
``lesion_observations``   ``lesions[i].timepoints[timepoint_id]``       study, ``tracking_id``, ``timepoint_id``
``measurements``          ``measurements[i]``                           study, ``voi_type``, ``voi_id``,
                                                                        ``timepoint_id``, ``tracer``
``events``                ``events[i]``                                 study, ``event_id`` (when given)
``runs``                  successful save (history; kept on re-runs)    ``run_id``
``meta``                  fact about the database itself                ``key`` (``schema_version`` …)
========================  ============================================  ===================================

Children reference their timepoint and lesion by the natural keys (composite foreign keys
``(study_id, timepoint_id)`` and ``(study_id, tracking_id)``), so a study can be written with
plain bulk inserts and read with plain queries. Every list row keeps its ``position`` so the
document reads back in its own order. Keys of the document this schema does not know are kept
in the row's ``extra`` JSON column and come back on reading, so a newer pipeline that adds a
key loses nothing (``detection_method``, ``registration``, per-scan ``noise`` … live there);
optional keys an object did not have are listed in ``absent_keys`` so they read back absent,
not ``null``. Columns are ``NOT NULL`` where the value is required by every version of the
document; the rest accept ``NULL``.

Values are stored as the document states them: floats as IEEE-754 doubles (``Double``: SQLite
``REAL``, PostgreSQL ``double precision``; they read back bit for bit), date-times as the
document's ISO 8601 text (site-local, exactly as written; no time-zone conversion by a
database driver), units in the column names as everywhere in immunopet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from immunopet.result import MEASUREMENT_COLUMNS

__all__ = [
    "ADDED_COLUMNS",
    "SCHEMA_VERSION",
    "Base",
    "Event",
    "LesionObservation",
    "LesionRow",
    "Measurement",
    "MetaRow",
    "Run",
    "Scan",
    "Study",
    "Timepoint",
]

SCHEMA_VERSION = 2
"""Version of this database schema, stored in ``meta``; a database of a newer one is refused.

1. The first schema.
2. ``measurements`` gained the columns ``voi_source``, ``suv_mean_pvc``, ``suv_mean_pvc_se``,
   ``car_t_cells``, ``car_t_cells_se`` and ``lesion_found`` (schema 1 kept them in ``extra``).
   A schema-1 database is read as it is and upgraded in place by the next save
   (:data:`ADDED_COLUMNS`).
"""

# Constraint names fixed by convention, so that a later migration can name what it alters.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Lengths bound what PostgreSQL/MySQL accept; DICOM UIDs are at most 64 characters (PS3.5 9.1),
# patient IDs (LO) 64; ISO 8601 text with microseconds and offset is 32.
_ID = 64
_UID = 64
_NAME = 128
_ISO = 40

_JSON: TypeEngine[Any] = JSON(none_as_null=True).with_variant(
    JSONB(none_as_null=True), "postgresql"
)
"""JSON text on SQLite, ``jsonb`` on PostgreSQL; Python ``None`` is SQL ``NULL``."""

_ISO_INFO = {"iso_datetime": True}
"""Column ``info`` marking ISO 8601 date-time text (checked with ``datetime.fromisoformat``)."""


def _timepoint_fk() -> ForeignKeyConstraint:
    """Composite foreign key ``(study_id, timepoint_id)`` onto ``timepoints``."""
    return ForeignKeyConstraint(
        ["study_id", "timepoint_id"],
        ["timepoints.study_id", "timepoints.timepoint_id"],
        ondelete="CASCADE",
    )


class Base(DeclarativeBase):
    """Declarative base of the results tables (constraint names by convention).

    ``document_keys`` maps each key of the results document that a model stores in a column
    to the column's attribute name; the reader and the writer use it, and the column's type,
    length and nullability say what a valid value is. ``triples`` maps a key holding three
    coordinates (``[L, P, S]`` in mm) to its three columns.
    """

    metadata = MetaData(naming_convention=_NAMING)
    document_keys: ClassVar[dict[str, str]] = {}
    triples: ClassVar[dict[str, tuple[str, str, str]]] = {}


class _DocumentRow:
    """Columns every table holding an object of the results document has."""

    extra: Mapped[dict[str, Any] | None] = mapped_column(_JSON)
    """Keys of the object this schema does not know, with their values."""
    absent_keys: Mapped[list[str] | None] = mapped_column(_JSON)
    """Optional keys the object did not have (read back absent rather than null)."""


class MetaRow(Base):
    """A fact about the database itself: ``application`` and ``schema_version``."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    value: Mapped[str] = mapped_column(String(_NAME))


class Study(_DocumentRow, Base):
    """One analysed study (``results["study"]``); its warnings and unknown top-level keys."""

    __tablename__ = "studies"
    document_keys: ClassVar[dict[str, str]] = {
        name: name
        for name in (
            "study_key",
            "patient_id",
            "infusion_datetime",
            "car_t_product",
            "car_t_target",
            "lesion_tracer",
        )
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_key: Mapped[str] = mapped_column(String(_NAME), unique=True)
    patient_id: Mapped[str] = mapped_column(String(_ID))
    infusion_datetime: Mapped[str] = mapped_column(String(_ISO), info=_ISO_INFO)
    car_t_product: Mapped[str | None] = mapped_column(String(_NAME))
    car_t_target: Mapped[str | None] = mapped_column(String(_ID))
    lesion_tracer: Mapped[str] = mapped_column(String(_ID))
    warnings: Mapped[list[str]] = mapped_column(_JSON, nullable=False)
    document_extra: Mapped[dict[str, Any] | None] = mapped_column(_JSON)
    """Top-level keys of the results document this schema does not know (e.g. ``methods``)."""


class Run(_DocumentRow, Base):
    """One successful save of a study's results (kept as history when the study is re-run).

    ``status`` is ``"complete"``: a run that fails or is killed writes nothing at all (its row
    is part of the same transaction as the results), so the database holds only finished runs.
    The latest run of a study is the one whose results the study's rows hold; its ``extra``
    and ``absent_keys`` are those of ``results["software"]``.
    """

    __tablename__ = "runs"
    document_keys: ClassVar[dict[str, str]] = {
        "name": "software_name",
        "version": "software_version",
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(_ID), unique=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), nullable=False, index=True
    )
    started_utc: Mapped[datetime] = mapped_column(DateTime)
    finished_utc: Mapped[datetime] = mapped_column(DateTime)
    software_name: Mapped[str] = mapped_column(String(_ID))
    software_version: Mapped[str] = mapped_column(String(_ID))
    results_schema_version: Mapped[str] = mapped_column(String(_ID))
    status: Mapped[str] = mapped_column(String(_ID))


class Timepoint(_DocumentRow, Base):
    """One imaging timepoint (``results["timepoints"][i]``, without its scans)."""

    __tablename__ = "timepoints"
    __table_args__ = (UniqueConstraint("study_id", "timepoint_id"),)
    document_keys: ClassVar[dict[str, str]] = {
        "timepoint_id": "timepoint_id",
        "day": "day",
        "datetime": "datetime_iso",
        "ct_series_uid": "ct_series_uid",
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    timepoint_id: Mapped[str] = mapped_column(String(_ID))
    day: Mapped[float] = mapped_column(Double)
    """Days after the CAR T-cell infusion."""
    datetime_iso: Mapped[str] = mapped_column("datetime", String(_ISO), info=_ISO_INFO)
    ct_series_uid: Mapped[str | None] = mapped_column(String(_UID))


class Scan(_DocumentRow, Base):
    """One PET/SPECT scan of a timepoint (``results["timepoints"][i]["scans"][j]``)."""

    __tablename__ = "scans"
    __table_args__ = (UniqueConstraint("study_id", "series_uid"), _timepoint_fk())
    document_keys: ClassVar[dict[str, str]] = {
        name: name
        for name in (
            "scan_id",
            "tracer",
            "agent",
            "target",
            "nuclide",
            "series_uid",
            "injected_activity_bq",
            "injection_datetime",
            "scan_datetime",
            "weight_kg",
            "suv_bw_factor",
            "decay_correction",
        )
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    timepoint_id: Mapped[str] = mapped_column(String(_ID))
    position: Mapped[int] = mapped_column(Integer)
    scan_id: Mapped[str] = mapped_column(String(_ID))
    tracer: Mapped[str] = mapped_column(String(_ID))
    agent: Mapped[str] = mapped_column(String(_NAME))
    target: Mapped[str | None] = mapped_column(String(_ID))
    nuclide: Mapped[str] = mapped_column(String(_ID))
    series_uid: Mapped[str] = mapped_column(String(_UID))
    injected_activity_bq: Mapped[float] = mapped_column(Double)
    injection_datetime: Mapped[str] = mapped_column(String(_ISO), info=_ISO_INFO)
    scan_datetime: Mapped[str] = mapped_column(String(_ISO), info=_ISO_INFO)
    weight_kg: Mapped[float | None] = mapped_column(Double)
    suv_bw_factor: Mapped[float] = mapped_column(Double)
    """SUVbw per Bq/mL at the image's decay reference (g/mL per Bq/mL)."""
    decay_correction: Mapped[str | None] = mapped_column(String(_ID))
    """What the image is decay-corrected to: ``START``, ``ADMIN`` or ``NONE`` (DICOM)."""


class LesionRow(_DocumentRow, Base):
    """One tracked lesion (``results["lesions"][i]``, without its per-timepoint observations)."""

    __tablename__ = "lesions"
    __table_args__ = (UniqueConstraint("study_id", "tracking_id"),)
    document_keys: ClassVar[dict[str, str]] = {
        "tracking_id": "tracking_id",
        "status": "status",
        "first_day": "first_day",
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    tracking_id: Mapped[str] = mapped_column(String(_ID))
    status: Mapped[str] = mapped_column(String(_ID))
    """``persistent``, ``new`` or ``vanished``."""
    first_day: Mapped[float | None] = mapped_column(Double)


class LesionObservation(_DocumentRow, Base):
    """A tracked lesion at one timepoint (``results["lesions"][i]["timepoints"][timepoint_id]``).

    Centroids are stored as three columns each in DICOM patient coordinates (LPS: x to the
    patient's left, y posterior, z superior; mm): ``centroid_lps_mm`` in the timepoint's own
    frame, ``centroid_baseline_lps_mm`` mapped into the baseline's; all three ``NULL`` when the
    document gives none.
    """

    __tablename__ = "lesion_observations"
    __table_args__ = (
        UniqueConstraint("study_id", "tracking_id", "timepoint_id"),
        ForeignKeyConstraint(
            ["study_id", "tracking_id"],
            ["lesions.study_id", "lesions.tracking_id"],
            ondelete="CASCADE",
        ),
        _timepoint_fk(),
    )
    document_keys: ClassVar[dict[str, str]] = {"detected": "detected", "volume_ml": "volume_ml"}
    triples: ClassVar[dict[str, tuple[str, str, str]]] = {
        "centroid_lps_mm": ("centroid_l_mm", "centroid_p_mm", "centroid_s_mm"),
        "centroid_baseline_lps_mm": ("baseline_l_mm", "baseline_p_mm", "baseline_s_mm"),
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    tracking_id: Mapped[str] = mapped_column(String(_ID))
    timepoint_id: Mapped[str] = mapped_column(String(_ID))
    position: Mapped[int] = mapped_column(Integer)
    detected: Mapped[bool] = mapped_column(Boolean)
    centroid_l_mm: Mapped[float | None] = mapped_column(Double)
    centroid_p_mm: Mapped[float | None] = mapped_column(Double)
    centroid_s_mm: Mapped[float | None] = mapped_column(Double)
    baseline_l_mm: Mapped[float | None] = mapped_column(Double)
    baseline_p_mm: Mapped[float | None] = mapped_column(Double)
    baseline_s_mm: Mapped[float | None] = mapped_column(Double)
    volume_ml: Mapped[float | None] = mapped_column(Double)


class Measurement(_DocumentRow, Base):
    """VOI statistics of one VOI, timepoint and tracer (``results["measurements"][i]``).

    SUVs are SUVbw (g/mL); ``_se`` columns are standard errors, ``suv_sd`` the voxel standard
    deviation inside the VOI, ``cov`` its coefficient of variation.
    """

    __tablename__ = "measurements"
    __table_args__ = (
        UniqueConstraint("study_id", "voi_type", "voi_id", "timepoint_id", "tracer"),
        _timepoint_fk(),
    )
    #: Filled after the class from the measurement columns it has (the rest go to ``extra``).
    document_keys: ClassVar[dict[str, str]] = {}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    voi_type: Mapped[str] = mapped_column(String(_ID))
    """``lesion`` (``voi_id`` is a tracking ID) or ``organ``."""
    voi_id: Mapped[str] = mapped_column(String(_ID))
    timepoint_id: Mapped[str] = mapped_column(String(_ID))
    day: Mapped[float] = mapped_column(Double)
    tracer: Mapped[str] = mapped_column(String(_ID))
    target: Mapped[str | None] = mapped_column(String(_ID))
    n_voxels: Mapped[int | None] = mapped_column(Integer)
    volume_ml: Mapped[float] = mapped_column(Double)
    suv_max: Mapped[float] = mapped_column(Double)
    suv_mean: Mapped[float] = mapped_column(Double)
    suv_mean_se: Mapped[float | None] = mapped_column(Double)
    suv_peak: Mapped[float | None] = mapped_column(Double)
    suv_sd: Mapped[float | None] = mapped_column(Double)
    cov: Mapped[float | None] = mapped_column(Double)
    mean_bq_per_ml: Mapped[float | None] = mapped_column(Double)
    mean_bq_per_ml_se: Mapped[float | None] = mapped_column(Double)
    total_uptake_bq: Mapped[float] = mapped_column(Double)
    percent_id: Mapped[float | None] = mapped_column(Double)
    percent_id_se: Mapped[float | None] = mapped_column(Double)
    lesion_to_blood: Mapped[float | None] = mapped_column(Double)
    lesion_to_muscle: Mapped[float | None] = mapped_column(Double)
    # Schema 2 (ADDED_COLUMNS).
    voi_source: Mapped[str | None] = mapped_column(String)
    """Where the VOI came from (built-in segmentation, a reader's mask, a re-delineation)."""
    suv_mean_pvc: Mapped[float | None] = mapped_column(Double)
    suv_mean_pvc_se: Mapped[float | None] = mapped_column(Double)
    car_t_cells: Mapped[float | None] = mapped_column(Double)
    car_t_cells_se: Mapped[float | None] = mapped_column(Double)
    lesion_found: Mapped[bool | None] = mapped_column(Boolean)
    """Lesion rows: whether the lesion was found at this scan (false: its site measured)."""


# The measurement keys of the results document (result.MEASUREMENT_COLUMNS) that have a
# column here (all of them since schema 2); any other key is kept in ``extra``.
Measurement.document_keys = {
    name: name for name in MEASUREMENT_COLUMNS if name in Measurement.__table__.columns
}

# A record of history, spelt out on purpose: what version 2 added must not change when the
# results document gains keys later (not derived from MEASUREMENT_COLUMNS).
ADDED_COLUMNS: dict[int, dict[str, tuple[str, ...]]] = {
    2: {
        "measurements": (
            "voi_source",
            "suv_mean_pvc",
            "suv_mean_pvc_se",
            "car_t_cells",
            "car_t_cells_se",
            "lesion_found",
        )
    },
}
"""Columns each schema version added, by table: what upgrading a database to it adds (all are
nullable document keys that the older schema kept in the row's ``extra``)."""


class Event(_DocumentRow, Base):
    """One monitoring event with its evidence (``results["events"][i]``).

    Only ``type`` and ``day`` are required; ``event_id``, when given, is unique in the study.
    """

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("study_id", "event_id"),)
    document_keys: ClassVar[dict[str, str]] = {
        "event_id": "event_id",
        "type": "event_type",
        "voi_id": "voi_id",
        "day": "day",
        "evidence": "evidence",
        "confidence": "confidence",
    }

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str | None] = mapped_column(String(_ID))
    event_type: Mapped[str] = mapped_column("type", String(_ID))
    voi_id: Mapped[str | None] = mapped_column(String(_ID))
    day: Mapped[float] = mapped_column(Double)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(_JSON)
    confidence: Mapped[float | None] = mapped_column(Double)
