"""PET and SPECT facts from DICOM headers: units, decay correction, administration, timing.

Follows DICOM PS3.3 (PET Series and Isotope modules, C.8.9.1-C.8.9.2) and the
QIBA vendor-neutral SUV pseudo-code; vendor exceptions come from
:mod:`immunopet.io.dicom._vendors`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from immunopet.data import read_toml
from immunopet.errors import InputError, NuclideError, TimingError, UnsupportedInputError
from immunopet.image import AcquisitionTiming, DecayCorrection, PetAcquisition, Quantity, Sex
from immunopet.io.dicom._values import (
    combine_date_time,
    fast_text,
    field_name,
    get_float,
    get_str,
    parse_da,
    parse_dt,
    parse_tm,
)
from immunopet.io.dicom._vendors import (
    decay_reference_from_decay_factor,
    ge_scan_datetime,
    philips_scale_factors,
)
from immunopet.physics import canonical_nuclide_name, known_nuclides, nuclide
from immunopet.units import CM_PER_M, MS_PER_S, S_PER_DAY

__all__ = ["PetFacts", "pet_facts", "scan_start"]

#: A Series Time up to this many seconds after the earliest Acquisition Time still counts as the scan start.
_SERIES_AFTER_ACQUISITION_TOLERANCE_S = 1.0
#: Largest plausible body height as a DICOM Patient's Size (m); larger values were entered in cm.
_MAX_PATIENT_SIZE_M = 3.0
#: Slices of one series acquired further apart than this point to wrong dates, not to a scan.
_MAX_SERIES_SPAN_S = S_PER_DAY / 2


@dataclass(frozen=True)
class PetFacts:
    """What the headers of one PET/NM series say, ready for a Volume and the SUV engine.

    ``value_scale`` holds per-slice factors to multiply the rescaled pixel values
    by (Philips private scale factors), or ``None``.
    """

    quantity: Quantity
    acquisition: PetAcquisition
    timing: AcquisitionTiming | None
    value_scale: npt.NDArray[np.float64] | None = None
    warnings: tuple[str, ...] = field(default=())


def _radiopharmaceutical(ds: Dataset) -> Dataset | None:
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        return None
    item: Dataset = sequence[0]
    return item


def _nuclide_from_header(ds: Dataset, item: Dataset | None, notes: list[str]) -> str | None:
    candidates: list[tuple[str, str]] = []
    if item is not None:
        for code in item.get("RadionuclideCodeSequence") or []:
            for keyword in ("CodeMeaning", "CodeValue"):
                text = get_str(code, keyword)
                if text:
                    candidates.append((f"RadionuclideCodeSequence.{keyword}", text))
        text = get_str(item, "Radionuclide")
        if text:
            candidates.append(("Radionuclide (0018,0030)", text))
    for label, text in candidates:
        try:
            return canonical_nuclide_name(text)
        except NuclideError:
            notes.append(f"{label} {text!r} is not a nuclide name immunopet can read")
    half_life_s = None if item is None else get_float(item, "RadionuclideHalfLife")
    if half_life_s is None:
        return None
    tolerance = float(read_toml("physics.toml")["header_half_life"]["relative_tolerance"])
    matches = [
        name
        for name in known_nuclides()
        if abs(half_life_s / nuclide(name).half_life_s - 1.0) <= tolerance
    ]
    if len(matches) == 1:
        notes.append(
            f"nuclide {matches[0]} identified from RadionuclideHalfLife {half_life_s:g} s "
            "(no radionuclide code in the file)"
        )
        return matches[0]
    if matches:
        notes.append(
            f"RadionuclideHalfLife {half_life_s:g} s fits {', '.join(matches)}: pass --nuclide"
        )
    return None


def _quantity(
    headers: Sequence[Dataset], modality: str, notes: list[str], source: str
) -> tuple[Quantity, npt.NDArray[np.float64] | None, str]:
    first = headers[0]
    units = (get_str(first, "Units", path=source) or "").upper()
    if units == "BQML":
        return Quantity.ACTIVITY_CONCENTRATION, None, units
    if units == "GML":
        suv_type = (get_str(first, "SUVType", path=source) or "").upper()
        if suv_type not in ("", "BW"):
            raise UnsupportedInputError(
                f"Units GML with SUV Type {suv_type}: only body-weight SUV can be turned back into Bq/mL",
                path=source,
                field=field_name("SUVType"),
            )
        if not suv_type:
            notes.append("Units GML without SUV Type (0054,1006): taken as SUVbw (QIBA)")
        return Quantity.SUV_BW, None, units
    philips = [philips_scale_factors(ds) for ds in headers]
    if units == "CNTS" and all(p.activity_concentration_per_value for p in philips):
        notes.append("Units CNTS: Philips activity-concentration scale factor (7053,1009) applied")
        scale = np.array([p.activity_concentration_per_value for p in philips], dtype=np.float64)
        return Quantity.ACTIVITY_CONCENTRATION, scale, units
    if units == "CNTS" and all(p.suv_bw_per_value for p in philips):
        notes.append(
            "Units CNTS: Philips SUV scale factor (7053,1000) applied; values are the scanner's SUVbw"
        )
        scale = np.array([p.suv_bw_per_value for p in philips], dtype=np.float64)
        return Quantity.SUV_BW, scale, units
    if modality == "PT" and not units:
        raise InputError(
            "Units is missing: immunopet cannot tell what the pixel values are",
            path=source,
            field=field_name("Units"),
        )
    notes.append(f"values are counts (Units {units or 'absent'}): SUV needs a calibration to Bq/mL")
    return Quantity.COUNTS, None, units


def _decay_correction(
    first: Dataset,
    modality: str,
    quantity: Quantity,
    notes: list[str],
    source: str,
    override: DecayCorrection | None,
) -> DecayCorrection:
    text = (get_str(first, "DecayCorrection", path=source) or "").upper()
    corrected = {str(v).upper() for v in (first.get("CorrectedImage") or [])}
    if override is not None:
        if text and text != override.value:
            notes.append(
                f"Decay Correction: using the given {override.value} instead of the file's {text}"
            )
        return override
    if not text:
        if modality == "PT" or quantity is not Quantity.COUNTS or "DECY" in corrected:
            raise InputError(
                "Decay Correction is missing: immunopet cannot tell whether the values are decay-corrected",
                path=source,
                field=field_name("DecayCorrection"),
                hint="pass --decay-correction NONE, START or ADMIN",
            )
        notes.append(
            "no Decay Correction (0054,1102) in this NM image of counts: taken as not decay-corrected"
        )
        return DecayCorrection.NONE
    try:
        mode = DecayCorrection(text)
    except ValueError as exc:
        raise InputError(
            f"{text!r} is not one of NONE, START, ADMIN",
            path=source,
            field=field_name("DecayCorrection"),
        ) from exc
    if mode is DecayCorrection.NONE and "DECY" in corrected:
        raise InputError(
            "Decay Correction is NONE but Corrected Image lists DECY: the file contradicts itself",
            path=source,
            field=field_name("CorrectedImage"),
        )
    if mode is not DecayCorrection.NONE and corrected and "DECY" not in corrected:
        notes.append(
            f"Decay Correction is {mode.value} but Corrected Image lacks DECY; {mode.value} trusted"
        )
    if modality == "PT" and corrected and "ATTN" not in corrected:
        notes.append(
            "Corrected Image lacks ATTN: the image is not attenuation-corrected, SUV is not quantitative"
        )
    return mode


def _site_offset(first: Dataset, source: str) -> timezone | None:
    """The site's UTC offset from Timezone Offset From UTC (0008,0201), ``None`` when absent."""
    text = get_str(first, "TimezoneOffsetFromUTC", path=source)
    if text is None:
        return None
    match = re.fullmatch(r"([+-])(\d{2})(\d{2})", text)
    if match is None:
        raise InputError(
            f"{text!r} is not an offset like +0100",
            path=source,
            field=field_name("TimezoneOffsetFromUTC"),
        )
    sign = -1 if match[1] == "-" else 1
    return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))


