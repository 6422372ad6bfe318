"""The one SUV engine: SUVbw, SUVlbm (James, Janmahasatian), SUVbsa, %ID/mL and %ID/g.

Nothing else in immunopet turns activity concentration into SUV or %ID.

The engine works in two steps:

1. :func:`resolve_suv_inputs` combines what the file states
   (:class:`~immunopet.image.PetAcquisition`) with what the user passes; a fact
   that is in neither is asked for by name, never assumed.
2. :func:`standardize` brings the image to activity concentration decay-corrected
   to one reference instant (decaying only images that are *not* decay-corrected,
   so nothing is corrected twice) and computes the scale factors

   SUVbw = C · W / A_ref,   SUVlbm = C · LBM / A_ref,   SUVbsa = C · BSA / A_ref,
   %ID/mL = 100 · C / A_ref,   %ID/g = %ID/mL / ρ

   where C is in Bq/mL, W and LBM in g, BSA in cm², A_ref is the net
   injected activity decayed from the injection to the reference instant, and ρ
   the tissue density (g/mL). Formulas: Kinahan PE & Fletcher JW, Semin
   Ultrasound CT MR 2010;31:496-505; QIBA FDG-PET/CT profile; Boellaard R,
   J Nucl Med 2009;50:11S-20S.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from immunopet.data import read_toml
from immunopet.errors import InputError, TimingError
from immunopet.image import (
    AcquisitionTiming,
    DecayCorrection,
    PetAcquisition,
    Quantity,
    Sex,
    Volume,
    decay_reference,
)
from immunopet.physics import (
    decay_factor,
    decay_factor_between,
    frame_average_decay_factor,
    nuclide,
    seconds_between,
)
from immunopet.quant._body_size import bsa_dubois_m2, lbm_james_kg, lbm_janmahasatian_kg
from immunopet.units import CM2_PER_M2, G_PER_KG, S_PER_HOUR

__all__ = ["SuvFactors", "SuvInputs", "resolve_suv_inputs", "standardize"]

_PERCENT = 100.0


@dataclass(frozen=True)
class SuvInputs:
    """Every fact an SUV needs, explicit.

    Parameters
    ----------
    nuclide : str
        Canonical nuclide name.
    injected_activity_bq : float
        Activity in the syringe at ``injection_datetime`` (before subtracting
        the residual), Bq.
    injection_datetime : datetime
        Administration instant.
    weight_kg : float
        Body weight, kg.
    height_cm : float or None
        Height, cm; needed for SUVlbm and SUVbsa.
    sex : {"M", "F"} or None
        Needed for SUVlbm.
    residual_activity_bq : float
        Activity left in the syringe and lines, Bq, measured at ``residual_datetime``.
    residual_datetime : datetime or None
        When the residual was measured; ``None`` means at injection.
    tissue_density_g_per_ml : float
        Converts %ID/mL to %ID/g (1.0 g/mL is the preclinical convention).

    """

    nuclide: str
    injected_activity_bq: float
    injection_datetime: datetime
    weight_kg: float
    height_cm: float | None = None
    sex: Sex | None = None
    residual_activity_bq: float = 0.0
    residual_datetime: datetime | None = None
    tissue_density_g_per_ml: float = 1.0

    @property
    def half_life_s(self) -> float:
        """ICRP-107 half-life of :attr:`nuclide`, s."""
        return nuclide(self.nuclide).half_life_s

    def net_injected_activity_bq(self) -> float:
        """Injected activity minus the residual decayed back to the injection, Bq."""
        residual = self.residual_activity_bq
        if residual and self.residual_datetime is not None:
            residual /= decay_factor_between(
                self.half_life_s, self.injection_datetime, self.residual_datetime
            )
        net = self.injected_activity_bq - residual
        if net <= 0.0:
            raise InputError(
                f"residual activity ({residual:.6g} Bq at injection) is not less than the "
                f"injected activity ({self.injected_activity_bq:.6g} Bq)",
                field="residual_activity_bq",
            )
        return net


@dataclass(frozen=True)
class SuvFactors:
    """Scale factors from activity concentration (Bq/mL, decay-corrected to ``reference_datetime``).

    Multiply an image in Bq/mL by ``suv_bw_factor`` (g/mL per Bq/mL) to get
    SUVbw, and so on. Factors that need a missing fact (height, sex) are ``None``.
    """

    inputs: SuvInputs
    half_life_s: float
    reference_datetime: datetime
    uptake_time_s: float
    net_injected_activity_bq: float
    decayed_dose_bq: float
    suv_bw_factor: float
    suv_lbm_james_factor: float | None
    suv_lbm_janmahasatian_factor: float | None
    suv_bsa_factor: float | None
    percent_id_per_ml_factor: float
    percent_id_per_g_factor: float
    lbm_james_kg: float | None
    lbm_janmahasatian_kg: float | None
    bsa_m2: float | None
    warnings: tuple[str, ...] = field(default=())

    def factor(self, quantity: Quantity) -> float:
        """Scale factor from Bq/mL to ``quantity``; raises if it needs a missing fact."""
        factors: dict[Quantity, float | None] = {
            Quantity.ACTIVITY_CONCENTRATION: 1.0,
            Quantity.SUV_BW: self.suv_bw_factor,
            Quantity.SUV_LBM: self.suv_lbm_janmahasatian_factor,
            Quantity.SUV_BSA: self.suv_bsa_factor,
            Quantity.PERCENT_ID_PER_ML: self.percent_id_per_ml_factor,
            Quantity.PERCENT_ID_PER_G: self.percent_id_per_g_factor,
        }
        if quantity not in factors:
            raise InputError(f"{quantity.value} is not an uptake quantity", field="quantity")
        value = factors[quantity]
        if value is None:
            raise InputError(
                f"{quantity.value} needs the patient's height and sex",
                field="height_cm/sex",
                hint="pass --height-cm and --sex",
            )
        return value

    def apply(self, activity: Volume, quantity: Quantity = Quantity.SUV_BW) -> Volume:
        """Return ``activity`` (Bq/mL at the reference instant) scaled to ``quantity``.

        SUVlbm uses Janmahasatian's lean body mass (Tahari et al. 2014).
        """
        _require_reference(activity, self.reference_datetime)
        scaled = (activity.array * self.factor(quantity)).astype(np.float32, copy=False)
        return activity.with_array(scaled, quantity)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (datetimes in ISO 8601)."""
        return {
            "nuclide": self.inputs.nuclide,
            "half_life_s": self.half_life_s,
            "injected_activity_bq": self.inputs.injected_activity_bq,
            "residual_activity_bq": self.inputs.residual_activity_bq,
            "net_injected_activity_bq": self.net_injected_activity_bq,
            "injection_datetime": self.inputs.injection_datetime.isoformat(),
            "reference_datetime": self.reference_datetime.isoformat(),
            "uptake_time_s": self.uptake_time_s,
            "decayed_dose_bq": self.decayed_dose_bq,
            "weight_kg": self.inputs.weight_kg,
            "height_cm": self.inputs.height_cm,
            "sex": self.inputs.sex,
            "lbm_james_kg": self.lbm_james_kg,
            "lbm_janmahasatian_kg": self.lbm_janmahasatian_kg,
            "bsa_m2": self.bsa_m2,
            "suv_bw_factor": self.suv_bw_factor,
            "suv_lbm_james_factor": self.suv_lbm_james_factor,
            "suv_lbm_janmahasatian_factor": self.suv_lbm_janmahasatian_factor,
            "suv_bsa_factor": self.suv_bsa_factor,
            "percent_id_per_ml_factor": self.percent_id_per_ml_factor,
            "percent_id_per_g_factor": self.percent_id_per_g_factor,
            "tissue_density_g_per_ml": self.inputs.tissue_density_g_per_ml,
        }


