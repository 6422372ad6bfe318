"""Benchmark: analysis accuracy on virtual cohorts: detection, tracking, SUVs, uncertainties.

The acceptance figures of issue 5, measured on patients drawn from the built-in adult
scenarios with lesions and FDG (:data:`SCENARIOS`), ``--patients N`` per scenario (fixed
seeds), simulated at the adult default of 4 mm voxels (``--voxel-mm``) with clinical
activities and counting noise, and analysed in process with
:func:`immunopet.pipeline.analyze_study` (the job of ``immunopet analyze``).

**Scan schedule: the clinical pairing** of ``benchmarks/simulate.py`` and
``tests/pipeline/test_analyze.py``, at the scenario's own FDG days: at each visit
[¹⁸F]FDG imaged 1 h after injection and the ⁶⁴Cu-CD19 antibody (``cd19_igg`` of the built-in
``cd19_negative_relapse`` scenario, 185 MBq) injected the day before and imaged 26 h after
injection, both with the visit's CT. Every other entry of the scenario (patients, lesions,
inflammation, events) is the built-in one; its other tracers are not imaged (and dropped,
with the inflammation entries that touched only them). The added and dropped tracers have
fixed activities, so the patients are those of ``draw_cohort(built-in scenario, N,
seed=COHORT_SEED + scenario index)``.

**Ground truth** is ``truth.json`` of the simulator (never read by the analysis). Figures:

* *Detection*, per FDG scan: each true lesion present at the visit
  (``timepoints[visit].lesion_centroids_lps_mm`` / ``lesion_diameters_mm``) is detected when a
  lesion the analysis found at that timepoint (``lesions[].timepoints[TP].centroid_lps_mm``,
  the same scan coordinates) lies within max(radius, 10 mm) of its centroid. Sensitivity for
  lesions ≥ 15 mm (target ≥ 0.95) and per size bin; a found lesion near no true lesion is a
  false lesion (target ≤ 0.1 per scan).
* *Matching*: for each true lesion detected at ≥ 2 timepoints, its nearest detection at every
  timepoint must carry one tracking ID throughout, and that ID must be the nearest detection
  of no other true lesion (target ≥ 0.95 of such lesions).
* *SUVmean* of lesions ≥ 20 mm (true diameter at the visit) on every tracer of the visit,
  judged on the **partial-volume corrected** mean (target: ≥ 95 % of measurements within
  10 %): FDG ``suv_mean_pvc`` against the true ``suv_bw``, the antibody's ``suv_mean_pvc /
  suv_bw_factor`` (Bq/mL, the scan's own factor) against the true ``lesion_bq_per_ml``. The
  correction is the analysis' own (geometric transfer matrix with the manifest's
  ``psf_fwhm_mm``; the output prints ``methods.partial_volume`` and the PSF the simulator
  applied); a lesion without a corrected mean counts as outside. The uncorrected means (FDG
  ``suv_mean``, antibody ``mean_bq_per_ml``) are printed beside it, with median and 95th
  percentile errors and size bins for both. Organ means (organ VOIs mapped to phantom
  labels, :data:`ORGAN_TRUTH`) are judged uncorrected (target: ≥ 95 % within 5 %); the
  whole-organ GTM means are listed without a target.
* *Uncertainty coverage*: the fraction of measurements with |measured − reference| ≤
  1.96 × SE (``mean_bq_per_ml_se``; target 0.95, judged by whether the Wilson 95 % interval of
  the fraction holds 0.95). The SE states count statistics only. Against the *truth*, the
  partial-volume bias of a VOI (resolution blur spilling activity across its edge, and the
  threshold VOI of a lesion) is not in the SE, so lesions are expected to cover less. The
  honest check of the SE is against the *noiseless twin*: the same patient simulated with
  ``noiseless=True`` (the expected image), read through the same reader and SUV engine, and
  averaged over exactly the VOI the analysis used on the noisy image (lesions: from the VOI
  label map; organs: ``segment_organs`` on the same CT and SUV image as the analysis, whole or
  eroded by one voxel; a VOI whose voxel count differs from the measurement's is skipped and
  counted as not recoverable). Then measured − noiseless is pure counting noise, apart from
  the selection of threshold-lesion VOIs by the noise itself. The corrected lesion means are
  checked against the truth directly: ``suv_mean_pvc ± 1.96 × suv_mean_pvc_se`` (the GTM
  propagates the count-statistics SE; it has no partial-volume bias left to miss, only the
  errors of the PSF, the VOI borders and non-uniform uptake).

Work files go to a new temporary folder under /tmp, deleted at the end unless ``--keep``;
``--work DIR`` writes into DIR instead (its patient folders must not exist) and keeps it.
This is a measurement, not a test: the exit status is 0 whether or not targets are met and 1
only when a simulation or an analysis fails.

Usage::

    python benchmarks/detection.py                  # 7 scenarios x 5 patients, 2 processes
    python benchmarks/detection.py --patients 2 --jobs 1
    python benchmarks/detection.py --quick          # 2 scenarios x 2 patients (script check)
    python benchmarks/detection.py --json /tmp/detection.json   # every row, for diagnosis
    python benchmarks/detection.py --patients 3                 # 21 patients, ~18 min on 2 cores
    python benchmarks/detection.py --psf-fwhm-mm 5.3            # PVC with a mis-stated PSF
    python benchmarks/detection.py --events --patients 50       # and issue 6's event figures
    python benchmarks/detection.py --events-only --quick        # event figures only (check)

The guidance-event figures of issue 6 (sensitivity per event type and scenario, per-lesion
antigen loss, complete responses without false events, the smallest antigen drop detected
with 80 % sensitivity) are measured by ``benchmarks/events.py``; ``--events`` runs it here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: Built-in adult scenarios with lesions and FDG (CD19 CAR T cells, so the CD19 antibody fits).
SCENARIOS = (
    "complete_response",
    "cd19_negative_relapse",
    "crs",
    "icans",
    "t_cell_exhaustion",
    "trogocytosis",
    "lineage_switch",
)
QUICK_SCENARIOS = ("cd19_negative_relapse", "complete_response")
QUICK_PATIENTS = 2
DEFAULT_PATIENTS = 5
#: Cohort seed of the first scenario; scenario i draws its cohort with COHORT_SEED + i (so
#: the scenarios' patients are not drawn from the same random streams) and the noise of its
#: patient j from ``default_rng([COHORT_SEED, i, j])``.
COHORT_SEED = 2026
#: The second tracer of the clinical pairing and the scenario it is taken from.
PAIRED_TRACER = "cd19_igg"
PAIRED_SOURCE = "cd19_negative_relapse"
FDG_DELAY_H = 1.0
PAIRED_INJECTION_DAYS_BEFORE = 1.0
PAIRED_DELAY_H = 26.0

#: Matching gate: max(radius, this), mm.
GATE_MIN_MM = 10.0
#: Size bins of the true diameter at the visit, mm: (label, low, high).
SIZE_BINS = (("<10", 0.0, 10.0), ("10-15", 10.0, 15.0), ("15-20", 15.0, 20.0), (">=20", 20.0, 1e9))
#: Size bins (mm) of the lesion-mean errors in the detailed table (the target is for ≥ 20).
LESION_ERROR_BINS = (
    ("< 15", 0.0, 15.0),
    ("15-20", 15.0, 20.0),
    ("20-25", 20.0, 25.0),
    ("25-35", 25.0, 35.0),
    ("≥ 35", 35.0, 1e9),
)
#: Size bins (mm) of the partial-volume corrected lesion-mean errors.
PVC_ERROR_BINS = (
    ("< 15", 0.0, 15.0),
    ("15-20", 15.0, 20.0),
    ("20-25", 20.0, 25.0),
    ("≥ 25", 25.0, 1e9),
)
#: Targets of the issue.
SENSITIVITY_MIN_DIAMETER_MM = 15.0
TARGET_SENSITIVITY = 0.95
TARGET_FALSE_PER_SCAN = 0.1
TARGET_MATCHING = 0.95
SUV_MIN_DIAMETER_MM = 20.0
TARGET_LESION_REL_ERROR = 0.10
TARGET_ORGAN_REL_ERROR = 0.05
#: Fraction of measurements that must be within the relative-error target.
TARGET_WITHIN_FRACTION = 0.95
TARGET_COVERAGE = 0.95
Z_95 = 1.959963984540054

#: Organ VOI of the analysis -> phantom label of truth.json. The reference spheres sit in
#: the liver and the blood pool (the phantom's ``heart`` label is the blood pool).
ORGAN_TRUTH = {
    "liver_reference": "liver",
    "blood_pool_reference": "heart",
    "spleen": "spleen",
    "kidneys": "kidneys",
    "brain": "brain",
    "lungs": "lungs",
    "red_marrow": "red_marrow",
    "urinary_bladder": "urinary_bladder",
}
#: Large uniform organ VOIs: the coverage against the truth is judged on these.
UNIFORM_ORGANS = ("liver_reference", "blood_pool_reference", "spleen")


# -- scenario and patients -------------------------------------------------------------------


def _builtin(name: str) -> dict[str, Any]:
    source = resources.files("immunopet.simulate") / "scenarios" / f"{name}.yaml"
    loaded: dict[str, Any] = yaml.safe_load(source.read_text(encoding="utf-8"))
    return loaded


def write_scenario(name: str, folder: Path) -> Path:
    """Write the built-in scenario ``name`` with the clinical pairing to ``folder/name.yaml``."""
    scenario = _builtin(name)
    fdg_keys = [t["key"] for t in scenario["tracers"] if "fdg" in str(t.get("agent", "")).lower()]
    if len(fdg_keys) != 1:
        raise SystemExit(f"scenario {name} has {len(fdg_keys)} FDG tracers, need 1")
    fdg = fdg_keys[0]
    if PAIRED_TRACER not in {t["key"] for t in scenario["tracers"]}:
        paired = next(t for t in _builtin(PAIRED_SOURCE)["tracers"] if t["key"] == PAIRED_TRACER)
        scenario["tracers"].append(paired)
    days = sorted({float(s["injection_day"]) for s in scenario["scans"] if s["tracer"] == fdg})
    scenario["scans"] = [
        scan
        for day in days
        for scan in (
            {"tracer": fdg, "injection_day": day, "scan_delays_h": [FDG_DELAY_H]},
            {
                "tracer": PAIRED_TRACER,
                "injection_day": day - PAIRED_INJECTION_DAYS_BEFORE,
                "scan_delays_h": [PAIRED_DELAY_H],
            },
        )
    ]
    # Tracers not imaged are dropped (the scenario schema refuses unscanned tracers), and so
    # are inflammation entries that touched only them. Their activities are fixed and such
    # an entry is the last draw of a built-in file, so the other draws are unchanged.
    kept = {fdg, PAIRED_TRACER}
    scenario["tracers"] = [t for t in scenario["tracers"] if t["key"] in kept]
    inflammation = []
    for item in scenario.get("inflammation", []):
        if "tracers" in item:
            item["tracers"] = [key for key in item["tracers"] if key in kept]
            if not item["tracers"]:
                continue
        inflammation.append(item)
    if "inflammation" in scenario:
        scenario["inflammation"] = inflammation
    scenario["description"] = f"detection benchmark: {name} with FDG + {PAIRED_TRACER} per visit"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Job:
    """One virtual patient to simulate, analyse and score."""

    scenario: str
    scenario_path: Path
    index: int
    work: Path
    voxel_mm: float
    #: PSF FWHM given to the analysis, mm (None: the manifest's, as ``immunopet analyze``).
    psf_fwhm_mm: float | None = None

    @property
    def cohort_seed(self) -> int:
        return COHORT_SEED + SCENARIOS.index(self.scenario)

    @property
    def noise_seed(self) -> list[int]:
        return [COHORT_SEED, SCENARIOS.index(self.scenario), self.index]


# -- geometry and truth helpers --------------------------------------------------------------


def _distance_mm(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.linalg.norm(np.subtract(a, b)))


def _size_bin(diameter_mm: float) -> str:
    return next(label for label, low, high in SIZE_BINS if low <= diameter_mm < high)


def _tissue_at(labels: Any, names: dict[int, str], point_lps_mm: Sequence[float]) -> str:
    """Truth tissue label at a point (for describing false lesions)."""
    index = np.rint(labels.lps_to_index(np.asarray(point_lps_mm, dtype=float))).astype(int)
    if np.any(index < 0) or np.any(index >= np.asarray(labels.shape)):
        return "outside"
    return names.get(int(labels.array[tuple(index)]), "?")


def _noiseless_activity(path: Path) -> Any:
    """Bq/mL Volume of a series through the same reader and SUV engine as the analysis."""
    from immunopet.io import load_scan
    from immunopet.quant import standardize_scan

    return standardize_scan(load_scan(path)).activity


# -- one patient -----------------------------------------------------------------------------


def run_patient(job: Job) -> dict[str, Any]:
    """Simulate (noisy and noiseless twin), analyse and score one patient; plain-data rows."""
    try:
        return _run_patient(job)
    except Exception as error:  # reported, the run goes on with the other patients
        return {
            "scenario": job.scenario,
            "index": job.index,
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
        }


def _run_patient(job: Job) -> dict[str, Any]:
    from immunopet.pipeline import AnalysisOptions, analyze_study
    from immunopet.simulate import draw_cohort, load_scenario
    from immunopet.simulate._patient import simulate_patient

    scenario = load_scenario(job.scenario_path)
    patient = draw_cohort(scenario, job.index + 1, seed=job.cohort_seed)[job.index]
    folder = job.work / job.scenario / patient.patient_id
    twin = job.work / job.scenario / f"{patient.patient_id}_noiseless"
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    truth = simulate_patient(
        patient, folder, rng=np.random.default_rng(job.noise_seed), voxel_mm=job.voxel_mm
    )
    seconds["simulate"] = time.perf_counter() - started
    started = time.perf_counter()
    simulate_patient(
        patient, twin, noiseless=True, rng=np.random.default_rng(0), voxel_mm=job.voxel_mm
    )
    seconds["simulate_noiseless"] = time.perf_counter() - started
    started = time.perf_counter()
    result = analyze_study(folder, AnalysisOptions(psf_fwhm_mm=job.psf_fwhm_mm))
    seconds["analyze"] = time.perf_counter() - started
    started = time.perf_counter()
    rows = score_patient(job.scenario, truth, result, folder, twin)
    seconds["score"] = time.perf_counter() - started
    rows.update(
        scenario=job.scenario,
        index=job.index,
        patient_id=patient.patient_id,
        seconds=seconds,
        not_simulated=truth["not_simulated"],
    )
    return rows


def score_patient(
    scenario: str, truth: dict[str, Any], result: Any, folder: Path, twin: Path
) -> dict[str, Any]:
    """Compare one patient's StudyResult with its truth.json; rows of plain data."""
    from immunopet.image import Quantity
    from immunopet.io.nifti import read_nifti

    doc = result.to_dict()
    patient = truth["patient"]["patient_id"]
    lesion_tracer = doc["study"]["lesion_tracer"]
    folders = sorted(truth["timepoints"], key=lambda k: truth["timepoints"][k]["day"])
    timepoints = sorted(doc["timepoints"], key=lambda tp: tp["day"])
    days_truth = [round(truth["timepoints"][f]["day"], 2) for f in folders]
    days_found = [round(tp["day"], 2) for tp in timepoints]
    if days_truth != days_found:
        raise RuntimeError(f"timepoints differ: truth days {days_truth}, analysis {days_found}")
    truth_scans = {(s["folder"].split("/")[0], s["tracer"]): s for s in truth["scans"]}
    measured = {
        (m["voi_type"], m["voi_id"], m["timepoint_id"], m["tracer"]): m for m in doc["measurements"]
    }
    detections_rows: list[dict[str, Any]] = []
    false_rows: list[dict[str, Any]] = []
    scans = 0
    nearest: dict[str, dict[str, str]] = {}  # true lesion -> {TP: tracking id}
    for tp, visit in zip(timepoints, folders, strict=True):
        tp_id = tp["timepoint_id"]
        if lesion_tracer not in {scan["tracer"] for scan in tp["scans"]}:
            continue
        scans += 1
        true_tp = truth["timepoints"][visit]
        fdg_truth = truth_scans.get((visit, lesion_tracer), {})
        found = [
            (lesion["tracking_id"], state["centroid_lps_mm"])
            for lesion in doc["lesions"]
            if (state := lesion["timepoints"][tp_id])["detected"]
        ]
        used: set[str] = set()
        for name, diameter in true_tp["lesion_diameters_mm"].items():
            centre = true_tp["lesion_centroids_lps_mm"][name]
            gate = max(diameter / 2.0, GATE_MIN_MM)
            distances = sorted((_distance_mm(c, centre), tid) for tid, c in found)
            near = [tid for d, tid in distances if d <= gate]
            used.update(near)
            if near:
                nearest.setdefault(name, {})[tp_id] = near[0]
            detections_rows.append(
                {
                    "scenario": scenario,
                    "patient": patient,
                    "timepoint": tp_id,
                    "day": tp["day"],
                    "lesion": name,
                    "site": true_tp["lesion_sites"].get(name, ""),
                    "diameter_mm": diameter,
                    "true_suv": fdg_truth.get("suv_bw", {}).get(name),
                    "detected": bool(near),
                    "n_detections": len(near),
                    "nearest_mm": distances[0][0] if distances else None,
                }
            )
        unmatched = [(tid, c) for tid, c in found if tid not in used]
        if unmatched:
            labels = read_nifti(folder / true_tp["labels_file"], quantity=Quantity.UNITLESS)
            names = {int(i): n for n, i in true_tp["labels"].items()}
            for tid, centre in unmatched:
                m = measured.get(("lesion", tid, tp_id, lesion_tracer), {})
                false_rows.append(
                    {
                        "scenario": scenario,
                        "patient": patient,
                        "timepoint": tp_id,
                        "day": tp["day"],
                        "tracking_id": tid,
                        "centroid_lps_mm": centre,
                        "tissue": _tissue_at(labels, names, centre),
                        "suv_max": m.get("suv_max"),
                        "volume_ml": m.get("volume_ml"),
                    }
                )
    # Tracking: one ID per true lesion throughout, no ID shared by two true lesions.
    owners: dict[str, set[str]] = {}
    for name, per_tp in nearest.items():
        for tid in per_tp.values():
            owners.setdefault(tid, set()).add(name)
    tracking_rows = [
        {
            "scenario": scenario,
            "patient": patient,
            "lesion": name,
            "timepoints": len(per_tp),
            "ids": sorted(set(per_tp.values())),
            "correct": len(set(per_tp.values())) == 1
            and all(owners[tid] == {name} for tid in per_tp.values()),
        }
        for name, per_tp in nearest.items()
        if len(per_tp) >= 2
    ]
    quant_rows = _quantification_rows(
        scenario, patient, truth, doc, result, folders, nearest, twin, folder
    )
    return {
        "fdg_scans": scans,
        "detections": detections_rows,
        "false_lesions": false_rows,
        "tracking": tracking_rows,
        "quantification": quant_rows,
        # The correction the analysis states, and the PSF the simulator actually applied.
        "partial_volume": doc["methods"].get("partial_volume", "not stated"),
        "true_psf_fwhm_mm": sorted(
            {float(s["resolution_fwhm_mm"]) for s in truth["scans"] if "resolution_fwhm_mm" in s}
        ),
    }