def _local(
    value: datetime | None, site: timezone | None, label: str, notes: list[str]
) -> datetime | None:
    """A DICOM DT in the site's local time, naive like the scan's DA/TM times.

    A DT with a UTC offset is converted to the site's offset (Timezone Offset From
    UTC); without that attribute its own wall-clock time is taken as local.
    """
    if value is None or value.tzinfo is None:
        return value
    if site is not None:
        local = value.astimezone(site).replace(tzinfo=None)
        if value.utcoffset() != site.utcoffset(None):
            notes.append(
                f"{label} converted from UTC offset {value.strftime('%z')} to the site's local time"
            )
        return local
    notes.append(
        f"{label} carries UTC offset {value.strftime('%z')} and the file has no Timezone Offset From "
        "UTC: its own local time is used"
    )
    return value.replace(tzinfo=None)


def _slice_starts(
    headers: Sequence[Dataset],
    series: datetime | None,
    site: timezone | None,
    notes: list[str],
    source: str,
) -> list[datetime | None]:
    """Acquisition start of each slice; time-only values are placed on the day nearest the series."""
    starts: list[datetime | None] = []
    for ds in headers:
        full = _local(
            parse_dt(ds, "AcquisitionDateTime", path=source), site, "Acquisition DateTime", notes
        )
        if full is None:
            day = parse_da(ds, "AcquisitionDate", path=source)
            clock = parse_tm(ds, "AcquisitionTime", path=source)
            full = combine_date_time(day, clock)
            if full is None and clock is not None and series is not None:
                full = datetime.combine(series.date(), clock)
                lead_s = (series - full).total_seconds()
                if lead_s > S_PER_DAY / 2:
                    full += timedelta(
                        days=1
                    )  # acquired after midnight, series dated the day before
                elif lead_s < -S_PER_DAY / 2:
                    full -= timedelta(
                        days=1
                    )  # acquired before midnight, series dated the day after
        starts.append(full)
    return starts