def _require_reference(volume: Volume, reference: datetime) -> None:
    timing = volume.timing
    if timing is None or timing.decay_reference != reference:
        raise TimingError(
            "the image is not decay-corrected to the reference of these SUV factors "
            f"({reference.isoformat()})",
            path=volume.source,
            hint="use the activity volume returned by standardize()",
        )


def _positive(value: float | None, name: str, source: str | None, hint: str) -> float:
    if value is None:
        raise InputError(f"{name} is missing", path=source, field=name, hint=hint)
    if not math.isfinite(value) or value <= 0.0:
        raise InputError(
            f"{name} must be a positive number, got {value!r}", path=source, field=name, hint=hint
        )
    return float(value)


def _injection_from_time_of_day(
    acquisition: PetAcquisition, scan_start: datetime, half_life_s: float, source: str | None
) -> tuple[datetime, list[str]]:
    """Place a time-of-day-only injection on a date, or refuse when that could be wrong."""
    time_of_day = acquisition.injection_time_of_day
    assert time_of_day is not None
    hint = "pass --injection-datetime YYYY-MM-DDTHH:MM:SS"
    field_name = "RadiopharmaceuticalStartTime (0018,1072)"
    limit_s = float(read_toml("physics.toml")["time_of_day_injection"]["max_half_life_s"])
    if half_life_s > limit_s:
        raise TimingError(
            f"the file stores only the time of day of injection ({time_of_day.isoformat()}) and "
            f"{acquisition.nuclide} (half-life {half_life_s / S_PER_HOUR:.3g} h) may be imaged on a "
            "later day, so the injection date cannot be inferred",
            path=source,
            field=field_name,
            hint=hint,
        )
    if acquisition.date_conflict:
        raise TimingError(
            f"the file stores only the time of day of injection ({time_of_day.isoformat()}) and "
            f"its dates disagree ({acquisition.date_conflict})",
            path=source,
            field=field_name,
            hint=hint,
        )
    candidate = datetime.combine(scan_start.date(), time_of_day, tzinfo=scan_start.tzinfo)
    notes = [
        f"injection date taken from the scan date {scan_start.date().isoformat()} (the file "
        f"stores only the time of day; nuclide half-life {half_life_s / S_PER_HOUR:.3g} h)"
    ]
    if candidate > scan_start:
        candidate -= timedelta(days=1)
        notes.append(
            "injection time of day is after the scan start: injection taken on the previous day"
        )
    return candidate, notes


