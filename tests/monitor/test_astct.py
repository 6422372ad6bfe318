"""ASTCT consensus CRS and ICANS grading, case by case against the published criteria.

Source: Lee DW et al. ASTCT consensus grading for cytokine release syndrome and neurologic
toxicity associated with immune effector cells. Biol Blood Marrow Transplant 2019;25:625-638.
Table cells and footnotes as reproduced (READ) in:

* CRS: PMC8021214 Table 1 ("adapted from Lee et al.") and PMC9327779 Table 2;
* adult ICANS: PMC8403007 Table 4 ("Data from" Lee 2019) and PMC7990806 Table 2;
* children: the mdedge.com summary of Lee 2019 (CAPD-based grading).

Each parametrised case names the table row and grade column it checks. Expected grades are
written here from the published text, never computed by the module under test.
"""

from __future__ import annotations

from typing import Any

import pytest

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.monitor import (
    ClinicalObservation,
    Consciousness,
    Domain,
    EncephalopathyTool,
    Hypotension,
    IntracranialFinding,
    MotorFinding,
    OxygenSupport,
    Seizure,
    grade_course,
    grade_crs,
    grade_icans,
)

ADULT = 55.0
CHILD = 8.0

# Every CRS field recorded and normal, so only the field under test decides the grade.
CRS_NORMAL: dict[str, Any] = {"temperature_c": 36.8, "hypotension": "none", "oxygen": "none"}
# Every ICANS field recorded and normal.
ICANS_NORMAL: dict[str, Any] = {
    "ice_score": 10,
    "consciousness": "alert",
    "seizure": "none",
    "motor": "none",
    "intracranial": "none",
}
CAPD_NORMAL: dict[str, Any] = {**ICANS_NORMAL, "ice_score": None, "capd_score": 0}


def crs_obs(**changes: Any) -> ClinicalObservation:
    return ClinicalObservation(age_years=ADULT, **{**CRS_NORMAL, **changes})


def icans_obs(age_years: float = ADULT, **changes: Any) -> ClinicalObservation:
    base = ICANS_NORMAL if age_years >= 12 else CAPD_NORMAL
    return ClinicalObservation(age_years=age_years, **{**base, **changes})


# --------------------------------------------------------------------------- the data file


def test_every_category_has_a_row_in_the_data_file() -> None:
    table = read_toml("astct_grading.toml")
    pairs = (
        (Hypotension, table["crs"]["hypotension"]),
        (OxygenSupport, table["crs"]["oxygen"]),
        (Consciousness, table["icans"]["consciousness"]),
        (Seizure, table["icans"]["seizure"]),
        (MotorFinding, table["icans"]["motor"]),
        (IntracranialFinding, table["icans"]["intracranial"]),
    )
    for enum, rows in pairs:
        assert {m.value for m in enum} == set(rows), enum.__name__
    assert "doi:10.1016/j.bbmt.2018.12.758" in table["source"]


def test_ice_items_sum_to_ten_and_bands_cover_each_score_once() -> None:
    # PMC8153820 Table 2: orientation 4, naming 3, commands 1, writing 1, attention 1.
    icans = read_toml("astct_grading.toml")["icans"]
    assert icans["ice_items"] == {
        "orientation": 4,
        "naming": 3,
        "following_commands": 1,
        "writing": 1,
        "attention": 1,
    }
    for bands, maximum in ((icans["ice_bands"], 10), (icans["capd_bands"], 32)):
        covered = sorted(s for b in bands for s in range(b["low"], b["high"] + 1))
        assert covered == list(range(maximum + 1))


# --------------------------------------------------------------------------- CRS table