def _quantification_rows(
    scenario: str,
    patient: str,
    truth: dict[str, Any],
    doc: dict[str, Any],
    result: Any,
    folders: Sequence[str],
    nearest: dict[str, dict[str, str]],
    twin: Path,
    folder: Path,
) -> list[dict[str, Any]]:
    """One row per (lesion ≥ any size detected | mapped organ) × tracer × timepoint."""
    lesion_tracer = doc["study"]["lesion_tracer"]
    truth_scans = {(s["folder"].split("/")[0], s["tracer"]): s for s in truth["scans"]}
    measured = {
        (m["voi_type"], m["voi_id"], m["timepoint_id"], m["tracer"]): m for m in doc["measurements"]
    }
    timepoints = sorted(doc["timepoints"], key=lambda tp: tp["day"])
    rows: list[dict[str, Any]] = []
    for tp, visit in zip(timepoints, folders, strict=True):
        tp_id = tp["timepoint_id"]
        true_tp = truth["timepoints"][visit]
        label_map = result.label_maps.get(tp_id)
        organs = _organ_masks(tp, lesion_tracer)
        vois: list[tuple[str, str, str, float | None]] = []  # (type, voi id, truth name, diam)
        for name, per_tp in nearest.items():
            if tp_id in per_tp:
                vois.append(("lesion", per_tp[tp_id], name, true_tp["lesion_diameters_mm"][name]))
        vois.extend(("organ", organ, label, None) for organ, label in ORGAN_TRUTH.items())
        for scan in tp["scans"]:
            tracer = scan["tracer"]
            truth_scan = truth_scans[(visit, tracer)]
            series = Path(scan["path"])
            noiseless = _noiseless_activity(twin / series.relative_to(folder))
            for voi_type, voi_id, name, diameter in vois:
                m = measured.get((voi_type, voi_id, tp_id, tracer))
                table = "lesion_bq_per_ml" if voi_type == "lesion" else "organ_bq_per_ml"
                if m is None or name not in truth_scan[table]:
                    continue
                true_bq = float(truth_scan[table][name])
                if tracer == lesion_tracer and "suv_bw" in truth_scan:
                    value, true_value = float(m["suv_mean"]), float(truth_scan["suv_bw"][name])
                    quantity = "SUVmean"
                else:
                    value, true_value = float(m["mean_bq_per_ml"]), true_bq
                    quantity = "Bq/mL"
                candidates = _voi_candidates(voi_type, voi_id, label_map, organs, noiseless)
                same_voi = _same_voi_mean(candidates, m["n_voxels"], noiseless)
                # Partial-volume corrected mean (GTM) in the quantity of ``measured``: SUV on
                # the lesion tracer, else Bq/mL = SUV / suv_bw_factor (the scan's own factor).
                pvc = pvc_se = None
                if m.get("suv_mean_pvc") is not None:
                    per = 1.0 if quantity == "SUVmean" else 1.0 / float(scan["suv_bw_factor"])
                    pvc = float(m["suv_mean_pvc"]) * per
                    if m.get("suv_mean_pvc_se") is not None:
                        pvc_se = float(m["suv_mean_pvc_se"]) * per
                rows.append(
                    {
                        "scenario": scenario,
                        "patient": patient,
                        "timepoint": tp_id,
                        "day": tp["day"],
                        "tracer": tracer,
                        "voi_type": voi_type,
                        "voi": voi_id,
                        "truth_name": name,
                        "diameter_mm": diameter,
                        "quantity": quantity,
                        "measured": value,
                        "truth": true_value,
                        "rel_error": (value - true_value) / true_value if true_value else None,
                        "measured_bq_per_ml": float(m["mean_bq_per_ml"]),
                        "truth_bq_per_ml": true_bq,
                        "se_bq_per_ml": m["mean_bq_per_ml_se"],
                        "noiseless_bq_per_ml": same_voi,
                        "n_voxels": m["n_voxels"],
                        "pvc": pvc,
                        "pvc_se": pvc_se,
                        "pvc_rel_error": (pvc - true_value) / true_value
                        if pvc is not None and true_value
                        else None,
                    }
                )
    return rows