def scan_start(ds: Dataset, *, path: str | None = None) -> datetime | None:
    """Series date-time of a dataset (for CT timing and time-only injections)."""
    return combine_date_time(
        parse_da(ds, "SeriesDate", path=path), parse_tm(ds, "SeriesTime", path=path)
    )


def _patient(
    first: Dataset, notes: list[str], source: str
) -> tuple[float | None, float | None, Sex | None]:
    weight = get_float(first, "PatientWeight", path=source)
    if weight is not None and weight <= 0.0:
        notes.append(f"PatientWeight is {weight:g}: ignored")
        weight = None
    size_m = get_float(first, "PatientSize", path=source)
    height_cm = None
    if size_m is not None and 0.0 < size_m < _MAX_PATIENT_SIZE_M:
        height_cm = size_m * CM_PER_M
    elif size_m:
        notes.append(
            f"PatientSize {size_m:g} is not a height in metres: ignored (pass --height-cm)"
        )
    sex_text = (get_str(first, "PatientSex", path=source) or "").upper()
    sex: Sex | None = "M" if sex_text == "M" else "F" if sex_text == "F" else None
    return weight, height_cm, sex


def _reference_for_start(
    first: Dataset,
    series: datetime | None,
    earliest: datetime,
    first_start: datetime,
    duration_s: float | None,
    half_life_s: float | None,
    notes: list[str],
    source: str,
) -> datetime:
    from_factor = None
    if half_life_s is not None:
        from_factor = decay_reference_from_decay_factor(first, first_start, duration_s, half_life_s)
    if (
        series is not None
        and (series - earliest).total_seconds() <= _SERIES_AFTER_ACQUISITION_TOLERANCE_S
    ):
        reference = series
    else:
        ge = ge_scan_datetime(first)
        if ge is not None:
            notes.append(
                "Series Date/Time is missing or after the acquisition (post-processed series): GE private scan "
                f"start {ge.isoformat()} used as the decay reference"
            )
            reference = ge
        elif from_factor is not None:
            why = "is missing" if series is None else "is after the acquisition"
            notes.append(
                f"Series Date/Time {why} and no GE private scan time: decay reference "
                f"{from_factor.isoformat(timespec='seconds')} recovered from Decay Factor (0054,1321)"
            )
            return from_factor
        else:
            why = "is missing" if series is None else "is after the acquisition"
            raise TimingError(
                f"Decay Correction is START but the Series Date/Time {why} and neither a "
                "GE private scan time nor a Decay Factor tells the decay reference",
                path=source,
                field=field_name("SeriesTime"),
            )
    if from_factor is not None and abs((from_factor - reference).total_seconds()) > max(
        60.0, 0.01 * (duration_s or 0.0)
    ):
        notes.append(
            f"Decay Factor (0054,1321) implies a decay reference of {from_factor.isoformat(timespec='seconds')}, "
            f"the series says {reference.isoformat(timespec='seconds')}; the series time is used"
        )
    return reference


