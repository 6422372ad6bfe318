"""``StudyResult``: everything ``immunopet analyze`` found in one study, and its file forms.

One object carries the study, its timepoints and scans, the lesion tracks, the organ and
lesion measurements and (issue 6) the guidance events. The report, the database and the
tables all read it; none of them computes anything scientific.

File forms written by :func:`write_result_files` into the output folder:

* ``results.json``: :meth:`StudyResult.to_dict`, versioned (:data:`SCHEMA_VERSION`) and
  described by the JSON Schema ``data/results.schema.json`` (documented in
  ``docs/results.md``);
* ``measurements.csv``: one row per VOI × tracer × timepoint (tidy);
* ``lesions.csv``: one row per lesion track × timepoint with its centroid (LPS mm);
* ``events.csv``: one row per guidance event with its main evidence.

Units are in the key names (``_bq``, ``_ml``, ``_mm``, ``day``); SUVs are SUVbw (g/mL).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

__all__ = [
    "SCHEMA_VERSION",
    "LesionResult",
    "LesionTimepoint",
    "Measurement",
    "ScanResult",
    "StudyResult",
    "TimepointResult",
    "VoiLabelMap",
    "results_schema",
    "write_result_files",
]

#: Version of the results.json layout (major.minor: a minor bump only adds keys).
SCHEMA_VERSION: Final = "1.2"

MEASUREMENT_COLUMNS: Final = (
    "voi_type",
    "voi_id",
    "timepoint_id",
    "day",
    "tracer",
    "target",
    "n_voxels",
    "volume_ml",
    "suv_max",
    "suv_mean",
    "suv_mean_se",
    "suv_peak",
    "suv_sd",
    "cov",
    "mean_bq_per_ml",
    "mean_bq_per_ml_se",
    "total_uptake_bq",
    "percent_id",
    "percent_id_se",
    "lesion_to_blood",
    "lesion_to_muscle",
    "voi_source",
    "suv_mean_pvc",
    "suv_mean_pvc_se",
    "car_t_cells",
    "car_t_cells_se",
    "lesion_found",
)


@dataclass(frozen=True)
class ScanResult:
    """One PET scan of a timepoint and the facts its SUV rests on."""

    scan_id: str
    tracer: str
    agent: str
    target: str | None
    nuclide: str
    series_uid: str
    path: str
    injected_activity_bq: float
    injection_datetime: str
    scan_datetime: str
    weight_kg: float | None
    suv_bw_factor: float
    decay_correction: str
    noise: Mapping[str, Any] | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimepointResult:
    """One imaging visit: its CT, its PET scans and its registration to the baseline."""

    timepoint_id: str
    day: float
    datetime: str
    ct_series_uid: str | None
    ct_path: str | None
    scans: tuple[ScanResult, ...]
    registration: Mapping[str, Any]
    organ_sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LesionTimepoint:
    """A lesion track at one timepoint (``detected`` False: not found there)."""

    detected: bool
    centroid_lps_mm: tuple[float, float, float] | None = None
    centroid_baseline_lps_mm: tuple[float, float, float] | None = None
    volume_ml: float | None = None
    detection: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class LesionResult:
    """A lesion track with its stable tracking ID."""

    tracking_id: str
    status: str
    first_day: float
    timepoints: Mapping[str, LesionTimepoint]


@dataclass(frozen=True)
class Measurement:
    """One VOI measured on one tracer at one timepoint (units in the names, SUV = SUVbw)."""

    voi_type: str
    voi_id: str
    timepoint_id: str
    day: float
    tracer: str
    target: str | None
    n_voxels: int
    volume_ml: float
    suv_max: float
    suv_mean: float
    suv_mean_se: float | None
    suv_peak: float | None
    suv_sd: float
    cov: float | None
    mean_bq_per_ml: float
    mean_bq_per_ml_se: float | None
    total_uptake_bq: float
    percent_id: float
    percent_id_se: float | None
    lesion_to_blood: float | None = None
    lesion_to_muscle: float | None = None
    #: Where the VOI came from: "detected" here, "carried from TPxx" (lesion VOI of the
    #: nearest timepoint with the lesion-finding tracer, moved by registration), or how an
    #: organ was found.
    voi_source: str = ""
    #: SUVmean corrected for partial volume (geometric transfer matrix over the timepoint's
    #: VOIs with the PET system's PSF, Rousset 1998) and its SE; None without a PSF.
    suv_mean_pvc: float | None = None
    suv_mean_pvc_se: float | None = None
    #: CAR T cells in the VOI on a cell-label or reporter tracer (labelled-cell equivalents for
    #: direct labels, live reporter cells for reporters; quant._cell_numbers) and its SE.
    car_t_cells: float | None = None
    car_t_cells_se: float | None = None
    #: Lesion VOIs: False when the lesion-finding scans did not find the lesion at this visit
    #: and its site was measured with the VOI of the nearest visit that did (only on tracers
    #: that see the CAR T cells alone, for homing); True otherwise; None for organs.
    lesion_found: bool | None = None


@dataclass(frozen=True)
class VoiLabelMap:
    """The lesion and organ VOIs of one timepoint as an integer label map.

    ``labels`` is on the grid of ``source_files`` (the lesion-finding PET series), ids
    → names in ``names`` (lesions by tracking ID, listed in ``lesions``).
    """

    labels: Any
    names: Mapping[int, str]
    lesions: tuple[str, ...]
    source_files: tuple[str, ...]


@dataclass(frozen=True)
class StudyResult:
    """The analysis of one patient's study (see the module text for the file forms)."""

    patient_id: str
    study_key: str
    infusion_datetime: str
    car_t_product: str | None
    car_t_target: str | None
    lesion_tracer: str
    detection_method: Mapping[str, Any]
    timepoints: tuple[TimepointResult, ...]
    lesions: tuple[LesionResult, ...]
    measurements: tuple[Measurement, ...]
    events: tuple[Mapping[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    #: What the manifest says beyond the images (JSON-ready): ``car_t_counts`` (blood qPCR or
    #: flow), ``blood_samples`` (tracer activity), ``hematocrit``, ``grades`` (ASTCT CRS/ICANS
    #: per day from the clinical records). Empty lists and None when there is no manifest.
    clinical: Mapping[str, Any] = field(default_factory=dict)
    #: Inter-lesion spread per timepoint and tracer (quant.lesion_spread: n, mean, SD, CoV,
    #: min, max, range, max/min, and the SD beyond count noise).
    lesion_spread: tuple[Mapping[str, Any], ...] = ()
    #: Kinetic analyses (Patlak Ki per VOI, CAR T-cell kinetics); None when not possible.
    kinetics: Mapping[str, Any] | None = None
    #: Time-integrated activities and absorbed doses (MIRD); None when not possible.
    dosimetry: Mapping[str, Any] | None = None
    software_version: str = ""
    methods: Mapping[str, Any] = field(default_factory=dict)
    #: Per timepoint: the VOI label map written as SEG/NIfTI (not part of results.json).
    label_maps: Mapping[str, VoiLabelMap] = field(default_factory=dict, compare=False, repr=False)
    #: Per timepoint the images the report shows (not part of results.json): ``"ct"`` → the
    #: CT on the grid of that timepoint's first-listed PET (lesion tracer first), and each
    #: tracer key → its SUVbw volume. Written by the analysis under ``images/``.
    images: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` document."""
        data = {
            "detection_method": dict(self.detection_method),
            "methods": dict(self.methods),
            "timepoints": [asdict(item) for item in self.timepoints],
            "lesions": [asdict(item) for item in self.lesions],
            "measurements": [asdict(item) for item in self.measurements],
            "events": [dict(item) for item in self.events],
        }
        return {
            "schema_version": SCHEMA_VERSION,
            "software": {"name": "immunopet", "version": self.software_version},
            "study": {
                "patient_id": self.patient_id,
                "study_key": self.study_key,
                "infusion_datetime": self.infusion_datetime,
                "car_t_product": self.car_t_product,
                "car_t_target": self.car_t_target,
                "lesion_tracer": self.lesion_tracer,
                "detection_method": data["detection_method"],
            },
            "methods": data["methods"],
            "timepoints": data["timepoints"],
            "lesions": data["lesions"],
            "measurements": data["measurements"],
            "events": data["events"],
            "clinical": {
                "car_t_counts": list(self.clinical.get("car_t_counts", [])),
                "blood_samples": list(self.clinical.get("blood_samples", [])),
                "hematocrit": self.clinical.get("hematocrit"),
                "grades": list(self.clinical.get("grades", [])),
            },
            "lesion_spread": [dict(item) for item in self.lesion_spread],
            "kinetics": None if self.kinetics is None else dict(self.kinetics),
            "dosimetry": None if self.dosimetry is None else dict(self.dosimetry),
            "warnings": list(self.warnings),
        }


def results_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``results.json``."""
    text = resources.files("immunopet.data").joinpath("results.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _json_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, allow_nan=False, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _csv_text(header: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(header), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in header})
    return buffer.getvalue()


def lesion_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of ``lesions.csv``: one per track × timepoint."""
    days = {tp["timepoint_id"]: tp["day"] for tp in document["timepoints"]}
    rows = []
    for lesion in document["lesions"]:
        for timepoint_id, state in lesion["timepoints"].items():
            centre = state.get("centroid_lps_mm") or (None, None, None)
            rows.append(
                {
                    "tracking_id": lesion["tracking_id"],
                    "status": lesion["status"],
                    "timepoint_id": timepoint_id,
                    "day": days[timepoint_id],
                    "detected": state["detected"],
                    "x_mm": centre[0],
                    "y_mm": centre[1],
                    "z_mm": centre[2],
                    "volume_ml": state.get("volume_ml"),
                }
            )
    return rows


LESION_COLUMNS: Final = (
    "tracking_id",
    "status",
    "timepoint_id",
    "day",
    "detected",
    "x_mm",
    "y_mm",
    "z_mm",
    "volume_ml",
)


EVENT_COLUMNS: Final = (
    "event_id",
    "type",
    "voi_id",
    "site",
    "day",
    "timepoint_id",
    "x_mm",
    "y_mm",
    "z_mm",
    "tracer",
    "metric",
    "baseline",
    "current",
    "change",
    "uncertainty",
    "threshold",
    "relative_change",
    "threshold_relative_decrease",
    "threshold_relative_increase",
    "log_ratio_sd",
    "confidence",
)
#: The evidence keys copied into events.csv (the rest stays in results.json).
_EVIDENCE_COLUMNS: Final = EVENT_COLUMNS[9:20]


def event_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of ``events.csv``: one per event with its main evidence."""
    rows = []
    for event in document["events"]:
        centre = event.get("centroid_lps_mm") or (None, None, None)
        evidence = event.get("evidence", {})
        rows.append(
            {
                **{
                    key: event.get(key)
                    for key in ("event_id", "type", "voi_id", "site", "day", "timepoint_id")
                },
                "confidence": event.get("confidence"),
                "x_mm": centre[0],
                "y_mm": centre[1],
                "z_mm": centre[2],
                **{key: evidence.get(key) for key in _EVIDENCE_COLUMNS},
            }
        )
    return rows


def write_result_files(document: Mapping[str, Any], folder: Path) -> list[Path]:
    """Write ``results.json``, ``measurements.csv``, ``lesions.csv`` and ``events.csv``."""
    outputs = {
        "results.json": _json_text(document),
        "events.csv": _csv_text(EVENT_COLUMNS, event_rows(document)),
        "measurements.csv": _csv_text(MEASUREMENT_COLUMNS, document["measurements"]),
        "lesions.csv": _csv_text(LESION_COLUMNS, lesion_rows(document)),
    }
    written = []
    for name, text in outputs.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
