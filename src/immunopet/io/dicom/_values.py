"""Reading typed values out of DICOM attributes, with errors that name the file and the field."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from pydicom.dataset import Dataset
from pydicom.valuerep import DA, DT, TM

from immunopet.errors import InputError

__all__ = [
    "combine_date_time",
    "field_name",
    "get_float",
    "get_floats",
    "get_str",
    "parse_da",
    "parse_dt",
    "parse_tm",
]


def field_name(keyword: str, ds: Dataset | None = None) -> str:
    """``"Keyword (gggg,eeee)"`` for messages."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        return keyword
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _where(ds: Dataset, path: str | None) -> str | None:
    """The file a value came from: the caller's path, else the dataset's own file name.

    Sequence items have no file name of their own, so readers pass ``path``.
    """
    if path is not None:
        return path
    filename = getattr(ds, "filename", None)
    return filename if isinstance(filename, str) else None


def _raw(ds: Dataset, keyword: str, path: str | None = None) -> Any:
    try:
        return ds.get(keyword)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise InputError(
            f"unreadable value ({exc})", path=_where(ds, path), field=field_name(keyword)
        ) from exc


def get_str(ds: Dataset, keyword: str, *, path: str | None = None) -> str | None:
    """Stripped string value, or ``None`` when absent or empty."""
    value = _raw(ds, keyword, path)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def get_float(ds: Dataset, keyword: str, *, path: str | None = None) -> float | None:
    """A finite number from a DS/IS/FD attribute, ``None`` when absent or empty."""
    value = _raw(ds, keyword, path)
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or (
        hasattr(value, "__len__") and not isinstance(value, str)
    ):
        values = list(value)
        if not values:
            return None
        value = values[0]
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{value!r} is not a number", path=_where(ds, path), field=field_name(keyword)
        ) from exc
    if not math.isfinite(number):
        raise InputError(
            f"{value!r} is not finite", path=_where(ds, path), field=field_name(keyword)
        )
    return number


def get_floats(
    ds: Dataset, keyword: str, count: int, *, path: str | None = None
) -> list[float] | None:
    """A multi-valued numeric attribute of exactly ``count`` finite values, or ``None`` when absent."""
    value = _raw(ds, keyword, path)
    if value is None or value == "":
        return None
    values = (
        list(value)
        if not isinstance(value, str | bytes) and hasattr(value, "__iter__")
        else [value]
    )
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{value!r} is not numeric", path=_where(ds, path), field=field_name(keyword)
        ) from exc
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        raise InputError(
            f"expected {count} finite numbers, got {value!r}",
            path=_where(ds, path),
            field=field_name(keyword),
        )
    return numbers


def parse_da(ds: Dataset, keyword: str, *, path: str | None = None) -> date | None:
    """A DA attribute as a date (``None`` when absent)."""
    text = get_str(ds, keyword, path=path)
    if text is None:
        return None
    try:
        value = DA(text)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{text!r} is not a DICOM date", path=_where(ds, path), field=field_name(keyword)
        ) from exc
    return date(value.year, value.month, value.day)


def parse_tm(ds: Dataset, keyword: str, *, path: str | None = None) -> time | None:
    """A TM attribute as a time of day (``None`` when absent)."""
    text = get_str(ds, keyword, path=path)
    if text is None:
        return None
    try:
        value = TM(text)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{text!r} is not a DICOM time", path=_where(ds, path), field=field_name(keyword)
        ) from exc
    return time(value.hour, value.minute, value.second, value.microsecond)


def parse_dt(ds: Dataset, keyword: str, *, path: str | None = None) -> datetime | None:
    """A DT attribute as a datetime, aware when the value has a UTC offset."""
    text = get_str(ds, keyword, path=path)
    if text is None:
        return None
    try:
        value = DT(text)
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"{text!r} is not a DICOM date-time", path=_where(ds, path), field=field_name(keyword)
        ) from exc
    if len(text.split("+")[0].split("-")[0]) < 12:
        raise InputError(
            f"{text!r} holds no time of day (at least YYYYMMDDHHMM is needed)",
            path=_where(ds, path),
            field=field_name(keyword),
        )
    tz = None if value.tzinfo is None else timezone(value.utcoffset() or timedelta(0))
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=tz,
    )


def combine_date_time(day: date | None, clock: time | None) -> datetime | None:
    """``datetime.combine`` that gives ``None`` when either part is missing."""
    if day is None or clock is None:
        return None
    return datetime.combine(day, clock)