def _organ_masks(tp: dict[str, Any], lesion_tracer: str) -> tuple[Any, dict[str, Any]]:
    """The CT and the organ masks the analysis segments for one timepoint (its own inputs).

    The analysis (no user masks here) runs ``segment_organs(CT, SUV of the lesion tracer)``;
    the same call on the same files gives the same masks. Each use is checked against the
    measurement's voxel count, so a change in the analysis shows as "not recoverable".
    """
    from immunopet.image import Quantity
    from immunopet.io import load_scan
    from immunopet.lesions import segment_organs
    from immunopet.quant import standardize_scan

    ct = load_scan(tp["ct_path"], series_uid=tp["ct_series_uid"]).volume
    scan = next(s for s in tp["scans"] if s["tracer"] == lesion_tracer)
    standardized = standardize_scan(load_scan(scan["path"], series_uid=scan["series_uid"]))
    suv = standardized.activity.with_array(
        np.asarray(standardized.activity.array, dtype=np.float32)
        * np.float32(standardized.factors.suv_bw_factor),
        Quantity.SUV_BW,
    )
    return ct, dict(segment_organs(ct, suv).masks)


def _on_grid(mask: Any, source: Any, target: Any) -> Any:
    if source.same_grid(target):
        return mask
    return np.asarray(source.mask(mask).resample_to(target, order=0).array, dtype=bool)


