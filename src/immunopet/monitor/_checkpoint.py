"""Checkpoint upregulation: exhaustion-related checkpoint expression rising in a lesion.

The review (Mulgaonkar et al., Front Med 2023;10:1199146, T-cell exhaustion section) lists
PD-1, PD-L1, LAG-3, TIM-3, CTLA-4 and TIGIT as exhaustion checkpoints imaged by immuno-PET, and
its Figure 4 stratifies renal-carcinoma tumourgrafts into high and low PD-L1 groups, immuno-PET
uptake of [⁸⁹Zr]Zr-DFO-atezolizumab following PD-L1 IHC (Mulgaonkar et al., Clin Cancer Res
2022;28:4907). Rule ``checkpoint_upregulation`` (per lesion):

* on a tracer whose target is a checkpoint of ``[tracer_classes].checkpoint_targets``, the
  lesion's SUVmean rises significantly from its latest pre-infusion measurement at the same
  uptake time (:func:`~immunopet.monitor._document.baseline_changes`), after the infusion
  (``[checkpoint].window_days``); the first such day is reported;
* the evidence adds the high/low group of the baseline and of the current scan: ``high`` when
  the lesion-to-blood SUVmean ratio is at least ``[checkpoint].high_lesion_to_blood``, with the
  ratio and its test (``stratum_*``, ``lesion_to_blood_*``). The review gives no imaging
  cut-off; uptake above the blood pool is this project's reading (``data/guidance.toml``).
"""

from __future__ import annotations

from typing import Any

from immunopet.monitor._document import (
    Row,
    baseline_changes,
    blood_ratio,
    guidance,
    lesion_event,
    scan_classes,
)

__all__ = ["checkpoint_events", "checkpoint_stratum"]


def checkpoint_stratum(document: Row, row: Row) -> dict[str, Any]:
    """High/low checkpoint group of one lesion measurement (module text).

    Returns
    -------
    dict
        ``stratum`` (``"high"``, ``"low"`` or ``None`` without a blood reference),
        ``lesion_to_blood``, its count-noise-and-repeatability SD ``lesion_to_blood_sd`` and
        the cut-off ``high_lesion_to_blood``.

    """
    cut = float(guidance()["checkpoint"]["high_lesion_to_blood"])
    tested = blood_ratio(document, row, cut)
    if tested is None:
        return {
            "stratum": None,
            "lesion_to_blood": None,
            "lesion_to_blood_sd": None,
            "high_lesion_to_blood": cut,
        }
    change = tested[0]
    return {
        "stratum": "high" if change.current >= cut else "low",
        "lesion_to_blood": change.current,
        "lesion_to_blood_sd": change.uncertainty,
        "high_lesion_to_blood": cut,
    }


def checkpoint_events(document: Row) -> list[dict[str, Any]]:
    """``checkpoint_upregulation`` events of a results document (module text)."""
    table = guidance()["checkpoint"]
    low, high = (float(v) for v in table["window_days"])
    tracers = scan_classes(document)["checkpoint"]
    events: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for baseline, current, change in baseline_changes(
        document, "lesion", None, tracers, (low, high)
    ):
        key = (current["voi_id"], current["tracer"])
        if key in seen or not (change.significant and change.log_ratio > 0):
            continue
        seen.add(key)
        before, now = checkpoint_stratum(document, baseline), checkpoint_stratum(document, current)
        extra = {
            "stratum_baseline": before["stratum"],
            "stratum_current": now["stratum"],
            "lesion_to_blood_baseline": before["lesion_to_blood"],
            "lesion_to_blood_current": now["lesion_to_blood"],
            "lesion_to_blood_current_sd": now["lesion_to_blood_sd"],
            "high_lesion_to_blood": now["high_lesion_to_blood"],
        }
        events.append(
            lesion_event(
                "checkpoint_upregulation",
                document,
                current,
                change,
                baseline_day=baseline["day"],
                extra=extra,
            )
        )
    return events