CRS_TABLE = [
    # (table row, grade column), changes to a normal day, expected grade, deciding domains
    ("fever row, grade 1: temp >= 38 C alone", {"temperature_c": 38.5}, 1, {Domain.FEVER}),
    (
        "hypotension row, grade 2: not requiring vasopressors",
        {"temperature_c": 38.5, "hypotension": "not_requiring_vasopressors"},
        2,
        {Domain.HYPOTENSION},
    ),
    (
        "hypotension row, grade 3: a vasopressor",
        {"temperature_c": 38.5, "hypotension": Hypotension.from_vasopressors(1, vasopressin=False)},
        3,
        {Domain.HYPOTENSION},
    ),
    (
        "hypotension row, grade 3: a vasopressor with vasopressin",
        {"temperature_c": 38.5, "hypotension": Hypotension.from_vasopressors(1, vasopressin=True)},
        3,
        {Domain.HYPOTENSION},
    ),
    (
        "hypotension row, grade 4: multiple vasopressors (excluding vasopressin)",
        {"temperature_c": 38.5, "hypotension": Hypotension.from_vasopressors(2, vasopressin=True)},
        4,
        {Domain.HYPOTENSION},
    ),
    (
        "hypoxia row, grade 2: low-flow nasal cannula <= 6 L/min",
        {"temperature_c": 38.5, "oxygen": OxygenSupport.nasal_cannula(6.0)},
        2,
        {Domain.HYPOXIA},
    ),
    (
        "hypoxia row, grade 2: blow-by",
        {"temperature_c": 38.5, "oxygen": "blow_by"},
        2,
        {Domain.HYPOXIA},
    ),
    (
        "hypoxia row, grade 3: high-flow nasal cannula > 6 L/min",
        {"temperature_c": 38.5, "oxygen": OxygenSupport.nasal_cannula(8.0)},
        3,
        {Domain.HYPOXIA},
    ),
    (
        "hypoxia row, grade 3: facemask",
        {"temperature_c": 38.5, "oxygen": "facemask"},
        3,
        {Domain.HYPOXIA},
    ),
    (
        "hypoxia row, grade 3: non-rebreather mask",
        {"temperature_c": 38.5, "oxygen": "non_rebreather"},
        3,
        {Domain.HYPOXIA},
    ),
    (
        "hypoxia row, grade 3: Venturi mask",
        {"temperature_c": 38.5, "oxygen": "venturi"},
        3,
        {Domain.HYPOXIA},
    ),
    ("hypoxia row, grade 4: CPAP", {"temperature_c": 38.5, "oxygen": "cpap"}, 4, {Domain.HYPOXIA}),
    (
        "hypoxia row, grade 4: BiPAP",
        {"temperature_c": 38.5, "oxygen": "bipap"},
        4,
        {Domain.HYPOXIA},
    ),
    (
        "hypoxia row, grade 4: intubation and mechanical ventilation",
        {"temperature_c": 38.5, "oxygen": "mechanical_ventilation"},
        4,
        {Domain.HYPOXIA},
    ),
    (
        "footnote: febrile, single vasopressor and low-flow nasal cannula is grade 3",
        {
            "temperature_c": 39.5,
            "hypotension": "one_vasopressor",
            "oxygen": "low_flow_nasal_cannula",
        },
        3,
        {Domain.HYPOTENSION},
    ),
    (
        "footnote: the more severe event decides (no-vasopressor hypotension, BiPAP)",
        {"temperature_c": 38.2, "hypotension": "not_requiring_vasopressors", "oxygen": "bipap"},
        4,
        {Domain.HYPOXIA},
    ),
    (
        "both rows at grade 3 decide together",
        {"temperature_c": 38.2, "hypotension": "one_vasopressor", "oxygen": "facemask"},
        3,
        {Domain.HYPOTENSION, Domain.HYPOXIA},
    ),
    ("no fever, nothing else: no CRS", {}, 0, set()),
]


@pytest.mark.parametrize(
    ("changes", "expected", "deciding"),
    [case[1:] for case in CRS_TABLE],
    ids=[case[0] for case in CRS_TABLE],
)
def test_crs_table(changes: dict[str, Any], expected: int, deciding: set[Domain]) -> None:
    crs = grade_crs(crs_obs(**changes), fever_seen_before=False)
    assert crs.grade == expected
    assert crs.complete
    assert crs.missing == ()
    assert set(crs.deciding) == deciding
    assert crs.fever_required


@pytest.mark.parametrize(
    ("temperature_c", "expected"),
    [(38.0, 1), (37.9, 0), (37.99, 0), (38.01, 1), (41.0, 1)],
)
def test_fever_threshold_is_38_0_inclusive(temperature_c: float, expected: int) -> None:
    # All reproductions: "Temp >= 38 C"; no rounding of the recorded value.
    assert (
        grade_crs(crs_obs(temperature_c=temperature_c), fever_seen_before=False).grade == expected
    )


