"""T-cell activation in lesions, with the tumour-draining node half of the signature.

The review (Mulgaonkar et al., Front Med 2023;10:1199146, T-cell activation section) proposes
imaging markers upregulated or released on T-cell activation (ICOS, OX40, IFN-γ, IL-2
receptor, granzyme B) and notes that granzyme B PET ([⁶⁸Ga]Ga-NOTA-GZP) reveals "distinct
immune signatures associated with immunoactivation in tumors and tumor-draining lymph nodes"
(its refs 209, 211: LaSalle et al.; Larimer et al., Cancer Res 2017;77:2318, who report
granzyme B PET as tumour-to-blood ratios). Rule ``t_cell_activation`` (per lesion), on a tracer
whose target is in ``[tracer_classes].activation_targets``, after the infusion
(``[activation].window_days``):

* with a pre-infusion scan of that tracer at the same uptake time: the lesion's SUVmean rises
  significantly from it (:func:`~immunopet.monitor._document.baseline_changes`);
* without one: its SUVmean ratio to the blood pool exceeds
  ``[activation].positive_lesion_to_blood`` beyond the noise
  (:func:`~immunopet.monitor._change.assess_ratio`).

The first such scan is reported. The evidence adds the node half of the signature: every organ
VOI of the same scan whose name contains ``[activation].node_voi_words`` (a tumour-draining
node the site delineated) with its ratio to the blood pool and whether it passes the same
test, and ``signature``: ``"tumour_and_node"``, ``"tumour_only"`` or ``"node_not_measured"``.
"""

from __future__ import annotations

from typing import Any

from immunopet.monitor._change import Change
from immunopet.monitor._document import (
    Row,
    baseline_changes,
    blood_ratio,
    guidance,
    lesion_event,
    scan_classes,
)

__all__ = ["activation_events"]


def _node_signature(document: Row, row: Row, threshold: float) -> dict[str, Any]:
    words = [w.casefold() for w in guidance()["activation"]["node_voi_words"]]
    nodes = []
    for m in document["measurements"]:
        if (
            m["voi_type"] == "organ"
            and m["timepoint_id"] == row["timepoint_id"]
            and m["tracer"] == row["tracer"]
            and any(word in m["voi_id"].casefold() for word in words)
        ):
            tested = blood_ratio(document, m, threshold)
            nodes.append(
                {
                    "voi_id": m["voi_id"],
                    "suv_mean": m["suv_mean"],
                    "to_blood": None if tested is None else tested[0].current,
                    "active": bool(tested and tested[0].significant and tested[0].log_ratio > 0),
                }
            )
    if not nodes:
        signature = "node_not_measured"
    elif any(node["active"] for node in nodes):
        signature = "tumour_and_node"
    else:
        signature = "tumour_only"
    return {"draining_nodes": nodes, "signature": signature}


def activation_events(document: Row) -> list[dict[str, Any]]:
    """``t_cell_activation`` events of a results document (module text)."""
    table = guidance()["activation"]
    low, high = (float(v) for v in table["window_days"])
    threshold = float(table["positive_lesion_to_blood"])
    tracers = scan_classes(document)["activation"]
    found: dict[tuple[str, str], tuple[Row, Change, float | None, str]] = {}
    with_baseline: set[tuple[str, str]] = set()
    for baseline, current, change in baseline_changes(
        document, "lesion", None, tracers, (low, high)
    ):
        key = (current["voi_id"], current["tracer"])
        with_baseline.add(key)
        if key not in found and change.significant and change.log_ratio > 0:
            found[key] = (current, change, baseline["day"], "rise from the pre-infusion scan")
    rows = sorted(
        (
            m
            for m in document["measurements"]
            if m["voi_type"] == "lesion" and m["tracer"] in tracers and low <= m["day"] <= high
        ),
        key=lambda m: m["day"],
    )
    for row in rows:
        key = (row["voi_id"], row["tracer"])
        if key in found or key in with_baseline:
            continue
        tested = blood_ratio(document, row, threshold)
        if tested is not None and tested[0].significant and tested[0].log_ratio > 0:
            found[key] = (row, tested[0], None, "lesion-to-blood above the positivity cut-off")
    events = []
    for row, change, baseline_day, basis in found.values():
        extra = {"basis": basis, **_node_signature(document, row, threshold)}
        events.append(
            lesion_event(
                "t_cell_activation", document, row, change, baseline_day=baseline_day, extra=extra
            )
        )
    return events
