"""The pictures of the report: MIPs per timepoint and tracer, and the charts (inline SVG).

Charts: lesion trajectories (SUVmean per lesion over days, one panel per tracer, bars ±z·SE
with z from ``data/report.toml``), a waterfall of each lesion's change from baseline per
tracer, organ time–activity curves, CAR T-cell kinetics with the fitted Stein 2019 model when
``kinetics`` holds a fit, and an event timeline with the ASTCT grades when
``clinical_grades`` is present. Each chart has a ``<title>``/``<desc>`` and a data table in a
``<details>`` element; every number of a table is a ``<data>`` element (``_format``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from immunopet.errors import ImmunopetError
from immunopet.report._context import ReportContext
from immunopet.report._format import (
    DASH,
    attr,
    data,
    fmt_day,
    fmt_fixed,
    fmt_sig,
    fmt_signed_percent,
    slug,
    text,
)
from immunopet.report._mip import Mip, coronal_mip, inverse_grey
from immunopet.report._png import png_data_uri
from immunopet.report._summary import event_title
from immunopet.report._svg import (
    Bar,
    Curve,
    Lane,
    Mark,
    Point,
    Series,
    bar_chart,
    legend,
    line_chart,
    timeline_chart,
)

__all__ = ["charts_section", "kinetics_fits", "mip_section", "mip_window"]

_DAY_AXIS = "Days since CAR T-cell infusion"


# --------------------------------------------------------------------------------------- MIPs


def mip_window(context: ReportContext, tracer: str) -> tuple[float, float]:
    """The fixed SUV window of a tracer's MIPs (``data/report.toml`` ``[mip].window_suv``)."""
    from immunopet.io.discovery import is_fdg

    windows: Mapping[str, Sequence[float]] = context.settings["mip"]["window_suv"]
    if tracer in windows:
        low, high = windows[tracer]
    elif "fdg" in windows and is_fdg(context.tracer_name(tracer)):
        low, high = windows["fdg"]
    else:
        low, high = windows["default"]
    return float(low), float(high)


def _load_mip(context: ReportContext, relative: str) -> Mip | None:
    from immunopet.image import Quantity
    from immunopet.io.nifti import read_nifti

    path = context.results_dir / relative
    if Path(relative).is_absolute() or ".." in Path(relative).parts or not path.is_file():
        context.notes.append(f"MIP: image {relative} is missing from the results folder")
        return None
    try:
        return coronal_mip(read_nifti(path, quantity=Quantity.SUV_BW))
    except ImmunopetError as exc:
        context.notes.append(f"MIP: {exc.one_line()}")
        return None


def _markers(context: ReportContext, mip: Mip, timepoint: str) -> tuple[str, list[str]]:
    height, width = mip.values.shape
    marks, names = [], []
    radius = max(width, height) * 0.012 + 2.0
    for lesion in context.document["lesions"]:
        state = lesion["timepoints"].get(timepoint) or {}
        centre = state.get("centroid_lps_mm")
        if not state.get("detected") or not isinstance(centre, Sequence) or len(centre) != 3:
            continue
        where = mip.fraction([float(v) for v in centre])
        if where is None:
            continue
        x, y = where[0] * width, where[1] * height
        names.append(str(lesion["tracking_id"]))
        # The label goes on the side with more room, so it stays on the image.
        left = x > 0.5 * width
        label_x = x - radius - 1.0 if left else x + radius + 1.0
        marks.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="none" stroke="#c62828" '
            f'stroke-width="1.2"/><text x="{label_x:.1f}" y="{y + 3:.1f}" '
            f'text-anchor="{"end" if left else "start"}">{text(lesion["tracking_id"])}</text>'
        )
    if not marks:
        return "", names
    svg = (
        f'<svg class="mip-marks" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'aria-hidden="true" font-size="{max(width, height) * 0.022 + 4:.1f}">{"".join(marks)}</svg>'
    )
    return svg, names