def test_hypotension_or_hypoxia_without_fever_is_not_crs() -> None:
    crs = grade_crs(
        crs_obs(temperature_c=37.2, hypotension="multiple_vasopressors", oxygen="cpap"),
        fever_seen_before=False,
    )
    assert crs.grade == 0
    assert crs.complete
    assert {d.domain: d.grade for d in crs.domains} == {
        Domain.FEVER: 0,
        Domain.HYPOTENSION: 4,
        Domain.HYPOXIA: 4,
    }
    assert any("without CRS fever" in note for note in crs.notes)


def test_fever_attributable_to_another_cause_is_not_crs_fever() -> None:
    # Footnote: "Fever must not be attributable to any other cause".
    obs = crs_obs(temperature_c=39.0, oxygen="facemask", other_cause=["fever"])
    crs = grade_crs(obs, fever_seen_before=False)
    assert crs.grade == 0
    assert "attributed to another cause" in crs.domains[0].finding
    course = grade_course(
        {1: obs, 2: crs_obs(temperature_c=37.0, oxygen="facemask", tocilizumab=True)}
    )
    assert [d.crs.grade for d in course] == [0, 0]


def test_hypoxia_of_another_cause_is_not_graded() -> None:
    obs = crs_obs(
        temperature_c=38.4, oxygen="high_flow_nasal_cannula", other_cause={Domain.HYPOXIA}
    )
    crs = grade_crs(obs, fever_seen_before=False)
    assert (crs.grade, crs.deciding) == (1, (Domain.FEVER,))


@pytest.mark.parametrize(
    ("n_vasopressors", "vasopressin", "expected"),
    [
        (0, False, Hypotension.NOT_REQUIRING_VASOPRESSORS),
        (0, True, Hypotension.ONE_VASOPRESSOR),
        (1, False, Hypotension.ONE_VASOPRESSOR),
        (1, True, Hypotension.ONE_VASOPRESSOR),
        (2, False, Hypotension.MULTIPLE_VASOPRESSORS),
        (3, True, Hypotension.MULTIPLE_VASOPRESSORS),
    ],
)
def test_vasopressin_does_not_count_towards_multiple(
    n_vasopressors: int, vasopressin: bool, expected: Hypotension
) -> None:
    # Grade 3 "a vasopressor with or without vasopressin"; grade 4 "multiple vasopressors
    # (excluding vasopressin)".
    assert Hypotension.from_vasopressors(n_vasopressors, vasopressin=vasopressin) is expected


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        (0.5, OxygenSupport.LOW_FLOW_NASAL_CANNULA),
        (6.0, OxygenSupport.LOW_FLOW_NASAL_CANNULA),
        (6.1, OxygenSupport.HIGH_FLOW_NASAL_CANNULA),
        (40.0, OxygenSupport.HIGH_FLOW_NASAL_CANNULA),
    ],
)
def test_nasal_cannula_flow_limit_is_6_l_per_min(flow: float, expected: OxygenSupport) -> None:
    # PMC8021214 footnote: low flow <= 6 L/min, high flow > 6 L/min.
    assert OxygenSupport.nasal_cannula(flow) is expected


# --------------------------------------------------------------------------- fever masking


def test_tocilizumab_removes_the_need_for_fever_on_later_days() -> None:
    # Footnote: once antipyretic or anticytokine therapy is initiated (tocilizumab, steroids),
    # grading is driven by hypotension and hypoxia.
    course = grade_course(
        {
            1: crs_obs(temperature_c=39.1),
            2: crs_obs(temperature_c=38.6, oxygen="low_flow_nasal_cannula", tocilizumab=True),
            3: crs_obs(temperature_c=37.0, oxygen="high_flow_nasal_cannula"),
            4: crs_obs(temperature_c=36.9, hypotension="multiple_vasopressors", oxygen="none"),
            6: crs_obs(temperature_c=36.8),
        }
    )
    assert [d.day for d in course] == [1, 2, 3, 4, 6]
    assert [d.crs.grade for d in course] == [1, 2, 3, 4, 0]
    assert [d.crs.fever_required for d in course] == [True, False, False, False, False]
    assert course[2].crs.deciding == (Domain.HYPOXIA,)
    assert any("fever not required" in note for note in course[2].crs.notes)


def test_antipyretic_on_the_day_of_diagnosis_masks_later_days() -> None:
    course = grade_course(
        {
            1: crs_obs(temperature_c=38.8, antipyretic=True),
            2: crs_obs(temperature_c=37.3, oxygen="facemask"),
            3: crs_obs(temperature_c=37.1, hypotension="not_requiring_vasopressors"),
        }
    )
    assert [d.crs.grade for d in course] == [1, 3, 2]
    assert [d.crs.fever_required for d in course] == [True, False, False]