def resolve_suv_inputs(
    acquisition: PetAcquisition,
    scan_start: datetime,
    *,
    source: str | None = None,
    nuclide_name: str | None = None,
    injected_activity_bq: float | None = None,
    injection_datetime: datetime | None = None,
    weight_kg: float | None = None,
    height_cm: float | None = None,
    sex: Sex | None = None,
    residual_activity_bq: float | None = None,
    residual_datetime: datetime | None = None,
    tissue_density_g_per_ml: float | None = None,
) -> tuple[SuvInputs, list[str]]:
    """Combine the file's facts with user overrides into :class:`SuvInputs`.

    A user value always wins over the file's; where they differ a warning says
    so. A fact that is in neither raises :class:`~immunopet.errors.InputError`
    naming the option that supplies it.

    Parameters
    ----------
    acquisition : PetAcquisition
        What the file states.
    scan_start : datetime
        Start of the acquisition (used only to place a time-of-day-only injection).
    source : str, optional
        File or folder, for messages.
    nuclide_name, injected_activity_bq, injection_datetime, weight_kg, height_cm, sex, \
residual_activity_bq, residual_datetime, tissue_density_g_per_ml : optional
        Overrides.

    Returns
    -------
    inputs : SuvInputs
    warnings : list of str

    """
    warnings: list[str] = []

    def pick(user: Any, stated: Any, label: str) -> Any:
        if user is not None:
            if stated is not None and user != stated:
                warnings.append(
                    f"{label}: using the given {user!r} instead of the file's {stated!r}"
                )
            return user
        return stated

    name = pick(nuclide_name, acquisition.nuclide, "nuclide")
    if name is None:
        raise InputError(
            "the radionuclide is not stated (no RadionuclideCodeSequence, PET-BIDS TracerRadionuclide "
            "or recognisable half-life); immunopet never assumes one",
            path=source,
            field="nuclide",
            hint="pass --nuclide, e.g. --nuclide Zr-89",
        )
    nuc = nuclide(name)
    if acquisition.header_half_life_s is not None:
        tolerance = float(read_toml("physics.toml")["header_half_life"]["relative_tolerance"])
        if abs(acquisition.header_half_life_s / nuc.half_life_s - 1.0) > tolerance:
            warnings.append(
                f"the file's half-life {acquisition.header_half_life_s:.6g} s differs from the "
                f"ICRP-107 half-life of {nuc.name} ({nuc.half_life_s:.6g} s); ICRP-107 is used"
            )

    injection = pick(injection_datetime, acquisition.injection_datetime, "injection_datetime")
    if injection is None:
        if acquisition.injection_time_of_day is None:
            raise TimingError(
                "the injection date and time are missing",
                path=source,
                field="RadiopharmaceuticalStartDateTime (0018,1078)",
                hint="pass --injection-datetime YYYY-MM-DDTHH:MM:SS",
            )
        injection, notes = _injection_from_time_of_day(
            acquisition, scan_start, nuc.half_life_s, source
        )
        warnings.extend(notes)

    activity = _positive(
        pick(injected_activity_bq, acquisition.injected_activity_bq, "injected_activity_bq"),
        "injected_activity_bq",
        source,
        "pass --injected-activity-bq (RadionuclideTotalDose (0018,1074) is missing)",
    )
    weight = _positive(
        pick(weight_kg, acquisition.patient_weight_kg, "weight_kg"),
        "weight_kg",
        source,
        "pass --weight-kg (PatientWeight (0010,1030) is missing or zero)",
    )
    height = pick(height_cm, acquisition.patient_height_cm, "height_cm")
    if height is not None:
        height = _positive(height, "height_cm", source, "pass --height-cm")
    patient_sex = pick(sex, acquisition.patient_sex, "sex")
    residual = 0.0 if residual_activity_bq is None else float(residual_activity_bq)
    if residual < 0.0 or not math.isfinite(residual):
        raise InputError(
            f"residual activity must be >= 0 Bq, got {residual!r}", field="residual_activity_bq"
        )
    if residual and residual_datetime is None:
        warnings.append("residual activity taken as measured at injection (no --residual-datetime)")
    if residual_datetime is not None and not residual:
        warnings.append("--residual-datetime given without a residual activity: ignored")
        residual_datetime = None
    if residual_datetime is not None and seconds_between(injection, residual_datetime) < 0.0:
        raise TimingError(
            f"the residual was measured ({residual_datetime.isoformat()}) before the injection "
            f"({injection.isoformat()})",
            path=source,
            field="residual_datetime",
        )
    limits = read_toml("physics.toml")["plausibility"]
    if activity < float(limits["min_injected_activity_bq"]):
        warnings.append(
            f"injected activity {activity:.6g} Bq is implausibly small: check its unit (Bq, not MBq)"
        )
    if weight > float(limits["max_weight_kg"]):
        warnings.append(f"weight {weight:g} kg is implausibly large: check its unit (kg, not lb)")
    density = 1.0 if tissue_density_g_per_ml is None else tissue_density_g_per_ml
    density = _positive(density, "tissue_density_g_per_ml", source, "pass a positive density")
    inputs = SuvInputs(
        nuclide=nuc.name,
        injected_activity_bq=activity,
        injection_datetime=injection,
        weight_kg=weight,
        height_cm=height,
        sex=patient_sex,
        residual_activity_bq=residual,
        residual_datetime=residual_datetime,
        tissue_density_g_per_ml=density,
    )
    return inputs, warnings