def _mip_figure(context: ReportContext, timepoint: str, tracer: str, relative: str) -> str:
    mip = _load_mip(context, relative)
    if mip is None:
        return (
            f'<td class="mip-missing" id="mip-{slug(timepoint)}-{slug(tracer)}">image missing</td>'
        )
    low, high = mip_window(context, tracer)
    height_px = int(context.settings["mip"]["height_px"])
    rows, columns = mip.values.shape
    width_px = max(1, round(height_px * columns / rows))
    uri = png_data_uri(inverse_grey(mip.values, low, high))
    overlay, names = _markers(context, mip, timepoint)
    day = context.day(timepoint)
    day_text = "" if day is None else f" (day {fmt_day(day)})"
    alt = (
        f"Coronal MIP of {context.tracer_name(tracer)} SUVbw at {timepoint}{day_text}, window "
        f"{low:g}–{high:g} g/mL, inverse grey (darker is higher uptake)"
        + (f"; lesions marked: {', '.join(names)}" if names else "")
    )
    return (
        f'<td><figure class="mip" id="mip-{slug(timepoint)}-{slug(tracer)}">'
        f'<div class="mip-frame" style="width:{width_px}px;height:{height_px}px;aspect-ratio:{columns}/{rows}">'
        f'<img src="{uri}" alt="{attr(alt)}" width="{width_px}" height="{height_px}">{overlay}</div>'
        "</figure></td>"
    )


