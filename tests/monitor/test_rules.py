"""The guidance rules of issue 6 part 2 on hand-built results documents.

Each rule is run on a small ``results.json``-shaped document built here (only the keys the
rules read), with positive and negative cases and cases at the decision threshold. Expected
thresholds are computed here from the published numbers and the data files (repeatability
wCV 10 %, two-sided 95 %: z = 1.959964; one-sided 95 %: z = 1.644854), never by the module
under test.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

import pytest

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.monitor import ClinicalObservation, astct_grades, guidance_events
from immunopet.monitor._activation import activation_events
from immunopet.monitor._checkpoint import checkpoint_events
from immunopet.monitor._homing import homing_failure_events
from immunopet.monitor._hypoxia import hypoxia_events
from immunopet.monitor._lineage import lineage_events
from immunopet.monitor._off_tumor import off_tumor_events

Z2 = 1.959964  # two-sided 95 %
Z1 = 1.644854  # one-sided 95 %
WCV = 0.10  # data/repeatability.toml, every class
INFUSION = datetime(2024, 5, 6, 9, 30)
GUIDANCE = read_toml("guidance.toml")

AGENTS = {
    "CD19": "[64Cu]Cu-CD19-mAb",
    "CD33": "[89Zr]Zr-DFO-anti-CD33 IgG",
    "PD-L1": "[89Zr]Zr-DFO-atezolizumab",
    "granzyme B": "[68Ga]Ga-NOTA-GZP",
    "CD8": "[89Zr]Zr-Df-IAB22M2C",
    "CAIX": "[89Zr]Zr-DFO-girentuximab",
    "hypoxia": "[18F]FMISO",
    "glucose metabolism": "[18F]FDG",
    "ex vivo cell label": "[89Zr]Zr-oxine",
    "hNET": "[18F]MFBG",
}


class Doc:
    """A minimal results document: scans at days after infusion, lesions, measurements."""

    def __init__(self, car_t_target: str | None = "CD19") -> None:
        self.target = car_t_target
        self.timepoints: dict[str, dict[str, Any]] = {}
        self.lesions: dict[str, dict[str, Any]] = {}
        self.measurements: list[dict[str, Any]] = []

    def scan(self, tp: str, day: float, tracer: str, target: str, delay_h: float) -> Doc:
        scan_time = INFUSION + timedelta(days=day)
        entry = self.timepoints.setdefault(tp, {"timepoint_id": tp, "day": day, "scans": []})
        entry["scans"].append(
            {
                "tracer": tracer,
                "agent": AGENTS[target],
                "target": target,
                "injection_datetime": (scan_time - timedelta(hours=delay_h)).isoformat(),
                "scan_datetime": scan_time.isoformat(),
            }
        )
        return self

    def lesion(self, tracking_id: str, status: str = "persistent") -> Doc:
        self.lesions[tracking_id] = {"tracking_id": tracking_id, "status": status, "timepoints": {}}
        return self

    def measure(
        self,
        voi_id: str,
        tp: str,
        tracer: str,
        suv_mean: float,
        se: float | None = None,
        voi_type: str | None = None,
    ) -> Doc:
        kind = voi_type or ("lesion" if voi_id in self.lesions else "organ")
        target = next(s["target"] for s in self.timepoints[tp]["scans"] if s["tracer"] == tracer)
        self.measurements.append(
            {
                "voi_type": kind,
                "voi_id": voi_id,
                "timepoint_id": tp,
                "day": self.timepoints[tp]["day"],
                "tracer": tracer,
                "target": target,
                "suv_mean": suv_mean,
                "suv_mean_se": se,
            }
        )
        if kind == "lesion":
            self.lesions[voi_id]["timepoints"][tp] = {
                "detected": True,
                "centroid_lps_mm": [10.0, 20.0, 30.0],
            }
        return self

    def document(self) -> dict[str, Any]:
        return {
            "study": {"car_t_target": self.target, "infusion_datetime": INFUSION.isoformat()},
            "timepoints": sorted(self.timepoints.values(), key=lambda tp: tp["day"]),
            "lesions": list(self.lesions.values()),
            "measurements": self.measurements,
        }


def _types(events: list[dict[str, Any]]) -> list[tuple[str, str | None, float]]:
    return [(e["type"], e.get("voi_id") or e.get("site"), e["day"]) for e in events]


# --------------------------------------------------------------------------- lineage switch


def _lineage(cd19_later: float, cd33_lesion: float, cd33_day: float = 59.0) -> dict[str, Any]:
    doc = Doc("CD19").lesion("L001")
    doc.scan("TP01", -9.0, "cd19", "CD19", 24.0).scan("TP02", 57.0, "cd19", "CD19", 24.0)
    doc.scan("TP03", cd33_day, "cd33", "CD33", 96.0)
    doc.measure("L001", "TP01", "cd19", 5.0, 0.1).measure("L001", "TP02", "cd19", cd19_later, 0.1)
    doc.measure("L001", "TP03", "cd33", cd33_lesion)
    doc.measure("blood_pool_reference", "TP03", "cd33", 4.0)
    return doc.document()


def test_lineage_switch_needs_lymphoid_loss_and_myeloid_gain() -> None:
    # CD19 5.0 -> 2.0 (-60 %) and CD33 lesion-to-blood 8/4 = 2: both far beyond the noise.
    events = lineage_events(_lineage(2.0, 8.0))
    assert _types(events) == [("lineage_switch", "L001", 59.0)]
    evidence = events[0]["evidence"]
    assert evidence["target"] == "CD33"
    assert evidence["metric"] == "lesion_to_blood"
    assert evidence["current"] == pytest.approx(2.0)
    assert evidence["lymphoid_loss"]["target"] == "CD19"
    assert evidence["lymphoid_loss"]["relative_change"] == pytest.approx(-0.6)
    # Bonferroni: both z far beyond 4, so the joint confidence is ~1.
    assert 0.999 < events[0]["confidence"] <= 1.0
    assert events[0]["centroid_lps_mm"] == [10.0, 20.0, 30.0]
    assert not lineage_events(_lineage(4.8, 8.0))  # CD19 kept: no switch
    assert not lineage_events(_lineage(2.0, 2.0))  # CD33 below blood: no myeloid gain


def test_lineage_switch_myeloid_positivity_threshold() -> None:
    # No SE: sd of ln(R/1.0) is the wCV alone, so R must exceed exp(1.96 x 0.10) = 1.2163.
    edge = math.exp(Z2 * WCV) * GUIDANCE["lineage_switch"]["positive_lesion_to_blood"]
    assert lineage_events(_lineage(2.0, 4.0 * edge * 1.01))
    assert not lineage_events(_lineage(2.0, 4.0 * edge * 0.99))


def test_lineage_switch_pairing_window() -> None:
    window = GUIDANCE["lineage_switch"]["pairing_window_days"]
    assert lineage_events(_lineage(2.0, 8.0, cd33_day=57.0 + window))
    assert not lineage_events(_lineage(2.0, 8.0, cd33_day=57.0 + window + 1.0))


def test_lineage_switch_myeloid_rise_from_an_earlier_scan() -> None:
    doc = Doc("CD19").lesion("L001")
    doc.scan("TP01", -9.0, "cd19", "CD19", 24.0).scan("TP02", 57.0, "cd19", "CD19", 24.0)
    doc.scan("TP00", -12.0, "cd33", "CD33", 96.0).scan("TP03", 59.0, "cd33", "CD33", 96.0)
    doc.measure("L001", "TP01", "cd19", 5.0, 0.1).measure("L001", "TP02", "cd19", 2.0, 0.1)
    doc.measure("L001", "TP00", "cd33", 1.0, 0.05).measure("L001", "TP03", "cd33", 3.0, 0.1)
    (event,) = lineage_events(doc.document())
    assert event["evidence"]["metric"] == "suv_mean"
    assert event["evidence"]["baseline_day"] == -12.0
    assert event["evidence"]["relative_change"] == pytest.approx(2.0)


# --------------------------------------------------------------------------- checkpoint


def _checkpoint(before: float, after: float, delay_after_h: float = 96.0) -> dict[str, Any]:
    doc = Doc("CD19").lesion("L001")
    doc.scan("TP01", -13.0, "pdl1", "PD-L1", 96.0).scan(
        "TP02", 25.0, "pdl1", "PD-L1", delay_after_h
    )
    doc.measure("L001", "TP01", "pdl1", before).measure("L001", "TP02", "pdl1", after)
    doc.measure("blood_pool_reference", "TP01", "pdl1", 3.0)
    doc.measure("blood_pool_reference", "TP02", "pdl1", 3.0)
    return doc.document()


def test_checkpoint_upregulation_with_high_low_strata() -> None:
    (event,) = checkpoint_events(_checkpoint(2.0, 4.5))
    assert (event["type"], event["voi_id"], event["day"]) == (
        "checkpoint_upregulation",
        "L001",
        25.0,
    )
    evidence = event["evidence"]
    assert evidence["target"] == "PD-L1"
    assert evidence["relative_change"] == pytest.approx(1.25)
    # Strata: lesion-to-blood 2/3 (low) before, 4.5/3 = 1.5 (high) after, cut-off 1.0.
    assert evidence["stratum_baseline"] == "low"
    assert evidence["stratum_current"] == "high"
    assert evidence["lesion_to_blood_current"] == pytest.approx(1.5)
    assert not checkpoint_events(_checkpoint(2.0, 1.0))  # a fall is not upregulation


def test_checkpoint_threshold_is_the_repeatability_coefficient() -> None:
    # No SE: sd = sqrt(2) x wCV; the smallest real rise is exp(1.96 x 0.1414) - 1 = +31.9 %.
    rise = math.exp(Z2 * math.sqrt(2.0) * WCV)
    assert checkpoint_events(_checkpoint(2.0, 2.0 * rise * 1.01))
    assert not checkpoint_events(_checkpoint(2.0, 2.0 * rise * 0.99))
    (event,) = checkpoint_events(_checkpoint(2.0, 2.0 * rise * 1.01))
    assert event["evidence"]["threshold"] == pytest.approx(rise - 1.0, rel=1e-5)


def test_checkpoint_needs_the_same_uptake_time() -> None:
    # 96 h vs 168 h after injection: an antibody's uptake differs, so no comparison.
    assert not checkpoint_events(_checkpoint(2.0, 4.5, delay_after_h=168.0))


# --------------------------------------------------------------------------- activation


def _activation(lesion: float, node: float | None = None, baseline: float | None = None) -> Any:
    doc = Doc("CD19").lesion("L001")
    doc.scan("TP02", 7.0, "gzp", "granzyme B", 1.0)
    doc.measure("L001", "TP02", "gzp", lesion).measure("blood_pool_reference", "TP02", "gzp", 20.0)
    if node is not None:
        doc.measure("lymph_node_draining", "TP02", "gzp", node)
    if baseline is not None:
        doc.scan("TP01", -3.0, "gzp", "granzyme B", 1.0)
        doc.measure("L001", "TP01", "gzp", baseline)
        doc.measure("blood_pool_reference", "TP01", "gzp", 20.0)
    return doc.document()


def test_t_cell_activation_tumour_and_node_signature() -> None:
    (event,) = activation_events(_activation(40.0, node=30.0))
    assert (event["type"], event["voi_id"], event["day"]) == ("t_cell_activation", "L001", 7.0)
    assert event["evidence"]["current"] == pytest.approx(2.0)  # 40 / 20
    assert event["evidence"]["signature"] == "tumour_and_node"
    assert event["evidence"]["draining_nodes"][0]["to_blood"] == pytest.approx(1.5)
    (alone,) = activation_events(_activation(40.0, node=15.0))
    assert alone["evidence"]["signature"] == "tumour_only"
    (unknown,) = activation_events(_activation(40.0))
    assert unknown["evidence"]["signature"] == "node_not_measured"
    # Lesion-to-blood 1.1: within exp(1.96 x 0.1) of 1 -> not shown.
    assert not activation_events(_activation(22.0))


def test_t_cell_activation_uses_the_pre_infusion_scan_when_there_is_one() -> None:
    # Ratio 2 after, but the same already before infusion: no rise, no activation.
    assert not activation_events(_activation(40.0, baseline=40.0))
    (event,) = activation_events(_activation(40.0, baseline=20.0))
    assert event["evidence"]["metric"] == "suv_mean"
    assert event["evidence"]["baseline_day"] == -3.0


# --------------------------------------------------------------------------- on-target off-tumour


def _off_tumor(target: str, organ: str, after: float, day: float = 6.25) -> dict[str, Any]:
    doc = Doc(target)
    doc.scan("TP00", -10.0, "caix", "CAIX", 96.0)
    doc.scan("TP01", -2.75, "cd8", "CD8", 6.0).scan("TP02", day, "cd8", "CD8", 6.0)
    doc.measure(organ, "TP00", "caix", 7.7)
    doc.measure(organ, "TP01", "cd8", 5.5, 0.08).measure(organ, "TP02", "cd8", after, 0.09)
    return doc.document()


def test_on_target_off_tumor_in_an_organ_expressing_the_target() -> None:
    (event,) = off_tumor_events(_off_tumor("CAIX", "liver_reference", 11.8))
    assert (event["type"], event["site"], event["day"]) == ("on_target_off_tumor", "liver", 6.25)
    assert event["evidence"]["voi"] == "liver_reference"
    assert event["evidence"]["target_uptake"] == [{"tracer": "caix", "day": -10.0, "suv_mean": 7.7}]
    assert event["centroid_lps_mm"] is None
    assert event["voi_id"] is None
    assert not off_tumor_events(_off_tumor("CAIX", "liver_reference", 6.0))  # +9 %: noise
    assert not off_tumor_events(_off_tumor("CD19", "liver_reference", 11.8))  # no expressing organ
    assert not off_tumor_events(_off_tumor("CAIX", "spleen", 11.8))  # spleen: expansion, not target
    _, high = GUIDANCE["on_target_off_tumor"]["window_days"]
    assert off_tumor_events(_off_tumor("CAIX", "liver_reference", 11.8, day=high))
    assert not off_tumor_events(_off_tumor("CAIX", "liver_reference", 11.8, day=high + 1.0))


# --------------------------------------------------------------------------- hypoxia


def _hypoxia(target: str, lesion: float, car_t_target: str = "HER2") -> dict[str, Any]:
    doc = Doc(car_t_target).lesion("L001")
    delay = 2.0 if target == "hypoxia" else 96.0
    doc.scan("TP01", -10.0, "tracer", target, delay)
    doc.measure("L001", "TP01", "tracer", lesion).measure(
        "blood_pool_reference", "TP01", "tracer", 1.0
    )
    return doc.document()


def test_fmiso_hypoxia_at_tumour_to_blood_1_2_beyond_the_noise() -> None:
    # Muzi 2015: T/B >= 1.2. No SE: the ratio must exceed 1.2 exp(1.96 x 0.10) = 1.4596.
    edge = 1.2 * math.exp(Z2 * WCV)
    (event,) = hypoxia_events(_hypoxia("hypoxia", edge * 1.01))
    assert event["evidence"]["basis"] == "nitroimidazole"
    assert event["evidence"]["baseline"] == pytest.approx(1.2)  # the threshold tested against
    assert not hypoxia_events(_hypoxia("hypoxia", edge * 0.99))


def test_caix_surrogate_unless_caix_is_the_car_target() -> None:
    (event,) = hypoxia_events(_hypoxia("CAIX", 3.0))
    assert event["evidence"]["basis"] == "CAIX surrogate"
    assert event["day"] == -10.0
    assert not hypoxia_events(_hypoxia("CAIX", 3.0, car_t_target="CAIX"))
    assert not hypoxia_events(_hypoxia("glucose metabolism", 8.0))  # FDG says nothing of it


# --------------------------------------------------------------------------- homing failure


def _homing(
    after: float, se: float = 0.1, target_positive: bool | None = None, target: str = "hNET"
) -> Any:
    # A reporter gene (hNET) imaged with its probe 1 h after injection, before and after.
    doc = Doc("CD19").lesion("L001")
    doc.scan("TP01", -3.0, "probe", target, 1.0).scan("TP02", 6.0, "probe", target, 1.0)
    doc.measure("L001", "TP01", "probe", 5.0, se).measure("L001", "TP02", "probe", after, se)
    if target_positive is not None:
        doc.scan("TP00", -9.0, "cd19", "CD19", 24.0)
        doc.measure("L001", "TP00", "cd19", 8.0 if target_positive else 1.0)
        doc.measure("blood_pool_reference", "TP00", "cd19", 4.0)
    return doc.document()


def test_homing_failure_when_the_rise_expected_of_homing_cells_is_excluded() -> None:
    (event,) = homing_failure_events(_homing(5.1))
    assert (event["type"], event["voi_id"], event["day"]) == ("homing_failure", "L001", 6.0)
    # sd = sqrt(2 x 0.01 + 0.02^2 + (0.1/5.1)^2); upper bound exp(d + 1.645 sd) - 1.
    sd = math.sqrt(0.02 + 0.02**2 + (0.1 / 5.1) ** 2)
    upper = math.exp(math.log(5.1 / 5.0) + Z1 * sd) - 1.0
    assert event["evidence"]["upper_bound_increase"] == pytest.approx(upper, rel=1e-4)
    assert upper < GUIDANCE["homing_failure"]["min_increase"]
    assert event["confidence"] > 0.99


def test_no_homing_failure_when_cells_arrive_or_the_data_cannot_tell() -> None:
    assert not homing_failure_events(_homing(12.0))  # homed (car_t_homing instead)
    events = guidance_events(_homing(12.0))
    assert [e["type"] for e in events] == ["car_t_homing"]
    assert not homing_failure_events(_homing(5.1, se=2.5))  # too noisy to exclude homing
    assert not homing_failure_events(_homing(5.1, target_positive=False))  # no target: not expected
    assert homing_failure_events(_homing(5.1, target_positive=True))
    # CD8 immuno-PET also sees endogenous T cells: no negative call from it (guidance.toml).
    assert not homing_failure_events(_homing(5.1, target="CD8"))


def test_homing_failure_of_directly_labelled_cells_against_muscle() -> None:
    def labelled(lesion: float, day: float = 2.0) -> dict[str, Any]:
        doc = Doc("PSCA").lesion("L001")
        doc.scan("TP01", day, "zr", "ex vivo cell label", 24.0 * day)
        doc.measure("L001", "TP01", "zr", lesion).measure("muscle", "TP01", "zr", 1.0)
        return doc.document()

    # Upper bound 1.2 exp(1.645 x 0.1) = 1.41 < 2 (min_label_ratio).
    (event,) = homing_failure_events(labelled(1.2))
    assert event["evidence"]["upper_bound_ratio"] == pytest.approx(1.2 * math.exp(Z1 * WCV))
    assert event["evidence"]["basis"].startswith("lesion-to-reference")
    assert not homing_failure_events(labelled(5.0))
    assert not homing_failure_events(labelled(1.2, day=1.0))  # before the window


def test_homing_failure_of_directly_labelled_cells_without_enrichment() -> None:
    # A label injected with the cells: SUV = labelled-cell density over the body's average.
    def labelled(lesion: float, muscle: float | None) -> dict[str, Any]:
        doc = Doc("PSCA").lesion("L001")
        doc.scan("TP01", 2.0, "zr", "ex vivo cell label", 48.0)
        doc.measure("L001", "TP01", "zr", lesion, 0.02 * lesion)
        if muscle is not None:
            doc.measure("muscle", "TP01", "zr", muscle)
        return doc.document()

    # No reference organ: SUV 0.8, sd sqrt(0.02^2 + 0.1^2), upper bound 0.8 exp(1.645 sd) < 1.
    (event,) = homing_failure_events(labelled(0.8, None))
    sd = math.hypot(0.02, WCV)
    assert event["evidence"]["upper_bound_suv"] == pytest.approx(0.8 * math.exp(Z1 * sd))
    assert event["evidence"]["max_label_suv"] == 1.0
    assert "upper_bound_ratio" not in event["evidence"]
    assert event["confidence"] == pytest.approx(NormalDist().cdf(math.log(1.0 / 0.8) / sd))
    # SUV 0.9: upper bound 0.9 exp(1.645 sd) = 1.06 >= 1, enrichment not excluded.
    assert not homing_failure_events(labelled(0.9, None))
    # Muscle at 0.2: lesion-to-muscle 4 >= 2, but the SUV test still calls it (both bounds kept).
    (event,) = homing_failure_events(labelled(0.6, 0.2))
    assert event["evidence"]["basis"].startswith("lesion SUV")
    assert event["evidence"]["upper_bound_ratio"] > 2.0 > event["evidence"]["upper_bound_suv"]


# --------------------------------------------------------------------------- all rules


def test_every_event_has_the_common_shape_and_is_json() -> None:
    docs = [_lineage(2.0, 8.0), _checkpoint(2.0, 4.5), _activation(40.0), _hypoxia("CAIX", 3.0)]
    docs += [_off_tumor("CAIX", "liver_reference", 11.8), _homing(5.1)]
    keys = {"event_id", "type", "voi_id", "site", "centroid_lps_mm", "day", "timepoint_id"}
    evidence = {"tracer", "metric", "baseline", "current", "change", "relative_change"}
    evidence |= {"uncertainty", "threshold", "log_ratio_sd", "z", "significant", "wcv"}
    seen = set()
    for doc in docs:
        for event in guidance_events(doc):
            assert keys <= set(event)
            assert evidence <= set(event["evidence"])
            assert 0.0 <= event["confidence"] <= 1.0
            ev = event["evidence"]
            assert ev["change"] == pytest.approx(ev["current"] - ev["baseline"])
            assert ev["uncertainty"] == pytest.approx(abs(ev["current"]) * ev["log_ratio_sd"])
            json.dumps(event, allow_nan=False)
            seen.add(event["type"])
    assert {
        "lineage_switch",
        "checkpoint_upregulation",
        "t_cell_activation",
        "hypoxia",
        "on_target_off_tumor",
        "homing_failure",
    } <= seen


# --------------------------------------------------------------------------- ASTCT grades


def test_astct_grades_per_day_from_a_manifest() -> None:
    from immunopet.io.manifest import parse_manifest

    manifest = parse_manifest(
        {
            "car_t": {"target": "CD19", "infusion_datetime": "2024-05-06T09:30:00"},
            "age_years": 61,
            "clinical": [
                # Lee 2019 CRS table: fever + low-flow cannula -> grade 2; ICE 7-9 -> ICANS 1.
                {
                    "day": 2,
                    "temperature_c": 38.9,
                    "hypotension": "none",
                    "oxygen": "low_flow_nasal_cannula",
                    "ice_score": 8,
                    "consciousness": "alert",
                    "seizure": "none",
                    "motor": "none",
                    "intracranial": "none",
                    "tocilizumab": True,
                },
                # Fever gone after tocilizumab, one vasopressor -> CRS 3 (fever not required);
                # ICE 0-2 -> ICANS 3.
                {
                    "day": 3,
                    "temperature_c": 37.2,
                    "vasopressors": 1,
                    "oxygen": "none",
                    "ice_score": 2,
                    "consciousness": "alert",
                    "seizure": "none",
                    "motor": "none",
                    "intracranial": "none",
                },
                {"day": 5, "il6_pg_per_ml": 40.0},  # laboratory only: not graded
            ],
        }
    )
    days = astct_grades(manifest)
    assert [(d["day"], d["crs_grade"], d["icans_grade"]) for d in days] == [(2, 2, 1), (3, 3, 3)]
    assert days[0]["crs_deciding"] == ["hypoxia"]
    assert days[0]["crs_fever_required"]
    assert not days[1]["crs_fever_required"]
    assert days[1]["crs_deciding"] == ["hypotension"]
    assert days[1]["inputs"]["hypotension"] == "one_vasopressor"
    assert days[1]["inputs"]["temperature_c"] == 37.2
    assert days[1]["icans_tool"] == "ICE"
    assert all(d["crs_complete"] for d in days)
    assert all(d["icans_complete"] for d in days)
    json.dumps(days, allow_nan=False)


def test_astct_grades_from_observations_and_nothing() -> None:
    child = ClinicalObservation(
        age_years=8, temperature_c=38.0, hypotension="none", oxygen="none", capd_score=9
    )
    (day,) = astct_grades({0: child})
    # Fever >= 38.0 alone: CRS 1; CAPD >= 9: ICANS 3 (children, Lee 2019).
    assert (day["crs_grade"], day["icans_grade"], day["icans_tool"]) == (1, 3, "CAPD")
    assert day["icans_missing"]  # consciousness, seizure ... not recorded: a lower bound
    assert astct_grades(None) == []
    with pytest.raises(InputError, match="Manifest"):
        astct_grades(42)  # type: ignore[arg-type]
