"""Reading a ``results.json`` document for the guidance rules: scans, measurements, events.

Every rule of :mod:`immunopet.monitor` reads only the results document (measurements of VOIs,
never files or pixels). This module holds what the rules share: the uptake time of each scan,
the tracer classes of ``data/guidance.toml``, change-from-baseline and ratio tests on the
measurements, lesion centroids, and the one shape of an event::

    {"event_id", "type", "voi_id", "site", "centroid_lps_mm", "day", "timepoint_id",
     "evidence": {"tracer", "target", "metric", "baseline_day", "baseline", "current",
                  "change", "relative_change", "uncertainty", "threshold", "log_ratio",
                  "log_ratio_sd", "threshold_relative_decrease", "threshold_relative_increase",
                  "z", "significant", "confidence", "wcv", ...rule-specific keys},
     "confidence"}

``voi_id`` is the lesion tracking ID (``None`` for organ events), ``site`` the organ's name in
the event vocabulary (``None`` for lesion events), ``centroid_lps_mm`` the lesion centroid in
that visit's patient coordinates (DICOM LPS, mm), ``day`` the day since infusion of the scan
that shows the event, and ``confidence`` the two-sided confidence level at which the evidence
is significant (2Φ(|z|) − 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from statistics import NormalDist
from typing import Any, Final

from immunopet.data import read_toml
from immunopet.monitor._change import Change, assess_change, assess_ratio, repeatability_wcv

__all__ = [
    "UPTAKE_TIME_TOLERANCE",
    "Row",
    "baseline_changes",
    "blood_ratio",
    "centroid",
    "confidence_of",
    "guidance",
    "lesion_event",
    "organ_event",
    "same_uptake",
    "scan_classes",
    "site_name",
    "uptake_hours",
    "uptakes",
    "wcv_of",
]

#: Scans are compared only when their times after injection agree within this fraction.
UPTAKE_TIME_TOLERANCE: Final = 0.2

Row = Mapping[str, Any]


def guidance() -> dict[str, Any]:
    """The rule settings of ``data/guidance.toml`` (cached by :func:`immunopet.data.read_toml`)."""
    return read_toml("guidance.toml")


def site_name(voi_id: str) -> str:
    """The event vocabulary's site name of a results organ VOI (``[site_names]``)."""
    names: dict[str, str] = guidance()["site_names"]
    return str(names.get(voi_id, voi_id))


def uptake_hours(scan: Row) -> float:
    """Hours from injection to the scan's decay reference (a ``results.json`` scan entry)."""
    start = datetime.fromisoformat(scan["injection_datetime"])
    end = datetime.fromisoformat(scan["scan_datetime"])
    return (end - start).total_seconds() / 3600.0


def uptakes(document: Row) -> dict[tuple[str, str], float]:
    """Uptake time (h) of every (timepoint ID, tracer key) of the document."""
    return {
        (tp["timepoint_id"], scan["tracer"]): uptake_hours(scan)
        for tp in document["timepoints"]
        for scan in tp["scans"]
    }


def same_uptake(a: float, b: float) -> bool:
    """Whether two uptake times (h) agree within :data:`UPTAKE_TIME_TOLERANCE`.

    Antibody uptake rises for days after injection, so only scans at the same uptake time are
    compared.
    """
    return abs(a - b) <= UPTAKE_TIME_TOLERANCE * max(a, b)


def confidence_of(change: Change) -> float:
    """Two-sided confidence level at which ``change`` is significant: 2Φ(|z|) − 1."""
    return 2.0 * NormalDist().cdf(abs(change.z)) - 1.0


def _folded(names: Iterable[str]) -> set[str]:
    return {name.casefold() for name in names}


def class_targets(*names: str) -> set[str]:
    """Casefolded tracer targets of the ``[tracer_classes]`` named (``"reporter"`` …).

    Examples
    --------
    >>> sorted(class_targets("cell_label"))
    ['ex vivo cell label']

    """
    classes = guidance()["tracer_classes"]
    return set().union(*(_folded(classes[f"{name}_targets"]) for name in names))


