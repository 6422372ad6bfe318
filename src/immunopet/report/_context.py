"""What every section of the report reads: the results document, indexed for drawing.

Nothing here computes a measurement; it only groups what ``results.json`` holds (tracers in
display order, measurements per VOI and tracer, clinical grades per day).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from statistics import NormalDist
from typing import Any

from immunopet.data import read_toml

__all__ = ["DayGrade", "ReportContext", "TracerInfo"]

#: Readable names of the measurements the report shows.
METRIC_NAMES: dict[str, str] = {
    "suv_mean": "SUVmean",
    "suv_max": "SUVmax",
    "suv_peak": "SUVpeak",
    "percent_id": "%ID",
    "mean_bq_per_ml": "mean activity concentration",
}


@dataclass(frozen=True)
class TracerInfo:
    """A tracer of the study as its scans name it."""

    key: str
    agent: str
    nuclide: str
    target: str | None


@dataclass(frozen=True)
class DayGrade:
    """ASTCT grades recorded for one clinical day (``None``: not given); ``raw`` as in JSON."""

    day: float
    crs: int | None
    icans: int | None
    crs_text: str
    icans_text: str
    raw: Mapping[str, Any]


def _grade_of(entry: Mapping[str, Any], prefix: str) -> tuple[int | None, str]:
    """Grade and description of ``prefix`` (``crs``/``icans``) in one ``clinical_grades`` day.

    Reads ``{prefix}_grade`` with ``{prefix}_description`` and ``{prefix}_complete`` (the form of
    :func:`immunopet.monitor.astct_grades`), or ``{prefix}`` as an integer or an object with
    ``grade`` (and ``description``).
    """
    value = entry.get(f"{prefix}_grade", entry.get(prefix))
    words = entry.get(f"{prefix}_description")
    if isinstance(value, Mapping):
        words = words or value.get("description")
        value = value.get("grade")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, ""
    return int(value), "" if words is None else str(words)


@dataclass
class ReportContext:
    """The results document and the settings of ``data/report.toml``, indexed for the sections."""

    document: Mapping[str, Any]
    results_dir: Path
    notes: list[str] = field(default_factory=list)

    @cached_property
    def settings(self) -> dict[str, Any]:
        """``data/report.toml``."""
        return read_toml("report.toml")

    @cached_property
    def image_index(self) -> dict[str, Any] | None:
        """``images/index.json`` (``None`` when the folder has no images)."""
        from immunopet.report._results import load_image_index

        return load_image_index(self.results_dir)

    def has_mip(self, timepoint_id: str, tracer: str) -> bool:
        """Whether the image index lists an SUV volume of ``tracer`` at ``timepoint_id``."""
        entry = (self.image_index or {}).get("timepoints", {}).get(timepoint_id) or {}
        return tracer in (entry.get("suv") or {})

    @cached_property
    def error_z(self) -> float:
        """The z of the error bars (two-sided normal interval of ``[charts].error_bar_confidence``)."""
        confidence = float(self.settings["charts"]["error_bar_confidence"])
        return NormalDist().inv_cdf(0.5 + confidence / 2.0)

    @property
    def study(self) -> Mapping[str, Any]:
        """``results.json`` ``study``."""
        study: Mapping[str, Any] = self.document["study"]
        return study

    @cached_property
    def timepoints(self) -> dict[str, Mapping[str, Any]]:
        """Timepoints by id, in time order."""
        return {tp["timepoint_id"]: tp for tp in self.document["timepoints"]}

    def day(self, timepoint_id: str) -> float | None:
        """Day since infusion of a timepoint."""
        tp = self.timepoints.get(timepoint_id)
        return None if tp is None else float(tp["day"])

    @cached_property
    def tracers(self) -> dict[str, TracerInfo]:
        """Tracers by key: the lesion-finding tracer first, then in order of first scan."""
        found: dict[str, TracerInfo] = {}
        for tp in self.document["timepoints"]:
            for scan in tp["scans"]:
                if scan["tracer"] not in found:
                    found[scan["tracer"]] = TracerInfo(
                        scan["tracer"], str(scan["agent"]), str(scan["nuclide"]), scan.get("target")
                    )
        lesion = self.study["lesion_tracer"]
        order = sorted(found, key=lambda key: key != lesion)
        return {key: found[key] for key in order}

    def tracer_name(self, key: str) -> str:
        """The agent's name of a tracer key (the key itself when unknown)."""
        info = self.tracers.get(key)
        return key if info is None else info.agent

    @cached_property
    def measurements(self) -> dict[tuple[str, str, str], list[Mapping[str, Any]]]:
        """Measurements by (voi_type, voi_id, tracer), each list in time order."""
        grouped: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
        for row in self.document["measurements"]:
            grouped.setdefault((row["voi_type"], row["voi_id"], row["tracer"]), []).append(row)
        for rows in grouped.values():
            rows.sort(key=lambda r: float(r["day"]))
        return grouped

    def vois(self, voi_type: str, tracer: str) -> list[str]:
        """VOI ids of one type measured on ``tracer``, in first-appearance order."""
        return [key[1] for key in self.measurements if key[0] == voi_type and key[2] == tracer]

    @cached_property
    def grades(self) -> list[DayGrade]:
        """ASTCT grades per clinical day from ``clinical.grades`` (empty when absent).

        The list of :func:`immunopet.monitor.astct_grades` (``day``, ``crs_grade``,
        ``crs_description``, ``icans_grade`` …); also accepted (docs/report.md): a mapping day →
        entry, and ``crs``/``icans`` as integers or objects with ``grade``.
        """
        clinical = self.document.get("clinical")
        raw = clinical.get("grades") if isinstance(clinical, Mapping) else None
        items: list[tuple[Any, Mapping[str, Any]]] = []
        if isinstance(raw, Mapping):
            days = raw.get("days")
            if isinstance(days, Sequence):
                raw = days
            else:
                items = [(day, entry) for day, entry in raw.items() if isinstance(entry, Mapping)]
        if isinstance(raw, Sequence) and not isinstance(raw, str):
            items = [(entry.get("day"), entry) for entry in raw if isinstance(entry, Mapping)]
        grades = []
        for day, entry in items:
            try:
                day_value = float(day)
            except (TypeError, ValueError):
                continue
            crs, crs_text = _grade_of(entry, "crs")
            icans, icans_text = _grade_of(entry, "icans")
            grades.append(DayGrade(day_value, crs, icans, crs_text, icans_text, entry))
        return sorted(grades, key=lambda g: g.day)

    def grade_near(self, day: float) -> DayGrade | None:
        """The recorded grades nearest ``day``, within ``[astct].nearest_day_max`` days."""
        limit = float(self.settings["astct"]["nearest_day_max"])
        near = [g for g in self.grades if abs(g.day - day) <= limit]
        return min(near, key=lambda g: (abs(g.day - day), g.day), default=None)
