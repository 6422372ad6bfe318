"""Inflammation and CAR T-cell trafficking in organs: CRS, ICANS, expansion and homing.

Rules on a results document (organ and lesion measurements; nothing reads pixels), each a
significant change from the patient's pre-infusion scan of the same tracer at the same uptake
time (:func:`~immunopet.monitor._change.assess_change`, count noise of both scans plus the
repeatability of ``data/repeatability.toml``), inside the window of ``data/guidance.toml``:

``crs_inflammation``
    FDG uptake of spleen, bone marrow, liver or lymph nodes rises in the CRS window (the
    review: inflammation of these organs in days 1–14).
``icans_inflammation``
    Brain: uptake rises on a cell-tracking tracer (CAR T cells and activated immune
    cells entering the brain), or falls on FDG (hypometabolism), in the ICANS window.
``car_t_expansion``
    Uptake of a cell-tracking tracer (its target a T-cell marker of
    ``data/t_cell_markers.toml``, or a reporter gene of ``data/guidance.toml``) rises in spleen
    or bone marrow in the expansion window.
``car_t_homing``
    Uptake of a cell-tracking tracer (a T-cell marker, or a reporter gene's probe) rises in a
    lesion after the infusion.

The event's ``site`` is the vocabulary's organ name (``bone_marrow``, ``liver``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from immunopet.monitor._change import Change
from immunopet.monitor._document import (
    Row,
    baseline_changes,
    guidance,
    lesion_event,
    organ_event,
    scan_classes,
    site_name,
)

__all__ = ["trafficking_and_toxicity_events"]


def trafficking_and_toxicity_events(document: Row) -> list[dict[str, Any]]:
    """CRS, ICANS, expansion and homing events of a results document (module text)."""
    table = guidance()
    classes = scan_classes(document)
    fdg = classes["fdg"]
    # Tracers whose signal follows the CAR T cells: T-cell markers and reporter-gene probes
    # (both can have a pre-infusion scan; a direct label cannot).
    tracking = classes["t_cell_marker"] | classes["reporter"]
    events: list[dict[str, Any]] = []

    def window(name: str) -> tuple[float, float]:
        low, high = table[name]["window_days"]
        return float(low), float(high)

    seen: set[tuple[str, str]] = set()

    def add(
        kind: str,
        items: Iterable[tuple[Row, Row, Change]],
        rising: bool,
        lesion: bool = False,
    ) -> None:
        for baseline, current, change in items:
            if not change.significant or (change.log_ratio > 0) != rising:
                continue
            site = str(current["voi_id"]) if lesion else site_name(current["voi_id"])
            if (kind, site) in seen:
                continue  # the first day it shows
            seen.add((kind, site))
            if lesion:
                event = lesion_event(kind, document, current, change, baseline_day=baseline["day"])
            else:
                event = organ_event(kind, site, current, change, baseline_day=baseline["day"])
            events.append(event)

    add(
        "crs_inflammation",
        baseline_changes(document, "organ", table["crs"]["organs"], fdg, window("crs")),
        rising=True,
    )
    brain = table["icans"]["organs"]
    add(
        "icans_inflammation",
        baseline_changes(document, "organ", brain, tracking, window("icans")),
        rising=True,
    )
    add(
        "icans_inflammation",
        baseline_changes(document, "organ", brain, fdg, window("icans")),
        rising=False,
    )
    add(
        "car_t_expansion",
        baseline_changes(
            document, "organ", table["expansion"]["organs"], tracking, window("expansion")
        ),
        rising=True,
    )
    add(
        "car_t_homing",
        baseline_changes(document, "lesion", None, tracking, (0.0, float("inf"))),
        rising=True,
        lesion=True,
    )
    return events
