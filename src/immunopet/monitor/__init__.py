"""Monitoring rules: the guidance questions asked of a course, each rule with its evidence.

``monitor`` holds the rules that turn observations into the answers a physician reads beside
the images (later: antigen loss, exhaustion, trafficking, activation, toxicity, tumour
microenvironment). Today it holds the clinical toxicity grades: ASTCT consensus grading of
cytokine release syndrome (CRS) and immune effector cell-associated neurotoxicity syndrome
(ICANS) per day (Lee et al., Biol Blood Marrow Transplant 2019;25:625–638). Clinical grades are
the physician's record; imaging localises, it never overrides a grade.

Imaging rules: change statistics (``_change``: count noise plus published repeatability) and
one rule module per question of the review: antigen escape (``antigen_loss``,
``new_antigen_negative_lesion``), ``lineage_switch``, ``checkpoint_upregulation``,
``t_cell_activation``, trafficking and toxicity (``car_t_expansion``, ``car_t_homing``,
``crs_inflammation``, ``icans_inflammation``), ``homing_failure``, ``on_target_off_tumor`` and
``hypoxia``; :func:`guidance_events` runs them all on a results document (``docs/events.md``).
:func:`astct_grades` gives the clinical grades per day from a study manifest, JSON-ready.
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
from immunopet.monitor._change import Change, assess_change, assess_ratio, repeatability_wcv
from immunopet.monitor._clinical import astct_grades
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
    "assess_ratio",
    "astct_grades",
    "grade_course",
    "grade_crs",
    "grade_icans",
    "guidance_events",
    "repeatability_wcv",
]