def _same_voi_mean(candidates: Sequence[Any], n_voxels: int, noiseless: Any) -> float | None:
    """Mean of the noiseless image over the candidate mask with the analysis' voxel count.

    None when no candidate has exactly ``n_voxels`` voxels (the VOI is not recoverable).
    """
    for mask in candidates:
        if int(mask.sum()) == int(n_voxels):
            return float(np.mean(np.asarray(noiseless.array, dtype=np.float64)[mask]))
    return None


def _voi_candidates(
    voi_type: str, voi_id: str, label_map: Any, organs: tuple[Any, dict[str, Any]], grid: Any
) -> list[Any]:
    """Masks on ``grid`` that may be the analysis' VOI (lesion: label map; organ: whole/core)."""
    from scipy import ndimage

    if voi_type == "lesion":
        ids = [i for i, n in label_map.names.items() if n == voi_id] if label_map else []
        if len(ids) != 1:
            return []
        labels = label_map.labels
        return [_on_grid(np.asarray(labels.array == ids[0]), labels, grid)]
    ct, masks = organs
    if voi_id not in masks:
        return []
    whole = _on_grid(np.asarray(masks[voi_id], dtype=bool), ct, grid)
    return [whole, ndimage.binary_erosion(whole)]


# -- figures ---------------------------------------------------------------------------------