def test_without_antipyretic_or_anticytokine_fever_is_still_required() -> None:
    course = grade_course(
        {1: crs_obs(temperature_c=39.1), 2: crs_obs(temperature_c=37.0, oxygen="facemask")}
    )
    assert [d.crs.grade for d in course] == [1, 0]


def test_therapy_before_crs_does_not_waive_fever() -> None:
    # "In patients who have CRS then receive ..." - prophylaxis before any CRS fever does not count.
    course = grade_course(
        {
            0: crs_obs(corticosteroids=True),
            1: crs_obs(temperature_c=37.4, hypotension="one_vasopressor"),
        }
    )
    assert [d.crs.grade for d in course] == [0, 0]


@pytest.mark.parametrize(
    "therapy", ["antipyretic", "tocilizumab", "corticosteroids", "other_anticytokine"]
)
def test_each_masking_therapy_waives_fever_same_day(therapy: str) -> None:
    obs = crs_obs(temperature_c=37.2, hypotension="one_vasopressor", **{therapy: True})
    assert grade_crs(obs, fever_seen_before=True).grade == 3
    assert grade_crs(obs, fever_seen_before=False).grade == 0


def test_masking_before_carries_over() -> None:
    obs = crs_obs(temperature_c=37.2, oxygen="venturi")
    assert grade_crs(obs, fever_seen_before=True, masking_therapy_before=True).grade == 3
    assert grade_crs(obs, fever_seen_before=True, masking_therapy_before=False).grade == 0


# --------------------------------------------------------------------------- adult ICANS table

ICANS_TABLE = [
    ("ICE row: 10 is normal", {"ice_score": 10}, 0, set()),
    ("ICE row, grade 1: 9", {"ice_score": 9}, 1, {Domain.ENCEPHALOPATHY}),
    ("ICE row, grade 1: 7 (lower edge)", {"ice_score": 7}, 1, {Domain.ENCEPHALOPATHY}),
    ("ICE row, grade 2: 6 (upper edge)", {"ice_score": 6}, 2, {Domain.ENCEPHALOPATHY}),
    ("ICE row, grade 2: 3 (lower edge)", {"ice_score": 3}, 2, {Domain.ENCEPHALOPATHY}),
    ("ICE row, grade 3: 2 (upper edge)", {"ice_score": 2}, 3, {Domain.ENCEPHALOPATHY}),
    (
        "ICE row, grade 3: 0 awake (global aphasia footnote)",
        {"ice_score": 0},
        3,
        {Domain.ENCEPHALOPATHY},
    ),
    (
        "ICE row, grade 4: 0, unarousable and unable to perform ICE",
        {"ice_score": 0, "consciousness": "unarousable"},
        4,
        {Domain.CONSCIOUSNESS},
    ),
    (
        "consciousness row, grade 1: awakens spontaneously",
        {"consciousness": "awakens_spontaneously"},
        1,
        {Domain.CONSCIOUSNESS},
    ),
    (
        "consciousness row, grade 2: awakens to voice",
        {"consciousness": "awakens_to_voice"},
        2,
        {Domain.CONSCIOUSNESS},
    ),
    (
        "consciousness row, grade 3: awakens only to tactile stimulus",
        {"consciousness": "awakens_to_tactile_stimulus"},
        3,
        {Domain.CONSCIOUSNESS},
    ),
    (
        "consciousness row, grade 4: unarousable / vigorous stimuli, stupor or coma",
        {"consciousness": "unarousable", "ice_score": None},
        4,
        {Domain.CONSCIOUSNESS},
    ),
    (
        "seizure row, grade 3: clinical seizure, focal or generalised, resolving rapidly",
        {"seizure": "clinical_rapidly_resolving"},
        3,
        {Domain.SEIZURE},
    ),
    (
        "seizure row, grade 3: non-convulsive seizures on EEG resolving with intervention",
        {"seizure": "nonconvulsive_resolving_with_intervention"},
        3,
        {Domain.SEIZURE},
    ),
    (
        "seizure row, grade 4: life-threatening prolonged seizure > 5 min",
        {"seizure": "prolonged"},
        4,
        {Domain.SEIZURE},
    ),
    (
        "seizure row, grade 4: repetitive seizures without return to baseline",
        {"seizure": "repetitive_without_return_to_baseline"},
        4,
        {Domain.SEIZURE},
    ),
    (
        "motor row, grade 4: deep focal motor weakness (hemiparesis, paraparesis)",
        {"motor": "deep_focal_weakness"},
        4,
        {Domain.MOTOR},
    ),
    (
        "motor footnote: tremor and myoclonus do not influence ICANS",
        {"motor": "tremor_or_myoclonus"},
        0,
        set(),
    ),
    (
        "ICP/oedema row, grade 3: focal/local oedema on neuroimaging",
        {"intracranial": "focal_edema"},
        3,
        {Domain.INTRACRANIAL},
    ),
    (
        "ICP/oedema row, grade 4: diffuse cerebral oedema",
        {"intracranial": "diffuse_edema"},
        4,
        {Domain.INTRACRANIAL},
    ),
    (
        "ICP/oedema row, grade 4: decerebrate or decorticate posturing",
        {"intracranial": "posturing"},
        4,
        {Domain.INTRACRANIAL},
    ),
    (
        "ICP/oedema row, grade 4: cranial nerve VI palsy",
        {"intracranial": "cranial_nerve_vi_palsy"},
        4,
        {Domain.INTRACRANIAL},
    ),
    (
        "ICP/oedema row, grade 4: papilledema",
        {"intracranial": "papilledema"},
        4,
        {Domain.INTRACRANIAL},
    ),
    (
        "ICP/oedema row, grade 4: Cushing's triad",
        {"intracranial": "cushings_triad"},
        4,
        {Domain.INTRACRANIAL},
    ),
    (
        "ICP/oedema footnote: intracranial haemorrhage is excluded",
        {"intracranial": "intracranial_hemorrhage"},
        0,
        set(),
    ),
    (
        "footnote: ICE 3 with a generalised seizure is grade 3",
        {"ice_score": 3, "seizure": "clinical_rapidly_resolving"},
        3,
        {Domain.SEIZURE},
    ),
    (
        "most severe domain decides: ICE 8 with focal oedema",
        {"ice_score": 8, "intracranial": "focal_edema"},
        3,
        {Domain.INTRACRANIAL},
    ),
    (
        "two domains at grade 2 decide together: ICE 5, awakens to voice",
        {"ice_score": 5, "consciousness": "awakens_to_voice"},
        2,
        {Domain.ENCEPHALOPATHY, Domain.CONSCIOUSNESS},
    ),
]