#: Attributes that must be the same on every slice of a series (checked, not assumed).
_SERIES_CONSTANTS = ("Units", "DecayCorrection", "SeriesDate", "SeriesTime", "PatientWeight")
#: The same for the first Radiopharmaceutical Information item of every slice.
_ADMINISTRATION_CONSTANTS = (
    "RadiopharmaceuticalStartDateTime",
    "RadiopharmaceuticalStartTime",
    "RadionuclideTotalDose",
)


def _check_constant(headers: Sequence[Dataset], source: str) -> None:
    """Refuse a series whose slices disagree on units, decay correction, timing or dose."""
    if len(headers) < 2:
        return
    first = headers[0]
    first_item = _radiopharmaceutical(first)
    expected = {keyword: fast_text(first, keyword) for keyword in _SERIES_CONSTANTS}
    for ds in headers[1:]:
        for keyword, value in expected.items():
            if fast_text(ds, keyword) != value:
                raise InputError(
                    f"slices disagree: {value!r} in {getattr(first, 'filename', '?')} vs "
                    f"{fast_text(ds, keyword)!r} in {getattr(ds, 'filename', '?')}",
                    path=source,
                    field=field_name(keyword),
                    hint="the folder mixes series; pass one series",
                )
    last_item = _radiopharmaceutical(headers[-1])
    for keyword in _ADMINISTRATION_CONSTANTS:
        values = {
            None if i is None else get_str(i, keyword, path=source) for i in (first_item, last_item)
        }
        if len(values) > 1:
            raise InputError(
                f"slices disagree on the administration: {sorted(map(str, values))}",
                path=source,
                field=f"RadiopharmaceuticalInformationSequence.{field_name(keyword)}",
            )


def _spect_duration_s(first: Dataset, source: str) -> float | None:
    """Acquisition time of a SPECT tomogram: Σ frames × frame duration over its rotations."""
    rotations = first.get("RotationInformationSequence") or []
    total_ms = 0.0
    for rotation in rotations:
        frame_ms = get_float(rotation, "ActualFrameDuration", path=source)
        frames = get_float(rotation, "NumberOfFramesInRotation", path=source)
        if frame_ms is None or frames is None:
            return None
        total_ms += frame_ms * frames
    return total_ms / MS_PER_S if rotations else None


def _frame_durations_s(
    headers: Sequence[Dataset], modality: str, source: str
) -> list[float | None]:
    if modality == "NM":
        # ActualFrameDuration of an NM image is per projection, not the acquisition's length.
        return [_spect_duration_s(headers[0], source)] * len(headers)
    durations_ms = [get_float(ds, "ActualFrameDuration", path=source) for ds in headers]
    return [None if d is None else d / MS_PER_S for d in durations_ms]


def _timing(
    headers: Sequence[Dataset],
    modality: str,
    mode: DecayCorrection,
    injection: datetime | None,
    half_life_s: float | None,
    site: timezone | None,
    notes: list[str],
    source: str,
) -> AcquisitionTiming | None:
    first = headers[0]
    series = scan_start(first, path=source)
    starts = _slice_starts(headers, series, site, notes, source)
    known = [s for s in starts if s is not None]
    if not known and series is None:
        return None
    if not known:
        notes.append("no Acquisition Time: the Series Time is taken as the acquisition start")
    earliest = min(known) if known else series
    assert earliest is not None
    if mode is DecayCorrection.NONE and len(headers) > 1 and len(known) < len(starts):
        missing = next(ds for ds, start in zip(headers, starts, strict=True) if start is None)
        raise TimingError(
            "the image is not decay-corrected and this slice has no acquisition time, so its "
            "decay cannot be corrected",
            path=getattr(missing, "filename", None) or source,
            field=field_name("AcquisitionTime"),
        )
    offsets: tuple[float, ...] = ()
    if len(headers) > 1 and len(known) == len(starts):
        offsets = tuple((s - earliest).total_seconds() for s in known)
        if max(offsets) > _MAX_SERIES_SPAN_S:
            raise TimingError(
                f"the slices' acquisition times span {max(offsets) / 3600:.1f} h: their dates are inconsistent",
                path=source,
                field=field_name("AcquisitionDate"),
            )
    durations = _frame_durations_s(headers, modality, source)
    duration = durations[0] if len(set(durations)) == 1 else None
    per_slice: tuple[float, ...] = ()
    if duration is None and len(headers) > 1 and all(d is not None for d in durations):
        per_slice = tuple(d for d in durations if d is not None)
    reference: datetime | None = None
    if mode is DecayCorrection.START:
        first_start = starts[0] or earliest
        reference = _reference_for_start(
            first, series, earliest, first_start, durations[0], half_life_s, notes, source
        )
    elif mode is DecayCorrection.ADMIN:
        reference = injection
    return AcquisitionTiming(
        start=earliest,
        duration_s=duration,
        decay_reference=reference,
        frame_start_offsets_s=offsets,
        frame_durations_s=per_slice,
    )


