"""Planning before any scan: scanners, imaging windows and nuclide choice, cell detectability, dose.

Every answer carries the assumptions and sources it rests on.
"""

from immunopet.planning._cells import (
    CellDetectability,
    CellDetectabilityInputs,
    CellLabelEntry,
    DirectLabel,
    ReporterLabel,
    cell_label,
    known_cell_labels,
    predict_cell_detectability,
    sphere_recovery_coefficient,
)
from immunopet.planning._dose import TracerDosePlan, plan_dose
from immunopet.planning._matching import (
    ImagingWindow,
    NuclideOption,
    TracerPlan,
    imaging_window,
    plan_tracer,
    rank_nuclides,
    theranostic_partner,
)
from immunopet.planning._scanner import ScannerModel, known_scanners, scanner

__all__ = [
    "CellDetectability",
    "CellDetectabilityInputs",
    "CellLabelEntry",
    "DirectLabel",
    "ImagingWindow",
    "NuclideOption",
    "ReporterLabel",
    "ScannerModel",
    "TracerDosePlan",
    "TracerPlan",
    "cell_label",
    "imaging_window",
    "known_cell_labels",
    "known_scanners",
    "plan_dose",
    "plan_tracer",
    "predict_cell_detectability",
    "rank_nuclides",
    "scanner",
    "sphere_recovery_coefficient",
    "theranostic_partner",
]
