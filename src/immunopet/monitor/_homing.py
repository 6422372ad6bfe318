r"""Homing failure: no CAR T-cell accumulation in a lesion where the cells are expected.

The review (Mulgaonkar et al., Front Med 2023;10:1199146) lists CAR T-cell biodistribution and
"homing" to tumours among what imaging must show, and poor infiltration of solid tumours as a
main hurdle. Rule ``homing_failure`` (per lesion): on a tracer that sees the CAR T cells alone
(``[homing_failure].tracer_classes``: reporter-gene probes and direct cell labels; T-cell
marker immuno-PET also sees endogenous T cells and is not used for this negative call), the
lesion is judged at its first scan inside
``[homing_failure].window_days`` after the infusion. Homing has failed when no scan up to then
showed accumulation *and* the data at that scan exclude the accumulation expected of homing
cells:

* tracers with a pre-infusion scan at the same uptake time (reporter probes):
  no significant rise so far (:func:`~immunopet.monitor._document.baseline_changes`), and the
  upper one-sided bound of the rise, exp(d + z·σ_d) − 1, below ``min_increase``;
* direct labels (injected with the cells, no pre-infusion scan), either of:

  - the upper bound of the lesion's SUVmean ratio to a reference organ
    (``label_reference_vois``, e.g. muscle) below ``min_label_ratio``;
  - the upper bound of the lesion's SUVmean below ``max_label_suv`` (1): the SUV of a label
    injected with the cells is the lesion's labelled-cell density over the body's average
    (per gram), so below 1 the lesion holds no more cells than if they had spread evenly,
    i.e. no enrichment at all. It needs no reference organ, and does not depend on how strongly
    homing cells enrich a lesion, which is not published as an absolute figure in the sources
    read (``data/guidance.toml``).

Lesions are candidates where CAR T cells are expected: every lesion, or, when the CAR-target
tracer was imaged, only lesions whose uptake of it was above the blood pool beyond the noise
(target-positive). ``confidence`` is the one-sided level at which the expected accumulation is
excluded, Φ((ln(1 + min_increase) − d)/σ_d) (or the same for the ratio).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

from immunopet.data import read_toml
from immunopet.monitor._change import Change, assess_ratio
from immunopet.monitor._document import (
    Row,
    baseline_changes,
    blood_ratio,
    guidance,
    lesion_event,
    scan_classes,
    wcv_of,
)

__all__ = ["homing_failure_events"]


def _excluded(change: Change, expected_log: float) -> float:
    """One-sided confidence that the true log change is below ``expected_log``."""
    if change.log_ratio_sd <= 0.0:
        return 1.0 if change.log_ratio < expected_log else 0.0
    return NormalDist().cdf((expected_log - change.log_ratio) / change.log_ratio_sd)


def _target_positive(document: Row, target_tracers: set[str]) -> set[str] | None:
    """Lesions positive on the CAR-target tracer (``None`` when it was not imaged)."""
    rows = [
        m
        for m in document["measurements"]
        if m["voi_type"] == "lesion" and m["tracer"] in target_tracers
    ]
    if not rows:
        return None
    cut = float(guidance()["homing_failure"]["target_positive_lesion_to_blood"])
    positive = set()
    for row in rows:
        tested = blood_ratio(document, row, cut)
        if tested is not None and tested[0].significant and tested[0].log_ratio > 0:
            positive.add(row["voi_id"])
    return positive


def _label_ratio(document: Row, row: Row, references: list[str], wcv: float) -> Change | None:
    reference = next(
        (
            m
            for name in references
            for m in document["measurements"]
            if m["voi_type"] == "organ"
            and m["voi_id"] == name
            and m["timepoint_id"] == row["timepoint_id"]
            and m["tracer"] == row["tracer"]
            and m["suv_mean"] > 0.0
        ),
        None,
    )
    if reference is None:
        return None
    parts = [
        (m["suv_mean_se"] / m["suv_mean"]) if m.get("suv_mean_se") and m["suv_mean"] > 0 else 0.0
        for m in (row, reference)
    ]
    return assess_ratio(
        "lesion_to_reference",
        max(row["suv_mean"], 0.0) / reference["suv_mean"],
        float(guidance()["homing_failure"]["min_label_ratio"]),
        relative_se=math.hypot(*parts),
        wcv=wcv,
    )


def _label_suv(row: Row, wcv: float) -> Change:
    """The lesion's SUVmean on a direct cell label tested against ``max_label_suv``."""
    se = row.get("suv_mean_se")
    return assess_ratio(
        "suv_mean",
        max(row["suv_mean"], 0.0),
        float(guidance()["homing_failure"]["max_label_suv"]),
        relative_se=se / row["suv_mean"] if se and row["suv_mean"] > 0 else 0.0,
        wcv=wcv,
    )


