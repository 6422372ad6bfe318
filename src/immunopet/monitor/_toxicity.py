"""Inflammation and CAR T-cell trafficking in organs: CRS, ICANS, expansion and homing.

Rules on a results document (organ and lesion measurements; nothing reads pixels), each a
significant change from the patient's pre-infusion scan of the same tracer at the same uptake
time (:func:`~immunopet.monitor._change.assess_change`, count noise of both scans plus the
repeatability of ``data/repeatability.toml``), inside the window of ``data/guidance.toml``:

``crs_inflammation``
    FDG uptake of spleen, bone marrow, liver or lymph nodes rises in the CRS window (the
    review: inflammation of these organs in days 1–14).
``icans_inflammation``
    Brain: uptake rises on a T-cell or inflammation tracer (CAR T cells and activated immune
    cells entering the brain), or falls on FDG (hypometabolism), in the ICANS window.
``car_t_expansion``
    Uptake of a T-cell tracer (its target a T-cell marker of ``data/t_cell_markers.toml``)
    rises in spleen or bone marrow in the expansion window.
``car_t_homing``
    Uptake of a T-cell tracer rises in a lesion after the infusion.

The event's ``site`` is the vocabulary's organ name (``bone_marrow``, ``liver``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from statistics import NormalDist
from typing import Any

from immunopet.data import read_toml
from immunopet.monitor._antigen import UPTAKE_TIME_TOLERANCE, uptake_hours
from immunopet.monitor._change import Change, assess_change, repeatability_wcv

__all__ = ["trafficking_and_toxicity_events"]


def _t_cell_targets() -> set[str]:
    return {name.lower() for name in read_toml("t_cell_markers.toml")["markers"]}


def _changes(
    document: Mapping[str, Any],
    voi_type: str,
    vois: Iterable[str] | None,
    tracers: set[str],
    window: tuple[float, float],
    wcv: float,
) -> list[tuple[Mapping[str, Any], Mapping[str, Any], Change]]:
    """(baseline, current, change) of each VOI × tracer measured in ``window`` vs day < 0."""
    uptake = {
        (tp["timepoint_id"], scan["tracer"]): uptake_hours(scan)
        for tp in document["timepoints"]
        for scan in tp["scans"]
    }
    wanted = None if vois is None else set(vois)
    rows = [
        m
        for m in document["measurements"]
        if m["voi_type"] == voi_type
        and m["tracer"] in tracers
        and (wanted is None or m["voi_id"] in wanted)
    ]
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
            and abs(uptake[(m["timepoint_id"], m["tracer"])] - when) <= UPTAKE_TIME_TOLERANCE * when
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
            wcv=wcv,
        )
        found.append((baseline, current, change))
    return found


def _event(
    kind: str,
    site: str,
    baseline: Mapping[str, Any],
    current: Mapping[str, Any],
    change: Change,
    voi_id: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": f"{kind}:{site}:{current['timepoint_id']}:{current['tracer']}",
        "type": kind,
        "voi_id": voi_id,
        "site": site,
        "centroid_lps_mm": None,
        "day": current["day"],
        "timepoint_id": current["timepoint_id"],
        "evidence": {
            "tracer": current["tracer"],
            "target": current["target"],
            "metric": change.metric,
            "baseline_day": baseline["day"],
            **change.as_dict(),
        },
        "confidence": 2.0 * NormalDist().cdf(abs(change.z)) - 1.0,
    }


def trafficking_and_toxicity_events(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """CRS, ICANS, expansion and homing events of a results document (module text)."""
    # Imported here: io.manifest imports monitor (clinical observations) and io.discovery.
    from immunopet.io.discovery import is_fdg

    table = read_toml("guidance.toml")
    names: Mapping[str, str] = table["site_names"]
    agents = {
        scan["tracer"]: (scan["agent"], (scan.get("target") or "").lower())
        for tp in document["timepoints"]
        for scan in tp["scans"]
    }
    fdg = {key for key, (agent, _) in agents.items() if is_fdg(agent)}
    t_cell = {key for key, (_, target) in agents.items() if target in _t_cell_targets()}
    organ_wcv = repeatability_wcv("organ")
    events: list[dict[str, Any]] = []

    def window(name: str) -> tuple[float, float]:
        low, high = table[name]["window_days"]
        return float(low), float(high)

    seen: set[tuple[str, str]] = set()

    def add(
        kind: str,
        items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any], Change]],
        rising: bool,
        lesion: bool = False,
    ) -> None:
        for baseline, current, change in items:
            if not change.significant or (change.log_ratio > 0) != rising:
                continue
            site = current["voi_id"] if lesion else names.get(current["voi_id"], current["voi_id"])
            if (kind, site) in seen:
                continue  # the first day it shows
            seen.add((kind, site))
            events.append(
                _event(kind, site, baseline, current, change, current["voi_id"] if lesion else None)
            )

    add(
        "crs_inflammation",
        _changes(document, "organ", table["crs"]["organs"], fdg, window("crs"), organ_wcv),
        rising=True,
    )
    brain = table["icans"]["organs"]
    add(
        "icans_inflammation",
        _changes(document, "organ", brain, t_cell, window("icans"), organ_wcv),
        rising=True,
    )
    add(
        "icans_inflammation",
        _changes(document, "organ", brain, fdg, window("icans"), organ_wcv),
        rising=False,
    )
    add(
        "car_t_expansion",
        _changes(
            document, "organ", table["expansion"]["organs"], t_cell, window("expansion"), organ_wcv
        ),
        rising=True,
    )
    lesion_wcv = repeatability_wcv("immuno_pet")
    add(
        "car_t_homing",
        _changes(document, "lesion", None, t_cell, (0.0, float("inf")), lesion_wcv),
        rising=True,
        lesion=True,
    )
    return events
