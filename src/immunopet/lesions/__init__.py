"""Lesions: organ segmentation from CT/PET and lesion detection and delineation on PET."""

from immunopet.lesions._detect import (
    DetectedLesion,
    DetectionMethod,
    DetectionRecord,
    DetectionScore,
    MethodName,
    ReferenceLevels,
    detect_lesions,
    evaluate_detection,
    physiological_uptake,
    reference_levels,
    species_length_scale,
)
from immunopet.lesions._organs import (
    BLOOD_POOL_REFERENCE,
    LIVER_NOISE_REFERENCE,
    LIVER_REFERENCE,
    OrganMasks,
    segment_organs,
)

__all__ = [
    "BLOOD_POOL_REFERENCE",
    "LIVER_NOISE_REFERENCE",
    "LIVER_REFERENCE",
    "DetectedLesion",
    "DetectionMethod",
    "DetectionRecord",
    "DetectionScore",
    "MethodName",
    "OrganMasks",
    "ReferenceLevels",
    "detect_lesions",
    "evaluate_detection",
    "physiological_uptake",
    "reference_levels",
    "segment_organs",
    "species_length_scale",
]
