"""Radionuclide data (ICRP-107 via maintained packages) and decay arithmetic."""

from immunopet.physics._decay import (
    decay_correction_factor,
    decay_factor,
    decay_factor_between,
    frame_average_decay_factor,
    frame_effective_offset_s,
    seconds_between,
)
from immunopet.physics._nuclides import (
    EmissionLine,
    Nuclide,
    canonical_nuclide_name,
    element_name,
    known_nuclides,
    nuclide,
)

__all__ = [
    "EmissionLine",
    "Nuclide",
    "canonical_nuclide_name",
    "decay_correction_factor",
    "decay_factor",
    "decay_factor_between",
    "element_name",
    "frame_average_decay_factor",
    "frame_effective_offset_s",
    "known_nuclides",
    "nuclide",
    "seconds_between",
]
