"""On-target, off-tumour toxicity: CAR T cells acting on a normal organ that expresses the target.

The review (Mulgaonkar et al., Front Med 2023;10:1199146, toxicity section) describes
"on-target, off-tumor" toxicity in normal tissues with basal expression of the target antigen,
whose expression level determines the severity, and whole-body PET as the way to locate such
events. Example: CAIX CAR T cells attacked CAIX on bile-duct epithelium and caused cholangitis
with T-cell infiltration (Lamers et al., J Clin Oncol 2006;24:e20).

Rule ``on_target_off_tumor`` (per organ): for the CAR's target, the organs of
``[on_target_off_tumor.expressing_sites]`` (published normal expression) are tested; an organ
is flagged when, inside ``[on_target_off_tumor].window_days`` after the infusion, its SUVmean
on a cell-tracking tracer (CAR T cells in it: T-cell marker, reporter probe) or on the
CAR-target tracer rises significantly from the latest pre-infusion scan of that tracer at the
same uptake time (:func:`~immunopet.monitor._document.baseline_changes`, organ repeatability).
The first day it shows is reported, once per organ. Where the CAR-target tracer was imaged
before the infusion, the organ's SUVmean on it (its expression, for the record) is added to
the evidence as ``target_uptake``.
"""

from __future__ import annotations

from typing import Any

from immunopet.monitor._document import (
    Row,
    baseline_changes,
    guidance,
    organ_event,
    scan_classes,
    site_name,
)

__all__ = ["off_tumor_events"]


def off_tumor_events(document: Row) -> list[dict[str, Any]]:
    """``on_target_off_tumor`` events of a results document (module text)."""
    table = guidance()
    target = str(document["study"].get("car_t_target") or "").casefold()
    expressing = {
        key.casefold(): sites
        for key, sites in table["on_target_off_tumor"]["expressing_sites"].items()
    }
    sites = set(expressing.get(target, []))
    if not sites:
        return []
    vois = sorted(
        {
            m["voi_id"]
            for m in document["measurements"]
            if m["voi_type"] == "organ" and site_name(m["voi_id"]) in sites
        }
    )
    classes = scan_classes(document)
    tracers = classes["t_cell_marker"] | classes["reporter"] | classes["car_target"]
    low, high = (float(v) for v in table["on_target_off_tumor"]["window_days"])
    target_rows = [
        m
        for m in document["measurements"]
        if m["voi_type"] == "organ" and m["tracer"] in classes["car_target"] and m["day"] < 0.0
    ]
    events: list[dict[str, Any]] = []
    seen: set[str] = set()
    for baseline, current, change in baseline_changes(
        document, "organ", vois, tracers, (low, high)
    ):
        site = site_name(current["voi_id"])
        if site in seen or not (change.significant and change.log_ratio > 0):
            continue
        seen.add(site)
        expression = [
            {"tracer": m["tracer"], "day": m["day"], "suv_mean": m["suv_mean"]}
            for m in target_rows
            if m["voi_id"] == current["voi_id"]
        ]
        extra = {"car_t_target": document["study"].get("car_t_target"), "target_uptake": expression}
        events.append(
            organ_event(
                "on_target_off_tumor",
                site,
                current,
                change,
                baseline_day=baseline["day"],
                extra=extra,
            )
        )
    return events
