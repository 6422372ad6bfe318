"""The summary: the flagged events first, each with its evidence, then the study at a glance.

Each event of ``results.json`` ``events`` is one ``<article class="event" id="event-{i}">``
(``i`` its index in the list) with ``data-type``, ``data-timepoint``, ``data-tracer``,
``data-voi`` and, for lesion events, ``data-lps`` (the centroid, LPS mm, as a JSON array). Its
evidence numbers are ``<data data-key="{evidence key}" value="{JSON value}">`` and its own
numbers ``<data data-field="day|confidence|centroid_lps_mm">``. Links lead to the viewer (same
``data-`` attributes, for the viewer's script), to the chart where the change shows and to the
MIP of that scan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from immunopet.data import read_toml
from immunopet.report._context import METRIC_NAMES, ReportContext
from immunopet.report._format import (
    DASH,
    MINUS,
    attr,
    data,
    fmt_day,
    fmt_fixed,
    fmt_percent,
    fmt_sig,
    fmt_signed_percent,
    slug,
    text,
)

__all__ = ["event_title", "summary_section"]

#: Headings of the guidance event types (vocabulary of ``immunopet.simulate.EventType``).
EVENT_TITLES: Final = {
    "antigen_loss": "Antigen loss",
    "new_antigen_negative_lesion": "New antigen-negative lesion",
    "lineage_switch": "Lineage switch",
    "checkpoint_upregulation": "Checkpoint upregulation",
    "car_t_homing": "CAR T-cell homing",
    "homing_failure": "Homing failure",
    "car_t_expansion": "CAR T-cell expansion",
    "t_cell_activation": "T-cell activation",
    "crs_inflammation": "Inflammation in the CRS window",
    "icans_inflammation": "Brain uptake change in the ICANS window",
    "on_target_off_tumor": "On-target, off-tumour uptake",
    "hypoxia": "Hypoxia",
}

#: Labels of evidence keys, in the order they are shown (other keys follow in JSON order).
EVIDENCE_LABELS: Final = {
    "metric": "Measure",
    "tracer": "Tracer",
    "target": "Target",
    "baseline_day": "Baseline day",
    "baseline": "Baseline",
    "current": "Current",
    "relative_change": "Change",
    "change": "Change (absolute)",
    "threshold": "Threshold passed",
    "threshold_relative_decrease": "Smallest real decrease",
    "threshold_relative_increase": "Smallest real increase",
    "z": "z (change / its SD)",
    "significant": "Beyond repeatability",
    "confidence": "Decision confidence",
    "uncertainty": "SD of the change without change",
    "log_ratio": "ln(current / baseline)",
    "log_ratio_sd": "SD of the log ratio without change",
    "wcv": "Repeatability wCV",
    "reference": "Baseline is",
    "basis": "Basis",
    "upper_bound_increase": "Upper bound of the rise (one-sided, at the decision level)",
    "min_increase": "Rise expected of homing cells",
    "upper_bound_ratio": "Upper bound of the ratio (one-sided, at the decision level)",
    "min_label_ratio": "Ratio expected of homing cells",
    "upper_bound_suv": "Upper bound of the SUVmean (one-sided, at the decision level)",
    "max_label_suv": "SUV of no enrichment (body average)",
}

_UNITS: Final = {"suv_mean": "g/mL", "suv_max": "g/mL", "suv_peak": "g/mL", "percent_id": "%ID"}


def event_title(event_type: str) -> str:
    """Heading of an event type (its words when not in the vocabulary)."""
    return EVENT_TITLES.get(event_type, event_type.replace("_", " ").capitalize())


def _value_text(key: str, value: float, metric: str | None) -> str:
    """How one evidence number is shown."""
    unit = _UNITS.get(metric or "", "")
    if key in ("baseline", "current", "change", "uncertainty"):
        sign = "+" if key == "change" and value > 0.0 else ""
        shown = fmt_fixed(value, 2) if (metric or "").startswith("suv") else fmt_sig(value)
        return f"{sign}{shown}\u00a0{unit}".strip()
    if key in ("relative_change", "threshold", "upper_bound_increase", "min_increase"):
        return fmt_signed_percent(value)
    if key == "threshold_relative_decrease":
        return MINUS + fmt_percent(value)
    if key == "threshold_relative_increase":
        return "+" + fmt_percent(value)
    if key in ("wcv", "confidence"):
        return fmt_percent(value, 1 if key == "wcv" else 0)
    if key == "baseline_day":
        return f"day {fmt_day(value)}"
    if key in ("log_ratio", "log_ratio_sd"):
        return fmt_fixed(value, 3)
    if key == "z":
        return fmt_fixed(value, 2)
    return fmt_sig(value)


def _evidence_value(path: str, value: Any, metric: str | None) -> str:
    """One evidence value; nested objects and lists keep ``data-key`` paths (``a.0.b``)."""
    key = path.rsplit(".", 1)[-1]
    if isinstance(value, str):
        shown = METRIC_NAMES.get(value, value) if key == "metric" else value
        return f'<span data-key="{attr(path)}">{text(shown)}</span>'
    if isinstance(value, bool) or value is None:
        return data(value, key=path)
    if isinstance(value, int | float):
        return data(value, _value_text(key, float(value), metric), key=path)
    if isinstance(value, Mapping):
        items = "".join(
            f"<div><dt>{text(str(k).replace('_', ' '))}</dt>"
            f"<dd>{_evidence_value(f'{path}.{k}', v, metric)}</dd></div>"
            for k, v in value.items()
        )
        return f'<dl class="nested">{items}</dl>'
    if isinstance(value, Sequence):
        return ", ".join(_evidence_value(f"{path}.{i}", v, metric) for i, v in enumerate(value))
    return f'<code data-key="{attr(path)}">{text(json.dumps(value, default=str))}</code>'


def _evidence_item(key: str, value: Any, metric: str | None) -> str:
    label = EVIDENCE_LABELS.get(key, key.replace("_", " "))
    wide = ' class="wide"' if isinstance(value, Mapping | list) else ""
    return f"<div{wide}><dt>{text(label)}</dt><dd>{_evidence_value(key, value, metric)}</dd></div>"


def _evidence(evidence: Mapping[str, Any]) -> str:
    metric = evidence.get("metric") if isinstance(evidence.get("metric"), str) else None
    keys = [k for k in EVIDENCE_LABELS if k in evidence]
    keys += [k for k in evidence if k not in EVIDENCE_LABELS]
    return (
        '<dl class="evidence">'
        + "".join(_evidence_item(k, evidence[k], metric) for k in keys)
        + "</dl>"
    )


def _organ_voi(site: str) -> str:
    """The results organ name of an event site (``bone_marrow`` → ``red_marrow``)."""
    names: Mapping[str, str] = read_toml("guidance.toml")["site_names"]
    return next((organ for organ, name in names.items() if name == site), site)


def _event_links(context: ReportContext, event: Mapping[str, Any], index: int) -> str:
    evidence = event.get("evidence") or {}
    tracer = evidence.get("tracer") if isinstance(evidence, Mapping) else None
    timepoint = event.get("timepoint_id")
    centre = event.get("centroid_lps_mm")
    viewer = ['<a class="show-in-viewer" href="#viewer"']
    if isinstance(centre, Sequence) and len(centre) == 3:
        viewer.append(f' data-lps="{attr(json.dumps(list(centre)))}"')
    if timepoint:
        viewer.append(f' data-timepoint="{attr(timepoint)}"')
    if tracer:
        viewer.append(f' data-tracer="{attr(tracer)}"')
    viewer.append(f' data-event="{index}">Show in the viewer</a>')
    links = ["".join(viewer)]
    voi = event.get("voi_id")
    if tracer and voi and ("lesion", voi, tracer) in context.measurements:
        links.append(
            f'<a href="#trajectory-{slug(tracer)}-{slug(voi)}">Trajectory of {text(voi)}</a>'
        )
    elif tracer and event.get("site"):
        organ = _organ_voi(str(event["site"]))
        if ("organ", organ, tracer) in context.measurements:
            links.append(
                f'<a href="#tac-{slug(tracer)}-{slug(organ)}">Time–activity curve of {text(organ)}</a>'
            )
    if tracer and timepoint and context.has_mip(str(timepoint), str(tracer)):
        links.append(f'<a href="#mip-{slug(timepoint)}-{slug(tracer)}">MIP {text(timepoint)}</a>')
    return '<p class="links">' + " · ".join(links) + "</p>"


def _grades_beside(context: ReportContext, day: float) -> str:
    if not context.grades:
        return ""
    near = context.grade_near(day)
    if near is None:
        limit = context.settings["astct"]["nearest_day_max"]
        return f'<p class="astct">ASTCT grades: none recorded within {limit:g} days.</p>'
    parts = []
    for name, grade, words in (
        ("CRS", near.crs, near.crs_text),
        ("ICANS", near.icans, near.icans_text),
    ):
        shown = DASH if grade is None else str(grade)
        value = data(grade, shown, field=f"{name.lower()}_grade")
        described = f' title="{attr(words)}"' if words else ""
        parts.append(f"<span{described}>{name} grade {value}</span>")
    return (
        f'<p class="astct">ASTCT on clinical day {data(near.raw.get("day"), fmt_fixed(near.day, 0), field="day")}: '
        + "; ".join(parts)
        + "</p>"
    )


def _event_article(context: ReportContext, event: Mapping[str, Any], index: int) -> str:
    kind = str(event["type"])
    found = event.get("evidence")
    evidence: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    tracer = evidence.get("tracer")
    timepoint = event.get("timepoint_id")
    voi = event.get("voi_id")
    site = event.get("site")
    attrs = [f'class="event" id="event-{index}" data-type="{attr(kind)}"']
    if event.get("event_id"):
        attrs.append(f'data-event-id="{attr(event["event_id"])}"')
    if timepoint:
        attrs.append(f'data-timepoint="{attr(timepoint)}"')
    if tracer:
        attrs.append(f'data-tracer="{attr(tracer)}"')
    if voi:
        attrs.append(f'data-voi="{attr(voi)}"')
    centre = event.get("centroid_lps_mm")
    if isinstance(centre, Sequence) and len(centre) == 3:
        attrs.append(f'data-lps="{attr(json.dumps(list(centre)))}"')
    attrs.append(f'aria-labelledby="event-{index}-title"')
    where = f"lesion {voi}" if voi else (f"{site}".replace("_", " ") if site else "")
    day = float(event["day"])
    heading = (
        f'<h4 id="event-{index}-title">{text(event_title(kind))}'
        + (f" — {text(where)}" if where else "")
        + f", day {data(event['day'], fmt_day(day), field='day')}"
        + (f" ({text(timepoint)})" if timepoint else "")
        + "</h4>"
    )
    facts = []
    if tracer:
        info = context.tracers.get(tracer)
        about = f"{text(context.tracer_name(tracer))}"
        if info is not None and info.target:
            about += f", target {text(info.target)}"
        facts.append(f"Seen on {about}")
    confidence = event.get("confidence")
    if isinstance(confidence, int | float) and not isinstance(confidence, bool):
        shown = "> 99.99\u00a0%" if confidence > 0.9999 else fmt_percent(float(confidence), 2)
        facts.append(f"confidence {data(confidence, shown, field='confidence')}")
    if isinstance(centre, Sequence) and len(centre) == 3:
        coords = ", ".join(
            data(v, fmt_fixed(float(v), 1), field=f"centroid_lps_mm.{i}")
            for i, v in enumerate(centre)
        )
        facts.append(f"position (LPS, mm) {coords}")
    return (
        f"<article {' '.join(attrs)}>{heading}"
        + (f'<p class="event-facts">{"; ".join(facts)}</p>' if facts else "")
        + _evidence(evidence)
        + _grades_beside(context, day)
        + _event_links(context, event, index)
        + "</article>"
    )


def _events(context: ReportContext) -> str:
    events = context.document["events"]
    heading = f'<h3 id="events-title">Flagged events ({len(events)})</h3>'
    if not events:
        return (
            f'<div class="events" aria-labelledby="events-title">{heading}'
            "<p>No guidance rule flagged an event in this study.</p></div>"
        )
    articles = "".join(_event_article(context, e, i) for i, e in enumerate(events))
    intro = (
        "<p>Each event is a change beyond what count noise and published repeatability allow "
        "(see Methods); every number is that of results.json, rounded for display.</p>"
    )
    return f'<div class="events" aria-labelledby="events-title">{heading}{intro}{articles}</div>'


def _facts(context: ReportContext) -> str:
    study = context.study
    rows = [
        ("Patient", text(study["patient_id"])),
        ("CAR T-cell product", text(study.get("car_t_product") or "not recorded")),
        ("CAR target", text(study.get("car_t_target") or "not recorded")),
        (
            "Infusion (day 0)",
            f'<time datetime="{attr(study["infusion_datetime"])}">'
            f"{text(str(study['infusion_datetime']).replace('T', ' '))}</time>",
        ),
    ]
    tracers = []
    for info in context.tracers.values():
        role = " — finds the lesions" if info.key == study["lesion_tracer"] else ""
        target = f", target {text(info.target)}" if info.target else ""
        tracers.append(
            f"<li>{text(info.agent)} ({text(info.nuclide)}{target}; key <code>{text(info.key)}</code>){role}</li>"
        )
    rows.append(("Tracers", f"<ul>{''.join(tracers)}</ul>"))
    lesions = context.document["lesions"]
    statuses: dict[str, int] = {}
    for lesion in lesions:
        statuses[lesion["status"]] = statuses.get(lesion["status"], 0) + 1
    rows.append(
        (
            "Lesion tracks",
            f"{len(lesions)}"
            + (" (" + ", ".join(f"{n} {s}" for s, n in statuses.items()) + ")" if statuses else ""),
        )
    )
    items = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in rows)
    return f'<dl class="pairs">{items}</dl>'


def _scan_table(context: ReportContext) -> str:
    tracers = list(context.tracers)
    head = "".join(f'<th scope="col">{text(context.tracer_name(t))}</th>' for t in tracers)
    rows = []
    for tp in context.document["timepoints"]:
        scanned = {s["tracer"]: s for s in tp["scans"]}
        cells = "".join(f"<td>{'scanned' if t in scanned else DASH}</td>" for t in tracers)
        when = str(tp.get("datetime") or "").replace("T", " ")
        rows.append(
            f'<tr><th scope="row">{text(tp["timepoint_id"])}</th>'
            f"<td>{data(tp['day'], fmt_day(float(tp['day'])), field='day')}</td>"
            f"<td>{text(when)}</td><td>{'yes' if tp.get('ct_series_uid') else 'no'}</td>{cells}</tr>"
        )
    return (
        '<div class="table-wrap"><table class="scans"><caption>Scans by timepoint</caption>'
        '<thead><tr><th scope="col">Timepoint</th><th scope="col">Day</th>'
        f'<th scope="col">Date and time</th><th scope="col">CT</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _lesion_table(context: ReportContext) -> str:
    lesions = context.document["lesions"]
    if not lesions:
        return "<p>No lesion was found.</p>"
    timepoints = list(context.timepoints)
    head = "".join(f'<th scope="col">{text(t)}</th>' for t in timepoints)
    rows = []
    for lesion in lesions:
        cells = []
        for tp in timepoints:
            state = lesion["timepoints"].get(tp) or {}
            if state.get("detected"):
                volume = state.get("volume_ml")
                shown = (
                    data(volume, fmt_sig(float(volume)), field="volume_ml", unit="mL")
                    if volume is not None
                    else "found"
                )
                cells.append(f"<td>{shown}</td>")
            else:
                cells.append(f"<td>{DASH}</td>")
        first = lesion.get("first_day")
        first_shown = (
            data(first, fmt_day(float(first)), field="first_day") if first is not None else DASH
        )
        rows.append(
            f'<tr><th scope="row">{text(lesion["tracking_id"])}</th><td>{text(lesion["status"])}</td>'
            f"<td>{first_shown}</td>{''.join(cells)}</tr>"
        )
    return (
        '<div class="table-wrap"><table class="lesions"><caption>Lesion tracks: volume where '
        "detected on the lesion-finding tracer (mL)</caption><thead><tr>"
        '<th scope="col">Lesion</th><th scope="col">Status</th><th scope="col">First day</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def summary_section(context: ReportContext) -> str:
    """The summary ``<section id="summary">``: events first, then the study's facts and tables."""
    return (
        '<section id="summary" aria-labelledby="summary-title">'
        '<h2 id="summary-title">Summary</h2>'
        + _events(context)
        + '<h3 id="study-title">Study</h3>'
        + _facts(context)
        + _scan_table(context)
        + _lesion_table(context)
        + "</section>"
    )
