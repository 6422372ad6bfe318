"""Dosimetry: time-integrated activity, absorbed dose (MIRD schema) and effective dose (ICRP 103).

The absorbed-dose model is planning grade (see :mod:`immunopet.dosimetry._mird`): spherical
organs of the ICRP Publication 89 reference adults with soft-tissue photon absorption, not a
replacement for OLINDA/EXM or IDAC-Dose. ``dose_budget`` turns a pharmacokinetic model's
time-integrated activity coefficients into effective doses per scan of an imaging schedule,
with published effective doses of immuno-PET agents beside them. ``dose_from_results`` turns
the time–activity curves of an analysed study into the dose table of ``results.json``.
``voxel_absorbed_dose`` gives a dose map by local deposition from registered timepoints, and
``lesion_dose_statistics`` its mean, D90/D50/D10 and V(d) in a VOI.
"""

from immunopet.dosimetry._budget import (
    DoseBudget,
    PublishedDose,
    ScanDose,
    dose_budget,
    published_doses,
)
from immunopet.dosimetry._effective import (
    effective_dose_sv,
    effective_dose_tissues,
    sex_averaged_effective_dose_sv,
    tissue_weights,
)
from immunopet.dosimetry._energy import EnergyPerDecay, energy_per_decay
from immunopet.dosimetry._mird import (
    REST_OF_BODY,
    DoseEstimate,
    ReferencePhantom,
    absorbed_doses_gy,
    estimate_dose,
    reference_phantom,
    sphere_absorbed_fraction,
)
from immunopet.dosimetry._results import dose_from_results, lesion_absorbed_dose_gy
from immunopet.dosimetry._tia import time_integrated_activity_bq_s
from immunopet.dosimetry._voxel import VoxelDose, lesion_dose_statistics, voxel_absorbed_dose

__all__ = [
    "REST_OF_BODY",
    "DoseBudget",
    "DoseEstimate",
    "EnergyPerDecay",
    "PublishedDose",
    "ReferencePhantom",
    "ScanDose",
    "VoxelDose",
    "absorbed_doses_gy",
    "dose_budget",
    "dose_from_results",
    "effective_dose_sv",
    "effective_dose_tissues",
    "energy_per_decay",
    "estimate_dose",
    "lesion_absorbed_dose_gy",
    "lesion_dose_statistics",
    "published_doses",
    "reference_phantom",
    "sex_averaged_effective_dose_sv",
    "sphere_absorbed_fraction",
    "time_integrated_activity_bq_s",
    "tissue_weights",
    "voxel_absorbed_dose",
]