def _wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    z2 = Z_95 * Z_95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (centre - half, centre + half)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("pass" if ok else "FAIL")


def _coverage_verdict(covered: int, n: int) -> str:
    if n == 0:
        return "n/a"
    low, high = _wilson(covered, n)
    if low > TARGET_COVERAGE:
        return "conservative"
    return "pass" if high >= TARGET_COVERAGE else "FAIL"


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


@dataclass
class Figures:
    """The acceptance figures of one group of patients."""

    rows: list[tuple[str, str, str, str]]  # (figure, value, target, verdict)


def figures(records: Sequence[dict[str, Any]], *, detailed: bool = False) -> Figures:
    """Acceptance figures of a group of patient records (``detailed``: with breakdowns)."""
    detections = [row for r in records for row in r["detections"]]
    false = [row for r in records for row in r["false_lesions"]]
    tracking = [row for r in records for row in r["tracking"]]
    quant = [row for r in records for row in r["quantification"]]
    scans = sum(r["fdg_scans"] for r in records)
    out: list[tuple[str, str, str, str]] = []

    big = [d for d in detections if d["diameter_mm"] >= SENSITIVITY_MIN_DIAMETER_MM]
    hit = sum(d["detected"] for d in big)
    sensitivity = hit / len(big) if big else math.nan
    out.append(
        (
            "sensitivity, lesions ≥ 15 mm",
            f"{sensitivity:.3f} ({hit}/{len(big)})",
            f"≥ {TARGET_SENSITIVITY}",
            _verdict(None if not big else sensitivity >= TARGET_SENSITIVITY),
        )
    )
    if detailed:
        for label, low, high in SIZE_BINS:
            group = [d for d in detections if low <= d["diameter_mm"] < high]
            found = sum(d["detected"] for d in group)
            value = f"{found / len(group):.3f} ({found}/{len(group)})" if group else "none"
            out.append((f"  sensitivity {label} mm", value, "", ""))
    per_scan = len(false) / scans if scans else math.nan
    out.append(
        (
            "false lesions per FDG scan",
            f"{per_scan:.3f} ({len(false)}/{scans})",
            f"≤ {TARGET_FALSE_PER_SCAN}",
            _verdict(None if not scans else per_scan <= TARGET_FALSE_PER_SCAN),
        )
    )
    correct = sum(t["correct"] for t in tracking)
    accuracy = correct / len(tracking) if tracking else math.nan
    out.append(
        (
            "matching accuracy (lesions found at ≥ 2 TPs)",
            f"{accuracy:.3f} ({correct}/{len(tracking)})",
            f"≥ {TARGET_MATCHING}",
            _verdict(None if not tracking else accuracy >= TARGET_MATCHING),
        )
    )
    lesion_rows = [q for q in quant if q["voi_type"] == "lesion"]
    lesions = [q for q in lesion_rows if q["diameter_mm"] >= SUV_MIN_DIAMETER_MM]
    organs = [q for q in quant if q["voi_type"] == "organ"]
    tracers = sorted({q["tracer"] for q in quant})
    target = TARGET_LESION_REL_ERROR
    # The "lesion SUVmean within 10 % of truth for lesions >= 20 mm", judged on the
    # partial-volume corrected mean; the uncorrected mean is printed beside it.
    out.append(_lesion_acceptance_row(lesions))
    out.extend(
        _error_rows(
            "  lesion ≥ 20 mm PVC, all tracers", lesions, target, key="pvc_rel_error", judged=False
        )
    )
    out.extend(
        _error_rows("  lesion ≥ 20 mm uncorrected, all tracers", lesions, target, judged=False)
    )
    if detailed:
        for tracer in tracers:
            group = [q for q in lesions if q["tracer"] == tracer]
            out.extend(
                _error_rows(f"  lesion ≥ 20 mm PVC, {tracer}", group, target, key="pvc_rel_error")
            )
            out.extend(
                _error_rows(f"  lesion ≥ 20 mm uncorrected, {tracer}", group, target, judged=False)
            )
        for label, low, high in PVC_ERROR_BINS:
            group = [q for q in lesion_rows if low <= q["diameter_mm"] < high]
            out.extend(
                _error_rows(
                    f"  lesion PVC {label} mm",
                    group,
                    target,
                    key="pvc_rel_error",
                    judged=low >= SUV_MIN_DIAMETER_MM,
                )
            )
        for label, low, high in LESION_ERROR_BINS:
            group = [q for q in lesion_rows if low <= q["diameter_mm"] < high]
            out.extend(_error_rows(f"  lesion uncorrected {label} mm", group, target, judged=False))
    out.extend(_error_rows("organ means, all tracers", organs, TARGET_ORGAN_REL_ERROR))
    if detailed:
        for organ in ORGAN_TRUTH:
            for tracer in tracers:
                group = [q for q in organs if q["voi"] == organ and q["tracer"] == tracer]
                if group:
                    out.extend(_error_rows(f"  {organ}, {tracer}", group, TARGET_ORGAN_REL_ERROR))
        for organ in ORGAN_TRUTH:
            group = [q for q in organs if q["voi"] == organ]
            if any(q["pvc"] is not None for q in group):
                out.extend(
                    _error_rows(
                        f"  {organ} PVC (whole organ, all tracers)",
                        group,
                        TARGET_ORGAN_REL_ERROR,
                        key="pvc_rel_error",
                        judged=False,
                    )
                )
    uniform = [q for q in organs if q["voi"] in UNIFORM_ORGANS]
    truth_bq = ("measured_bq_per_ml", "truth_bq_per_ml", "se_bq_per_ml")
    twin_bq = ("measured_bq_per_ml", "noiseless_bq_per_ml", "se_bq_per_ml")
    truth_pvc = ("pvc", "truth", "pvc_se")
    coverage = [
        ("coverage vs truth, uniform organs", uniform, truth_bq),
        ("coverage vs truth, lesions ≥ 20 mm, PVC ± 1.96 SE", lesions, truth_pvc),
        ("coverage vs truth, lesions ≥ 20 mm, uncorrected", lesions, truth_bq),
        ("coverage vs noiseless twin, organs", organs, twin_bq),
        ("coverage vs noiseless twin, lesions", lesion_rows, twin_bq),
    ]
    if detailed:
        coverage[1:1] = [("coverage vs truth, all mapped organs", organs, truth_bq)]
        coverage[2:2] = [
            (f"  vs truth, {organ}", [q for q in organs if q["voi"] == organ], truth_bq)
            for organ in ORGAN_TRUTH
        ]
        at = next(i for i, row in enumerate(coverage) if "PVC" in row[0]) + 1
        coverage[at:at] = [
            (
                f"  vs truth, lesions ≥ 20 mm PVC, {tracer}",
                [q for q in lesions if q["tracer"] == tracer],
                truth_pvc,
            )
            for tracer in tracers
        ] + [
            (
                f"  vs truth, lesions PVC {label} mm",
                [q for q in lesion_rows if low <= q["diameter_mm"] < high],
                truth_pvc,
            )
            for label, low, high in PVC_ERROR_BINS
        ]
        for tracer in tracers:
            for kind, group in (("organs", organs), ("lesions", lesion_rows)):
                coverage.append(
                    (
                        f"  vs noiseless, {kind}, {tracer}",
                        [q for q in group if q["tracer"] == tracer],
                        twin_bq,
                    )
                )
    out.extend(_coverage_row(label, group, *keys) for label, group, keys in coverage)
    return Figures(out)


