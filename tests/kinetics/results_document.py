"""A hand-built ``results.json`` whose values are the simulator's vector model (known truth).

One adult (73 kg, haematocrit 0.47: the ICRP 89 reference male of the model's body) with a
⁸⁹Zr-IgG ([89Zr]Zr-DFO-girentuximab, an intact IgG in data/tracers.csv) injected once (37 MBq)
and imaged 3, 5 and 7 days later, plus an FDG scan at each visit (its own injection, 1 h before).
VOIs: the lesion L001 (the model's tumour at antigen density 1), liver, spleen, kidneys, muscle
and the blood-pool reference sphere (the model's whole blood). Concentrations are the model's
%ID/g × A₀/100, physically decayed to the scan start (DICOM START), so ``curves_from_results``
must give back the model exactly; ``noise`` multiplies each value by (1 + noise × N(0, 1)).

Used by tests/kinetics, tests/dosimetry and tests/cli (imported as ``kinetics.results_document``).
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from immunopet.kinetics import Stein2019CellularKinetics
from immunopet.tracers import TwoTissueVectorModel, vector_pharmacokinetics

ZR89_HALF_LIFE_S = 78.41 * 3600.0  # ICRP-107 (tests/phantoms.py)
F18_HALF_LIFE_S = 6586.2  # ICRP-107
INJECTED_BQ = 37.0e6
FDG_BQ = 250.0e6
WEIGHT_KG = 73.0
HAEMATOCRIT = 0.47
INFUSION = datetime(2025, 1, 13, 10, 0)
INJECTION = INFUSION - timedelta(days=14)
SCAN_DAYS = (3.0, 5.0, 7.0)
AGENT = "[89Zr]Zr-DFO-girentuximab"
# VOI → (model tissue, VOI volume mL)
VOIS = {
    "L001": ("tumour", 12.0),
    "liver": ("liver", 1500.0),
    "spleen": ("spleen", 150.0),
    "kidneys": ("kidneys", 250.0),
    "muscle": ("muscle", 900.0),
    "blood_pool_reference": ("blood", 8.0),
}
COUNT_DAYS = (1.0, 4.0, 7.0, 10.0, 14.0, 28.0)


def model() -> TwoTissueVectorModel:
    return TwoTissueVectorModel(vector_pharmacokinetics("igg"), antigen_density=1.0)


def true_ki_ml_per_g_per_s() -> float:
    pk = vector_pharmacokinetics("igg")
    return pk.ki_ml_per_g_per_s["tumour"] + pk.tumour_specific_ki_ml_per_g_per_s


def decay_corrected_bq_per_ml(tissue: str, times_s: np.ndarray) -> np.ndarray:
    """The model's concentration decay-corrected to the injection, Bq/mL."""
    m = model()
    percent = (
        m.blood_percent_id_per_g(times_s)
        if tissue == "blood"
        else m.tissue_percent_id_per_g(tissue, times_s)
    )
    return np.asarray(percent, dtype=np.float64) * INJECTED_BQ / 100.0


def _measurement(
    voi: str, timepoint_id: str, day: float, tracer: str, mean: float, volume: float, factor: float
) -> dict[str, Any]:
    return {
        "voi_type": "lesion" if voi.startswith("L") else "organ",
        "voi_id": voi,
        "timepoint_id": timepoint_id,
        "day": day,
        "tracer": tracer,
        "target": "CAIX" if tracer == "caix_igg" else "glucose metabolism",
        "n_voxels": max(1, round(volume / 0.064)),
        "volume_ml": volume,
        "suv_max": 1.3 * mean * factor,
        "suv_mean": mean * factor,
        "suv_mean_se": 0.02 * mean * factor,
        "suv_peak": mean * factor if voi.startswith("L") else None,
        "suv_sd": 0.2 * mean * factor,
        "cov": 0.2,
        "mean_bq_per_ml": mean,
        "mean_bq_per_ml_se": 0.02 * mean,
        "total_uptake_bq": mean * volume,
        "percent_id": 100.0 * mean * volume / INJECTED_BQ,
        "percent_id_se": 2.0 * mean * volume / INJECTED_BQ,
        "lesion_to_blood": None,
        "lesion_to_muscle": None,
        "voi_source": "detected",
    }