@pytest.mark.parametrize(
    ("changes", "expected", "deciding"),
    [case[1:] for case in ICANS_TABLE],
    ids=[case[0] for case in ICANS_TABLE],
)
def test_adult_icans_table(changes: dict[str, Any], expected: int, deciding: set[Domain]) -> None:
    icans = grade_icans(icans_obs(**changes))
    assert icans.grade == expected
    assert icans.complete
    assert set(icans.deciding) == deciding
    assert icans.tool is EncephalopathyTool.ICE


def test_depressed_consciousness_from_sedation_is_not_graded() -> None:
    # Footnote: "Depressed level of consciousness should be attributable to no other cause (e.g.
    # no sedating medication)".
    obs = icans_obs(consciousness="awakens_to_tactile_stimulus", other_cause=["consciousness"])
    icans = grade_icans(obs)
    assert icans.grade == 0
    assert icans.complete
    assert "consciousness: attributed to another cause, not graded" in icans.notes


@pytest.mark.parametrize(
    ("changes", "note"),
    [
        ({"motor": "tremor_or_myoclonus"}, "CTCAE"),
        ({"intracranial": "intracranial_hemorrhage"}, "haemorrhage is excluded"),
    ],
)
def test_excluded_findings_are_noted(changes: dict[str, Any], note: str) -> None:
    assert any(note in n for n in grade_icans(icans_obs(**changes)).notes)


# --------------------------------------------------------------------------- children (CAPD)

