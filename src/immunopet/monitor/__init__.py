"""Monitoring rules: the guidance questions asked of a course, each rule with its evidence.

``monitor`` holds the rules that turn observations into the answers a physician reads beside
the images (later: antigen loss, exhaustion, trafficking, activation, toxicity, tumour
microenvironment). Today it holds the clinical toxicity grades: ASTCT consensus grading of
cytokine release syndrome (CRS) and immune effector cell-associated neurotoxicity syndrome
(ICANS) per day (Lee et al., Biol Blood Marrow Transplant 2019;25:625–638). Clinical grades are
the physician's record; imaging localises, it never overrides a grade.

Imaging rules so far: change statistics (``_change``: count noise plus published
repeatability) and antigen escape (``_antigen``: ``antigen_loss``,
``new_antigen_negative_lesion``); :func:`guidance_events` runs them on a results document.
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
from immunopet.monitor._change import Change, assess_change, repeatability_wcv
from immunopet.monitor._events import guidance_events

__all__ = [
    "Change",
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
    "assess_change",
    "grade_course",
    "grade_crs",
    "grade_icans",
    "guidance_events",
    "repeatability_wcv",
]