def _factors(
    inputs: SuvInputs, reference: datetime, warnings: list[str], source: str | None
) -> SuvFactors:
    half_life_s = inputs.half_life_s
    try:
        uptake_s = seconds_between(inputs.injection_datetime, reference)
        if uptake_s < 0.0:
            raise TimingError(
                f"the injection ({inputs.injection_datetime.isoformat()}) is after the image's "
                f"reference time ({reference.isoformat()})",
                field="injection_datetime",
                hint="check --injection-datetime and the scan's dates",
            )
        net = inputs.net_injected_activity_bq()
        decayed = net * decay_factor(half_life_s, uptake_s)
    except InputError as exc:
        if exc.path is not None or source is None:
            raise
        raise type(exc)(exc.message, path=source, field=exc.field, hint=exc.hint) from exc
    weight_g = inputs.weight_kg * G_PER_KG
    lbm_j = lbm_m = bsa = None
    if inputs.height_cm is not None and inputs.sex is not None:
        lbm_j = lbm_james_kg(inputs.weight_kg, inputs.height_cm, inputs.sex)
        lbm_m = lbm_janmahasatian_kg(inputs.weight_kg, inputs.height_cm, inputs.sex)
    if inputs.height_cm is not None:
        bsa = bsa_dubois_m2(inputs.weight_kg, inputs.height_cm)
    if inputs.height_cm is None:
        warnings.append("height unknown: SUVlbm and SUVbsa not computed (pass --height-cm)")
    if inputs.sex is None:
        warnings.append("sex unknown: SUVlbm not computed (pass --sex M or --sex F)")
    percent_per_ml = _PERCENT / decayed
    return SuvFactors(
        inputs=inputs,
        half_life_s=half_life_s,
        reference_datetime=reference,
        uptake_time_s=uptake_s,
        net_injected_activity_bq=net,
        decayed_dose_bq=decayed,
        suv_bw_factor=weight_g / decayed,
        suv_lbm_james_factor=None if lbm_j is None else lbm_j * G_PER_KG / decayed,
        suv_lbm_janmahasatian_factor=None if lbm_m is None else lbm_m * G_PER_KG / decayed,
        suv_bsa_factor=None if bsa is None else bsa * CM2_PER_M2 / decayed,
        percent_id_per_ml_factor=percent_per_ml,
        percent_id_per_g_factor=percent_per_ml / inputs.tissue_density_g_per_ml,
        lbm_james_kg=lbm_j,
        lbm_janmahasatian_kg=lbm_m,
        bsa_m2=bsa,
        warnings=tuple(warnings),
    )


