"""What a PET/SPECT file says about the administration and the patient.

These are the facts the SUV engine needs besides the pixel values. They are
filled by the readers in :mod:`immunopet.io` (DICOM, PET-BIDS) exactly as the
file states them, never guessed: a fact the file does not hold stays ``None``
and the SUV engine asks for it by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from immunopet.errors import TimingError

if TYPE_CHECKING:
    from immunopet.image._volume import AcquisitionTiming

__all__ = ["DecayCorrection", "PetAcquisition", "Sex", "decay_reference"]

Sex = Literal["M", "F"]


class DecayCorrection(StrEnum):
    """DICOM Decay Correction (0054,1102): what the pixel values are decay-corrected to."""

    NONE = "NONE"
    START = "START"
    ADMIN = "ADMIN"


@dataclass(frozen=True)
class PetAcquisition:
    """Administration, patient and correction facts of one PET/SPECT scan.

    Parameters
    ----------
    nuclide : str or None
        Canonical nuclide name (``"Zr-89"``), see :func:`immunopet.physics.nuclide`.
    header_half_life_s : float or None
        Half-life written in the file (DICOM Radionuclide Half Life (0018,1075)), s.
        Only compared with the ICRP-107 value; the SUV engine decays with ICRP-107.
    injected_activity_bq : float or None
        Activity administered, Bq, at ``injection_datetime`` (DICOM Radionuclide
        Total Dose (0018,1074), PET-BIDS InjectedRadioactivity).
    injection_datetime : datetime or None
        Administration date and time (DICOM Radiopharmaceutical Start DateTime
        (0018,1078)).
    injection_time_of_day : datetime.time or None
        Administration time when the file stores only a time of day
        (Radiopharmaceutical Start Time (0018,1072)) and no date.
    patient_weight_kg, patient_height_cm : float or None
        Body weight (kg) and height (cm).
    patient_sex : {"M", "F"} or None
        Sex used by the lean-body-mass formulas.
    decay_correction : DecayCorrection
        What the stored values are decay-corrected to.
    stored_units : str
        The file's own unit label (DICOM Units (0054,1001) such as ``"BQML"``).
    radiopharmaceutical : str or None
        Tracer name as written in the file.
    manufacturer : str or None
        Scanner manufacturer as written in the file.
    date_conflict : str or None
        Description of dates in the file that disagree (e.g. Study Date vs
        Series Date), which makes a time-of-day-only injection ambiguous.
    notes : tuple of str
        What the reader did that the user should know (vendor fixes applied, ...).

    """

    nuclide: str | None = None
    header_half_life_s: float | None = None
    injected_activity_bq: float | None = None
    injection_datetime: datetime | None = None
    injection_time_of_day: time | None = None
    patient_weight_kg: float | None = None
    patient_height_cm: float | None = None
    patient_sex: Sex | None = None
    decay_correction: DecayCorrection = DecayCorrection.NONE
    stored_units: str = ""
    radiopharmaceutical: str | None = None
    manufacturer: str | None = None
    date_conflict: str | None = None
    notes: tuple[str, ...] = field(default=())


def decay_reference(
    timing: AcquisitionTiming,
    mode: DecayCorrection,
    injection: datetime,
    *,
    source: str | None = None,
) -> datetime | None:
    """Instant the values are decay-corrected to, checked against the Decay Correction mode.

    Parameters
    ----------
    timing : AcquisitionTiming
        The volume's timing; ``timing.decay_reference`` as the reader found it.
    mode : DecayCorrection
        What the file says the values are corrected to.
    injection : datetime
        The administration instant (stands in for an ADMIN reference the file
        could not date, e.g. a time-of-day-only injection).
    source : str, optional
        For messages.

    Returns
    -------
    datetime or None
        ``None`` for images that are not decay-corrected (``NONE``).

    Raises
    ------
    TimingError
        When the timing contradicts the mode (a reference with NONE; none with START).

    """
    if mode is DecayCorrection.NONE:
        if timing.decay_reference is not None:
            raise TimingError(
                "Decay Correction is NONE but the image carries a decay reference time",
                path=source,
                field="DecayCorrection (0054,1102)",
            )
        return None
    if timing.decay_reference is not None:
        return timing.decay_reference
    if mode is DecayCorrection.ADMIN:
        return injection
    raise TimingError(
        f"Decay Correction is {mode.value} but the image has no decay reference time",
        path=source,
        field="SeriesDateTime (0008,0021/0031)",
    )