def mip_section(context: ReportContext) -> str:
    """``<section id="mips">``: a table of MIPs, one row per tracer, one column per timepoint."""
    head = '<section id="mips" aria-labelledby="mips-title"><h2 id="mips-title">Maximum-intensity projections</h2>'
    index = context.image_index
    if index is None:
        return (
            head + "<p>This results folder holds no images (<code>images/index.json</code>); "
            "run <code>immunopet analyze</code> again to add them.</p></section>"
        )
    entries: Mapping[str, Any] = index["timepoints"]
    timepoints = [tp for tp in context.timepoints if tp in entries]
    columns = "".join(
        f'<th scope="col">{text(tp)}<br><span class="day">day {fmt_day(context.day(tp) or 0.0)}</span></th>'
        for tp in timepoints
    )
    rows = []
    for tracer in context.tracers:
        low, high = mip_window(context, tracer)
        cells = []
        for tp in timepoints:
            relative = (entries[tp].get("suv") or {}).get(tracer)
            if relative is None:
                cells.append(f'<td class="mip-none">{DASH}</td>')
            else:
                cells.append(_mip_figure(context, tp, tracer, str(relative)))
        rows.append(
            f'<tr><th scope="row">{text(context.tracer_name(tracer))}<br><span class="window">'
            f"SUVbw {low:g}–{high:g} g/mL</span></th>{''.join(cells)}</tr>"
        )
    return (
        head + "<p>Coronal MIPs of SUVbw, head at the top and the patient's right on the left, in "
        "inverse grey (white: the window's low end or less; black: its high end or more), one "
        "fixed window per tracer. Red rings: lesions found at that visit, labelled by tracking "
        "ID.</p>"
        + '<div class="table-wrap"><table class="mips"><thead><tr><th scope="col">Tracer</th>'
        + columns
        + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


# ------------------------------------------------------------------------------------- charts


def _number(row: Mapping[str, Any], key: str, display: str | None = None) -> str:
    value = row.get(key)
    if value is None:
        return data(None, field=key)
    return data(value, display, field=key)


def _se_point(context: ReportContext, row: Mapping[str, Any], name: str, metric: str) -> Point:
    value = float(row[metric])
    se = row.get(f"{metric}_se")
    error = None if se is None else context.error_z * float(se)
    source = str(row.get("voi_source") or "")
    detected = source in ("", "detected") or row["voi_type"] == "organ"
    tip = (
        f"{name}, {row['timepoint_id']} day {fmt_day(float(row['day']))}: {fmt_fixed(value, 2)}"
        + ("" if se is None else f" ± {fmt_fixed(context.error_z * float(se), 2)}")
        + ("" if detected else f" ({source})")
    )
    return Point(float(row["day"]), value, error, hollow=not detected, tip=tip)


def _measurement_table(
    caption: str, rows: Sequence[tuple[str, Mapping[str, Any]]], lesion: bool
) -> str:
    columns = ["VOI", "Timepoint", "Day", "VOI source", "SUVmean", "SE", "SUVmax"]
    columns += ["SUVpeak"] if lesion else []
    columns += ["%ID", "%ID SE", "Volume (mL)"]
    head = "".join(f'<th scope="col">{text(c)}</th>' for c in columns)
    body = []
    for name, row in rows:
        cells = [
            f'<th scope="row">{text(name)}</th>',
            f"<td>{text(row['timepoint_id'])}</td>",
            f"<td>{_number(row, 'day', fmt_day(float(row['day'])))}</td>",
            f"<td>{text(row.get('voi_source') or '')}</td>",
            f"<td>{_number(row, 'suv_mean', fmt_fixed(float(row['suv_mean']), 2))}</td>",
            f"<td>{_number(row, 'suv_mean_se')}</td>",
            f"<td>{_number(row, 'suv_max', fmt_fixed(float(row.get('suv_max') or 0.0), 2))}</td>",
        ]
        if lesion:
            peak = row.get("suv_peak")
            cells.append(
                f"<td>{_number(row, 'suv_peak', None if peak is None else fmt_fixed(float(peak), 2))}</td>"
            )
        cells += [
            f"<td>{_number(row, 'percent_id')}</td>",
            f"<td>{_number(row, 'percent_id_se')}</td>",
            f"<td>{_number(row, 'volume_ml')}</td>",
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<details><summary>Data table: {text(caption)}</summary>"
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></details>"
    )


def _curves_figure(
    context: ReportContext, voi_type: str, tracer: str, prefix: str, what: str
) -> str:
    vois = context.vois(voi_type, tracer)
    if not vois:
        return ""
    series, rows = [], []
    for voi in vois:
        measured = context.measurements[(voi_type, voi, tracer)]
        series.append(
            Series(
                voi,
                tuple(_se_point(context, r, voi, "suv_mean") for r in measured),
                anchor=f"{prefix}-{slug(tracer)}-{slug(voi)}",
            )
        )
        rows += [(voi, r) for r in measured]
    agent = context.tracer_name(tracer)
    z = fmt_fixed(context.error_z, 2)
    chart_id = f"{prefix}-{slug(tracer)}"
    title = f"{what} on {agent}: SUVmean over days since infusion"
    desc = (
        f"SUVmean (g/mL) of each {voi_type} measured on {agent} at each timepoint, with error "
        f"bars of ±{z} standard errors from count statistics; the dashed line marks the infusion."
    )
    chart = line_chart(
        chart_id=chart_id,
        title=title,
        desc=desc,
        x_label=_DAY_AXIS,
        y_label="SUVmean (g/mL)",
        series=series,
        x_marks=[(0.0, "infusion")],
    )
    hollow = any(p.hollow for s in series for p in s.points)
    key = legend(
        vois,
        hollow_note="VOI carried from another timepoint (not detected there)" if hollow else None,
    )
    return (
        f'<figure class="chart-figure" aria-labelledby="{chart_id}-caption">{chart}'
        f'<figcaption id="{chart_id}-caption">{text(title)} (bars ±{z} SE)</figcaption>{key}'
        + _measurement_table(f"{what} on {agent}", rows, voi_type == "lesion")
        + "</figure>"
    )


def _baseline_and_current(
    context: ReportContext, rows: Sequence[Mapping[str, Any]]
) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """Baseline and current (last) measurement of one lesion on one tracer.

    The baseline is the last measurement before the infusion (else the first) among those taken
    at the same time after injection as the current one (an antibody's uptake rises for days,
    so only equal uptake times compare; the rule and tolerance of :mod:`immunopet.monitor`).
    """
    from immunopet.monitor._document import same_uptake, uptake_hours

    if len(rows) < 2:
        return None
    current = rows[-1]

    def uptake(row: Mapping[str, Any]) -> float | None:
        scans = context.timepoints[row["timepoint_id"]]["scans"]
        scan = next((s for s in scans if s["tracer"] == row["tracer"]), None)
        try:
            return None if scan is None else uptake_hours(scan)
        except (KeyError, TypeError, ValueError):
            return None

    when = uptake(current)
    candidates = [
        r
        for r in rows[:-1]
        if when is None or (hours := uptake(r)) is None or same_uptake(hours, when)
    ]
    before = [r for r in candidates if float(r["day"]) < 0.0]
    baseline = before[-1] if before else (candidates[0] if candidates else None)
    if baseline is None or float(baseline["suv_mean"]) <= 0.0:
        return None
    return baseline, current


def _waterfall_figure(context: ReportContext, tracer: str) -> str:
    found = []
    for voi in context.vois("lesion", tracer):
        pair = _baseline_and_current(context, context.measurements[("lesion", voi, tracer)])
        if pair is not None:
            base, now = pair
            found.append((voi, base, now, float(now["suv_mean"]) / float(base["suv_mean"]) - 1.0))
    if not found:
        return ""
    found.sort(key=lambda item: -item[3])
    agent = context.tracer_name(tracer)
    chart_id = f"waterfall-{slug(tracer)}"
    bars = [
        Bar(
            voi,
            100.0 * change,
            tip=(
                f"{voi}: SUVmean {fmt_fixed(float(b['suv_mean']), 2)} ({b['timepoint_id']}) → "
                f"{fmt_fixed(float(n['suv_mean']), 2)} ({n['timepoint_id']}), {fmt_signed_percent(change)}"
            ),
            anchor=f"{chart_id}-{slug(voi)}",
        )
        for voi, b, n, change in found
    ]
    title = f"Change of lesion SUVmean from baseline on {agent}"
    chart = bar_chart(
        chart_id=chart_id,
        title=title,
        desc=(
            f"One bar per lesion: relative change of SUVmean on {agent} from the baseline (the "
            "last scan before the infusion, else the first, at the same time after injection) "
            "to the last scan, largest increase first; increases orange, decreases blue."
        ),
        y_label="Change from baseline (%)",
        bars=bars,
        value_text=[fmt_signed_percent(change, 0) for *_, change in found],
    )
    rows = "".join(
        f'<tr><th scope="row">{text(voi)}</th><td>{text(b["timepoint_id"])}</td>'
        f"<td>{_number(b, 'day', fmt_day(float(b['day'])))}</td>"
        f"<td>{_number(b, 'suv_mean', fmt_fixed(float(b['suv_mean']), 2))}</td>"
        f"<td>{text(n['timepoint_id'])}</td><td>{_number(n, 'day', fmt_day(float(n['day'])))}</td>"
        f"<td>{_number(n, 'suv_mean', fmt_fixed(float(n['suv_mean']), 2))}</td>"
        f"<td>{data(change, fmt_signed_percent(change), derived=True)}</td></tr>"
        for voi, b, n, change in found
    )
    table = (
        f'<details><summary>Data table: {text(title)}</summary><div class="table-wrap"><table>'
        '<thead><tr><th scope="col">Lesion</th><th scope="col">Baseline</th><th scope="col">Day</th>'
        '<th scope="col">SUVmean</th><th scope="col">Current</th><th scope="col">Day</th>'
        '<th scope="col">SUVmean</th><th scope="col">Change</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></details>"
    )
    return (
        f'<figure class="chart-figure" aria-labelledby="{chart_id}-caption">{chart}'
        f'<figcaption id="{chart_id}-caption">{text(title)} (baseline: the last scan before the '
        "infusion, else the first, at the same time after injection as the current one; current: "
        f"the last scan)</figcaption>{table}</figure>"
    )


def _is_estimate(value: Any) -> bool:
    return isinstance(value, Mapping) and "value" in value and "ci_low" in value


def kinetics_fits(
    node: Any, path: str = "kinetics", depth: int = 0
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every CAR T-cell kinetics fit (``CellularKineticsFit.to_dict()`` form) in ``node``.

    Yields (path in the document, e.g. ``kinetics.blood``, fit).
    """
    if depth > 4:
        return
    if isinstance(node, Mapping):
        if {"time_d", "values", "cmax", "tmax_d"} <= set(node) and _is_estimate(node.get("cmax")):
            yield path, node
            return
        for key, value in node.items():
            yield from kinetics_fits(value, f"{path}.{key}", depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from kinetics_fits(value, f"{path}[{index}]", depth + 1)


def _model_curve(context: ReportContext, fit: Mapping[str, Any]) -> Curve | None:
    """The fitted Stein 2019 curve from the fit's own parameters (kinetics evaluates it)."""
    from immunopet.kinetics import Stein2019CellularKinetics

    try:
        model = Stein2019CellularKinetics(
            fold_expansion=float(fit["fold_expansion"]["value"]),
            tmax_d=float(fit["tmax_d"]["value"]),
            cmax_copies_per_ug=float(fit["cmax"]["value"]),
            alpha_per_day=float(fit["alpha_per_day"]["value"]),
            beta_per_day=float(fit["beta_per_day"]["value"]),
            fb=float(fit["fb"]["value"]),
            source="results.json kinetics",
        )
    except (KeyError, TypeError, ValueError):
        return None
    end = max([float(t) for t in fit["time_d"]] + [model.tmax_d]) * 1.05
    count = int(context.settings["charts"]["model_curve_points"])
    times = np.linspace(0.0, end, count)
    levels = model.concentration(times)
    return Curve("fitted model", tuple(times.tolist()), tuple(levels.tolist()))


def _kinetics_figure(context: ReportContext, name: str, fit: Mapping[str, Any], index: int) -> str:
    unit = str(fit.get("value_unit") or "")
    times, values = list(fit.get("time_d") or []), list(fit.get("values") or [])
    points = tuple(
        Point(float(t), float(v), tip=f"day {fmt_day(float(t))}: {fmt_sig(float(v))} {unit}")
        for t, v in zip(times, values, strict=False)
        if t is not None and v is not None
    )
    curve = _model_curve(context, fit)
    chart_id = f"kinetics-{index}"
    model = str(fit.get("model") or "")
    title = f"CAR T-cell kinetics ({name}): samples and fitted {model} model"
    chart = line_chart(
        chart_id=chart_id,
        title=title,
        desc=(
            f"Samples ({unit}) over days since infusion on a logarithmic axis, with the fitted "
            "Stein 2019 expansion and biexponential contraction curve dashed."
        ),
        x_label=_DAY_AXIS,
        y_label=f"level ({unit})" if unit else "level",
        series=[Series("samples", points)],
        curves=[curve] if curve is not None else [],
        log_y=True,
    )
    estimates = [(k, v) for k, v in fit.items() if _is_estimate(v)]
    rows = "".join(
        f'<tr><th scope="row">{text(k)}</th><td>{data(v.get("value"), field=f"{k}.value")}</td>'
        f"<td>{data(v.get('ci_low'), field=f'{k}.ci_low')}</td>"
        f"<td>{data(v.get('ci_high'), field=f'{k}.ci_high')}</td></tr>"
        for k, v in estimates
    )
    level = fit.get("ci_level")
    level_text = (
        "" if not isinstance(level, int | float) else f" ({fmt_sig(100.0 * float(level))} %)"
    )
    others = "".join(
        f"<div><dt>{text(k)}</dt><dd>{_scalar(v, k)}</dd></div>"
        for k, v in fit.items()
        if not _is_estimate(v)
        and k not in ("time_d", "values", "log_sd", "goodness_of_fit")
        and not isinstance(v, Mapping | list)
    )
    samples = "".join(
        f"<tr><td>{data(t, fmt_day(float(t)), field='time_d')}</td>"
        f"<td>{data(v, fmt_sig(float(v)), field='values')}</td></tr>"
        for t, v in zip(times, values, strict=False)
        if t is not None and v is not None
    )
    note = (
        ""
        if curve is not None
        else "<p>The fitted curve cannot be drawn from these parameters.</p>"
    )
    return (
        f'<figure class="chart-figure" aria-labelledby="{chart_id}-caption">{chart}'
        f'<figcaption id="{chart_id}-caption">{text(title)}</figcaption>'
        + legend(["samples"], curve_note="fitted model" if curve is not None else None)
        + note
        + f"<details><summary>Fitted parameters and samples ({text(name)})</summary>"
        f'<div class="table-wrap"><table><thead><tr><th scope="col">Parameter</th>'
        f'<th scope="col">Estimate</th><th scope="col">CI low{level_text}</th>'
        f'<th scope="col">CI high</th></tr></thead><tbody>{rows}</tbody></table></div>'
        f'<dl class="facts">{others}</dl>'
        f'<div class="table-wrap"><table><thead><tr><th scope="col">Day</th>'
        f'<th scope="col">Level ({text(unit)})</th></tr></thead><tbody>{samples}</tbody></table></div>'
        "</details></figure>"
    )


def _scalar(value: Any, key: str) -> str:
    if isinstance(value, str):
        return text(value)
    if value is None or isinstance(value, bool | int | float):
        return data(value, field=key)
    return text(value)


def _timeline(context: ReportContext) -> str:
    lanes = []
    for index, tracer in enumerate(context.tracers):
        marks = tuple(
            Mark(
                float(tp["day"]),
                tp["timepoint_id"],
                f"{tp['timepoint_id']}, day {fmt_day(float(tp['day']))}",
                index,
            )
            for tp in context.document["timepoints"]
            if any(s["tracer"] == tracer for s in tp["scans"])
        )
        name = context.tracer_name(tracer)
        lanes.append(Lane(name if len(name) <= 20 else name[:19] + "…", marks))
    events = context.document["events"]
    types = list(dict.fromkeys(str(e["type"]) for e in events))
    if events:
        lanes.append(
            Lane(
                "Events",
                tuple(
                    Mark(
                        float(e["day"]),
                        f"{i + 1}",
                        f"Event {i + 1}: {event_title(str(e['type']))}, day {fmt_day(float(e['day']))}",
                        types.index(str(e["type"])),
                    )
                    for i, e in enumerate(events)
                ),
            )
        )
    for name, attribute in (("CRS grade", "crs"), ("ICANS grade", "icans")):
        marks = tuple(
            Mark(
                g.day,
                str(getattr(g, attribute)),
                f"day {fmt_fixed(g.day, 0)}: {name} {getattr(g, attribute)}",
                int(getattr(g, attribute)),
                1.0,
            )
            for g in context.grades
            if getattr(g, attribute) is not None
        )
        if marks:
            lanes.append(Lane(f"ASTCT {name}", marks, bars=True))
    grades_note = " and the ASTCT grades per clinical day" if context.grades else ""
    desc = (
        "Scans per tracer (labelled by timepoint), guidance events (numbered as in the list "
        f"below){grades_note}, against days since the CAR T-cell infusion (dashed line)."
    )
    chart = timeline_chart(
        chart_id="timeline",
        title="Timeline: scans, events" + (" and ASTCT grades" if context.grades else ""),
        desc=desc,
        x_label=_DAY_AXIS,
        lanes=lanes,
    )
    if context.grades:
        # The clinical course spans days, the imaging months: the graded days again, zoomed.
        low = min(0.0, context.grades[0].day) - 1.0
        high = context.grades[-1].day + 1.0
        chart += timeline_chart(
            chart_id="timeline-clinical",
            title=f"Timeline of the graded days ({fmt_fixed(low, 0)} to {fmt_fixed(high, 0)})",
            desc="The same timeline over the days with ASTCT grades: " + desc,
            x_label=_DAY_AXIS,
            lanes=lanes,
            x_range=(low, high),
        )
    event_rows = "".join(
        f'<tr><th scope="row"><a href="#event-{i}">{i + 1}</a></th>'
        f"<td>{data(e['day'], fmt_day(float(e['day'])), field='day')}</td>"
        f"<td>{text(event_title(str(e['type'])))}</td>"
        f"<td>{text(e.get('voi_id') or e.get('site') or '')}</td></tr>"
        for i, e in enumerate(events)
    )
    grade_rows = "".join(
        f"<tr><td>{data(g.raw.get('day'), fmt_fixed(g.day, 0), field='day')}</td>"
        f"<td>{data(g.crs, DASH if g.crs is None else str(g.crs), field='crs_grade')}</td>"
        f"<td>{data(g.icans, DASH if g.icans is None else str(g.icans), field='icans_grade')}</td></tr>"
        for g in context.grades
    )
    tables = ""
    if events:
        tables += (
            '<div class="table-wrap"><table><caption>Events</caption><thead><tr><th scope="col">#</th>'
            '<th scope="col">Day</th><th scope="col">Event</th><th scope="col">Where</th></tr></thead>'
            f"<tbody>{event_rows}</tbody></table></div>"
        )
    if grade_rows:
        tables += (
            '<div class="table-wrap"><table><caption>ASTCT grades</caption><thead><tr>'
            '<th scope="col">Clinical day</th><th scope="col">CRS</th><th scope="col">ICANS</th>'
            f"</tr></thead><tbody>{grade_rows}</tbody></table></div>"
        )
    details = (
        f"<details><summary>Data table: timeline</summary>{tables}</details>" if tables else ""
    )
    return (
        '<figure class="chart-figure wide" aria-labelledby="timeline-caption">'
        f'{chart}<figcaption id="timeline-caption">Scans, events'
        f"{' and ASTCT grades' if context.grades else ''} against days since infusion</figcaption>"
        f"{details}</figure>"
    )


def charts_section(context: ReportContext) -> str:
    """``<section id="charts">``: trajectories, waterfall, organ curves, kinetics, timeline."""
    parts = [
        '<section id="charts" aria-labelledby="charts-title"><h2 id="charts-title">Charts</h2>'
    ]
    parts.append('<h3 id="timeline-heading">Event timeline</h3>' + _timeline(context))
    trajectories = [
        _curves_figure(context, "lesion", t, "trajectory", "Lesions") for t in context.tracers
    ]
    parts.append('<h3 id="trajectories-heading">Lesion trajectories</h3>')
    parts.append(
        f'<div class="chart-grid">{"".join(trajectories)}</div>'
        if any(trajectories)
        else "<p>No lesion was measured.</p>"
    )
    waterfalls = [_waterfall_figure(context, t) for t in context.tracers]
    parts.append('<h3 id="waterfall-heading">Change from baseline</h3>')
    parts.append(
        f'<div class="chart-grid">{"".join(waterfalls)}</div>'
        if any(waterfalls)
        else "<p>No lesion was measured twice on one tracer.</p>"
    )
    organs = [_curves_figure(context, "organ", t, "tac", "Organs") for t in context.tracers]
    parts.append('<h3 id="tac-heading">Organ time–activity curves</h3>')
    parts.append(
        f'<div class="chart-grid">{"".join(organs)}</div>'
        if any(organs)
        else "<p>No organ was measured.</p>"
    )
    fits = list(kinetics_fits(context.document.get("kinetics")))
    if fits:
        parts.append('<h3 id="kinetics-heading">CAR T-cell kinetics</h3>')
        parts.append(
            '<div class="chart-grid">'
            + "".join(
                _kinetics_figure(context, name.removeprefix("kinetics."), fit, i)
                for i, (name, fit) in enumerate(fits)
            )
            + "</div>"
        )
    parts.append("</section>")
    return "".join(parts)