def _reference_and_activity(
    volume: Volume, acquisition: PetAcquisition, inputs: SuvInputs, warnings: list[str]
) -> tuple[datetime, Volume]:
    """Return the decay reference and the image as Bq/mL decay-corrected to it."""
    timing = volume.timing
    if timing is None:
        raise TimingError(
            "the image has no acquisition timing", path=volume.source, field="AcquisitionDateTime"
        )
    mode = acquisition.decay_correction
    reference = decay_reference(timing, mode, inputs.injection_datetime, source=volume.source)
    if reference is None:
        return timing.start, _decay_correct_frames(volume, inputs.half_life_s, warnings)
    if mode is DecayCorrection.ADMIN and reference != inputs.injection_datetime:
        warnings.append(
            "the image is decay-corrected to the administration time the file states "
            f"({reference.isoformat()}), not to the injection time used "
            f"({inputs.injection_datetime.isoformat()}); the dose is decayed between the two"
        )
    # Already decay-corrected: the pixel values are used as they are (never corrected twice).
    activity = volume
    if timing.decay_reference != reference:
        activity = volume.with_timing(_with_reference(timing, reference))
    return reference, activity


def _with_reference(timing: AcquisitionTiming, reference: datetime) -> AcquisitionTiming:
    return replace(timing, decay_reference=reference)


def _decay_correct_frames(volume: Volume, half_life_s: float, warnings: list[str]) -> Volume:
    """Decay-correct a non-corrected image, slice by slice, to its acquisition start."""
    timing = volume.timing
    assert timing is not None
    n_slices = volume.shape[0]
    offsets = np.asarray(timing.frame_start_offsets_s or (0.0,) * n_slices, dtype=np.float64)
    if offsets.shape != (n_slices,):
        raise TimingError(
            f"{offsets.size} frame start times for {n_slices} slices", path=volume.source
        )
    durations = timing.frame_durations_s or (
        () if timing.duration_s is None else (timing.duration_s,) * n_slices
    )
    if not durations:
        warnings.append(
            "frame duration unknown: the non-decay-corrected image is decay-corrected from the "
            "start of each frame, without averaging over the frame (ActualFrameDuration missing)"
        )
        durations = (0.0,) * n_slices
    if len(durations) != n_slices:
        raise TimingError(
            f"{len(durations)} frame durations for {n_slices} slices", path=volume.source
        )
    # Mean activity of a frame starting at offset t equals A(start)·2^(−t/T)·average(Δ).
    per_slice = np.array(
        [
            decay_factor(half_life_s, t) * frame_average_decay_factor(half_life_s, d)
            for t, d in zip(offsets, durations, strict=True)
        ]
    )
    corrected = (volume.array / per_slice[:, None, None]).astype(np.float32, copy=False)
    warnings.append(
        f"the image was not decay-corrected (Decay Correction NONE): values were decay-corrected "
        f"to the acquisition start {timing.start.isoformat()}"
    )
    return volume.with_array(
        corrected, Quantity.ACTIVITY_CONCENTRATION, timing=_with_reference(timing, timing.start)
    )


