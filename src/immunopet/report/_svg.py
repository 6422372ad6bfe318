"""Charts as inline SVG strings, drawn in Python: no script, they print as they show.

Every chart is an ``<svg role="img">`` whose first children are ``<title>`` and ``<desc>``
(named by ``aria-labelledby``), in a 640 × 300 view box that scales with the page. Series differ
by colour (each colour has a contrast of at least 4.5:1 on white) *and* by marker shape, so
colour is never the only cue. Error bars are drawn when a point has one; hollow markers mark
points the caller wants distinguished (the report: VOIs carried from another timepoint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from immunopet.report._format import attr, fmt_fixed, text

__all__ = [
    "PALETTE",
    "Bar",
    "Curve",
    "Lane",
    "Mark",
    "Point",
    "Series",
    "bar_chart",
    "legend",
    "line_chart",
    "nice_ticks",
    "timeline_chart",
]

#: Series colours, each ≥ 4.5:1 against white (WCAG 2.1 contrast ratio; tested).
PALETTE: Final = (
    "#0b5394",
    "#b45309",
    "#1b7f3b",
    "#8e24aa",
    "#c62828",
    "#00695c",
    "#5d4037",
    "#ad1457",
)
MARKERS: Final = ("circle", "square", "triangle", "diamond", "triangle-down")
AXIS_COLOUR: Final = "#1a1a1a"
GRID_COLOUR: Final = "#d0d7e2"
WIDTH: Final = 640.0
HEIGHT: Final = 300.0
_MARGIN_LEFT: Final = 62.0
_MARGIN_RIGHT: Final = 16.0
_MARGIN_TOP: Final = 14.0
_MARGIN_BOTTOM: Final = 44.0
_MARKER_SIZE: Final = 4.5
_CAP: Final = 3.0
_SUPERSCRIPT: Final = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)


@dataclass(frozen=True)
class Point:
    """One measurement: ``error`` is the half-width of its bar (y units), ``tip`` its tooltip."""

    x: float
    y: float
    error: float | None = None
    hollow: bool = False
    tip: str = ""


@dataclass(frozen=True)
class Series:
    """Points drawn with one colour and marker, joined by a line; ``anchor`` is the group id."""

    name: str
    points: tuple[Point, ...]
    anchor: str | None = None


@dataclass(frozen=True)
class Curve:
    """A model curve drawn as a line without markers (colour of series ``colour_of``)."""

    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    colour_of: int = 0


@dataclass(frozen=True)
class Bar:
    """One bar of a bar chart (``value`` in y units)."""

    label: str
    value: float
    tip: str = ""
    anchor: str | None = None


@dataclass(frozen=True)
class Mark:
    """A labelled instant on a timeline lane (``level`` picks the colour, e.g. a grade)."""

    x: float
    label: str
    tip: str = ""
    level: int = 0
    width: float | None = None


@dataclass(frozen=True)
class Lane:
    """A row of a timeline."""

    name: str
    marks: tuple[Mark, ...]
    bars: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> tuple[float, ...]:
    """Round tick positions covering ``[low, high]``, steps 1, 2, 2.5 or 5 × 10^k.

    Examples
    --------
    >>> nice_ticks(0.0, 9.7)
    (0.0, 2.0, 4.0, 6.0, 8.0, 10.0)
    >>> nice_ticks(-9.0, 177.0)
    (-50.0, 0.0, 50.0, 100.0, 150.0, 200.0)

    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return (0.0, 1.0)
    if high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)
    start = math.floor(low / step + 1e-9) * step
    ticks = []
    value = start
    while value < high + step * (1.0 - 1e-9):
        ticks.append(round(value, 12))
        value += step
        if len(ticks) > 4 * count:  # pragma: no cover - guards against float drift
            break
    return tuple(ticks)


