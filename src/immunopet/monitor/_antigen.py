"""Antigen loss and antigen-negative new lesions (the review's antigen-escape question).

Rules, on the measurements of a :class:`~immunopet.result.StudyResult` document
(``results.json``); nothing here reads files or pixels:

``antigen_loss`` (per lesion)
    On a tracer whose target is the CAR's target antigen, a lesion's SUVmean falls from its
    first measurement to a later one by more than repeatability allows
    (:func:`~immunopet.monitor._change.assess_change`, count noise of both scans plus the
    immuno-PET wCV of ``data/repeatability.toml``). Only scans taken at the same time after
    their injection are compared (within
    :data:`~immunopet.monitor._document.UPTAKE_TIME_TOLERANCE`), because an antibody's uptake
    rises for days after injection. Covers complete loss and downregulation (trogocytosis), as
    the review groups them.
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
from statistics import median
from typing import Any

from immunopet.monitor._change import Change, assess_change, repeatability_wcv
from immunopet.monitor._document import Row, lesion_event, same_uptake, uptakes

__all__ = ["antigen_events", "first_losses", "lesion_series"]


def lesion_series(document: Row, targets: set[str]) -> dict[tuple[str, str], list[Row]]:
    """Lesion measurements on tracers with a target in ``targets``, by lesion and tracer.

    ``targets`` are casefolded; the result maps (tracking ID, tracer key) to the measurements in
    day order.
    """
    rows = [
        m
        for m in document["measurements"]
        if m["voi_type"] == "lesion" and str(m.get("target") or "").casefold() in targets
    ]
    by_lesion: dict[tuple[str, str], list[Row]] = {}
    for m in sorted(rows, key=lambda m: m["day"]):
        by_lesion.setdefault((m["voi_id"], m["tracer"]), []).append(m)
    return by_lesion


def first_losses(document: Row, targets: set[str]) -> list[tuple[Row, Row, Change]]:
    """(first, later, change) of the first significant decrease of each lesion × tracer.

    ``targets`` are casefolded tracer targets; the first measurement of a lesion on a tracer
    is compared with each later one at the same uptake time (module text).
    """
    uptake = uptakes(document)
    wcv = repeatability_wcv("immuno_pet")
    found = []
    for (_, tracer), series in lesion_series(document, targets).items():
        first = series[0]
        first_uptake = uptake[(first["timepoint_id"], tracer)]
        for later in series[1:]:
            if not same_uptake(first_uptake, uptake[(later["timepoint_id"], tracer)]):
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
                found.append((first, later, change))
                break  # the first day it is seen
    return found


def antigen_events(document: Row) -> list[dict[str, Any]]:
    """``antigen_loss`` and ``new_antigen_negative_lesion`` events of a results document."""
    target = document["study"].get("car_t_target")
    if not target:
        return []
    targets = {target.casefold()}
    events = [
        lesion_event("antigen_loss", document, later, change, baseline_day=first["day"])
        for first, later, change in first_losses(document, targets)
    ]
    by_lesion = lesion_series(document, targets)
    events.extend(
        _antigen_negative_new(
            document, by_lesion, uptakes(document), repeatability_wcv("immuno_pet")
        )
    )
    return events


def _antigen_negative_new(
    document: Row,
    by_lesion: Mapping[tuple[str, str], Sequence[Row]],
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
            and same_uptake(uptake[(other[0]["timepoint_id"], tracer)], when)
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
                lesion_event(
                    "new_antigen_negative_lesion",
                    document,
                    first,
                    change,
                    baseline_day=None,
                    extra=extra,
                )
            )
    return events
