"""How the report writes numbers and text: every number from results.json as ``<data>``.

The numbers contract of the report (``docs/report.md``): a number taken from ``results.json``
is written ``<data value="{JSON text of the value}">{rounded display}</data>``, so a reader (or
a test) finds the exact value beside the rounded one. Values derived here (a relative change,
a unit conversion shown in another unit) carry ``data-derived``. ``null`` is written as
``value="null"`` and shown as an en dash.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any, Final

__all__ = [
    "attr",
    "data",
    "fmt_day",
    "fmt_fixed",
    "fmt_percent",
    "fmt_sig",
    "fmt_signed_percent",
    "json_value",
    "slug",
    "text",
]

MINUS: Final = "\u2212"
DASH: Final = "\u2013"


def text(value: object) -> str:
    """HTML-escape any value for element content."""
    return escape(str(value), quote=False)


def attr(value: object) -> str:
    """HTML-escape any value for a double-quoted attribute."""
    return escape(str(value), quote=True)


def slug(value: object) -> str:
    """A fragment-identifier-safe form of a name (letters, digits, ``-`` and ``_``)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(value))


def json_value(value: Any) -> str:
    """The JSON text of a scalar, exactly as ``results.json`` holds it (floats as ``repr``).

    Examples
    --------
    >>> json_value(5.14275861338759), json_value(None), json_value(True), json_value(3)
    ('5.14275861338759', 'null', 'true', '3')

    """
    return json.dumps(value, allow_nan=False)


def _minus(number_text: str) -> str:
    return number_text.replace("-", MINUS)


def fmt_fixed(value: float, decimals: int) -> str:
    """``value`` with ``decimals`` decimals and a typographic minus.

    Examples
    --------
    >>> fmt_fixed(-6.958333, 1)
    '−7.0'

    """
    if not math.isfinite(value):
        return DASH
    shown = f"{value:.{decimals}f}"
    if float(shown) == 0.0:
        shown = shown.lstrip("-")
    return _minus(shown)


def fmt_sig(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits (no exponent between 1e-3 and 1e6).

    Examples
    --------
    >>> fmt_sig(0.20320945596069764), fmt_sig(101447.2), fmt_sig(1.68e-7)
    ('0.203', '101000', '1.68e−7')

    """
    if not math.isfinite(value):
        return DASH
    if value == 0.0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if -3 <= magnitude < 6:
        decimals = digits - 1 - magnitude
        if decimals >= 0:
            return fmt_fixed(value, decimals)
        return fmt_fixed(round(value, decimals), 0)
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return _minus(f"{mantissa}e{int(exponent)}")


def fmt_percent(fraction: float, decimals: int = 1) -> str:
    """A fraction as a percentage: ``0.1`` → ``10.0 %``."""
    return f"{fmt_fixed(100.0 * fraction, decimals)}\u00a0%"


def fmt_signed_percent(fraction: float, decimals: int = 1) -> str:
    """A relative change as a signed percentage: ``-0.62`` → ``−62.0 %``, ``0.3`` → ``+30.0 %``."""
    shown = fmt_percent(fraction, decimals)
    return shown if shown.startswith((MINUS, "0.", DASH)) else f"+{shown}"


def fmt_day(day: float) -> str:
    """Days since infusion, one decimal: ``-6.958`` → ``−7.0``."""
    return fmt_fixed(day, 1)


def data(
    value: Any,
    display: str | None = None,
    *,
    key: str | None = None,
    field: str | None = None,
    derived: bool = False,
    unit: str | None = None,
) -> str:
    """A ``<data>`` element: exact JSON value in ``value``, the rounded display as content.

    Parameters
    ----------
    value : float, int, bool or None
        The number as read from ``results.json`` (or derived, see ``derived``).
    display : str, optional
        What the reader sees (default: three significant digits).
    key : str, optional
        ``data-key``: the evidence key of an event.
    field : str, optional
        ``data-field``: the results.json field the number comes from (e.g. ``suv_mean``).
    derived : bool
        The number is computed from results.json values (``data-derived``).
    unit : str, optional
        Unit appended to the display, outside the element's number.

    Examples
    --------
    >>> data(5.14275861338759, "5.14", key="baseline")
    '<data value="5.14275861338759" data-key="baseline">5.14</data>'
    >>> data(None)
    '<data value="null">–</data>'

    """
    if display is None:
        if value is None:
            display = DASH
        elif isinstance(value, bool):
            display = "yes" if value else "no"
        elif isinstance(value, int):
            display = str(value).replace("-", MINUS)
        else:
            display = fmt_sig(float(value))
    elif value is None:
        display = DASH
    parts = [f'<data value="{attr(json_value(value))}"']
    if key is not None:
        parts.append(f' data-key="{attr(key)}"')
    if field is not None:
        parts.append(f' data-field="{attr(field)}"')
    if derived:
        parts.append(" data-derived")
    shown = text(display)
    if unit and value is not None:
        shown = f"{shown}\u00a0{text(unit)}"
    return "".join(parts) + f">{shown}</data>"