def scan_classes(document: Row) -> dict[str, set[str]]:
    """Tracer keys of the document by class (the lists of ``[tracer_classes]``).

    Classes: ``fdg``, ``car_target`` (the tracer's target is the CAR's), ``t_cell_marker``
    (``data/t_cell_markers.toml``), ``cell_label``, ``reporter``, ``cell_tracking`` (the last
    three together), ``lymphoid``, ``myeloid``, ``checkpoint``, ``activation``, ``hypoxia``
    (by target or agent name), ``hypoxia_surrogate``.
    """
    # Imported here: io.manifest imports monitor, and io.discovery imports io.manifest.
    from immunopet.io.discovery import is_fdg

    classes = guidance()["tracer_classes"]
    car_target = (document["study"].get("car_t_target") or "").casefold()
    markers = _folded(read_toml("t_cell_markers.toml")["markers"])
    found: dict[str, set[str]] = {
        name: set()
        for name in (
            "fdg",
            "car_target",
            "t_cell_marker",
            "cell_label",
            "reporter",
            "cell_tracking",
            "lymphoid",
            "myeloid",
            "checkpoint",
            "activation",
            "hypoxia",
            "hypoxia_surrogate",
        )
    }
    by_target = {
        name: class_targets(name)
        for name in (
            "cell_label",
            "reporter",
            "lymphoid",
            "myeloid",
            "checkpoint",
            "activation",
            "hypoxia",
            "hypoxia_surrogate",
        )
    }
    hypoxia_agents = _folded(classes["hypoxia_agent_names"])
    for tp in document["timepoints"]:
        for scan in tp["scans"]:
            key, agent = scan["tracer"], str(scan.get("agent") or "")
            target = str(scan.get("target") or "").casefold()
            if is_fdg(agent):
                found["fdg"].add(key)
                continue
            if car_target and target == car_target:
                found["car_target"].add(key)
            if target in markers:
                found["t_cell_marker"].add(key)
            for name, targets in by_target.items():
                if target in targets:
                    found[name].add(key)
            if any(word in agent.casefold() for word in hypoxia_agents):
                found["hypoxia"].add(key)
    found["cell_tracking"] = found["t_cell_marker"] | found["cell_label"] | found["reporter"]
    return found


def wcv_of(document: Row, tracer: str, voi_type: str) -> float:
    """Repeatability (wCV) for a VOI type on a tracer (``[repeatability_class]``)."""
    # Imported here (see scan_classes).
    from immunopet.io.discovery import is_fdg

    classes = guidance()["repeatability_class"]
    if voi_type == "organ":
        return repeatability_wcv(classes["organ"])
    agents = {
        s["tracer"]: s.get("agent") or "" for tp in document["timepoints"] for s in tp["scans"]
    }
    fdg = is_fdg(agents.get(tracer, ""))
    return repeatability_wcv(classes["fdg_lesion"] if fdg else classes["other_lesion"])


def centroid(document: Row, tracking_id: str, timepoint_id: str) -> list[float] | None:
    """Centroid (LPS mm) of a lesion track at a timepoint, else where it was first detected."""
    for lesion in document["lesions"]:
        if lesion["tracking_id"] == tracking_id:
            state = lesion["timepoints"].get(timepoint_id, {})
            centre = state.get("centroid_lps_mm")
            if centre is not None:
                return list(centre)
            # Carried VOI: the centroid where it was detected.
            found = [
                s["centroid_lps_mm"]
                for s in lesion["timepoints"].values()
                if s.get("centroid_lps_mm")
            ]
            return list(found[0]) if found else None
    return None


def _evidence(current: Row, change: Change, baseline_day: float | None) -> dict[str, Any]:
    return {
        "tracer": current["tracer"],
        "target": current.get("target"),
        "metric": change.metric,
        "baseline_day": baseline_day,
        **change.as_dict(),
    }


