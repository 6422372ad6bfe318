"""Antigen loss and antigen-negative new lesions (the review's antigen-escape question).

Rules, on the measurements of a :class:`~immunopet.result.StudyResult` document
(``results.json``); nothing here reads files or pixels:

``antigen_loss`` (per lesion)
    On a tracer whose target is the CAR's target antigen, a lesion's SUVmean falls from its
    first measurement to a later one by more than repeatability allows
    (:func:`~immunopet.monitor._change.assess_change`, count noise of both scans plus the
    immuno-PET wCV of ``data/repeatability.toml``). Only scans taken at the same time after
    their injection are compared (within :data:`UPTAKE_TIME_TOLERANCE`), because an
    antibody's uptake rises for days after injection. Covers complete loss and
    downregulation (trogocytosis), as the review groups them.
``new_antigen_negative_lesion``
    A lesion first found after the first lesion-finding scan (FDG-avid: the review's
    Figure 2 discordance) whose SUVmean on the target-antigen tracer, at the same uptake time,
    is significantly below the first measurement of the study's antigen-positive lesions
    (their median), by the same change test.

Each event carries the tracking ID, the lesion centroid (LPS mm) on that day, the day, and the
evidence: tracer, metric, baseline and current values with their days, the change, its
uncertainty and the threshold used; ``confidence`` is the two-sided level at which the change
is significant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from statistics import NormalDist, median
from typing import Any, Final

from immunopet.monitor._change import Change, assess_change, repeatability_wcv

__all__ = ["UPTAKE_TIME_TOLERANCE", "antigen_events", "uptake_hours"]

#: Scans are compared only when their times after injection agree within this fraction.
UPTAKE_TIME_TOLERANCE: Final = 0.2


def uptake_hours(scan: Mapping[str, Any]) -> float:
    """Hours from injection to the scan's decay reference (a ``results.json`` scan entry)."""
    start = datetime.fromisoformat(scan["injection_datetime"])
    end = datetime.fromisoformat(scan["scan_datetime"])
    return (end - start).total_seconds() / 3600.0


def _same_uptake(a: float, b: float) -> bool:
    return abs(a - b) <= UPTAKE_TIME_TOLERANCE * max(a, b)


def _confidence(change: Change) -> float:
    return 2.0 * NormalDist().cdf(abs(change.z)) - 1.0


def _centroid(
    document: Mapping[str, Any], tracking_id: str, timepoint_id: str
) -> list[float] | None:
    for lesion in document["lesions"]:
        if lesion["tracking_id"] == tracking_id:
            state = lesion["timepoints"].get(timepoint_id, {})
            centre = state.get("centroid_lps_mm")
            if centre is not None:
                return list(centre)
            # Carried VOI: the centroid where it was detected nearest in time.
            found = [
                s["centroid_lps_mm"]
                for s in lesion["timepoints"].values()
                if s.get("centroid_lps_mm")
            ]
            return list(found[0]) if found else None
    return None


def _event(
    kind: str,
    document: Mapping[str, Any],
    measurement: Mapping[str, Any],
    change: Change,
    baseline: Mapping[str, Any] | None,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    tracking_id = measurement["voi_id"]
    return {
        "event_id": f"{kind}:{tracking_id}:{measurement['timepoint_id']}:{measurement['tracer']}",
        "type": kind,
        "voi_id": tracking_id,
        "centroid_lps_mm": _centroid(document, tracking_id, measurement["timepoint_id"]),
        "day": measurement["day"],
        "timepoint_id": measurement["timepoint_id"],
        "evidence": {
            "tracer": measurement["tracer"],
            "target": measurement["target"],
            "metric": change.metric,
            "baseline_day": None if baseline is None else baseline["day"],
            **change.as_dict(),
            **extra,
        },
        "confidence": _confidence(change),
    }


def antigen_events(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``antigen_loss`` and ``new_antigen_negative_lesion`` events of a results document."""
    target = document["study"].get("car_t_target")
    if not target:
        return []
    uptake = {
        (tp["timepoint_id"], scan["tracer"]): uptake_hours(scan)
        for tp in document["timepoints"]
        for scan in tp["scans"]
    }
    wcv = repeatability_wcv("immuno_pet")
    rows = [
        m
        for m in document["measurements"]
        if m["voi_type"] == "lesion" and (m.get("target") or "").lower() == target.lower()
    ]
    by_lesion: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for m in sorted(rows, key=lambda m: m["day"]):
        by_lesion.setdefault((m["voi_id"], m["tracer"]), []).append(m)
    events: list[dict[str, Any]] = []
    for (_, tracer), series in by_lesion.items():
        first = series[0]
        first_uptake = uptake[(first["timepoint_id"], tracer)]
        for later in series[1:]:
            if not _same_uptake(first_uptake, uptake[(later["timepoint_id"], tracer)]):
                continue
            change = assess_change(
                "suv_mean",
                first["suv_mean"],
                later["suv_mean"],
                baseline_se=first["suv_mean_se"],
                current_se=later["suv_mean_se"],
                wcv=wcv,
            )
            if change.significant and change.log_ratio < 0:
                events.append(_event("antigen_loss", document, later, change, first, {}))
                break  # one loss event per lesion and tracer: the first day it is seen
    events.extend(_antigen_negative_new(document, by_lesion, uptake, wcv))
    return events


def _antigen_negative_new(
    document: Mapping[str, Any],
    by_lesion: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    uptake: Mapping[tuple[str, str], float],
    wcv: float,
) -> list[dict[str, Any]]:
    status = {lesion["tracking_id"]: lesion["status"] for lesion in document["lesions"]}
    events = []
    for (tracking_id, tracer), series in by_lesion.items():
        if status.get(tracking_id) != "new":
            continue
        first = series[0]
        when = uptake[(first["timepoint_id"], tracer)]
        reference = [
            other[0]
            for (other_id, other_tracer), other in by_lesion.items()
            if other_tracer == tracer
            and status.get(other_id) != "new"
            and _same_uptake(uptake[(other[0]["timepoint_id"], tracer)], when)
        ]
        if not reference:
            continue
        level = median(m["suv_mean"] for m in reference)
        level_se = median(m["suv_mean_se"] or 0.0 for m in reference)
        change = assess_change(
            "suv_mean",
            level,
            first["suv_mean"],
            baseline_se=level_se,
            current_se=first["suv_mean_se"],
            wcv=wcv,
        )
        if change.significant and change.log_ratio < 0:
            extra = {"reference": "median first SUVmean of the antigen-positive lesions"}
            events.append(
                _event("new_antigen_negative_lesion", document, first, change, None, extra)
            )
    return events