CAPD_TABLE = [
    ("CAPD 0, alert: no ICANS", {"capd_score": 0}, 0),
    (
        "grade 1: CAPD < 9 (1-8) and awakens spontaneously",
        {"capd_score": 8, "consciousness": "awakens_spontaneously"},
        1,
    ),
    ("grade 1: CAPD 1", {"capd_score": 1}, 1),
    (
        "grade 2: CAPD < 9 and awakens to voice",
        {"capd_score": 4, "consciousness": "awakens_to_voice"},
        2,
    ),
    ("grade 3: CAPD >= 9 (edge)", {"capd_score": 9}, 3),
    ("grade 3: CAPD 32 (maximum)", {"capd_score": 32}, 3),
    (
        "grade 3: awakens only to tactile stimulus",
        {"consciousness": "awakens_to_tactile_stimulus"},
        3,
    ),
    ("grade 3: rapidly resolving clinical seizure", {"seizure": "clinical_rapidly_resolving"}, 3),
    ("grade 3: focal/local oedema", {"intracranial": "focal_edema"}, 3),
    (
        "grade 4: unable to perform CAPD, unarousable",
        {"capd_score": None, "consciousness": "unarousable"},
        4,
    ),
    ("grade 4: seizure > 5 min", {"seizure": "prolonged"}, 4),
    ("grade 4: deep focal motor weakness", {"motor": "deep_focal_weakness"}, 4),
    ("grade 4: cranial nerve VI palsy", {"intracranial": "cranial_nerve_vi_palsy"}, 4),
    ("grade 4: diffuse cerebral oedema", {"intracranial": "diffuse_edema"}, 4),
]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [case[1:] for case in CAPD_TABLE],
    ids=[case[0] for case in CAPD_TABLE],
)
def test_child_icans_table(changes: dict[str, Any], expected: int) -> None:
    icans = grade_icans(icans_obs(CHILD, **changes))
    assert icans.grade == expected
    assert icans.complete
    assert icans.tool is EncephalopathyTool.CAPD


@pytest.mark.parametrize(
    ("age_years", "delay", "tool"),
    [
        (11.9, False, EncephalopathyTool.CAPD),
        (12.0, False, EncephalopathyTool.ICE),
        (70.0, False, EncephalopathyTool.ICE),
        (30.0, True, EncephalopathyTool.CAPD),
    ],
)
def test_tool_by_age_and_developmental_delay(
    age_years: float, delay: bool, tool: EncephalopathyTool
) -> None:
    # mdedge summary of Lee 2019: ICE not suitable for children younger than 12; CAPD for them
    # and for older patients with developmental delay.
    assert ClinicalObservation(age_years=age_years, developmental_delay=delay).tool is tool


def test_wrong_tool_for_age_is_refused() -> None:
    with pytest.raises(InputError, match="CAPD") as child:
        ClinicalObservation(age_years=CHILD, ice_score=8)
    assert child.value.field == "ice_score"
    with pytest.raises(InputError, match="ICE") as adult:
        ClinicalObservation(age_years=ADULT, capd_score=8)
    assert adult.value.field == "capd_score"
    assert "developmental_delay" in (adult.value.hint or "")


# --------------------------------------------------------------------------- missing data


def test_missing_temperature_leaves_crs_a_lower_bound() -> None:
    obs = ClinicalObservation(age_years=ADULT, hypotension="one_vasopressor", oxygen="none")
    crs = grade_crs(obs, fever_seen_before=False)
    assert (crs.grade, crs.highest_possible, crs.complete) == (0, 3, False)
    assert crs.missing == ("temperature_c",)
    assert crs.describe() == "CRS grade ≥ 0 (up to 3; not recorded: temperature_c)"


def test_missing_oxygen_with_fever() -> None:
    obs = ClinicalObservation(
        age_years=ADULT, temperature_c=38.3, hypotension="not_requiring_vasopressors"
    )
    crs = grade_crs(obs, fever_seen_before=False)
    assert (crs.grade, crs.highest_possible, crs.missing) == (2, 4, ("oxygen",))
    assert not crs.complete


def test_nothing_recorded_is_crs_0_to_4() -> None:
    crs = grade_crs(ClinicalObservation(age_years=ADULT), fever_seen_before=False)
    assert (crs.grade, crs.highest_possible) == (0, 4)
    assert crs.missing == ("temperature_c", "hypotension", "oxygen")


def test_grade_4_is_complete_whatever_is_missing() -> None:
    obs = ClinicalObservation(
        age_years=ADULT, temperature_c=39.0, hypotension="multiple_vasopressors"
    )
    crs = grade_crs(obs, fever_seen_before=False)
    assert (crs.grade, crs.complete, crs.missing) == (4, True, ("oxygen",))
    icans = grade_icans(ClinicalObservation(age_years=ADULT, consciousness="unarousable"))
    assert (icans.grade, icans.complete) == (4, True)