def _lesion_acceptance_row(lesions: Sequence[dict[str, Any]]) -> tuple[str, str, str, str]:
    """The issue's lesion-mean target on the PVC mean, with the uncorrected figure beside it.

    A lesion without a corrected mean (no PSF stated, or its VOI not a GTM region) counts as
    not within.
    """
    target = TARGET_LESION_REL_ERROR
    label = "lesion SUVmean ≥ 20 mm within 10 % of truth (judged on PVC)"
    if not lesions:
        return (label, "none", "", "n/a")
    n = len(lesions)
    pvc = [abs(q["pvc_rel_error"]) for q in lesions if q["pvc_rel_error"] is not None]
    raw = [abs(q["rel_error"]) for q in lesions if q["rel_error"] is not None]
    pvc_within = sum(e <= target for e in pvc)
    raw_within = sum(e <= target for e in raw)
    missing = n - len(pvc)
    value = (
        f"PVC {pvc_within / n:.3f} ({pvc_within}/{n}"
        + (f"; {missing} without PVC" if missing else "")
        + ")"
        + (
            f", abs. error median {100 * statistics.median(pvc):.1f} %, "
            f"P95 {100 * _percentile(pvc, 95):.1f} %"
            if pvc
            else ""
        )
        + f"; uncorrected {raw_within / n:.3f} ({raw_within}/{n})"
        + (
            f", median {100 * statistics.median(raw):.1f} %, P95 {100 * _percentile(raw, 95):.1f} %"
            if raw
            else ""
        )
    )
    verdict = _verdict(pvc_within / n >= TARGET_WITHIN_FRACTION)
    return (label, value, f"≥ {TARGET_WITHIN_FRACTION} within {100 * target:.0f} %", verdict)