def _tick_text(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs (step 2.5 → 1, step 25 → 0)."""
    decimals = next(d for d in range(7) if abs(round(step, d) - step) <= 1e-9 * abs(step) or d == 6)
    return fmt_fixed(value, decimals)


def _log_tick_text(exponent: int) -> str:
    if 0 <= exponent <= 3:
        return str(10**exponent)
    return "10" + str(exponent).translate(_SUPERSCRIPT)


def _marker(shape: str, x: float, y: float, colour: str, hollow: bool) -> str:
    fill = "#ffffff" if hollow else colour
    style = f'fill="{fill}" stroke="{colour}" stroke-width="1.5"'
    s = _MARKER_SIZE
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s:.1f}" {style}/>'
    if shape == "square":
        return f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" height="{2 * s:.1f}" {style}/>'
    if shape == "triangle":
        points = (
            f"{x:.1f},{y - s * 1.2:.1f} {x + s:.1f},{y + s * 0.8:.1f} {x - s:.1f},{y + s * 0.8:.1f}"
        )
    elif shape == "triangle-down":
        points = (
            f"{x:.1f},{y + s * 1.2:.1f} {x + s:.1f},{y - s * 0.8:.1f} {x - s:.1f},{y - s * 0.8:.1f}"
        )
    else:  # diamond
        points = f"{x:.1f},{y - s * 1.3:.1f} {x + s:.1f},{y:.1f} {x:.1f},{y + s * 1.3:.1f} {x - s:.1f},{y:.1f}"
    return f'<polygon points="{points}" {style}/>'


def style_of(index: int) -> tuple[str, str]:
    """Colour and marker shape of series ``index``."""
    return PALETTE[index % len(PALETTE)], MARKERS[(index // len(PALETTE) + index) % len(MARKERS)]


def legend(
    names: Sequence[str], *, hollow_note: str | None = None, curve_note: str | None = None
) -> str:
    """An HTML legend (list) matching the colours and markers of :func:`line_chart`."""
    items = []
    for index, name in enumerate(names):
        colour, shape = style_of(index)
        swatch = (
            '<svg class="swatch" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">'
            f'<line x1="0" y1="8" x2="16" y2="8" stroke="{colour}" stroke-width="1.5"/>'
            f"{_marker(shape, 8.0, 8.0, colour, False)}</svg>"
        )
        items.append(f"<li>{swatch}{text(name)}</li>")
    if hollow_note:
        swatch = (
            '<svg class="swatch" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">'
            f"{_marker('circle', 8.0, 8.0, AXIS_COLOUR, True)}</svg>"
        )
        items.append(f'<li class="note">{swatch}{text(hollow_note)}</li>')
    if curve_note:
        swatch = (
            '<svg class="swatch" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">'
            f'<line x1="0" y1="8" x2="16" y2="8" stroke="{AXIS_COLOUR}" stroke-width="1.5" '
            'stroke-dasharray="4 2"/></svg>'
        )
        items.append(f'<li class="note">{swatch}{text(curve_note)}</li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


def _open(chart_id: str, title: str, desc: str, height: float = HEIGHT) -> list[str]:
    return [
        f'<svg class="chart" id="{attr(chart_id)}" role="img" viewBox="0 0 {WIDTH:.0f} {height:.0f}" '
        f'aria-labelledby="{attr(chart_id)}-title {attr(chart_id)}-desc" '
        f'preserveAspectRatio="xMidYMid meet">',
        f'<title id="{attr(chart_id)}-title">{text(title)}</title>',
        f'<desc id="{attr(chart_id)}-desc">{text(desc)}</desc>',
    ]


class _Axis:
    """Linear or log10 map of data values onto a pixel range."""

    def __init__(self, low: float, high: float, start: float, end: float, log: bool) -> None:
        self.log = log
        self.low, self.high = (math.log10(low), math.log10(high)) if log else (low, high)
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        span = self.high - self.low or 1.0
        return self.start + (v - self.low) / span * (self.end - self.start)


def _y_range(values: Sequence[float], log: bool, include_zero: bool) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v) and (v > 0.0 or not log)]
    if not finite:
        return (1.0, 10.0) if log else (0.0, 1.0)
    low, high = min(finite), max(finite)
    if log:
        return 10.0 ** math.floor(math.log10(low)), 10.0 ** math.ceil(math.log10(high) + 1e-12)
    if include_zero:
        low, high = min(low, 0.0), max(high, 0.0)
    return low, high


def _frame(
    parts: list[str],
    x_axis: _Axis,
    y_axis: _Axis,
    x_ticks: Sequence[float],
    y_ticks: Sequence[float],
    x_label: str,
    y_label: str,
    log_y: bool,
) -> None:
    left, right = _MARGIN_LEFT, WIDTH - _MARGIN_RIGHT
    top, bottom = _MARGIN_TOP, HEIGHT - _MARGIN_BOTTOM
    parts.append('<g class="axes" font-size="12" fill="#1a1a1a">')
    y_step = (y_ticks[1] - y_ticks[0]) if len(y_ticks) > 1 else 1.0
    for tick in y_ticks:
        y = y_axis(tick)
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="{GRID_COLOUR}"/>'
        )
        label = _log_tick_text(round(math.log10(tick))) if log_y else _tick_text(tick, y_step)
        parts.append(
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{text(label)}</text>'
        )
    x_step = (x_ticks[1] - x_ticks[0]) if len(x_ticks) > 1 else 1.0
    for tick in x_ticks:
        x = x_axis(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 5:.1f}" stroke="{AXIS_COLOUR}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 18:.1f}" text-anchor="middle">'
            f"{text(_tick_text(tick, x_step))}</text>"
        )
    parts.append(
        f'<path d="M{left:.1f},{top:.1f} V{bottom:.1f} H{right:.1f}" fill="none" stroke="{AXIS_COLOUR}"/>'
    )
    parts.append(
        f'<text x="{(left + right) / 2:.1f}" y="{HEIGHT - 6:.1f}" text-anchor="middle">{text(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(14 {(top + bottom) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{text(y_label)}</text>'
    )
    parts.append("</g>")


def line_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    curves: Sequence[Curve] = (),
    log_y: bool = False,
    x_marks: Sequence[tuple[float, str]] = (),
) -> str:
    """Points with error bars joined by lines, one colour and marker per series.

    Parameters
    ----------
    chart_id : str
        Element id (the title and description get ``-title``/``-desc`` ids).
    title, desc : str
        Accessible name and description.
    x_label, y_label : str
        Axis titles with units.
    series : sequence of Series
        The data.
    curves : sequence of Curve
        Model curves (dashed), e.g. a fitted kinetics model.
    log_y : bool
        Logarithmic y axis (values ≤ 0 are left out).
    x_marks : sequence of (float, str)
        Vertical reference lines with a label (e.g. the infusion, day 0).

    Returns
    -------
    str
        The ``<svg>`` element.

    """
    xs = [p.x for s in series for p in s.points] + [x for c in curves for x in c.x]
    xs += [x for x, _ in x_marks]
    ys = [p.y for s in series for p in s.points]
    ys += [p.y + (p.error or 0.0) for s in series for p in s.points]
    ys += [p.y - (p.error or 0.0) for s in series for p in s.points if not log_y]
    ys += [y for c in curves for y in c.y]
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0))
    low, high = _y_range(ys, log_y, include_zero=True)
    if log_y:
        y_ticks = tuple(10.0**k for k in range(round(math.log10(low)), round(math.log10(high)) + 1))
    else:
        y_ticks = nice_ticks(low, high)
    x_axis = _Axis(x_ticks[0], x_ticks[-1], _MARGIN_LEFT + 8.0, WIDTH - _MARGIN_RIGHT - 8.0, False)
    y_axis = _Axis(y_ticks[0], y_ticks[-1], HEIGHT - _MARGIN_BOTTOM, _MARGIN_TOP, log_y)
    parts = _open(chart_id, title, desc)
    _frame(parts, x_axis, y_axis, x_ticks, y_ticks, x_label, y_label, log_y)
    for x, label in x_marks:
        px = x_axis(x)
        parts.append(
            f'<g class="x-mark"><line x1="{px:.1f}" y1="{_MARGIN_TOP:.1f}" x2="{px:.1f}" '
            f'y2="{HEIGHT - _MARGIN_BOTTOM:.1f}" stroke="{AXIS_COLOUR}" stroke-dasharray="2 3"/>'
            f'<text x="{px + 3:.1f}" y="{_MARGIN_TOP + 10:.1f}" font-size="11" fill="{AXIS_COLOUR}">'
            f"{text(label)}</text></g>"
        )
    for curve in curves:
        colour, _ = style_of(curve.colour_of)
        points = [
            f"{x_axis(x):.1f},{y_axis(y):.1f}"
            for x, y in zip(curve.x, curve.y, strict=True)
            if math.isfinite(y) and (y > 0.0 or not log_y)
        ]
        if len(points) > 1:
            parts.append(
                f'<polyline class="model" points="{" ".join(points)}" fill="none" '
                f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="5 3">'
                f"<title>{text(curve.name)}</title></polyline>"
            )
    for index, item in enumerate(series):
        colour, shape = style_of(index)
        anchor = f' id="{attr(item.anchor)}"' if item.anchor else ""
        parts.append(f'<g class="series"{anchor} data-name="{attr(item.name)}">')
        shown = [p for p in item.points if math.isfinite(p.y) and (p.y > 0.0 or not log_y)]
        if len(shown) > 1:
            line = " ".join(f"{x_axis(p.x):.1f},{y_axis(p.y):.1f}" for p in shown)
            parts.append(
                f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
            )
        for point in shown:
            px, py = x_axis(point.x), y_axis(point.y)
            if point.error:
                high_y = y_axis(point.y + point.error)
                low_value = point.y - point.error
                low_y = y_axis(low_value) if (low_value > 0.0 or not log_y) else y_axis.start
                parts.append(
                    f'<path d="M{px:.1f},{low_y:.1f} V{high_y:.1f} M{px - _CAP:.1f},{low_y:.1f} '
                    f'H{px + _CAP:.1f} M{px - _CAP:.1f},{high_y:.1f} H{px + _CAP:.1f}" '
                    f'stroke="{colour}" stroke-width="1.2" fill="none"/>'
                )
            marker = _marker(shape, px, py, colour, point.hollow)
            if point.tip:
                marker = f"<g>{marker}<title>{text(point.tip)}</title></g>"
            parts.append(marker)
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    y_label: str,
    bars: Sequence[Bar],
    value_text: Sequence[str] | None = None,
) -> str:
    """Vertical bars from zero (a waterfall when sorted), labelled below; increases dark orange.

    Parameters
    ----------
    chart_id, title, desc, y_label : str
        As for :func:`line_chart`.
    bars : sequence of Bar
        In drawing order.
    value_text : sequence of str, optional
        Text written at the end of each bar (e.g. the rounded change).

    Returns
    -------
    str
        The ``<svg>`` element.

    """
    values = [b.value for b in bars if math.isfinite(b.value)]
    low, high = _y_range(values, False, include_zero=True)
    room = 0.12 * (high - low)  # for the value written at the end of each bar
    low, high = (low - room if low < 0.0 else low), (high + room if high > 0.0 else high)
    y_ticks = nice_ticks(low, high)
    y_axis = _Axis(y_ticks[0], y_ticks[-1], HEIGHT - _MARGIN_BOTTOM, _MARGIN_TOP, False)
    left, right = _MARGIN_LEFT, WIDTH - _MARGIN_RIGHT
    parts = _open(chart_id, title, desc)
    parts.append('<g class="axes" font-size="12" fill="#1a1a1a">')
    step = (y_ticks[1] - y_ticks[0]) if len(y_ticks) > 1 else 1.0
    for tick in y_ticks:
        y = y_axis(tick)
        colour = AXIS_COLOUR if tick == 0.0 else GRID_COLOUR
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="{colour}"/>'
        )
        parts.append(
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{text(_tick_text(tick, step))}</text>'
        )
    parts.append(
        f'<text transform="translate(14 {(_MARGIN_TOP + HEIGHT - _MARGIN_BOTTOM) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{text(y_label)}</text></g>'
    )
    slot = (right - left) / max(len(bars), 1)
    width = min(slot * 0.7, 48.0)
    zero = y_axis(0.0)
    for index, bar in enumerate(bars):
        if not math.isfinite(bar.value):
            continue
        centre = left + slot * (index + 0.5)
        top = y_axis(bar.value)
        colour = PALETTE[1] if bar.value > 0.0 else PALETTE[0]
        anchor = f' id="{attr(bar.anchor)}"' if bar.anchor else ""
        parts.append(f'<g class="bar"{anchor}>')
        parts.append(
            f'<rect x="{centre - width / 2:.1f}" y="{min(top, zero):.1f}" width="{width:.1f}" '
            f'height="{abs(zero - top):.1f}" fill="{colour}">'
            f"<title>{text(bar.tip or bar.label)}</title></rect>"
        )
        if value_text is not None:
            above = bar.value >= 0.0
            ty = top - 4.0 if above else top + 13.0
            parts.append(
                f'<text x="{centre:.1f}" y="{ty:.1f}" font-size="11" text-anchor="middle" '
                f'fill="{AXIS_COLOUR}">{text(value_text[index])}</text>'
            )
        parts.append(
            f'<text x="{centre:.1f}" y="{HEIGHT - _MARGIN_BOTTOM + 16:.1f}" font-size="11" '
            f'text-anchor="middle" fill="{AXIS_COLOUR}">{text(bar.label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


#: Colours of grades 0-4 on a timeline (0 light; text on each is readable: dark on light).
_LEVEL_FILL: Final = ("#e3e8ef", "#fde7a9", "#f8b26a", "#e0603a", "#9b1c1c")
_LEVEL_TEXT: Final = ("#1a1a1a", "#1a1a1a", "#1a1a1a", "#1a1a1a", "#ffffff")


def timeline_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    x_label: str,
    lanes: Sequence[Lane],
    x_range: tuple[float, float] | None = None,
) -> str:
    """Lanes of labelled instants (events, scans) or day bars (grades) on one day axis.

    Parameters
    ----------
    chart_id, title, desc, x_label : str
        As for :func:`line_chart`.
    lanes : sequence of Lane
        One row each; a lane with ``bars`` draws each mark as a day-wide box coloured by its
        ``level`` (grade 0–4) with the label inside (when the box is wide enough).
    x_range : (float, float), optional
        Days shown (default: all marks and day 0); marks outside are left out.

    Returns
    -------
    str
        The ``<svg>`` element.

    """
    lane_height = 34.0
    label_width = 150.0
    height = _MARGIN_TOP + lane_height * len(lanes) + _MARGIN_BOTTOM
    if x_range is not None:
        lanes = [
            Lane(
                lane.name,
                tuple(m for m in lane.marks if x_range[0] <= m.x <= x_range[1]),
                lane.bars,
            )
            for lane in lanes
        ]
        xs = list(x_range)
    else:
        xs = [m.x for lane in lanes for m in lane.marks] + [0.0]
    x_ticks = nice_ticks(min(xs), max(xs), count=8)
    x_axis = _Axis(x_ticks[0], x_ticks[-1], label_width + 8.0, WIDTH - _MARGIN_RIGHT - 8.0, False)
    parts = _open(chart_id, title, desc, height)
    bottom = height - _MARGIN_BOTTOM
    parts.append('<g class="axes" font-size="12" fill="#1a1a1a">')
    step = (x_ticks[1] - x_ticks[0]) if len(x_ticks) > 1 else 1.0
    for tick in x_ticks:
        x = x_axis(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_MARGIN_TOP:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{GRID_COLOUR}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 18:.1f}" text-anchor="middle">{text(_tick_text(tick, step))}</text>'
        )
    zero = x_axis(0.0)
    parts.append(
        f'<line x1="{zero:.1f}" y1="{_MARGIN_TOP:.1f}" x2="{zero:.1f}" y2="{bottom:.1f}" '
        f'stroke="{AXIS_COLOUR}" stroke-dasharray="2 3"/>'
    )
    parts.append(
        f'<text x="{(label_width + WIDTH) / 2:.1f}" y="{height - 6:.1f}" text-anchor="middle">{text(x_label)}</text>'
    )
    parts.append(
        f'<path d="M{label_width:.1f},{bottom:.1f} H{WIDTH - _MARGIN_RIGHT:.1f}" stroke="{AXIS_COLOUR}"/></g>'
    )
    for row, lane in enumerate(lanes):
        centre = _MARGIN_TOP + lane_height * (row + 0.5)
        parts.append(f'<g class="lane" data-lane="{attr(lane.name)}">')
        parts.append(
            f'<text x="{label_width - 6:.1f}" y="{centre + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="{AXIS_COLOUR}">{text(lane.name)}</text>'
        )
        for index, mark in enumerate(lane.marks):
            x = x_axis(mark.x)
            tip = f"<title>{text(mark.tip or mark.label)}</title>"
            if lane.bars:
                level = max(0, min(mark.level, len(_LEVEL_FILL) - 1))
                width = max(x_axis(mark.x + (mark.width or 1.0)) - x, 3.0)
                label = (
                    f'<text x="{x:.1f}" y="{centre + 4:.1f}" font-size="11" text-anchor="middle" '
                    f'fill="{_LEVEL_TEXT[level]}">{text(mark.label)}</text>'
                    if width >= 12.0
                    else ""
                )
                parts.append(
                    f'<g><rect x="{x - width / 2:.1f}" y="{centre - 11:.1f}" width="{width:.1f}" '
                    f'height="22" fill="{_LEVEL_FILL[level]}" stroke="#5f6b7a" stroke-width="0.5"/>'
                    f"{label}{tip}</g>"
                )
            else:
                colour, shape = style_of(mark.level)
                dy = -9.0 if index % 2 == 0 else 13.0
                parts.append(
                    f"<g>{_marker(shape, x, centre, colour, False)}"
                    f'<text x="{x:.1f}" y="{centre + dy + 2:.1f}" font-size="10" text-anchor="middle" '
                    f'fill="{AXIS_COLOUR}">{text(mark.label)}</text>{tip}</g>'
                )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
