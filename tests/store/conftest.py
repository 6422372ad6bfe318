"""Results documents (schema 1.x) for the store tests, built from a seeded RNG; tree hashes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ORGANS = ("liver", "blood", "muscle")


def make_results(
    *,
    study_key: str = "study-A",
    patient_id: str = "P001",
    n_lesions: int = 3,
    n_timepoints: int = 3,
    tracers: tuple[str, ...] = ("fdg", "zr89-anti-cd8"),
    seed: int = 0,
) -> dict[str, Any]:
    """Return a complete results document with non-round floats everywhere."""
    rng = np.random.default_rng(seed)

    def real(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    timepoints = []
    for t in range(n_timepoints):
        tp = f"TP{t + 1:02d}"
        scans = [
            {
                "scan_id": f"{tp}-{tracer}",
                "tracer": tracer,
                "agent": "[18F]FDG" if tracer == "fdg" else "[89Zr]Zr-DFO-anti-CD8 minibody",
                "target": None if tracer == "fdg" else "CD8",
                "nuclide": "F-18" if tracer == "fdg" else "Zr-89",
                "series_uid": f"1.2.826.0.1.3680043.8.498.{seed}.{t}.{s}",
                "injected_activity_bq": real(1e8, 4e8),
                "injection_datetime": f"2026-03-{2 + 7 * t:02d}T09:00:00",
                "scan_datetime": f"2026-03-{2 + 7 * t:02d}T10:00:00",
                "weight_kg": real(50.0, 90.0) if s == 0 else None,
                "suv_bw_factor": real(1e-4, 1e-3),
                "path": f"/data/P/{tp}/{tracer}",
                "decay_correction": "START",
                "noise": {"voxel_cv": real(0.05, 0.3)} if s == 0 else None,
                "warnings": [],
            }
            for s, tracer in enumerate(tracers)
        ]
        timepoints.append(
            {
                "timepoint_id": tp,
                "day": 7.0 * t + real(0.0, 0.5),
                "datetime": f"2026-03-{2 + 7 * t:02d}T10:00:00",
                "ct_series_uid": f"1.2.826.0.1.3680043.8.498.{seed}.{t}.99" if t else None,
                "ct_path": f"/data/P/{tp}/ct" if t else None,
                "scans": scans,
                "registration": {"method": "rigid", "rms_mm": real(0.5, 3.0)},
                "organ_sources": {"liver": "ct"},
            }
        )
    tp_ids = [tp["timepoint_id"] for tp in timepoints]
    lesions = [
        {
            "tracking_id": f"L{k + 1:04d}",
            "status": ("persistent", "new", "vanished")[k % 3],
            "first_day": 0.0,
            "timepoints": {
                tp: {
                    "detected": bool(t != 0 or k % 3 != 1),
                    "centroid_lps_mm": [real(-200, 200), real(-200, 200), real(-900, 0)],
                    "centroid_baseline_lps_mm": [real(-200, 200), real(-200, 200), real(-900, 0)],
                    "volume_ml": real(0.5, 30.0),
                    "detection": {"suv_threshold": 2.5} if t == 0 else None,
                }
                for t, tp in enumerate(tp_ids)
            },
        }
        for k in range(n_lesions)
    ]
    vois = [("lesion", lesion["tracking_id"]) for lesion in lesions] + [
        ("organ", organ) for organ in ORGANS
    ]
    measurements = [
        {
            "voi_type": voi_type,
            "voi_id": voi_id,
            "timepoint_id": tp["timepoint_id"],
            "day": tp["day"],
            "tracer": tracer,
            "target": None if tracer == "fdg" else "CD8",
            "n_voxels": int(rng.integers(8, 200_000)),
            "volume_ml": real(0.5, 1500.0),
            "suv_max": real(1.0, 20.0),
            "suv_mean": real(0.5, 8.0),
            "suv_mean_se": real(0.001, 0.1) if tracer != "fdg" else None,
            "suv_peak": real(1.0, 15.0) if voi_type == "lesion" else None,
            "suv_sd": real(0.01, 2.0),
            "cov": real(0.05, 0.5),
            "mean_bq_per_ml": real(1e3, 5e4),
            "mean_bq_per_ml_se": None,
            "total_uptake_bq": real(1e4, 1e8),
            "percent_id": real(0.001, 5.0),
            "percent_id_se": real(1e-4, 0.1) if tracer != "fdg" else None,
            "lesion_to_blood": real(0.5, 10.0) if voi_type == "lesion" else None,
            "lesion_to_muscle": real(0.5, 10.0) if voi_type == "lesion" else None,
        }
        for tp in timepoints
        for tracer in tracers
        for voi_type, voi_id in vois
    ]
    # Keys of later pipeline versions, on some rows only (as the pipeline writes them).
    for i, row in enumerate(measurements):
        row["voi_source"] = "reader mask: tumour" if i % 4 == 0 else "built-in segmentation"
        if row["voi_type"] == "lesion":
            row["lesion_found"] = bool(i % 3)
        if i % 2:
            row["suv_mean_pvc"] = real(0.5, 9.0)
            row["suv_mean_pvc_se"] = None
        if row["target"] == "CD8" and i % 3 == 0:
            row["car_t_cells"] = real(1e6, 1e10)
            row["car_t_cells_se"] = real(1e5, 1e9)
    events = [
        {
            "event_id": "E001",
            "type": "antigen_loss",
            "voi_id": lesions[0]["tracking_id"] if lesions else None,
            "day": timepoints[-1]["day"],
            "evidence": {"suv_ratio": real(0.1, 0.5), "timepoints": tp_ids, "note": "CD19 dim"},
            "confidence": real(0.5, 1.0),
        },
        {
            "event_id": "E002",
            "type": "crs",
            "voi_id": None,
            "day": 2.0,
            "evidence": {"grade": 2},
            "confidence": 1.0,
        },
    ]
    return {
        "schema_version": "1.0",
        "software": {"name": "immunopet", "version": "0.1.0"},
        "study": {
            "patient_id": patient_id,
            "study_key": study_key,
            "infusion_datetime": "2026-03-01T12:00:00",
            "car_t_product": "tisagenlecleucel",
            "car_t_target": "CD19",
            "lesion_tracer": "fdg",
            "detection_method": {"name": "suv_threshold", "suv": 2.5},
        },
        "methods": {"suv": "SUVbw", "peak": "PERCIST 1 mL sphere"},
        "timepoints": timepoints,
        "lesions": lesions,
        "measurements": measurements,
        "events": events,
        "warnings": ["TP02: CT missing; attenuation map from the previous timepoint"],
    }


@pytest.fixture
def results_factory() -> Callable[..., dict[str, Any]]:
    """``make_results(**options)``: a complete, seeded results document."""
    return make_results


def tree_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    hashes = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = Path(directory, name)
            hashes[path.relative_to(folder).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return hashes


@pytest.fixture
def hash_tree() -> Callable[[Path], dict[str, str]]:
    """``hash_tree(folder)``: SHA-256 of every file under ``folder``, by relative path."""
    return tree_hashes


def kill_when_ready(script: str, *args: str, ready: Path) -> str:
    """Run ``python -c script *args``; SIGKILL it once it has written ``ready``; return that text.

    The child must write ``ready`` atomically (temporary file, then ``os.replace``) at the
    point where it is to be killed, and then wait.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120.0  # a guard against a hung child, not a timing check
        while not ready.exists():
            if child.poll() is not None:
                pytest.fail(
                    f"the child ended before it was ready:\n{child.communicate()[1].decode()}"
                )
            if time.monotonic() > deadline:
                pytest.fail("the child never became ready")
            time.sleep(0.02)
        text = ready.read_text()
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    return text


@pytest.fixture
def kill_child_when_ready() -> Callable[..., str]:
    """``kill_child_when_ready(script, *args, ready=path)``: see :func:`kill_when_ready`."""
    return kill_when_ready
