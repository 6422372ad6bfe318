r"""Inter-lesion spread: how much lesion uptake differs between lesions of one scan.

Heterogeneity between lesions (issue 5, item 4) is one of the imaging signals of antigen
escape: lesions of one patient that lose the target while others keep it widen the spread of
a target tracer's uptake. For every timepoint and tracer, over the lesions measured there,
each quantity (SUVmean and SUVmax by default) is summarised by its number of lesions *n*,
mean, sample standard deviation (SD, ``ddof = 1``), coefficient of variation (CoV = SD / mean),
minimum, maximum, range (max − min) and max/min ratio.

Part of the SD is measurement noise. Where the rows carry a standard error of the quantity
(``<quantity>_se``, e.g. ``suv_mean_se`` from count statistics), the mean noise variance
:math:`\bar s^2 = \frac1n\sum s_i^2` is reported as ``noise_sd`` (its square root) and the
part of the SD beyond it as ``sd_beyond_noise`` :math:`= \sqrt{\max(\mathrm{SD}^2 - \bar s^2,
0)}`, since for independent measurement errors :math:`E[\mathrm{SD}^2] = \sigma_{between}^2 +
\bar s^2` (one-way random-effects decomposition; Bland & Altman, "Measurement error", BMJ
1996;313:744, RECALLED). SUVmax has no such standard error (it is a single voxel).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from immunopet.data import read_toml
from immunopet.errors import InputError

__all__ = ["lesion_spread"]

_DATA_FILE = "partial_volume.toml"


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _summary(
    values: Sequence[float], errors: Sequence[float] | None, minimum: int
) -> dict[str, Any]:
    n = len(values)
    record: dict[str, Any] = {
        "n": n,
        "mean": None,
        "sd": None,
        "cov": None,
        "min": None,
        "max": None,
        "range": None,
        "max_min_ratio": None,
    }
    if n == 0:
        return record
    mean = math.fsum(values) / n
    low, high = min(values), max(values)
    record.update(mean=mean, min=low, max=high, range=high - low)
    if low > 0.0:
        record["max_min_ratio"] = high / low
    if n < minimum:
        return record
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    sd = math.sqrt(variance)
    record["sd"] = sd
    if mean > 0.0:
        record["cov"] = sd / mean
    if errors is not None and len(errors) == n:
        noise_variance = math.fsum(e * e for e in errors) / n
        record["noise_sd"] = math.sqrt(noise_variance)
        record["sd_beyond_noise"] = math.sqrt(max(variance - noise_variance, 0.0))
    return record


def lesion_spread(
    measurements: Iterable[Mapping[str, Any]],
    *,
    quantities: Sequence[str] = ("suv_mean", "suv_max"),
) -> list[dict[str, Any]]:
    """Spread of lesion uptake across lesions, per timepoint and tracer (module text).

    Parameters
    ----------
    measurements : iterable of mapping
        Measurement rows as in ``results.json`` ``measurements`` (or
        ``dataclasses.asdict`` of :class:`immunopet.result.Measurement`): each with
        ``voi_type``, ``voi_id``, ``timepoint_id``, ``tracer``, optionally ``day``, and the
        quantities. Rows whose ``voi_type`` is not ``"lesion"`` are ignored, and so are
        sites of lesions not found at that visit (``lesion_found`` false) and missing or
        non-finite values.
    quantities : sequence of str
        Keys summarised (default SUVmean and SUVmax); a key ``<quantity>_se`` in the rows
        gives ``noise_sd`` and ``sd_beyond_noise``.

    Returns
    -------
    list of dict
        One JSON-ready record per (timepoint, tracer) with lesions, ordered by day then
        tracer: ``timepoint_id``, ``day``, ``tracer``, ``n_lesions``, ``lesions`` (their IDs)
        and per quantity a dict with ``n``, ``mean``, ``sd``, ``cov``, ``min``, ``max``,
        ``range``, ``max_min_ratio`` (and ``noise_sd``, ``sd_beyond_noise``). SD and CoV
        are None with fewer than ``[spread] min_lesions`` (2) lesions; ratios and CoV are
        None when the minimum or the mean is not positive.

    Raises
    ------
    InputError
        If a lesion row lacks ``voi_id``, ``timepoint_id`` or ``tracer``.

    Examples
    --------
    >>> rows = [
    ...     {"voi_type": "lesion", "voi_id": "L001", "timepoint_id": "TP01", "day": -7.0,
    ...      "tracer": "fdg", "suv_mean": 6.0, "suv_max": 9.0, "suv_mean_se": 0.3},
    ...     {"voi_type": "lesion", "voi_id": "L002", "timepoint_id": "TP01", "day": -7.0,
    ...      "tracer": "fdg", "suv_mean": 2.0, "suv_max": 3.0, "suv_mean_se": 0.4},
    ...     {"voi_type": "organ", "voi_id": "spleen", "timepoint_id": "TP01", "day": -7.0,
    ...      "tracer": "fdg", "suv_mean": 1.8, "suv_max": 2.5},
    ... ]
    >>> (record,) = lesion_spread(rows)
    >>> record["n_lesions"], record["suv_mean"]["max_min_ratio"], record["suv_mean"]["range"]
    (2, 3.0, 4.0)
    >>> round(record["suv_mean"]["sd"], 4), round(record["suv_mean"]["cov"], 4)
    (2.8284, 0.7071)
    >>> round(record["suv_mean"]["noise_sd"], 4), "noise_sd" in record["suv_max"]
    (0.3536, False)

    """
    minimum = int(read_toml(_DATA_FILE)["spread"]["min_lesions"]["value"])
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    days: dict[tuple[str, str], float | None] = {}
    for row in measurements:
        if row.get("voi_type") != "lesion" or row.get("lesion_found") is False:
            continue
        missing = [k for k in ("voi_id", "timepoint_id", "tracer") if row.get(k) is None]
        if missing:
            raise InputError(
                f"a lesion measurement lacks {', '.join(missing)}", field="measurements"
            )
        key = (str(row["timepoint_id"]), str(row["tracer"]))
        groups.setdefault(key, []).append(row)
        day = _number(row.get("day"))
        if day is not None:
            days[key] = day
    records = []
    for key, rows in groups.items():
        timepoint_id, tracer = key
        record: dict[str, Any] = {
            "timepoint_id": timepoint_id,
            "day": days.get(key),
            "tracer": tracer,
            "n_lesions": len(rows),
            "lesions": sorted(str(row["voi_id"]) for row in rows),
        }
        for quantity in quantities:
            pairs = [
                (value, _number(row.get(f"{quantity}_se")))
                for row in rows
                if (value := _number(row.get(quantity))) is not None
            ]
            values = [value for value, _ in pairs]
            errors = [error for _, error in pairs if error is not None]
            has_errors = any(f"{quantity}_se" in row for row in rows)
            record[quantity] = _summary(
                values, errors if has_errors and len(errors) == len(values) else None, minimum
            )
        records.append(record)
    records.sort(
        key=lambda r: (math.inf if r["day"] is None else r["day"], r["timepoint_id"], r["tracer"])
    )
    return records
