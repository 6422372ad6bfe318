"""Volumes: arrays with validated LPS geometry, quantity, unit and timing; resampling; masks."""

from immunopet.image._pet import DecayCorrection, PetAcquisition, Sex, decay_reference
from immunopet.image._resample import resample_to
from immunopet.image._volume import AcquisitionTiming, Quantity, Volume

__all__ = [
    "AcquisitionTiming",
    "DecayCorrection",
    "PetAcquisition",
    "Quantity",
    "Sex",
    "Volume",
    "decay_reference",
    "resample_to",
]
