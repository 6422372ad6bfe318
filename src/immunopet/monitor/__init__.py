"""Monitoring rules: the guidance questions asked of a course, each rule with its evidence.

``monitor`` holds the rules that turn observations into the answers a physician reads beside
the images (later: antigen loss, exhaustion, trafficking, activation, toxicity, tumour
microenvironment). Today it holds the clinical toxicity grades: ASTCT consensus grading of
cytokine release syndrome (CRS) and immune effector cell-associated neurotoxicity syndrome
(ICANS) per day (Lee et al., Biol Blood Marrow Transplant 2019;25:625–638). Clinical grades are
the physician's record; imaging localises, it never overrides a grade.
"""

from immunopet.monitor._astct import (
    ClinicalObservation,
    Consciousness,
    CrsGrade,
    DayGrades,
    Domain,
    DomainGrade,
    EncephalopathyTool,
    Hypotension,
    IcansGrade,
    IntracranialFinding,
    MotorFinding,
    OxygenSupport,
    Seizure,
    grade_course,
    grade_crs,
    grade_icans,
)

__all__ = [
    "ClinicalObservation",
    "Consciousness",
    "CrsGrade",
    "DayGrades",
    "Domain",
    "DomainGrade",
    "EncephalopathyTool",
    "Hypotension",
    "IcansGrade",
    "IntracranialFinding",
    "MotorFinding",
    "OxygenSupport",
    "Seizure",
    "grade_course",
    "grade_crs",
    "grade_icans",
]