def homing_failure_events(document: Row) -> list[dict[str, Any]]:
    """``homing_failure`` events of a results document (module text)."""
    table = guidance()["homing_failure"]
    low, high = (float(v) for v in table["window_days"])
    classes = scan_classes(document)
    candidates = _target_positive(document, classes["car_target"])
    # One-sided bound at the decision level of data/repeatability.toml (95 %: z = 1.645).
    z = NormalDist().inv_cdf(float(read_toml("repeatability.toml")["decision"]["confidence"]))
    events: list[dict[str, Any]] = []
    judged: set[str] = set()
    allowed = {str(name) for name in table["tracer_classes"]}
    # Tracers with a pre-infusion scan (reporter probes; T-cell markers when configured).
    with_baseline = set().union(
        *(classes[name] for name in ("t_cell_marker", "reporter") if name in allowed)
    )
    changes = baseline_changes(document, "lesion", None, with_baseline, (0.0, high))
    expected = math.log1p(float(table["min_increase"]))
    homed: set[tuple[str, str]] = set()
    for baseline, current, change in changes:
        key = (current["voi_id"], current["tracer"])
        if change.significant and change.log_ratio > 0:
            homed.add(key)
        if current["day"] < low or key in homed or current["voi_id"] in judged:
            continue
        if candidates is not None and current["voi_id"] not in candidates:
            continue
        judged.add(current["voi_id"])
        upper = math.exp(change.log_ratio + z * change.log_ratio_sd) - 1.0
        if upper >= float(table["min_increase"]):
            continue  # cannot exclude homing
        extra = {
            "basis": "rise from the pre-infusion scan below that of homing cells",
            "upper_bound_increase": upper,
            "min_increase": float(table["min_increase"]),
        }
        events.append(
            lesion_event(
                "homing_failure",
                document,
                current,
                change,
                baseline_day=baseline["day"],
                confidence=_excluded(change, expected),
                extra=extra,
            )
        )
    # Direct cell labels: the lesion against a reference organ, and against the body average.
    references = [str(name) for name in table["label_reference_vois"]]
    rows = sorted(
        (
            m
            for m in document["measurements"]
            if m["voi_type"] == "lesion"
            and "cell_label" in allowed
            and m["tracer"] in classes["cell_label"]
        ),
        key=lambda m: m["day"],
    )
    seen_label: set[str] = set()
    for row in rows:
        if row["voi_id"] in judged or row["voi_id"] in seen_label or not low <= row["day"] <= high:
            continue
        if candidates is not None and row["voi_id"] not in candidates:
            continue
        seen_label.add(row["voi_id"])
        wcv = wcv_of(document, row["tracer"], "lesion")
        tests = [
            (
                "lesion-to-reference ratio below that of homing cells",
                "upper_bound_ratio",
                "min_label_ratio",
                _label_ratio(document, row, references, wcv),
            ),
            (
                "lesion SUV (labelled-cell density over the body average) below 1: no enrichment",
                "upper_bound_suv",
                "max_label_suv",
                _label_suv(row, wcv),
            ),
        ]
        found: list[tuple[float, str, Change, dict[str, Any]]] = []
        bounds: dict[str, float] = {}
        for basis, bound_key, cut_key, tested in tests:
            if tested is None:
                continue
            cut = float(table[cut_key])
            upper = math.exp(math.log(max(tested.current, 1e-12)) + z * tested.log_ratio_sd)
            bounds[bound_key] = upper
            if upper >= cut:
                continue
            # log_ratio is ln(value / cut): the level at which the cut is excluded.
            found.append((_excluded(tested, 0.0), basis, tested, {cut_key: cut}))
        if not found:
            continue
        confidence, basis, tested, cut_entry = max(found, key=lambda item: item[0])
        events.append(
            lesion_event(
                "homing_failure",
                document,
                row,
                tested,
                baseline_day=None,
                confidence=confidence,
                extra={"basis": basis, **bounds, **cut_entry},
            )
        )
    return events