def _error_rows(
    label: str,
    group: Sequence[dict[str, Any]],
    target: float,
    *,
    key: str = "rel_error",
    judged: bool = True,
) -> list[tuple[str, str, str, str]]:
    errors = [abs(q[key]) for q in group if q[key] is not None]
    missing = len(group) - len(errors)
    if not errors:
        return [(label, "none" if not group else f"none ({missing} without a value)", "", "n/a")]
    within = sum(e <= target for e in errors)
    fraction = within / len(errors)
    signed = statistics.median(q[key] for q in group if q[key] is not None)
    value = (
        f"within {100 * target:.0f} %: {fraction:.3f} ({within}/{len(errors)}); "
        f"abs. error median {100 * statistics.median(errors):.1f} %, "
        f"P95 {100 * _percentile(errors, 95):.1f} %; bias median {100 * signed:+.1f} %"
        + (f"; {missing} without a value" if missing else "")
    )
    if not judged:
        return [(label, value, "(not judged)", "")]
    return [
        (
            label,
            value,
            f"≥ {TARGET_WITHIN_FRACTION} within {100 * target:.0f} %",
            _verdict(fraction >= TARGET_WITHIN_FRACTION),
        )
    ]


def _coverage_row(
    label: str, group: Sequence[dict[str, Any]], value: str, reference: str, se: str
) -> tuple[str, str, str, str]:
    """Fraction of ``group`` with |value − reference| ≤ 1.96 × se (keys of the rows)."""
    usable = [
        q for q in group if q[value] is not None and q[se] is not None and q[reference] is not None
    ]
    skipped = len(group) - len(usable)
    covered = sum(abs(q[value] - q[reference]) <= Z_95 * q[se] for q in usable)
    n = len(usable)
    if n == 0:
        return (label, "none", f"{TARGET_COVERAGE}", "n/a")
    low, high = _wilson(covered, n)
    z = [(q[value] - q[reference]) / q[se] for q in usable]
    value_text = (
        f"{covered / n:.3f} ({covered}/{n}; 95 % CI {low:.2f}–{high:.2f}); "
        f"z median {statistics.median(z):+.2f}, SD {float(np.std(z, ddof=1)) if n > 1 else 0:.2f}"
        + (f"; {skipped} without a value" if skipped else "")
    )
    return (label, value_text, f"{TARGET_COVERAGE} (CI holds it)", _coverage_verdict(covered, n))


def _table(title: str, fig: Figures) -> str:
    lines = [f"#### {title}", "", "| figure | value | target | verdict |", "|---|---|---|---|"]
    lines.extend(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in fig.rows)
    return "\n".join(lines)


def _misses(records: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        for d in r["detections"]:
            if not d["detected"]:
                suv = "?" if d["true_suv"] is None else f"{d['true_suv']:.1f}"
                nearest = "none" if d["nearest_mm"] is None else f"{d['nearest_mm']:.0f} mm"
                lines.append(
                    f"- missed: {d['scenario']} {d['patient']} day {d['day']:+.0f} {d['lesion']} "
                    f"({d['site']}), {d['diameter_mm']:.1f} mm, true SUV {suv}, "
                    f"nearest detection {nearest}"
                )
        for f in r["false_lesions"]:
            suv = "?" if f["suv_max"] is None else f"{f['suv_max']:.1f}"
            volume = "?" if f["volume_ml"] is None else f"{f['volume_ml']:.1f}"
            lines.append(
                f"- false: {f['scenario']} {f['patient']} day {f['day']:+.0f} {f['tracking_id']} "
                f"in {f['tissue']} at {', '.join(f'{v:.0f}' for v in f['centroid_lps_mm'])} mm, "
                f"SUVmax {suv}, {volume} mL"
            )
        for t in r["tracking"]:
            if not t["correct"]:
                lines.append(
                    f"- tracking: {t['scenario']} {t['patient']} {t['lesion']} "
                    f"over {t['timepoints']} TPs has IDs {t['ids']}"
                )
    return lines


def _large_errors(records: Iterable[dict[str, Any]]) -> list[str]:
    """Organs outside 5 %; lesions ≥ 20 mm whose corrected mean is outside 10 % (or missing)."""
    lines = []
    for r in records:
        for q in r["quantification"]:
            if q["voi_type"] == "lesion":
                if q["diameter_mm"] < SUV_MIN_DIAMETER_MM:
                    continue
                error = q["pvc_rel_error"]
                if error is not None and abs(error) <= TARGET_LESION_REL_ERROR:
                    continue
            elif q["rel_error"] is None or abs(q["rel_error"]) <= TARGET_ORGAN_REL_ERROR:
                continue
            pv = (
                ""
                if q["noiseless_bq_per_ml"] is None
                else f", noiseless same VOI {100 * (q['noiseless_bq_per_ml'] / q['truth_bq_per_ml'] - 1):+.1f} %"
            )
            if q["pvc"] is None:
                pvc = "; PVC none"
            else:
                se = "" if q["pvc_se"] is None else f" ± {q['pvc_se']:.2g}"
                pvc = f"; PVC {q['pvc']:.3g}{se} ({100 * q['pvc_rel_error']:+.1f} %)"
            size = "" if q["diameter_mm"] is None else f" {q['diameter_mm']:.0f} mm"
            lines.append(
                f"- {q['scenario']} {q['patient']} day {q['day']:+.0f} {q['tracer']} "
                f"{q['voi_type']} {q['voi']} ({q['truth_name']}{size}, {q['n_voxels']} voxels): "
                f"{q['quantity']} {q['measured']:.3g} vs {q['truth']:.3g} "
                f"({100 * q['rel_error']:+.1f} %{pv}){pvc}"
            )
    return lines


def _commit() -> str:
    """HEAD commit id and subject, read from the repository files (no git command is run)."""
    import zlib

    git = Path(__file__).resolve().parents[1] / ".git"
    try:
        sha = (git / "HEAD").read_text(encoding="utf-8").strip()
        if sha.startswith("ref: "):
            ref = sha[5:]
            if (git / ref).exists():
                sha = (git / ref).read_text(encoding="utf-8").strip()
            else:
                packed = (git / "packed-refs").read_text(encoding="utf-8").splitlines()
                sha = next(line.split()[0] for line in packed if line.endswith(" " + ref))
        loose = git / "objects" / sha[:2] / sha[2:]
        if not loose.exists():
            return sha[:12]
        text = zlib.decompress(loose.read_bytes()).decode("utf-8", errors="replace")
        subject = text.split("\n\n", 1)[1].splitlines()[0] if "\n\n" in text else ""
        return f'{sha[:12]} "{subject}"'
    except (OSError, StopIteration, zlib.error, IndexError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--patients", type=int, default=DEFAULT_PATIENTS, metavar="N")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--voxel-mm", type=float, default=4.0)
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="patients in parallel, one process each (default: 2, or 1 on one CPU)",
    )
    parser.add_argument(
        "--psf-fwhm-mm",
        type=float,
        metavar="MM",
        help="PSF FWHM the analysis corrects with (default: the manifest's psf_fwhm_mm, "
        "i.e. the simulator's true PSF); another value measures a mis-stated resolution",
    )
    parser.add_argument("--quick", action="store_true", help="2 scenarios x 2 patients")
    parser.add_argument("--work", type=Path, help="work folder (default: a new one in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the simulated patients")
    parser.add_argument("--json", type=Path, help="write every scored row to this file")
    parser.add_argument(
        "--events",
        action="store_true",
        help="then print the guidance-event figures of issue 6 (benchmarks/events.py: every "
        "built-in scenario, --patients each, --jobs, --work/events when --work is given, "
        "its figures in JSON.events.json with --json JSON)",
    )
    parser.add_argument(
        "--events-only", action="store_true", help="only the guidance-event figures"
    )
    args = parser.parse_args(argv)
    if args.events or args.events_only:
        status = 0 if args.events_only else _detection(args, parser)
        return max(status, _events(args))
    return _detection(args, parser)


