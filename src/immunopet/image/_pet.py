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
from typing import Literal

__all__ = ["DecayCorrection", "PetAcquisition", "Sex"]

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