def test_icans_with_only_the_ice_score_is_a_lower_bound() -> None:
    icans = grade_icans(ClinicalObservation(age_years=ADULT, ice_score=5))
    assert (icans.grade, icans.highest_possible, icans.complete) == (2, 4, False)
    assert icans.missing == ("consciousness", "seizure", "motor", "intracranial")
    assert icans.describe().startswith("ICANS grade ≥ 2 (up to 4; not recorded: consciousness")


def test_unknown_ice_score_can_reach_grade_3_only() -> None:
    # The ICE row reaches grade 3 by score; its grade-4 cell is the unarousable patient.
    icans = grade_icans(icans_obs(ice_score=None))
    assert (icans.grade, icans.highest_possible, icans.missing) == (0, 3, ("ice_score",))


def test_describe_complete_grade() -> None:
    crs = grade_crs(crs_obs(temperature_c=38.9, oxygen="facemask"), fever_seen_before=False)
    assert crs.describe() == "CRS grade 3: oxygen by facemask"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"temperature_c": 101.3}, "temperature_c"),
        ({"temperature_c": 20.0}, "temperature_c"),
        ({"temperature_c": float("nan")}, "temperature_c"),
        ({"temperature_c": "38.5"}, "temperature_c"),
        ({"ice_score": 11}, "ice_score"),
        ({"ice_score": -1}, "ice_score"),
        ({"ice_score": 7.5}, "ice_score"),
        ({"ice_score": True}, "ice_score"),
        ({"age_years": -1.0}, "age_years"),
        ({"age_years": 200.0}, "age_years"),
        ({"age_years": None}, "age_years"),
        ({"hypotension": "two_vasopressors"}, "hypotension"),
        ({"oxygen": 3}, "oxygen"),
        ({"seizure": "status"}, "seizure"),
        ({"tocilizumab": "yes"}, "tocilizumab"),
        ({"other_cause": "fever"}, "other_cause"),
        ({"other_cause": ["sepsis"]}, "other_cause"),
    ],
)
def test_invalid_inputs_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as error:
        ClinicalObservation(**{"age_years": ADULT, **changes})
    assert error.value.field == field
    assert isinstance(error.value, ValueError)


def test_fahrenheit_gets_a_hint() -> None:
    with pytest.raises(InputError) as error:
        ClinicalObservation(age_years=ADULT, temperature_c=101.3)
    assert "°C" in (error.value.hint or "")
    assert error.value.one_line().startswith("temperature_c: 101.3 °C is outside")


def test_capd_above_32_is_refused() -> None:
    with pytest.raises(InputError) as error:
        ClinicalObservation(age_years=CHILD, capd_score=33)
    assert error.value.field == "capd_score"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Hypotension.from_vasopressors(-1, vasopressin=False), "n_vasopressors"),
        (lambda: OxygenSupport.nasal_cannula(0.0), "flow_l_per_min"),
        (lambda: grade_course({1.5: ClinicalObservation(age_years=ADULT)}), "observations_by_day"),
        (lambda: grade_course({1: {"age_years": ADULT}}), "observations_by_day"),
        (lambda: grade_course([ClinicalObservation(age_years=ADULT)]), "observations_by_day"),
    ],
)
def test_helper_inputs_are_validated(call: Any, field: str) -> None:
    with pytest.raises(InputError) as error:
        call()
    assert error.value.field == field


def test_strings_become_enums() -> None:
    obs = ClinicalObservation(
        age_years=ADULT, hypotension="one_vasopressor", seizure="prolonged", other_cause=["fever"]
    )
    assert obs.hypotension is Hypotension.ONE_VASOPRESSOR
    assert obs.seizure is Seizure.PROLONGED
    assert obs.other_cause == frozenset({Domain.FEVER})


def test_course_reports_both_syndromes_each_day() -> None:
    course = grade_course(
        {
            5: ClinicalObservation(
                age_years=ADULT, **CRS_NORMAL, **{**ICANS_NORMAL, "ice_score": 6}
            ),
            -1: ClinicalObservation(age_years=ADULT, **CRS_NORMAL, **ICANS_NORMAL),
        }
    )
    assert [(d.day, d.crs.grade, d.icans.grade) for d in course] == [(-1, 0, 0), (5, 0, 2)]
