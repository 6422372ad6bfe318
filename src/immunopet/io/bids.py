"""PET-BIDS: a 3-D NIfTI image in Bq/mL plus its JSON sidecar, written and read back.

The sidecar follows the PET section of the BIDS specification (1.9: "Positron
Emission Tomography"; Knudsen et al., J Cereb Blood Flow Metab 2020;40:1569-1583,
doi:10.1177/0271678X20905433). Times are seconds relative to ``TimeZero``.

Fields written
--------------
Required by PET-BIDS, from the volume and :class:`~immunopet.image.PetAcquisition`:

* ``Units`` ``"Bq/mL"``; ``TracerRadionuclide`` (``"Zr89"``: the canonical name
  without the hyphen, the spelling of the BIDS examples); ``InjectedRadioactivity``
  with ``InjectedRadioactivityUnits`` ``"MBq"``; ``TracerName`` and
  ``Manufacturer`` as the file stated them.
* ``TimeZero`` the injection time of day (``"hh:mm:ss"``, whole seconds);
  ``InjectionStart`` the injection relative to it (the sub-second part, normally
  0); ``ScanStart`` and ``FrameTimesStart`` (one frame) the acquisition start;
  ``FrameDuration`` (``"n/a"`` when unknown).
* ``ImageDecayCorrected`` and ``ImageDecayCorrectionTime`` (the decay reference
  relative to ``TimeZero``; ``"n/a"`` when the image is not decay-corrected, so
  that no tool can mistake it for a correction time).
* ``ManufacturersModelName``, ``InjectedMass``, ``InjectedMassUnits``,
  ``SpecificRadioactivity``, ``SpecificRadioactivityUnits``,
  ``ModeOfAdministration``, ``AcquisitionMode``, ``ReconMethodName``,
  ``ReconFilterType``, ``ReconFilterSize`` and ``AttenuationCorrection`` are
  ``"n/a"`` (immunopet does not know them); ``ReconMethodParameterLabels`` is
  ``["none"]``.

Extensions (BIDS allows additional keys in a sidecar):

* ``BodyWeight`` (``BodyWeightUnits`` ``"kg"``), ``BodyHeight``
  (``BodyHeightUnits`` ``"cm"``) and ``Sex`` (``"M"``, ``"F"``), ``"n/a"`` when
  unknown. PET-BIDS recommends body weight in ``participants.tsv`` or
  ``sessions.tsv`` (column ``body_weight``); immunopet keeps them in the sidecar
  so that the image and its sidecar alone give the SUV.
* ``ImmunopetInjectionDateTime`` and ``ImmunopetScanStartDateTime``: ISO 8601
  date-times, because ``TimeZero`` is only a time of day.
* ``ImmunopetSliceFrameStartOffsets``: for an image that is not decay-corrected,
  the frame start of each slice (bed position), s after the scan start
  (:attr:`~immunopet.image.AcquisitionTiming.frame_start_offsets_s`); written only
  when set. ``ImmunopetSliceFrameDurations`` likewise, when bed positions differ in
  duration (:attr:`~immunopet.image.AcquisitionTiming.frame_durations_s`). ``FrameTimesStart`` is per volume, not per slice, so it cannot hold them.

Reading
-------
Only the fields the SUV needs are required: ``Units``, ``TracerRadionuclide``,
``InjectedRadioactivity`` and its units (also under the spelling
``InjectedRadioActivityUnits`` of the specification's example), ``TimeZero``,
``InjectionStart``, ``ScanStart``, ``FrameTimesStart``, ``ImageDecayCorrected``
and, when that is true, ``ImageDecayCorrectionTime``. The date of ``TimeZero``
comes from the ``Immunopet*DateTime`` fields, which must agree with the relative
times. Without them ``TimeZero`` is placed on the arbitrary date
:data:`UNDATED_TIME_ZERO_DATE`: the SUV depends only on the intervals between
injection, scan and decay reference, which the relative times give exactly.
The decay correction is ``START`` when ``ImageDecayCorrectionTime`` is the scan
start, ``ADMIN`` when it is the injection, ``START`` with a note for another
instant (the SUV uses the stated instant either way), and ``NONE`` when
``ImageDecayCorrected`` is false.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

from immunopet.errors import InputError, NuclideError, TimingError, UnsupportedInputError
from immunopet.image import (
    AcquisitionTiming,
    DecayCorrection,
    PetAcquisition,
    Quantity,
    Sex,
    Volume,
    decay_reference,
)
from immunopet.io.nifti import (
    _atomic_path,
    _check_output_path,
    _nifti_image,
    _nifti_suffix,
    read_nifti,
)
from immunopet.physics import canonical_nuclide_name
from immunopet.units import BQ_PER_MBQ, S_PER_DAY

__all__ = ["UNDATED_TIME_ZERO_DATE", "read_pet_bids", "sidecar_path", "write_pet_bids"]

#: Date given to ``TimeZero`` when the sidecar has no ``Immunopet*DateTime`` fields.
UNDATED_TIME_ZERO_DATE: Final = date(2000, 1, 1)

_NOT_AVAILABLE: Final = "n/a"
_ACTIVITY_CONCENTRATION_UNITS: Final = "Bq/mL"
_INJECTED_ACTIVITY_UNITS: Final = "MBq"
_BQ_PER_KBQ: Final = 1.0e3
_BQ_PER_GBQ: Final = 1.0e9
#: 1 Ci = 3.7e10 Bq exactly (definition of the curie).
_BQ_PER_MCI: Final = 3.7e7
#: Bq per unit of InjectedRadioactivityUnits (exact, case-sensitive spellings: mBq is not MBq).
_BQ_PER_ACTIVITY_UNIT: Final[dict[str, float]] = {
    "Bq": 1.0,
    "kBq": _BQ_PER_KBQ,
    "MBq": BQ_PER_MBQ,
    "GBq": _BQ_PER_GBQ,
    "mCi": _BQ_PER_MCI,
}
#: Two relative times closer than this (s) are the same instant.
_SAME_INSTANT_S: Final = 1.0e-3
_SEX_SPELLINGS: Final[dict[str, Sex]] = {"m": "M", "male": "M", "f": "F", "female": "F"}
_HINT_FIX_SIDECAR: Final = "add it to the JSON sidecar (PET-BIDS specification, PET section)"


def sidecar_path(nifti_path: str | os.PathLike[str]) -> Path:
    """Return the JSON sidecar beside a NIfTI file: ``x.nii.gz`` -> ``x.json``.

    Examples
    --------
    >>> sidecar_path("sub-01/pet/sub-01_trc-89Zr_pet.nii.gz").name
    'sub-01_trc-89Zr_pet.json'

    """
    nifti = Path(nifti_path)
    stem = nifti.name[: -len(_nifti_suffix(nifti))]
    return nifti.with_name(f"{stem}.json")


# -- writing ---------------------------------------------------------------------------------


def _positive_or_none(value: float | None, name: str, source: str | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0.0):
        raise InputError(
            f"{name} must be a positive number, got {value!r}", path=source, field=name
        )
    return value


def _or_not_available(value: Any) -> Any:
    return _NOT_AVAILABLE if value is None else value


def _sidecar(volume: Volume, acquisition: PetAcquisition) -> dict[str, Any]:
    """Return the PET-BIDS sidecar of ``volume`` (see the module docstring)."""
    source = volume.source
    if volume.quantity is not Quantity.ACTIVITY_CONCENTRATION:
        raise UnsupportedInputError(
            f"PET-BIDS holds activity concentration (Bq/mL), got {volume.quantity.value}",
            path=source,
            field="quantity",
            hint="write the activity volume that immunopet.quant.standardize returns",
        )
    timing = volume.timing
    if timing is None:
        raise TimingError("the image has no acquisition timing", path=source, field="timing")
    if acquisition.nuclide is None:
        raise InputError(
            "the radionuclide is unknown and PET-BIDS requires TracerRadionuclide",
            path=source,
            field="nuclide",
            hint="set PetAcquisition.nuclide, e.g. 'Zr-89'",
        )
    nuclide = canonical_nuclide_name(acquisition.nuclide)
    activity_bq = _positive_or_none(
        acquisition.injected_activity_bq, "injected_activity_bq", source
    )
    if activity_bq is None:
        raise InputError(
            "the injected activity is unknown and PET-BIDS requires InjectedRadioactivity",
            path=source,
            field="injected_activity_bq",
            hint="set PetAcquisition.injected_activity_bq",
        )
    injection = acquisition.injection_datetime
    if injection is None:
        raise TimingError(
            "the injection date and time are unknown and PET-BIDS requires TimeZero",
            path=source,
            field="injection_datetime",
            hint="set PetAcquisition.injection_datetime (resolve_suv_inputs places a "
            "time-of-day-only injection on a date)",
        )
    weight_kg = _positive_or_none(acquisition.patient_weight_kg, "patient_weight_kg", source)
    height_cm = _positive_or_none(acquisition.patient_height_cm, "patient_height_cm", source)
    per_slice = {
        "ImmunopetSliceFrameStartOffsets": [float(t) for t in timing.frame_start_offsets_s],
        "ImmunopetSliceFrameDurations": [float(t) for t in timing.frame_durations_s],
    }
    for key, values in per_slice.items():
        if values and len(values) != volume.shape[0]:
            raise TimingError(
                f"{len(values)} per-slice values for {volume.shape[0]} slices",
                path=source,
                field=key,
            )
    if timing.duration_s is not None and not math.isfinite(timing.duration_s):
        raise TimingError("the frame duration is not finite", path=source, field="duration_s")
    reference = decay_reference(
        timing, acquisition.decay_correction, injection, source=volume.source
    )
    time_zero = injection.replace(microsecond=0)

    def since_time_zero(instant: datetime, name: str) -> float:
        if (instant.tzinfo is None) != (time_zero.tzinfo is None):
            raise TimingError(
                f"{name} and the injection time do not agree on time zones: one has a UTC "
                "offset and the other not",
                path=source,
                field=name,
                hint="give all date-times with a time zone, or none",
            )
        if instant.tzinfo is None:
            return (instant - time_zero).total_seconds()
        # Elapsed time, also across a daylight-saving change within one zone (Python's
        # difference of two date-times sharing a tzinfo is wall-clock time).
        return (instant.astimezone(UTC) - time_zero.astimezone(UTC)).total_seconds()

    scan_start_s = since_time_zero(timing.start, "timing.start")
    sidecar: dict[str, Any] = {
        "Manufacturer": _or_not_available(acquisition.manufacturer),
        "ManufacturersModelName": _NOT_AVAILABLE,
        "Units": _ACTIVITY_CONCENTRATION_UNITS,
        "TracerName": _or_not_available(acquisition.radiopharmaceutical),
        "TracerRadionuclide": nuclide.replace("-", ""),
        "InjectedRadioactivity": activity_bq / BQ_PER_MBQ,
        "InjectedRadioactivityUnits": _INJECTED_ACTIVITY_UNITS,
        "InjectedMass": _NOT_AVAILABLE,
        "InjectedMassUnits": _NOT_AVAILABLE,
        "SpecificRadioactivity": _NOT_AVAILABLE,
        "SpecificRadioactivityUnits": _NOT_AVAILABLE,
        "ModeOfAdministration": _NOT_AVAILABLE,
        "TimeZero": time_zero.strftime("%H:%M:%S"),
        "InjectionStart": since_time_zero(injection, "injection_datetime"),
        "ScanStart": scan_start_s,
        "FrameTimesStart": [scan_start_s],
        "FrameDuration": _NOT_AVAILABLE if timing.duration_s is None else [timing.duration_s],
        "AcquisitionMode": _NOT_AVAILABLE,
        "ImageDecayCorrected": reference is not None,
        "ImageDecayCorrectionTime": (
            _NOT_AVAILABLE
            if reference is None
            else since_time_zero(reference, "timing.decay_reference")
        ),
        "ReconMethodName": _NOT_AVAILABLE,
        "ReconMethodParameterLabels": ["none"],
        "ReconFilterType": _NOT_AVAILABLE,
        "ReconFilterSize": _NOT_AVAILABLE,
        "AttenuationCorrection": _NOT_AVAILABLE,
        "BodyWeight": _or_not_available(weight_kg),
        "BodyWeightUnits": "kg",
        "BodyHeight": _or_not_available(height_cm),
        "BodyHeightUnits": "cm",
        "Sex": _or_not_available(acquisition.patient_sex),
        "ImmunopetInjectionDateTime": injection.isoformat(),
        "ImmunopetScanStartDateTime": timing.start.isoformat(),
    }
    sidecar.update({key: values for key, values in per_slice.items() if values})
    return sidecar


def write_pet_bids(
    volume: Volume, acquisition: PetAcquisition, nifti_path: str | os.PathLike[str]
) -> Path:
    """Write a PET image as PET-BIDS: the NIfTI file and its JSON sidecar beside it.

    Both files are written to temporary names in the target folder and renamed
    only when both are complete, so a failed write leaves neither.

    Parameters
    ----------
    volume : Volume
        Activity concentration (Bq/mL) of shape (n_slices, n_rows, n_columns),
        with timing. Not modified.
    acquisition : PetAcquisition
        Nuclide, injected activity (Bq) and injection date-time are required;
        weight (kg), height (cm) and sex are written when known. Not modified.
    nifti_path : str or os.PathLike
        Target image, ``<name>.nii.gz`` or ``<name>.nii`` (BIDS names it
        ``sub-<label>[_ses-<label>]_pet.nii.gz``; not enforced). The sidecar is
        ``<name>.json``. Existing files are replaced.

    Returns
    -------
    pathlib.Path
        The sidecar written.

    Raises
    ------
    InputError
        A required fact is missing, the target is a folder or its folder is missing.
    TimingError
        The decay correction contradicts the volume's timing.
    UnsupportedInputError
        The volume is not activity concentration.

    """
    nifti = Path(nifti_path)
    json_path = sidecar_path(nifti)
    _check_output_path(nifti)
    _check_output_path(json_path)
    text = json.dumps(_sidecar(volume, acquisition), indent=2, allow_nan=False) + "\n"
    image = _nifti_image(volume)
    with _atomic_path(nifti) as temporary_nifti, _atomic_path(json_path) as temporary_json:
        image.to_filename(temporary_nifti)
        temporary_json.write_text(text, encoding="utf-8")
    return json_path


# -- reading ---------------------------------------------------------------------------------


class _Sidecar:
    """Typed access to the fields of a sidecar; every error names the file and the field."""

    def __init__(self, fields: dict[str, Any], path: Path) -> None:
        self.fields = fields
        self.path = path

    def _error(self, key: str, message: str, hint: str | None = None) -> InputError:
        return InputError(message, path=self.path, field=key, hint=hint)

    def has(self, key: str) -> bool:
        return self.fields.get(key) not in (None, _NOT_AVAILABLE)

    def require(self, key: str) -> Any:
        if key not in self.fields or self.fields[key] is None:
            raise self._error(key, f"the sidecar has no {key}", _HINT_FIX_SIDECAR)
        return self.fields[key]

    def number(self, key: str) -> float:
        value = self.require(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self._error(key, f"{key} must be a number, got {value!r}", _HINT_FIX_SIDECAR)
        return float(value)

    def optional_number(self, key: str) -> float | None:
        return self.number(key) if self.has(key) else None

    def text(self, key: str) -> str:
        value = self.require(key)
        if not isinstance(value, str):
            raise self._error(key, f"{key} must be a string, got {value!r}")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def boolean(self, key: str) -> bool:
        value = self.require(key)
        if not isinstance(value, bool):
            raise self._error(key, f"{key} must be true or false, got {value!r}")
        return value

    def numbers(self, key: str) -> list[float]:
        value = self.require(key)
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self._error(key, f"{key} is empty", _HINT_FIX_SIDECAR)
        numbers = []
        for item in items:
            if (
                isinstance(item, bool)
                or not isinstance(item, int | float)
                or not math.isfinite(item)
            ):
                raise self._error(key, f"{key} must hold numbers, got {value!r}")
            numbers.append(float(item))
        return numbers

    def optional_datetime(self, key: str) -> datetime | None:
        value = self.optional_text(key)
        if value is None:
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise self._error(key, f"{key} is not an ISO 8601 date-time: {value!r}") from exc

    def unit_scale(self, key: str, scales: dict[str, float]) -> float:
        unit = self.text(key)
        if unit not in scales:
            raise UnsupportedInputError(
                f"unit {unit!r} is not supported; expected one of {', '.join(scales)}",
                path=self.path,
                field=key,
            )
        return scales[unit]


def _load_sidecar(path: Path) -> _Sidecar:
    if not path.is_file():
        raise InputError(
            "the PET-BIDS sidecar is missing",
            path=path,
            hint="a PET-BIDS image <name>.nii[.gz] needs <name>.json beside it",
        )
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"the sidecar is not valid JSON ({exc})", path=path) from exc
    if not isinstance(fields, dict):
        raise InputError("the sidecar must be a JSON object", path=path)
    return _Sidecar(fields, path)


def _time_zero_instant(
    sidecar: _Sidecar, time_zero: time, relative_s: dict[str, float]
) -> tuple[datetime, list[str]]:
    """Place ``TimeZero`` on a date: from the ISO date-time extensions, else the arbitrary date.

    ``relative_s`` maps each extension field to the same instant in seconds after
    ``TimeZero`` (``ImmunopetInjectionDateTime`` -> ``InjectionStart``, ...).
    """
    stated = {key: sidecar.optional_datetime(key) for key in relative_s}
    anchors = {
        key: instant - timedelta(seconds=relative_s[key])
        for key, instant in stated.items()
        if instant is not None
    }
    if not anchors:
        instant = datetime.combine(UNDATED_TIME_ZERO_DATE, time_zero)
        return instant, [
            f"the sidecar gives TimeZero only as a time of day; times were placed on the arbitrary "
            f"date {UNDATED_TIME_ZERO_DATE.isoformat()} (the SUV depends only on time intervals)"
        ]
    key, anchor = next(iter(anchors.items()))
    hint = "correct the sidecar, or delete the Immunopet*DateTime fields to use TimeZero alone"
    for other, other_anchor in anchors.items():
        try:
            gap_s = abs((other_anchor - anchor).total_seconds())
        except TypeError as exc:
            raise TimingError(
                f"{key} and {other} do not agree on time zones", path=sidecar.path, field=other
            ) from exc
        if gap_s > _SAME_INSTANT_S:
            raise TimingError(
                f"{other} disagrees with {key} by {gap_s:.3f} s given the relative times",
                path=sidecar.path,
                field=other,
                hint=hint,
            )
    stated_zero = datetime.combine(anchor.date(), time_zero, tzinfo=anchor.tzinfo)
    gap_s = abs((stated_zero - anchor).total_seconds()) % S_PER_DAY
    if min(gap_s, S_PER_DAY - gap_s) > _SAME_INSTANT_S:
        raise TimingError(
            f"TimeZero {time_zero.isoformat()} disagrees with {key} ({stated[key]}) given the "
            "relative times",
            path=sidecar.path,
            field="TimeZero",
            hint=hint,
        )
    return anchor, []


def _sex(sidecar: _Sidecar, notes: list[str]) -> Sex | None:
    value = sidecar.optional_text("Sex")
    if value is None:
        return None
    sex = _SEX_SPELLINGS.get(value.strip().lower())
    if sex is None:
        notes.append(f"Sex {value!r} is neither M nor F: SUVlbm needs the sex to be given")
    return sex


def read_pet_bids(nifti_path: str | os.PathLike[str]) -> tuple[Volume, PetAcquisition]:
    """Read a 3-D PET-BIDS image and its JSON sidecar.

    Parameters
    ----------
    nifti_path : str or os.PathLike
        ``<name>.nii.gz`` or ``<name>.nii``; the sidecar ``<name>.json`` must be
        beside it.

    Returns
    -------
    volume : Volume
        Activity concentration, Bq/mL, of shape (n_slices, n_rows, n_columns), with
        timing: start = ``TimeZero`` + ``FrameTimesStart[0]``, duration =
        ``FrameDuration[0]`` (s), decay reference = ``TimeZero`` +
        ``ImageDecayCorrectionTime`` when ``ImageDecayCorrected``.
    acquisition : PetAcquisition
        Nuclide (canonical), injected activity (Bq), injection date-time, weight
        (kg), height (cm), sex and decay correction, as the sidecar states them.

    Raises
    ------
    InputError
        Missing or malformed sidecar, a required field missing or malformed (the
        error names the file and the field), or an unreadable image.
    UnsupportedInputError
        ``Units`` other than Bq/mL, unknown activity, weight or height units, or
        a dynamic (4-D) image.
    TimingError
        The date-time extensions disagree with ``TimeZero`` and the relative times.
    NuclideError
        ``TracerRadionuclide`` is not a known nuclide.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from datetime import datetime
    >>> from pathlib import Path
    >>> from immunopet.image import AcquisitionTiming, DecayCorrection, PetAcquisition
    >>> injection, scan = datetime(2026, 3, 2, 9, 0), datetime(2026, 3, 6, 9, 30)
    >>> acquisition = PetAcquisition(nuclide="Zr-89", injected_activity_bq=37e6,
    ...     injection_datetime=injection, patient_weight_kg=70.0,
    ...     decay_correction=DecayCorrection.START)
    >>> timing = AcquisitionTiming(scan, 600.0, decay_reference=scan)
    >>> volume = Volume(np.ones((2, 3, 4), np.float32), np.eye(4),
    ...                 Quantity.ACTIVITY_CONCENTRATION, timing=timing)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = write_pet_bids(volume, acquisition, Path(folder) / "sub-01_pet.nii.gz")
    ...     back, facts = read_pet_bids(Path(folder) / "sub-01_pet.nii.gz")
    >>> facts.nuclide, facts.decay_correction.value, back.timing.start == scan
    ('Zr-89', 'START', True)

    """
    nifti = Path(nifti_path)
    sidecar = _load_sidecar(sidecar_path(nifti))
    path = sidecar.path
    notes: list[str] = []

    units = sidecar.text("Units")
    if units.strip().lower() != _ACTIVITY_CONCENTRATION_UNITS.lower():
        raise UnsupportedInputError(
            f"Units is {units!r}; immunopet reads PET-BIDS images in Bq/mL only",
            path=path,
            field="Units",
            hint="convert the image to Bq/mL and set Units to 'Bq/mL'",
        )
    radionuclide = sidecar.text("TracerRadionuclide")
    try:
        nuclide = canonical_nuclide_name(radionuclide)
    except NuclideError as exc:
        raise NuclideError(
            f"TracerRadionuclide {radionuclide!r}: {exc.message}",
            path=path,
            field="TracerRadionuclide",
            hint=exc.hint,
        ) from exc
    activity_key = "InjectedRadioactivity"
    activity_value = sidecar.number(activity_key)
    units_key = next(
        (k for k in ("InjectedRadioactivityUnits", "InjectedRadioActivityUnits") if sidecar.has(k)),
        "InjectedRadioactivityUnits",
    )
    activity_bq = activity_value * sidecar.unit_scale(units_key, _BQ_PER_ACTIVITY_UNIT)
    if activity_bq <= 0.0:
        raise InputError(f"{activity_key} must be positive", path=path, field=activity_key)

    time_zero_text = sidecar.text("TimeZero")
    try:
        time_zero = time.fromisoformat(time_zero_text)
    except ValueError as exc:
        raise InputError(
            f"TimeZero must be hh:mm:ss, got {time_zero_text!r}", path=path, field="TimeZero"
        ) from exc
    injection_s = sidecar.number("InjectionStart")
    scan_start_s = sidecar.number("ScanStart")
    frame_starts_s = sidecar.numbers("FrameTimesStart")
    if len(frame_starts_s) != 1:
        raise UnsupportedInputError(
            f"{len(frame_starts_s)} frames: only single-frame (3-D) PET-BIDS images are read",
            path=path,
            field="FrameTimesStart",
        )
    duration_s = sidecar.numbers("FrameDuration")[0] if sidecar.has("FrameDuration") else None
    corrected = sidecar.boolean("ImageDecayCorrected")
    correction_s = sidecar.number("ImageDecayCorrectionTime") if corrected else None

    zero, placed = _time_zero_instant(
        sidecar,
        time_zero,
        {"ImmunopetInjectionDateTime": injection_s, "ImmunopetScanStartDateTime": scan_start_s},
    )
    notes.extend(placed)

    def at(seconds: float) -> datetime:
        return zero + timedelta(seconds=seconds)

    decay_reference = None if correction_s is None else at(correction_s)
    if correction_s is None:
        mode = DecayCorrection.NONE
    elif abs(correction_s - scan_start_s) <= _SAME_INSTANT_S:
        mode = DecayCorrection.START
    elif abs(correction_s - injection_s) <= _SAME_INSTANT_S:
        mode = DecayCorrection.ADMIN
    else:
        mode = DecayCorrection.START
        notes.append(
            f"the image is decay-corrected to {correction_s:g} s after TimeZero, neither the "
            "injection nor the scan start; that instant is used as the decay reference"
        )

    weight_kg = sidecar.optional_number("BodyWeight")
    if weight_kg is not None:
        weight_kg *= sidecar.unit_scale("BodyWeightUnits", {"kg": 1.0})
    height_cm = sidecar.optional_number("BodyHeight")
    if height_cm is not None:
        height_cm *= sidecar.unit_scale("BodyHeightUnits", {"cm": 1.0})

    volume = read_nifti(nifti, quantity=Quantity.ACTIVITY_CONCENTRATION)
    per_slice: dict[str, tuple[float, ...]] = {}
    for key in ("ImmunopetSliceFrameStartOffsets", "ImmunopetSliceFrameDurations"):
        per_slice[key] = tuple(sidecar.numbers(key)) if sidecar.has(key) else ()
        if per_slice[key] and len(per_slice[key]) != volume.shape[0]:
            raise InputError(
                f"{len(per_slice[key])} per-slice values for an image of {volume.shape[0]} slices",
                path=path,
                field=key,
            )
    timing = AcquisitionTiming(
        start=at(frame_starts_s[0]),
        duration_s=duration_s,
        decay_reference=decay_reference,
        frame_start_offsets_s=per_slice["ImmunopetSliceFrameStartOffsets"],
        frame_durations_s=per_slice["ImmunopetSliceFrameDurations"],
    )
    acquisition = PetAcquisition(
        nuclide=nuclide,
        injected_activity_bq=activity_bq,
        injection_datetime=at(injection_s),
        patient_weight_kg=weight_kg,
        patient_height_cm=height_cm,
        patient_sex=_sex(sidecar, notes),
        decay_correction=mode,
        stored_units=units,
        radiopharmaceutical=sidecar.optional_text("TracerName"),
        manufacturer=sidecar.optional_text("Manufacturer"),
        notes=tuple(notes),
    )
    metadata = {**volume.metadata, "sidecar": str(path)}
    return volume.with_array(volume.array, timing=timing, metadata=metadata), acquisition
