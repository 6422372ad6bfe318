"""Lineage switch: a lesion loses its lymphoid marker and gains a myeloid one.

The review (Mulgaonkar et al., Front Med 2023;10:1199146, antigen-escape section) describes
lineage switch as relapse of a clonally related leukaemia with a different phenotype, e.g.
KMT2A (MLL)-rearranged B-ALL relapsing as CD19-negative acute myeloid leukaemia after CD19 CAR
T cells (Gardner R et al., Blood 2016;127:2406), and proposes tracking lineage markers with
immuno-PET. Rule ``lineage_switch`` (per lesion), on a marker panel of
``data/guidance.toml`` (``[tracer_classes]`` lymphoid and myeloid targets):

1. *lymphoid lost*: the lesion's uptake of a lymphoid-marker tracer falls significantly from its
   first measurement to a later one at the same uptake time (the test of ``antigen_loss``:
   :func:`~immunopet.monitor._antigen.first_losses`);
2. *myeloid gained*: on a myeloid-marker tracer, the lesion's uptake rises significantly from an
   earlier measurement at the same uptake time or, when there is none (a new tracer in the
   relapse work-up), its SUVmean ratio to the blood pool is above
   ``[lineage_switch].positive_lesion_to_blood`` beyond the noise
   (:func:`~immunopet.monitor._change.assess_ratio`);
3. the two scans are at most ``pairing_window_days`` apart.

The event is dated by the later of the two scans; its evidence is the myeloid gain, with the
lymphoid loss under ``lymphoid_loss``. Its ``confidence`` is that both findings are real,
1 − (p_loss + p_gain) (Bonferroni; Dunn, J Am Stat Assoc 1961;56:52).
"""

from __future__ import annotations

from typing import Any

from immunopet.monitor._antigen import first_losses, lesion_series
from immunopet.monitor._change import Change, assess_change
from immunopet.monitor._document import (
    Row,
    blood_ratio,
    confidence_of,
    guidance,
    lesion_event,
    same_uptake,
    uptakes,
    wcv_of,
)

__all__ = ["lineage_events", "myeloid_gains"]


def _gain(
    document: Row, series: list[Row], uptake: dict[tuple[str, str], float], threshold: float
) -> list[tuple[Row, Change, float | None]]:
    """Each measurement of one lesion × tracer that shows the marker present, in day order."""
    found: list[tuple[Row, Change, float | None]] = []
    for index, row in enumerate(series):
        when = uptake[(row["timepoint_id"], row["tracer"])]
        earlier = [
            m
            for m in series[:index]
            if same_uptake(uptake[(m["timepoint_id"], m["tracer"])], when) and m["suv_mean"] > 0
        ]
        if earlier:
            change = assess_change(
                "suv_mean",
                earlier[0]["suv_mean"],
                row["suv_mean"],
                baseline_se=earlier[0]["suv_mean_se"],
                current_se=row["suv_mean_se"],
                wcv=wcv_of(document, row["tracer"], "lesion"),
            )
            if change.significant and change.log_ratio > 0:
                found.append((row, change, earlier[0]["day"]))
            continue
        tested = blood_ratio(document, row, threshold)
        if tested is not None and tested[0].significant and tested[0].log_ratio > 0:
            found.append((row, tested[0], None))
    return found


def myeloid_gains(
    document: Row, targets: set[str]
) -> dict[str, list[tuple[Row, Change, float | None]]]:
    """Per tracking ID, the measurements showing a marker of ``targets`` present (module text)."""
    threshold = float(guidance()["lineage_switch"]["positive_lesion_to_blood"])
    uptake = uptakes(document)
    gains: dict[str, list[tuple[Row, Change, float | None]]] = {}
    for (tracking_id, _), series in lesion_series(document, targets).items():
        gains.setdefault(tracking_id, []).extend(_gain(document, series, uptake, threshold))
    for items in gains.values():
        items.sort(key=lambda item: item[0]["day"])
    return gains


def lineage_events(document: Row) -> list[dict[str, Any]]:
    """``lineage_switch`` events of a results document (module text)."""
    table = guidance()
    classes = table["tracer_classes"]
    lymphoid = {name.casefold() for name in classes["lymphoid_targets"]}
    myeloid = {name.casefold() for name in classes["myeloid_targets"]}
    window = float(table["lineage_switch"]["pairing_window_days"])
    gains = myeloid_gains(document, myeloid)
    events: list[dict[str, Any]] = []
    done: set[str] = set()
    for first, lost, loss in sorted(first_losses(document, lymphoid), key=lambda x: x[1]["day"]):
        tracking_id = lost["voi_id"]
        if tracking_id in done:
            continue
        paired = [g for g in gains.get(tracking_id, []) if abs(g[0]["day"] - lost["day"]) <= window]
        if not paired:
            continue
        row, gain, gain_baseline_day = paired[0]
        later = row if row["day"] >= lost["day"] else lost
        p_value = (1.0 - confidence_of(loss)) + (1.0 - confidence_of(gain))
        event = lesion_event(
            "lineage_switch",
            document,
            row,
            gain,
            baseline_day=gain_baseline_day,
            confidence=max(0.0, 1.0 - p_value),
            extra={
                "lymphoid_loss": {
                    "tracer": lost["tracer"],
                    "target": lost.get("target"),
                    "baseline_day": first["day"],
                    "day": lost["day"],
                    **loss.as_dict(),
                },
                "pairing_window_days": window,
            },
        )
        # Dated by the later of the two scans (both findings are needed).
        event["day"], event["timepoint_id"] = later["day"], later["timepoint_id"]
        event["event_id"] = f"lineage_switch:{tracking_id}:{later['timepoint_id']}:{row['tracer']}"
        events.append(event)
        done.add(tracking_id)
    return events
