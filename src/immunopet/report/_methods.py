"""Methods and provenance, other results blocks (dosimetry, kinetics), and the licences.

What the numbers rest on, per scan (the SUV inputs), and how lesions were found, matched and
judged (detection, registration, matching, count statistics, published repeatability with its
sources, the guidance windows), with every warning the analysis and the report noticed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from immunopet.data import read_toml
from immunopet.report._charts import mip_window
from immunopet.report._context import ReportContext
from immunopet.report._format import DASH, data, fmt_fixed, fmt_percent, fmt_sig, text
from immunopet.units import BQ_PER_MBQ, S_PER_HOUR

__all__ = ["json_block", "licences_section", "methods_section", "results_block_section"]

_MAX_DEPTH = 6


def json_block(
    value: Any, path: str = "", depth: int = 0, elsewhere: Mapping[str, str] | None = None
) -> str:
    """Any JSON value as nested definition lists; numbers as ``<data data-field="{path}">``.

    ``elsewhere`` maps paths already shown (e.g. a kinetics fit drawn as a chart) to the id of
    the element that shows them; those are linked instead of repeated.
    """
    elsewhere = elsewhere or {}
    if depth > _MAX_DEPTH:
        return f"<code>{text(json.dumps(value)[:200])}</code>"
    if isinstance(value, Mapping):
        if not value:
            return DASH
        if set(value) == {"value", "ci_low", "ci_high"}:
            return (
                json_block(value["value"], f"{path}.value", depth + 1)
                + " (interval "
                + json_block(value["ci_low"], f"{path}.ci_low", depth + 1)
                + " to "
                + json_block(value["ci_high"], f"{path}.ci_high", depth + 1)
                + ")"
            )
        if path in elsewhere:
            return f'<a href="#{elsewhere[path]}">shown with its chart</a>'

        items = "".join(
            f"<div><dt>{text(key)}</dt><dd>"
            f"{json_block(item, f'{path}.{key}' if path else str(key), depth + 1, elsewhere)}</dd></div>"
            for key, item in value.items()
        )
        return f'<dl class="facts nested">{items}</dl>'
    if isinstance(value, list):
        if not value:
            return DASH
        if all(not isinstance(v, Mapping | list) for v in value):
            return ", ".join(json_block(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
        return (
            "<ol>"
            + "".join(
                f"<li>{json_block(v, f'{path}[{i}]', depth + 1, elsewhere)}</li>"
                for i, v in enumerate(value)
            )
            + "</ol>"
        )
    if isinstance(value, str):
        return text(value)
    return data(value, field=path or None)


def _hours_between(start: Any, end: Any) -> float | None:
    try:
        delta = datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
    except ValueError:
        return None
    return delta.total_seconds() / S_PER_HOUR


def _scan_rows(context: ReportContext) -> str:
    rows = []
    for tp in context.document["timepoints"]:
        for scan in tp["scans"]:
            activity = scan.get("injected_activity_bq")
            uptake = _hours_between(scan.get("injection_datetime"), scan.get("scan_datetime"))
            weight = scan.get("weight_kg")
            factor = scan.get("suv_bw_factor")
            noise = scan.get("noise") or {}
            rows.append(
                "<tr>"
                f'<th scope="row">{text(scan.get("scan_id") or tp["timepoint_id"])}</th>'
                f"<td>{text(scan['agent'])}</td><td>{text(scan['nuclide'])}</td>"
                "<td>"
                + (
                    data(
                        activity,
                        fmt_fixed(float(activity) / BQ_PER_MBQ, 1),
                        field="injected_activity_bq",
                    )
                    if activity is not None
                    else DASH
                )
                + "</td>"
                f"<td>{text(str(scan.get('injection_datetime') or DASH).replace('T', ' '))}</td>"
                f"<td>{text(str(scan.get('scan_datetime') or DASH).replace('T', ' '))}</td>"
                f"<td>{DASH if uptake is None else data(uptake, fmt_fixed(uptake, 1), derived=True)}</td>"
                f"<td>{DASH if weight is None else data(weight, fmt_fixed(float(weight), 1), field='weight_kg')}</td>"
                f"<td>{text(scan.get('decay_correction') or DASH)}</td>"
                f"<td>{DASH if factor is None else data(factor, fmt_sig(float(factor), 4), field='suv_bw_factor')}</td>"
                f"<td>{text(noise.get('reference_region') or DASH) if isinstance(noise, Mapping) else DASH}</td>"
                "</tr>"
            )
    return (
        '<div class="table-wrap"><table class="suv-inputs"><caption>SUV inputs per scan</caption>'
        '<thead><tr><th scope="col">Scan</th><th scope="col">Agent</th><th scope="col">Nuclide</th>'
        '<th scope="col">Injected (MBq)</th><th scope="col">Injection</th>'
        '<th scope="col">Decay reference</th><th scope="col">Uptake (h)</th>'
        '<th scope="col">Weight (kg)</th><th scope="col">Decay correction</th>'
        '<th scope="col">SUVbw factor ((g/mL)/(Bq/mL))</th><th scope="col">Noise reference</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _registration_rows(context: ReportContext) -> str:
    rows = []
    for tp in context.document["timepoints"]:
        registration = tp.get("registration") or {}
        if not isinstance(registration, Mapping):
            continue
        metric = registration.get("mattes_mutual_information")
        rows.append(
            f'<tr><th scope="row">{text(tp["timepoint_id"])}</th>'
            f"<td>{text(registration.get('mode') or DASH)}</td>"
            f"<td>{data(metric, None if metric is None else fmt_fixed(float(metric), 3), field='mattes_mutual_information')}</td></tr>"
        )
    return (
        '<div class="table-wrap"><table><caption>Registration to the baseline per timepoint</caption>'
        '<thead><tr><th scope="col">Timepoint</th><th scope="col">Mode</th>'
        '<th scope="col">Mattes mutual information</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _repeatability() -> str:
    table = read_toml("repeatability.toml")
    rows = "".join(
        f'<tr><th scope="row">{text(name)}</th><td>{fmt_percent(float(entry["wcv"]))}</td>'
        f"<td>{text(entry.get('source', ''))}</td><td>{text(entry.get('confidence', ''))}</td></tr>"
        for name, entry in table.items()
        if isinstance(entry, Mapping) and "wcv" in entry
    )
    decision = table.get("decision", {})
    level = decision.get("confidence")
    level_text = (
        ""
        if level is None
        else (
            f"<p>A change is flagged when it exceeds the two-sided {fmt_percent(float(level), 0)} "
            f"limit of count noise and repeatability ({text(decision.get('source', ''))}).</p>"
        )
    )
    return (
        '<div class="table-wrap"><table><caption>Repeatability beyond counting noise (reference '
        "table of this immunopet version; each event's evidence holds the wCV it used)</caption>"
        '<thead><tr><th scope="col">Class</th><th scope="col">wCV</th><th scope="col">Source</th>'
        f'<th scope="col">Confidence of the value</th></tr></thead><tbody>{rows}</tbody></table></div>'
        + level_text
    )


def _guidance_windows() -> str:
    table = read_toml("guidance.toml")
    rows = "".join(
        f'<tr><th scope="row">{text(name)}</th>'
        f'<td class="nowrap">{float(entry["window_days"][0]):g} to {float(entry["window_days"][1]):g}</td>'
        f"<td>{text(', '.join(entry.get('organs', [])))}</td><td>{text(entry.get('source', ''))}</td></tr>"
        for name, entry in table.items()
        if isinstance(entry, Mapping) and "window_days" in entry
    )
    return (
        '<div class="table-wrap"><table><caption>Windows of the guidance rules (days since '
        'infusion)</caption><thead><tr><th scope="col">Rule</th><th scope="col">Window</th>'
        '<th scope="col">Organs</th><th scope="col">Source</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _organ_sources(context: ReportContext) -> str:
    items = []
    for tp in context.document["timepoints"]:
        sources = tp.get("organ_sources") or {}
        if isinstance(sources, Mapping) and sources:
            entries = "".join(
                f"<div><dt>{text(organ)}</dt><dd>{text(how)}</dd></div>"
                for organ, how in sources.items()
            )
            items.append(f'<h4>{text(tp["timepoint_id"])}</h4><dl class="pairs">{entries}</dl>')
    if not items:
        return ""
    return f"<details><summary>Organ VOIs: how each was found, per timepoint</summary>{''.join(items)}</details>"


def _warnings(context: ReportContext, viewer_notes: Sequence[str]) -> str:
    found = [("analysis", str(w)) for w in context.document.get("warnings") or []]
    for tp in context.document["timepoints"]:
        for scan in tp["scans"]:
            found += [
                (str(scan.get("scan_id") or tp["timepoint_id"]), str(w))
                for w in scan.get("warnings") or []
            ]
    found += [("report", note) for note in context.notes]
    found += [("viewer", note) for note in viewer_notes]
    if not found:
        return "<p>None.</p>"
    return (
        '<ul class="warnings">'
        + "".join(
            f"<li><strong>{text(where)}:</strong> {text(message)}</li>" for where, message in found
        )
        + "</ul>"
    )


def methods_section(
    context: ReportContext, viewer_notes: Sequence[str], renderer_version: str
) -> str:
    """``<section id="methods">``: software, SUV inputs, methods, repeatability, warnings."""
    document = context.document
    methods = document.get("methods") or {}
    software = document.get("software") or {}
    study = context.study
    detection = study.get("detection_method") or {}
    elapsed = methods.get("elapsed_s") if isinstance(methods, Mapping) else None
    facts = [
        (
            "Analysis software",
            f"{text(software.get('name', 'immunopet'))} {text(software.get('version') or 'version not recorded')}",
        ),
        ("Report rendered by", f"immunopet {text(renderer_version)}"),
        ("Results schema", text(document.get("schema_version", ""))),
        ("Study key", f"<code>{text(study.get('study_key') or DASH)}</code>"),
    ]
    if isinstance(elapsed, int | float):
        facts.append(
            ("Analysis time", f"{data(elapsed, fmt_sig(float(elapsed)), field='elapsed_s')} s")
        )
    described = [
        ("SUV", methods.get("suv")),
        ("Registration", methods.get("registration")),
        ("Lesion matching", methods.get("matching")),
        ("Uncertainty", methods.get("uncertainty")),
    ]
    facts += [(name, text(value)) for name, value in described if value]
    if isinstance(methods, Mapping):
        facts += [
            (str(key), json_block(value, f"methods.{key}"))
            for key, value in methods.items()
            if key not in ("suv", "registration", "matching", "uncertainty", "elapsed_s")
        ]
    if isinstance(detection, Mapping) and detection:
        parameters = detection.get("parameters") or {}
        facts.append(
            (
                "Lesion detection",
                f"{text(detection.get('name', ''))} "
                + (json_block(parameters, "detection.parameters") if parameters else "")
                + (f"<br>{text(detection['source'])}" if detection.get("source") else ""),
            )
        )
        facts.append(("Lesion-finding tracer", text(context.tracer_name(study["lesion_tracer"]))))
    windows = "; ".join(
        f"{text(context.tracer_name(t))}: {low:g}–{high:g} g/mL"
        for t in context.tracers
        for low, high in [mip_window(context, t)]
    )
    facts.append(("MIP windows (SUVbw)", windows or DASH))
    facts.append(
        (
            "Error bars",
            f"±{fmt_fixed(context.error_z, 2)} × the count-statistics standard error "
            "(partial-volume and calibration errors are not in it)",
        )
    )
    items = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in facts)
    return (
        '<section id="methods" aria-labelledby="methods-title"><h2 id="methods-title">Methods and provenance</h2>'
        f'<dl class="pairs">{items}</dl>'
        "<p>SUVbw = activity concentration × body weight / injected activity decayed to the "
        "scan's decay reference; the SUVbw factor below is weight / decayed activity, so SUVbw = "
        "concentration (Bq/mL) × factor.</p>"
        + _scan_rows(context)
        + _registration_rows(context)
        + _organ_sources(context)
        + '<h3 id="repeatability-title">Repeatability and decision rules</h3>'
        + _repeatability()
        + _guidance_windows()
        + '<h3 id="warnings-title">Warnings</h3>'
        + _warnings(context, viewer_notes)
        + "</section>"
    )


def results_block_section(
    context: ReportContext, key: str, title: str, elsewhere: Mapping[str, str] | None = None
) -> str:
    """A section showing a results block as it is (e.g. ``dosimetry``); see :func:`json_block`."""
    value = context.document.get(key)
    if value is None:
        return ""
    return (
        f'<section id="{key}" aria-labelledby="{key}-title"><h2 id="{key}-title">{text(title)}</h2>'
        f"{json_block(value, key, elsewhere=elsewhere)}</section>"
    )


def licences_section(licences: Sequence[tuple[str, str]]) -> str:
    """``<section id="licences">``: immunopet's licence and those of bundled third-party code."""
    items = "".join(
        f"<details><summary>{text(name)}</summary><pre>{text(body)}</pre></details>"
        for name, body in licences
    )
    bundled = items or "<p>This report bundles no third-party code.</p>"
    return (
        '<section id="licences" aria-labelledby="licences-title"><h2 id="licences-title">Third-party licences</h2>'
        "<p>This report was written by immunopet (BSD-3-Clause). Its styles, charts and images "
        "are generated by immunopet; the viewer's bundled code keeps its own licence:</p>"
        f"{bundled}</section>"
    )
