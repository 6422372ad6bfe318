"""The virtual CAR T-cell patient and mouse: anatomy, scanners and scenarios that write real files.

The simulator writes DICOM (and PET-BIDS) through :mod:`immunopet.io`, so everything
downstream is tested through the real ingest path; ground truth travels beside the files.

Parts: analytic anatomy (:func:`build_phantom`), the PET imaging system (:class:`PetSystem`,
behind the :class:`ImagingSystem` interface SPECT will implement), scenarios as YAML data with
virtual cohorts (:func:`load_scenario`, :func:`draw_cohort`), one patient to DICOM PET/CT plus
ground truth (``_patient.simulate_patient``), its PET-BIDS export (``_bids``), and a
reader's organ and lesion VOIs from the truth (:func:`write_reader_vois`).
"""

from immunopet.simulate._anatomy import LesionSpec, Phantom, anatomy_sites, build_phantom
from immunopet.simulate._reader import READER_ORGANS, write_reader_vois
from immunopet.simulate._scanner import ImagingSystem, PetSystem, UniformRegionNoise
from immunopet.simulate._scenario import (
    EventType,
    PatientSpec,
    Scenario,
    draw_cohort,
    list_scenarios,
    load_scenario,
)

__all__ = [
    "READER_ORGANS",
    "EventType",
    "ImagingSystem",
    "LesionSpec",
    "PatientSpec",
    "PetSystem",
    "Phantom",
    "Scenario",
    "UniformRegionNoise",
    "anatomy_sites",
    "build_phantom",
    "draw_cohort",
    "list_scenarios",
    "load_scenario",
    "write_reader_vois",
]
