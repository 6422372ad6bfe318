"""Every vendor quirk immunopet knows, in one module, each with its source and a test.

=================  ==========================================================  ==================================
vendor             quirk                                                       source
=================  ==========================================================  ==================================
Philips            Units CNTS with private activity-concentration scale        QIBA "Standardized Uptake Value
                   factor (7053,1009) and SUV scale factor (7053,1000),        (SUV)" vendor-neutral pseudo-code;
                   private creator "Philips PET Private Group"                 Philips DICOM conformance statements
GE                 Series Date/Time rewritten by post-processing (later than   QIBA SUV pseudo-code; GE PET DICOM
                   the acquisition); the scan start kept in private            conformance statement
                   (0009,100D) of creator "GEMS_PETD_01"
Siemens (and any)  Series Time after the earliest Acquisition Time with no    DICOM PS3.3 C.8.9.4 (Frame Reference
                   GE private tag: the decay reference is recovered from       Time, Decay Factor); Fritsak et al.,
                   Decay Factor (0054,1321) and the frame timing               arXiv:2410.13348 (Z-Rad)
=================  ==========================================================  ==================================

tests: ``tests/io/test_dicom_vendors.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydicom.dataset import Dataset

from immunopet.io.dicom._values import get_float

__all__ = [
    "PhilipsScaleFactors",
    "decay_reference_from_decay_factor",
    "ge_scan_datetime",
    "philips_scale_factors",
]

_PHILIPS_CREATOR = "Philips PET Private Group"
_PHILIPS_GROUP = 0x7053
_PHILIPS_SUV_ELEMENT = 0x00
_PHILIPS_ACTIVITY_ELEMENT = 0x09
_GE_CREATOR = "GEMS_PETD_01"
_GE_GROUP = 0x0009
_GE_SCAN_DATETIME_ELEMENT = 0x0D
#: A decay reference derived from Decay Factor further than this from the frame start is implausible.
_MAX_DECAY_FACTOR_OFFSET_S = 86400.0


@dataclass(frozen=True)
class PhilipsScaleFactors:
    """Philips private scale factors of one slice (``None`` when absent).

    ``activity_concentration_per_value``: Bq/mL per rescaled pixel value (7053,1009).
    ``suv_bw_per_value``: SUVbw (g/mL) per rescaled pixel value (7053,1000).
    """

    activity_concentration_per_value: float | None
    suv_bw_per_value: float | None


def _private_value(ds: Dataset, group: int, creator: str, element: int) -> str | None:
    try:
        block = ds.private_block(group, creator)
    except KeyError:
        return None
    if block.get_tag(element) not in ds:
        return None
    value = ds[block.get_tag(element)].value
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    text = str(value).strip().strip("\x00").strip()
    return text or None


def _private_float(ds: Dataset, group: int, creator: str, element: int) -> float | None:
    text = _private_value(ds, group, creator, element)
    if text is None:
        return None
    try:
        number = float(text.split("\\")[0])
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0.0 else None


def philips_scale_factors(ds: Dataset) -> PhilipsScaleFactors:
    """Philips private activity-concentration and SUV scale factors of a slice.

    QIBA: for Units CNTS, Bq/mL = rescaled value × (7053,1009); SUVbw =
    rescaled value × (7053,1000).
    """
    return PhilipsScaleFactors(
        activity_concentration_per_value=_private_float(
            ds, _PHILIPS_GROUP, _PHILIPS_CREATOR, _PHILIPS_ACTIVITY_ELEMENT
        ),
        suv_bw_per_value=_private_float(ds, _PHILIPS_GROUP, _PHILIPS_CREATOR, _PHILIPS_SUV_ELEMENT),
    )


def ge_scan_datetime(ds: Dataset) -> datetime | None:
    """GE's private scan start (0009,xx0D, creator GEMS_PETD_01), ``YYYYMMDDHHMMSS``."""
    text = _private_value(ds, _GE_GROUP, _GE_CREATOR, _GE_SCAN_DATETIME_ELEMENT)
    if text is None:
        return None
    digits = text.split(".")[0]
    try:
        return datetime.strptime(digits[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None


def decay_reference_from_decay_factor(
    ds: Dataset, acquisition_start: datetime, frame_duration_s: float | None, half_life_s: float
) -> datetime | None:
    """Recover the decay reference instant from Decay Factor (0054,1321).

    A START-corrected value is the frame-mean activity × Decay Factor, so
    DecayFactor = 2^((t_start − t_ref)/T½) / F(Δ) with F the frame-average
    factor (1 − e^(−λΔ))/(λΔ). Hence t_ref = t_start − T½·log2(DecayFactor·F).

    Returns ``None`` when the slice has no usable Decay Factor.
    """
    from immunopet.physics import frame_average_decay_factor

    factor = get_float(ds, "DecayFactor")
    if factor is None or factor <= 0.0 or factor == 1.0:
        # 1 exactly is what scanners write when they did not record a factor (e.g. Philips).
        return None
    average = (
        1.0
        if frame_duration_s is None
        else frame_average_decay_factor(half_life_s, frame_duration_s)
    )
    offset_s = half_life_s * math.log2(factor * average)
    if not math.isfinite(offset_s) or abs(offset_s) > _MAX_DECAY_FACTOR_OFFSET_S:
        return None  # not a plausible decay reference: ignore the factor
    return acquisition_start - timedelta(seconds=offset_s)