def pet_facts(
    headers: Sequence[Dataset],
    modality: str,
    source: str,
    *,
    decay_correction: DecayCorrection | None = None,
) -> PetFacts:
    """Read units, decay correction, administration and timing of a sorted PT/NM series.

    Parameters
    ----------
    headers : sequence of pydicom.Dataset
        One per slice, sorted along the slice axis; a multi-frame image gives one.
    modality : {"PT", "NM"}
        DICOM Modality of the series.
    source : str
        File or folder, for messages.
    decay_correction : DecayCorrection, optional
        What the values are decay-corrected to, when the file does not say (or says wrong).

    """
    notes: list[str] = []
    first = headers[0]
    _check_constant(headers, source)
    quantity, scale, units = _quantity(headers, modality, notes, source)
    mode = _decay_correction(first, modality, quantity, notes, source, decay_correction)
    site = _site_offset(first, source)
    sequence = first.get("RadiopharmaceuticalInformationSequence") or []
    if len(sequence) > 1:
        notes.append(f"{len(sequence)} radiopharmaceuticals listed: the first is used")
    item = _radiopharmaceutical(first)
    nuclide_name = _nuclide_from_header(first, item, notes)
    header_half_life = (
        None if item is None else get_float(item, "RadionuclideHalfLife", path=source)
    )
    if header_half_life is not None and header_half_life <= 0.0:
        notes.append(f"RadionuclideHalfLife is {header_half_life:g}: ignored")
        header_half_life = None
    injected = None if item is None else get_float(item, "RadionuclideTotalDose", path=source)
    if injected is not None and injected <= 0.0:
        notes.append(f"RadionuclideTotalDose is {injected:g}: ignored")
        injected = None
    stated = injection = None
    injection_clock = None
    if item is not None:
        stated = parse_dt(item, "RadiopharmaceuticalStartDateTime", path=source)
        injection = _local(stated, site, "Radiopharmaceutical Start DateTime", notes)
        injection_clock = parse_tm(item, "RadiopharmaceuticalStartTime", path=source)
    if injection is not None and injection_clock is not None and stated is not None:
        wall = datetime.combine(stated.date(), injection_clock)
        if abs((stated.replace(tzinfo=None) - wall).total_seconds()) > 1.0:
            notes.append(
                f"Radiopharmaceutical Start DateTime {stated.isoformat()} and Start Time "
                f"{injection_clock.isoformat()} disagree; the DateTime is used"
            )
    weight, height_cm, sex = _patient(first, notes, source)
    study_day = parse_da(first, "StudyDate", path=source)
    series_day = parse_da(first, "SeriesDate", path=source)
    conflict = None
    if study_day is not None and series_day is not None and study_day != series_day:
        conflict = f"StudyDate {study_day.isoformat()} vs SeriesDate {series_day.isoformat()}"
    # The scanner's own half-life interprets its Decay Factor; ICRP-107 only when it is absent.
    half_life = header_half_life
    if half_life is None and nuclide_name is not None and mode is DecayCorrection.START:
        half_life = nuclide(nuclide_name).half_life_s
    timing = _timing(headers, modality, mode, injection, half_life, site, notes, source)
    acquisition = PetAcquisition(
        nuclide=nuclide_name,
        header_half_life_s=header_half_life,
        injected_activity_bq=injected,
        injection_datetime=injection,
        injection_time_of_day=injection_clock if injection is None else None,
        patient_weight_kg=weight,
        patient_height_cm=height_cm,
        patient_sex=sex,
        decay_correction=mode,
        stored_units=units,
        radiopharmaceutical=None
        if item is None
        else get_str(item, "Radiopharmaceutical", path=source),
        manufacturer=get_str(first, "Manufacturer", path=source),
        date_conflict=conflict,
        notes=tuple(dict.fromkeys(notes)),
    )
    return PetFacts(quantity, acquisition, timing, scale, acquisition.notes)
