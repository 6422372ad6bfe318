"""study.yaml: the documented example, strict errors naming the key path, and round trips.

ASTCT expectations are Lee et al., Biol Blood Marrow Transplant 2019;25:625-638 (Table 1
footnote: "a febrile patient on a single vasopressor and low-flow nasal cannula would be
classified as Grade 3 CRS"; ICANS: ICE 3-6 and awakening to voice are grade 2).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from immunopet.errors import InputError
from immunopet.io.manifest import load_manifest, parse_manifest, write_manifest
from immunopet.monitor import Hypotension, OxygenSupport, grade_course
from immunopet.simulate._manifest import manifest_for_simulated_patient

DOCS = Path(__file__).resolve().parents[2] / "docs" / "study_manifest.md"


def _documented_example() -> str:
    (block,) = re.findall(r"## Example\n.*?```yaml\n(.*?)```", DOCS.read_text(), re.S)
    return block


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "study.yaml"
    path.write_text(text, encoding="utf-8")
    return load_manifest(path)


def test_documented_example_reads_as_documented(tmp_path: Path) -> None:
    manifest = _load(tmp_path, _documented_example())
    assert manifest.patient_id == "P0001"
    assert manifest.species == "adult"
    assert manifest.infusion_datetime == datetime(2024, 5, 6, 9, 30)
    assert manifest.car_t.product == "axicabtagene ciloleucel"
    assert manifest.lesion_tracer == "fdg"
    assert [(t.key, t.nuclide, t.vector_format) for t in manifest.tracers] == [
        ("fdg", "F-18", "small_molecule"),
        ("cd8_minibody", "Zr-89", "minibody"),
    ]
    assert manifest.weight_kg_on(date(2024, 5, 13)) == 76.9
    assert manifest.weight_kg_on(date(2024, 5, 14)) is None
    # 2024-05-11 08:00 is calendar day 5 after an infusion on 2024-05-06 09:30.
    assert [r.day for r in manifest.clinical] == [1, 2, 5]
    day2 = manifest.clinical[1]
    assert day2.hypotension is Hypotension.ONE_VASOPRESSOR  # from vasopressors: 1
    assert (day2.il6_pg_per_ml, day2.crp_mg_per_l, day2.systolic_bp_mmhg) == (1450, 182, 84)
    assert [(c.unit, c.source) for c in manifest.car_t_counts] == [
        ("copies_per_ug", "qpcr"),
        ("cells_per_ul", "flow"),
    ]
    first, second = manifest.blood_samples
    assert first.time_after_injection_s == 86400.0
    assert first.datetime is None
    assert second.datetime == datetime(2024, 5, 16, 9, 5)
    assert manifest.hematocrit == 0.41


def test_documented_example_grades_as_lee_2019(tmp_path: Path) -> None:
    manifest = _load(tmp_path, _documented_example())
    observations = manifest.clinical_observations()
    assert set(observations) == {1, 2, 5}
    assert observations[2].oxygen is OxygenSupport.LOW_FLOW_NASAL_CANNULA
    course = {day.day: day for day in grade_course(observations)}
    assert course[1].crs.grade == 1  # fever alone
    assert course[1].crs.complete
    assert course[2].crs.grade == 3  # fever + one vasopressor + low-flow cannula
    assert course[2].crs.complete
    assert course[5].icans.grade == 2  # ICE 6, awakens to voice
    assert course[5].icans.complete


def test_observations_need_only_grading_fields() -> None:
    manifest = parse_manifest({"clinical": [{"day": 3, "il6_pg_per_ml": 12.0}]})
    assert manifest.clinical_observations() == {}
    assert manifest.age_years is None
    assert manifest.clinical[0].il6_pg_per_ml == 12.0


def test_empty_file_is_an_empty_manifest(tmp_path: Path) -> None:
    manifest = _load(tmp_path, "# nothing yet\n")
    assert manifest.infusion_datetime is None
    assert manifest.tracers == ()
    assert manifest.clinical == ()
    assert manifest.path == tmp_path / "study.yaml"


INFUSION = "car_t: {target: CD19, infusion_datetime: 2024-05-06T09:30:00}\n"


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("weight: 70\n", "weight", "unknown key"),
        ("car_t: {target: CD19, infusion: 2024-05-06T09:30:00}\n", "car_t.infusion", "unknown"),
        ("car_t: {product: x}\n", "car_t.target", "missing"),
        (
            "car_t: {target: CD19, infusion_datetime: 2024-05-06T09:30:00+02:00}\n",
            "car_t.infusion_datetime",
            "UTC offset",
        ),
        (
            "car_t: {target: CD19, infusion_datetime: 2024-05-06}\n",
            "car_t.infusion_datetime",
            "no time of day",
        ),
        ("species: human\n", "species", "adult, mouse"),
        ("age_years: 50\nclinical: [{day: 1, temprature_c: 38}]\n", "clinical[0].temprature_c", ""),
        ("age_years: 50\nclinical: [{day: 1, ice_score: 11}]\n", "clinical[0].ice_score", "10"),
        ("clinical: [{day: 1, temperature_c: 38.5}]\n", "age_years", "ICE from 12 years"),
        (
            "age_years: 50\nclinical: [{day: 0}, {day: 1, temperature_c: 101.2}]\n",
            "clinical[1].temperature_c",
            "°C",
        ),
        ("age_years: 50\nclinical: [{day: 1.5, oxygen: none}]\n", "clinical[0].day", "whole day"),
        ("clinical: [{il6_pg_per_ml: 3}]\n", "clinical[0]", "exactly one of day and datetime"),
        (
            "clinical: [{day: 1, il6_pg_per_ml: 3}, {day: 1, crp_mg_per_l: 4}]\n",
            "clinical[1]",
            "day 1 is already clinical[0]",
        ),
        (
            "age_years: 50\nclinical: [{day: 1, hypotension: none, vasopressors: 2}]\n",
            "clinical[0].hypotension",
            "contradicts vasopressors=2",
        ),
        (
            "age_years: 50\nclinical: [{day: 1, hypotension: one_vasopressor, vasopressors: 0}]\n",
            "clinical[0].hypotension",
            "contradicts",
        ),
        ("age_years: 8\nclinical: [{day: 1, ice_score: 9}]\n", "clinical[0].ice_score", "CAPD"),
        (
            "clinical: [{datetime: 2024-05-07T08:00:00, il6_pg_per_ml: 3}]\n",
            "clinical[0].datetime",
            "car_t.infusion_datetime",
        ),
        ("age_years: 50\nclinical: [{day: 1, oxygen: nasal}]\n", "clinical[0].oxygen", "blow_by"),
        (
            "tracers: [{key: a, agent: X}, {key: a, agent: Y}]\n",
            "tracers[1].key",
            "already tracers[0].key",
        ),
        (
            "tracers: [{key: a, agent: X}, {key: b, agent: x}]\n",
            "tracers[1].agent",
            "case ignored",
        ),
        (
            "tracers: [{key: a, agent: X, vector_format: antibody}]\n",
            "tracers[0].vector_format",
            "igg",
        ),
        ("tracers: [{key: a, agent: X, nuclide: Zz-89}]\n", "tracers[0].nuclide", ""),
        ("tracers: [{key: a, agent: X}]\nlesion_tracer: b\n", "lesion_tracer", "a, fdg"),
        (
            "car_t_counts: [{day: 7, value: 10, unit: cells_per_ul, source: qpcr}]\n",
            "car_t_counts[0].unit",
            "qpcr reports copies_per_ug",
        ),
        (
            "blood_samples: [{tracer: zr, time_after_injection_h: 2, bq_per_ml: 5, "
            "kind: plasma}]\n",
            "blood_samples[0].tracer",
            "not a tracer key",
        ),
        (
            "blood_samples: [{tracer: fdg, bq_per_ml: 5, kind: serum, "
            "time_after_injection_h: 1}]\n",
            "blood_samples[0].kind",
            "whole_blood, plasma",
        ),
        ("hematocrit: 41\n", "hematocrit", "0.42 for 42 %"),
        (
            "body_weight_kg: [{date: 2024-05-06, weight_kg: 70}, {date: 2024-05-06, weight_kg: 71}]\n",
            "body_weight_kg[1].date",
            "already",
        ),
        (
            "body_weight_kg: [{date: 2024-05-06, weight_kg: 0}]\n",
            "body_weight_kg[0].weight_kg",
            ">",
        ),
    ],
)
def test_errors_name_the_file_and_key_path(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    with pytest.raises(InputError) as error:
        _load(tmp_path, text)
    assert error.value.field == field
    assert error.value.path == str(tmp_path / "study.yaml")
    assert message in str(error.value)
    line = str(error.value)
    assert "\n" not in line
    assert line.startswith(f"{tmp_path / 'study.yaml'}: {field}: ")


def test_repeated_key_and_broken_yaml_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="key 'patient_id' is repeated") as error:
        _load(tmp_path, "patient_id: A\nspecies: adult\npatient_id: B\n")
    assert error.value.field == "line 3"
    with pytest.raises(InputError, match="not valid YAML"):
        _load(tmp_path, "clinical: [day: 1\n")
    with pytest.raises(InputError, match="no such manifest file"):
        load_manifest(tmp_path / "absent.yaml")


def test_clinical_day_of_a_datetime_is_the_calendar_day() -> None:
    manifest = parse_manifest(
        {
            "car_t": {"target": "CD19", "infusion_datetime": "2024-05-06T22:00:00"},
            "age_years": 40,
            # 8 h after a late-evening infusion: the next calendar day, day 1.
            "clinical": [{"datetime": datetime(2024, 5, 7, 6, 0), "temperature_c": 38.0}],
            # 10.5 days after the infusion, as a fraction.
            "car_t_counts": [
                {
                    "datetime": "2024-05-17T10:00:00",
                    "value": 1e4,
                    "unit": "copies_per_ug",
                    "source": "qpcr",
                }
            ],
        }
    )
    assert manifest.clinical[0].day == 1
    assert manifest.clinical[0].datetime == datetime(2024, 5, 7, 6, 0)
    assert manifest.car_t_counts[0].day == 10.5


@pytest.mark.parametrize(
    ("vasopressors", "vasopressin", "expected"),
    [
        (0, True, Hypotension.ONE_VASOPRESSOR),
        (1, True, Hypotension.ONE_VASOPRESSOR),
        (2, False, Hypotension.MULTIPLE_VASOPRESSORS),
        (2, True, Hypotension.MULTIPLE_VASOPRESSORS),
        (0, False, None),  # no vasopressor says nothing about hypotension without a threshold
    ],
)
def test_hypotension_from_vasopressors(
    vasopressors: int, vasopressin: bool, expected: Hypotension | None
) -> None:
    record = {"day": 1, "vasopressors": vasopressors, "vasopressin": vasopressin}
    manifest = parse_manifest({"age_years": 30, "clinical": [record]})
    assert manifest.clinical[0].hypotension is expected


def test_tracer_match_is_exact_then_case_insensitive() -> None:
    manifest = parse_manifest(
        {"tracers": [{"key": "cd8", "agent": "[89Zr]Zr-Df-IAB22M2C", "target": "CD8"}]}
    )
    assert manifest.tracer_for("[89Zr]Zr-Df-IAB22M2C") == manifest.tracers[0]
    assert manifest.tracer_for(" [89ZR]zr-df-iab22m2c ") == manifest.tracers[0]
    assert manifest.tracer_for("[89Zr]Zr-Df-IAB22M2") is None


TRUTH: dict[str, Any] = {
    "patient": {
        "patient_id": "M007",
        "species": "mouse",
        "sex": "F",
        "weight_kg": 0.0215,
        "height_cm": None,
        "infusion_datetime": "2025-01-10T14:00:00",
        "car_t_target": "CD19",
        "infused_cells": 5e6,
    },
    "scans": [
        {
            "tracer": "cd8_minibody",
            "agent": "[89Zr]Zr-Df-IAB22M2C",
            "target": "CD8",
            "vector_format": "minibody",
            "nuclide": "Zr-89",
            "scan_datetime": "2025-01-17T14:00:00",
            "injected_activity_bq": 3.7e6,
            "organ_bq_per_ml": {"liver": 1.0},
        },
        {
            "tracer": "fdg",
            "agent": "[18F]FDG",
            "target": "glucose metabolism",
            "vector_format": "small_molecule",
            "nuclide": "F-18",
            "scan_datetime": "2025-01-09T10:00:00",
            "injected_activity_bq": 7.4e6,
            "organ_bq_per_ml": {"liver": 2.0},
        },
        {
            "tracer": "cd8_minibody",
            "agent": "[89Zr]Zr-Df-IAB22M2C",
            "target": "CD8",
            "vector_format": "minibody",
            "nuclide": "Zr-89",
            "scan_datetime": "2025-01-18T14:00:00",
            "injected_activity_bq": 3.7e6,
            "organ_bq_per_ml": {"liver": 0.5},
        },
    ],
}


def test_simulated_patient_manifest_round_trip(tmp_path: Path) -> None:
    content = manifest_for_simulated_patient(TRUTH)
    assert "injected_activity_bq" not in str(content)
    assert "organ_bq_per_ml" not in str(content)
    written = write_manifest(content, tmp_path / "study.yaml")
    manifest = load_manifest(written)
    assert manifest == parse_manifest(content, path=written)
    assert manifest.patient_id == "M007"
    assert manifest.species == "mouse"
    assert manifest.car_t is not None
    assert manifest.car_t.product is None  # truth.json names no product
    assert manifest.car_t.target == "CD19"
    assert manifest.infusion_datetime == datetime(2025, 1, 10, 14, 0)
    assert manifest.lesion_tracer == "fdg"
    assert [t.key for t in manifest.tracers] == ["fdg", "cd8_minibody"]  # order of first scan
    assert [(w.date, w.weight_kg) for w in manifest.body_weight_kg] == [
        (date(2025, 1, 9), 0.0215),
        (date(2025, 1, 17), 0.0215),
        (date(2025, 1, 18), 0.0215),
    ]
    named = {**TRUTH, "patient": {**TRUTH["patient"], "car_t_product": "murine CD19 CAR T"}}
    assert manifest_for_simulated_patient(named)["car_t"]["product"] == "murine CD19 CAR T"


def test_write_manifest_refuses_invalid_content_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="species"):
        write_manifest({"species": "rat"}, tmp_path / "study.yaml")
    assert list(tmp_path.iterdir()) == []


def test_psf_fwhm_is_read_and_checked() -> None:
    assert parse_manifest({"psf_fwhm_mm": 6.1}).psf_fwhm_mm == 6.1
    assert parse_manifest({}).psf_fwhm_mm is None
    with pytest.raises(InputError, match="psf_fwhm_mm"):
        parse_manifest({"psf_fwhm_mm": 0})


def test_simulated_manifest_carries_the_shared_scanner_resolution() -> None:
    scans = [dict(scan, resolution_fwhm_mm=6.4) for scan in TRUTH["scans"]]
    assert manifest_for_simulated_patient({**TRUTH, "scans": scans})["psf_fwhm_mm"] == 6.4
    mixed = [dict(scan, resolution_fwhm_mm=6.4 + i) for i, scan in enumerate(TRUTH["scans"] * 2)]
    assert "psf_fwhm_mm" not in manifest_for_simulated_patient({**TRUTH, "scans": mixed})


def test_cell_label_facts_are_read_and_checked_against_the_label_kind() -> None:
    tracer = {"key": "mfbg", "agent": "[18F]MFBG", "cell_label": "hnet-mfbg"}
    reporter = parse_manifest({"tracers": [{**tracer, "reporter_uptake_bq_per_cell": 0.05}]})
    assert reporter.tracers[0].cell_label == "hnet-mfbg"
    assert reporter.tracers[0].reporter_uptake_bq_per_cell == 0.05
    with pytest.raises(InputError, match=r"tracers\[0\].bound_bq_per_cell"):
        parse_manifest({"tracers": [{**tracer, "bound_bq_per_cell": 0.05}]})
    with pytest.raises(InputError, match="unknown cell label"):
        parse_manifest({"tracers": [{**tracer, "cell_label": "zr89-nothing"}]})
    with pytest.raises(InputError, match="only meaningful with cell_label"):
        parse_manifest({"tracers": [{"key": "a", "agent": "b", "efflux_per_day": 0.1}]})
    cells = {"target": "CD19", "infused_cells": 5.0e6}
    assert parse_manifest({"car_t": cells}).car_t.infused_cells == 5.0e6  # type: ignore[union-attr]