def build_document(
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
    *,
    scan_days: tuple[float, ...] = SCAN_DAYS,
    counts: bool = True,
    decay_correction: str = "START",
) -> dict[str, Any]:
    """The results document (schema 1.1) of the study described in the module docstring."""
    rng = rng or np.random.default_rng(0)
    times_s = np.array(scan_days) * 86400.0
    truth = {voi: decay_corrected_bq_per_ml(t, times_s) for voi, (t, _) in VOIS.items()}
    timepoints, measurements = [], []
    for index, day_after in enumerate(scan_days):
        timepoint_id = f"TP{index + 1:02d}"
        acquisition = INJECTION + timedelta(days=day_after)
        day = (acquisition - INFUSION).total_seconds() / 86400.0
        decay = 2.0 ** (-times_s[index] / ZR89_HALF_LIFE_S)
        reference = INJECTION if decay_correction == "ADMIN" else acquisition
        stored = 1.0 if decay_correction == "ADMIN" else decay  # value at the reference
        factor = (
            WEIGHT_KG * 1000.0 / (INJECTED_BQ * (1.0 if decay_correction == "ADMIN" else decay))
        )
        fdg_injection = acquisition - timedelta(hours=1)
        fdg_factor = WEIGHT_KG * 1000.0 / (FDG_BQ * 2.0 ** (-3600.0 / F18_HALF_LIFE_S))
        timepoints.append(
            {
                "timepoint_id": timepoint_id,
                "day": day,
                "datetime": acquisition.isoformat(),
                "ct_series_uid": f"1.2.3.{index}",
                "ct_path": None,
                "scans": [
                    {
                        "scan_id": f"{timepoint_id}-caix_igg",
                        "tracer": "caix_igg",
                        "agent": AGENT,
                        "target": "CAIX",
                        "nuclide": "Zr-89",
                        "series_uid": f"1.2.4.{index}",
                        "path": f"visit{index}/pet_zr",
                        "injected_activity_bq": INJECTED_BQ,
                        "injection_datetime": INJECTION.isoformat(),
                        "scan_datetime": reference.isoformat(),
                        "weight_kg": WEIGHT_KG,
                        "suv_bw_factor": factor,
                        "decay_correction": decay_correction,
                        "noise": None,
                        "warnings": [],
                    },
                    {
                        "scan_id": f"{timepoint_id}-fdg",
                        "tracer": "fdg",
                        "agent": "[18F]FDG",
                        "target": "glucose metabolism",
                        "nuclide": "F-18",
                        "series_uid": f"1.2.5.{index}",
                        "path": f"visit{index}/pet_fdg",
                        "injected_activity_bq": FDG_BQ,
                        "injection_datetime": fdg_injection.isoformat(),
                        "scan_datetime": acquisition.isoformat(),
                        "weight_kg": WEIGHT_KG,
                        "suv_bw_factor": fdg_factor,
                        "decay_correction": "START",
                        "noise": None,
                        "warnings": [],
                    },
                ],
                "registration": {"mode": "identity"},
                "organ_sources": {},
            }
        )
        for voi, (_, volume) in VOIS.items():
            mean = float(truth[voi][index]) * stored * (1.0 + noise * rng.standard_normal())
            measurements.append(
                _measurement(voi, timepoint_id, day, "caix_igg", mean, volume, factor)
            )
            fdg_mean = 5000.0 if voi.startswith("L") else 2000.0
            measurements.append(
                _measurement(voi, timepoint_id, day, "fdg", fdg_mean, volume, fdg_factor)
            )
    car_t = Stein2019CellularKinetics.published()
    count_rows = (
        [
            {
                "day": d,
                "value": float(car_t.concentration(d)),
                "unit": "copies_per_ug",
                "source": "qpcr",
            }
            for d in COUNT_DAYS
        ]
        if counts
        else []
    )
    return {
        "schema_version": "1.1",
        "software": {"name": "immunopet", "version": "test"},
        "study": {
            "patient_id": "P0001",
            "study_key": "0" * 32,
            "infusion_datetime": INFUSION.isoformat(),
            "car_t_product": "CAIX CAR T cells",
            "car_t_target": "CAIX",
            "lesion_tracer": "fdg",
            "detection_method": {"name": "fixed", "parameters": {}, "source": "test"},
        },
        "methods": {},
        "timepoints": timepoints,
        "lesions": [
            {
                "tracking_id": "L001",
                "status": "persistent",
                "first_day": timepoints[0]["day"],
                "timepoints": {tp["timepoint_id"]: {"detected": True} for tp in timepoints},
            }
        ],
        "measurements": measurements,
        "events": [],
        "clinical": {
            "car_t_counts": count_rows,
            "blood_samples": [],
            "hematocrit": HAEMATOCRIT,
            "grades": [],
        },
        "kinetics": None,
        "dosimetry": None,
        "warnings": [],
    }


def with_changes(document: dict[str, Any], **clinical: Any) -> dict[str, Any]:
    """A deep copy with ``clinical`` keys replaced."""
    changed = copy.deepcopy(document)
    changed["clinical"].update(clinical)
    return changed


def physical_bq(tissue: str, times_s: np.ndarray) -> np.ndarray:
    """The model's concentration at the acquisition (not decay-corrected), Bq/mL."""
    return decay_corrected_bq_per_ml(tissue, times_s) * 2.0 ** (-times_s / ZR89_HALF_LIFE_S)


def plasma_volume_ml() -> float:
    return model().body.plasma_volume_ml


__all__ = [
    "AGENT",
    "HAEMATOCRIT",
    "INJECTED_BQ",
    "SCAN_DAYS",
    "VOIS",
    "WEIGHT_KG",
    "ZR89_HALF_LIFE_S",
    "build_document",
    "decay_corrected_bq_per_ml",
    "model",
    "physical_bq",
    "plasma_volume_ml",
    "true_ki_ml_per_g_per_s",
    "with_changes",
]