def lesion_event(
    kind: str,
    document: Row,
    current: Row,
    change: Change,
    *,
    baseline_day: float | None,
    confidence: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A lesion event on the measurement ``current`` (a ``measurements[]`` row of a lesion)."""
    tracking_id = current["voi_id"]
    return {
        "event_id": f"{kind}:{tracking_id}:{current['timepoint_id']}:{current['tracer']}",
        "type": kind,
        "voi_id": tracking_id,
        "site": None,
        "centroid_lps_mm": centroid(document, tracking_id, current["timepoint_id"]),
        "day": current["day"],
        "timepoint_id": current["timepoint_id"],
        "evidence": {**_evidence(current, change, baseline_day), **(extra or {})},
        "confidence": confidence_of(change) if confidence is None else confidence,
    }


def organ_event(
    kind: str,
    site: str,
    current: Row,
    change: Change,
    *,
    baseline_day: float | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An organ event (``site`` in the event vocabulary) on the organ measurement ``current``."""
    return {
        "event_id": f"{kind}:{site}:{current['timepoint_id']}:{current['tracer']}",
        "type": kind,
        "voi_id": None,
        "site": site,
        "centroid_lps_mm": None,
        "day": current["day"],
        "timepoint_id": current["timepoint_id"],
        "evidence": {
            **_evidence(current, change, baseline_day),
            "voi": current["voi_id"],
            **(extra or {}),
        },
        "confidence": confidence_of(change),
    }


def baseline_changes(
    document: Row,
    voi_type: str,
    vois: Iterable[str] | None,
    tracers: set[str],
    window: tuple[float, float],
) -> list[tuple[Row, Row, Change]]:
    """(baseline, current, change) of each VOI × tracer measured in ``window`` vs day < 0.

    The baseline is the latest pre-infusion measurement of the same VOI and tracer at the same
    uptake time; the change is :func:`~immunopet.monitor._change.assess_change` on SUVmean with
    the counting noise of both scans and the repeatability of :func:`wcv_of`. In day order.
    """
    uptake = uptakes(document)
    wanted = None if vois is None else set(vois)
    rows = sorted(
        (
            m
            for m in document["measurements"]
            if m["voi_type"] == voi_type
            and m["tracer"] in tracers
            and (wanted is None or m["voi_id"] in wanted)
        ),
        key=lambda m: m["day"],
    )
    found = []
    for current in rows:
        if not window[0] <= current["day"] <= window[1]:
            continue
        when = uptake[(current["timepoint_id"], current["tracer"])]
        baselines = [
            m
            for m in rows
            if m["voi_id"] == current["voi_id"]
            and m["tracer"] == current["tracer"]
            and m["day"] < 0.0
            and same_uptake(uptake[(m["timepoint_id"], m["tracer"])], when)
        ]
        if not baselines or baselines[-1]["suv_mean"] <= 0.0:
            continue
        baseline = baselines[-1]
        change = assess_change(
            "suv_mean",
            baseline["suv_mean"],
            current["suv_mean"],
            baseline_se=baseline["suv_mean_se"],
            current_se=current["suv_mean_se"],
            wcv=wcv_of(document, current["tracer"], voi_type),
        )
        found.append((baseline, current, change))
    return found


def _relative_se(row: Row) -> float | None:
    se, value = row.get("suv_mean_se"), row["suv_mean"]
    if se is None or value <= 0.0:
        return None
    return float(se) / float(value)


def blood_ratio(
    document: Row, row: Row, threshold: float, references: Sequence[str] | None = None
) -> tuple[Change, Row] | None:
    """Test a lesion's SUVmean ratio to the blood-pool reference of its scan against a threshold.

    Parameters
    ----------
    document : mapping
        The results document.
    row : mapping
        The lesion's measurement.
    threshold : float
        Ratio it is compared with (:func:`~immunopet.monitor._change.assess_ratio`).
    references : sequence of str, optional
        Organ VOIs that may serve as the blood reference, in order of preference (default
        ``[reference].blood_vois`` of ``data/guidance.toml``).

    Returns
    -------
    (Change, mapping) or None
        The test (metric ``lesion_to_blood``) and the reference measurement; ``None`` when the
        scan has no blood reference with a positive SUVmean.

    """
    names = list(references or guidance()["reference"]["blood_vois"])
    candidates = {
        m["voi_id"]: m
        for m in document["measurements"]
        if m["voi_type"] == "organ"
        and m["voi_id"] in names
        and m["timepoint_id"] == row["timepoint_id"]
        and m["tracer"] == row["tracer"]
        and m["suv_mean"] > 0.0
    }
    reference = next((candidates[name] for name in names if name in candidates), None)
    if reference is None:
        return None
    parts = [_relative_se(row), _relative_se(reference)]
    known = [p for p in parts if p is not None]
    relative_se = math.sqrt(sum(p * p for p in known)) if known else None
    change = assess_ratio(
        "lesion_to_blood",
        max(row["suv_mean"], 0.0) / reference["suv_mean"],
        threshold,
        relative_se=relative_se,
        wcv=wcv_of(document, row["tracer"], "lesion"),
    )
    return change, reference
