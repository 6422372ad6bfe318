"""Dosimetry: time-integrated activity, absorbed dose (MIRD schema) and effective dose (ICRP 103).

The absorbed-dose model is planning grade (see :mod:`immunopet.dosimetry._mird`): spherical
organs of the ICRP Publication 89 reference adults with soft-tissue photon absorption, not a
replacement for OLINDA/EXM or IDAC-Dose. ``dose_budget`` turns a pharmacokinetic model's
time-integrated activity coefficients into effective doses per scan of an imaging schedule,
with published effective doses of immuno-PET agents beside them. ``dose_from_results`` turns
the time–activity curves of an analysed study into the dose table of ``results.json``.
``voxel_absorbed_dose`` gives a dose map by local deposition from registered timepoints, and
``lesion_dose_statistics`` its mean, D90/D50/D10 and V(d) in a VOI. The urine in the bladder is
the source region ``URINARY_BLADDER_CONTENTS`` (its target the wall, ``"urinary_bladder"``);
``bladder_contents_tiac_s`` and ``bladder_contents_tiac_from_curve_s`` give its time-integrated
activity for urinary excretion and a fixed voiding schedule (3.5 h, ICRP 53/80/106).
"""

from immunopet.dosimetry._bladder import (
    bladder_contents_tiac_from_curve_s,
    bladder_contents_tiac_s,
    default_voiding_schedule_s,
)
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
    URINARY_BLADDER_CONTENTS,
    DoseEstimate,
    ReferencePhantom,
    absorbed_doses_gy,
    estimate_dose,
    reference_phantom,
    shell_absorbed_fraction,
    sphere_absorbed_fraction,
)
from immunopet.dosimetry._results import dose_from_results, lesion_absorbed_dose_gy
from immunopet.dosimetry._tia import time_integrated_activity_bq_s
from immunopet.dosimetry._voxel import VoxelDose, lesion_dose_statistics, voxel_absorbed_dose

__all__ = [
    "REST_OF_BODY",
    "URINARY_BLADDER_CONTENTS",
    "DoseBudget",
    "DoseEstimate",
    "EnergyPerDecay",
    "PublishedDose",
    "ReferencePhantom",
    "ScanDose",
    "VoxelDose",
    "absorbed_doses_gy",
    "bladder_contents_tiac_from_curve_s",
    "bladder_contents_tiac_s",
    "default_voiding_schedule_s",
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
    "shell_absorbed_fraction",
    "sphere_absorbed_fraction",
    "time_integrated_activity_bq_s",
    "tissue_weights",
    "voxel_absorbed_dose",
]