def standardize(
    volume: Volume, acquisition: PetAcquisition, inputs: SuvInputs
) -> tuple[Volume, SuvFactors]:
    """Return the image in Bq/mL at one reference instant, and its SUV/%ID factors.

    Parameters
    ----------
    volume : Volume
        A PET/SPECT image as read by :mod:`immunopet.io`: activity concentration
        (Bq/mL), or SUVbw as stored by the vendor (DICOM Units GML, Philips SUV
        scale factor), which is turned back into Bq/mL with the *file's* weight
        and dose before the user's inputs are applied.
    acquisition : PetAcquisition
        The file's facts; fixes what the values are decay-corrected to.
    inputs : SuvInputs
        From :func:`resolve_suv_inputs`.

    Returns
    -------
    activity : Volume
        Bq/mL, float32, ``timing.decay_reference`` = the reference instant.
    factors : SuvFactors
        ``factors.apply(activity)`` gives SUVbw.

    Examples
    --------
    A uniform ⁸⁹Zr phantom imaged 4 days after injection, decay-corrected to the
    scan start (DICOM START): SUV is 1 everywhere, not 1 × decay correction.

    >>> import numpy as np
    >>> from datetime import datetime
    >>> from immunopet.image import AcquisitionTiming, DecayCorrection, PetAcquisition, Quantity, Volume
    >>> inj, scan = datetime(2026, 3, 2, 9, 0), datetime(2026, 3, 6, 9, 0)
    >>> acq = PetAcquisition(nuclide="Zr-89", injected_activity_bq=37e6, injection_datetime=inj,
    ...                      patient_weight_kg=70.0, decay_correction=DecayCorrection.START)
    >>> inputs, _ = resolve_suv_inputs(acq, scan)
    >>> decayed = 37e6 * 2 ** (-96 * 3600 / inputs.half_life_s)
    >>> image = Volume(np.full((2, 2, 2), decayed / 70e3, np.float32), np.eye(4),
    ...                Quantity.ACTIVITY_CONCENTRATION,
    ...                timing=AcquisitionTiming(scan, 600.0, decay_reference=scan))
    >>> activity, factors = standardize(image, acq, inputs)
    >>> round(float(factors.apply(activity).array.max()), 5)
    1.0

    """
    warnings: list[str] = []
    if volume.quantity is Quantity.SUV_BW:
        volume = _activity_from_vendor_suv(volume, acquisition, inputs, warnings)
    elif volume.quantity is not Quantity.ACTIVITY_CONCENTRATION:
        raise InputError(
            f"SUV needs an activity-concentration image, got {volume.quantity.value} ({volume.unit})",
            path=volume.source,
            field="Units (0054,1001)",
            hint="counts need a calibration to Bq/mL first",
        )
    reference, activity = _reference_and_activity(volume, acquisition, inputs, warnings)
    factors = _factors(inputs, reference, warnings, volume.source)
    max_suv = (
        float(np.nanmax(activity.array)) * factors.suv_bw_factor if activity.array.size else 0.0
    )
    if max_suv > float(read_toml("physics.toml")["plausibility"]["max_suv"]):
        factors = replace(
            factors,
            warnings=(
                *factors.warnings,
                f"maximum SUVbw {max_suv:.4g} is implausible: check the injected activity and weight units",
            ),
        )
    return activity, factors


def _activity_from_vendor_suv(
    volume: Volume, acquisition: PetAcquisition, inputs: SuvInputs, warnings: list[str]
) -> Volume:
    """Undo a vendor's SUVbw with the weight and dose the file states.

    The scanner's weight and dose are the file's own; facts the file lacks
    (nuclide, injection date) come from the user's inputs, the best knowledge there is.
    """
    timing = volume.timing
    if timing is None:
        raise TimingError("the image has no acquisition timing", path=volume.source)
    try:
        stated, _ = resolve_suv_inputs(
            acquisition,
            timing.start,
            source=volume.source,
            nuclide_name=None if acquisition.nuclide else inputs.nuclide,
            injection_datetime=None
            if acquisition.injection_datetime
            else inputs.injection_datetime,
        )
        reference, _ = _reference_and_activity(
            volume.with_array(volume.array, Quantity.ACTIVITY_CONCENTRATION),
            acquisition,
            stated,
            [],
        )
        stated_factors = _factors(stated, reference, [], volume.source)
    except InputError as exc:
        raise InputError(
            "the values are SUVbw as stored by the scanner and the file lacks what is needed to "
            f"turn them back into Bq/mL ({exc.message})",
            path=volume.source,
            field=exc.field,
        ) from exc
    warnings.append(
        f"values were stored as SUVbw ({acquisition.stored_units}); turned back into Bq/mL with the "
        f"file's weight {stated.weight_kg:g} kg and decayed dose {stated_factors.decayed_dose_bq:.6g} Bq"
    )
    activity = (volume.array / stated_factors.suv_bw_factor).astype(np.float32, copy=False)
    return volume.with_array(activity, Quantity.ACTIVITY_CONCENTRATION)