def _events(args: argparse.Namespace) -> int:
    """The guidance-event benchmark (issue 6) with this run's cohort size and processes."""
    import events

    options = ["--patients", str(args.patients), "--jobs", str(args.jobs)]
    if args.quick:
        options = ["--quick", "--jobs", str(args.jobs)]
    if args.work is not None:
        options += ["--work", str(args.work / "events")]
    if args.json is not None:
        options += ["--json", str(args.json.with_suffix(".events.json"))]
    return int(events.main(options))


def _detection(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """The detection, tracking and measurement figures (issue 5; module text)."""
    if args.quick:
        args.scenarios, args.patients = list(QUICK_SCENARIOS), QUICK_PATIENTS
    if args.patients < 1 or args.jobs < 1:
        parser.error("--patients and --jobs must be >= 1")
    own_work = args.work is None  # only a folder made here is ever deleted
    work = args.work or Path(tempfile.mkdtemp(prefix="immunopet-bench-detection-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(
        f"detection benchmark: {len(args.scenarios)} scenarios x {args.patients} patients, "
        f"{args.voxel_mm:g} mm voxels, cohort seeds {COHORT_SEED} + scenario index, "
        f"{args.jobs} job(s), "
        + (
            "analysis PSF: the manifest's, "
            if args.psf_fwhm_mm is None
            else f"analysis PSF: {args.psf_fwhm_mm:g} mm (--psf-fwhm-mm), "
        )
        + f"work {work}",
        flush=True,
    )
    jobs = [
        Job(
            name,
            write_scenario(name, work / "scenarios"),
            index,
            work,
            args.voxel_mm,
            args.psf_fwhm_mm,
        )
        for name in args.scenarios
        for index in range(args.patients)
    ]
    records: list[dict[str, Any]] = []
    try:
        if args.jobs == 1:
            results: Iterable[dict[str, Any]] = map(run_patient, jobs)
        else:
            pool = ProcessPoolExecutor(max_workers=args.jobs)
            results = pool.map(run_patient, jobs)
        for record in results:
            records.append(record)
            if "error" in record:
                print(f"{record['scenario']} #{record['index']}: {record['error']}", flush=True)
                print(record["traceback"], file=sys.stderr)
                continue
            s = record["seconds"]
            print(
                f"{record['scenario']} {record['patient_id']}: simulate {s['simulate']:.1f} s "
                f"+ noiseless {s['simulate_noiseless']:.1f} s, analyse {s['analyze']:.1f} s, "
                f"score {s['score']:.1f} s; {record['fdg_scans']} FDG scans, "
                f"{sum(d['detected'] for d in record['detections'])}/{len(record['detections'])}"
                f" lesion-scans found, {len(record['false_lesions'])} false",
                flush=True,
            )
        if args.jobs != 1:
            pool.shutdown()
    finally:
        if own_work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    good = [r for r in records if "error" not in r]
    failed = len(records) - len(good)
    if args.json is not None:
        args.json.write_text(json.dumps(records, indent=1, default=str) + "\n", encoding="utf-8")

    print()
    print(
        f"### {datetime.date.today().isoformat()}, commit {_commit()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print()
    methods = sorted({r["partial_volume"] for r in good})
    true_psf = sorted({v for r in good for v in r["true_psf_fwhm_mm"]})
    print(
        "partial-volume correction (results methods.partial_volume): "
        + (" | ".join(methods) if methods else "none")
    )
    print(
        "PSF the simulator applied (truth.json resolution_fwhm_mm): "
        + (", ".join(f"{v:g} mm" for v in true_psf) if true_psf else "not stated")
    )
    print()
    for name in args.scenarios:
        group = [r for r in good if r["scenario"] == name]
        if group:
            print(_table(f"{name} ({len(group)} patients)", figures(group)))
            print()
    if good:
        print(_table(f"overall ({len(good)} patients)", figures(good, detailed=True)))
        print()
    for line in _misses(good) + _large_errors(good):
        print(line)
    not_simulated = [(r["scenario"], r["patient_id"], n) for r in good for n in r["not_simulated"]]
    for scenario, patient, item in not_simulated:
        print(f"- not simulated: {scenario} {patient} {item}")
    totals = {
        key: sum(r["seconds"][key] for r in good)
        for key in ("simulate", "simulate_noiseless", "analyze", "score")
    }
    print()
    print(
        f"total {elapsed:.0f} s wall ({elapsed / 60:.1f} min) for {len(good)} patients"
        + (f", {failed} FAILED" if failed else "")
        + "; summed stages: "
        + ", ".join(f"{key} {value:.0f} s" for key, value in totals.items())
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
