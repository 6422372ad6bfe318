"""``immunopet simulate``: virtual patients of a scenario written as DICOM PET/CT plus truth."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from immunopet.cli._common import non_negative_int, positive_float
from immunopet.errors import InputError
from immunopet.simulate import draw_cohort, list_scenarios, load_scenario
from immunopet.simulate._bids import bids_label, export_patient_bids, write_dataset_description
from immunopet.simulate._patient import simulate_patient

DEFAULT_SEED = 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="write virtual patients of a scenario as DICOM PET/CT with ground truth",
        description=(
            "Draw virtual patients from a built-in scenario (see --list) or a scenario YAML file "
            "and write, per patient, DICOM PET and CT series, the label map (NIfTI) and "
            "truth.json. The output folder must not exist or be empty."
        ),
    )
    parser.add_argument("--list", action="store_true", help="list the built-in scenarios")
    parser.add_argument("--scenario", metavar="NAME|FILE.yaml", help="scenario name or file")
    parser.add_argument("--out", metavar="DIR", help="output folder (must not exist or be empty)")
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=DEFAULT_SEED,
        metavar="S",
        help=f"random seed of the cohort and the noise (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--cohort", type=_positive_int, default=1, metavar="N", help="patients (default 1)"
    )
    parser.add_argument(
        "--noiseless", action="store_true", help="write expected images without counting noise"
    )
    parser.add_argument(
        "--voxel-mm",
        type=positive_float,
        metavar="MM",
        help="isotropic phantom voxel size, mm (default: 4 adult, 0.5 mouse)",
    )
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=("dicom", "bids"),
        default="dicom",
        help="output format: DICOM PET/CT (default) or NIfTI + PET-BIDS (converted from the "
        "DICOM through the same readers)",
    )
    parser.set_defaults(run=run)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(
            "the output folder exists and is not empty",
            path=out,
            field="--out",
            hint="give a new or empty folder; nothing is overwritten",
        )


def run(args: argparse.Namespace) -> int:
    """List the scenarios, or simulate the cohort."""
    if args.list:
        for name, description in list_scenarios():
            print(f"{name:24} {description}")
        return 0
    if args.scenario is None or args.out is None:
        raise InputError(
            "--scenario and --out are required", hint="or use --list to see the scenarios"
        )
    scenario = load_scenario(args.scenario)
    out = Path(args.out)
    _check_out(out)
    patients = draw_cohort(scenario, args.cohort, args.seed)
    bids = args.output_format == "bids"
    if bids:
        write_dataset_description(out, f"immunopet virtual cohort: {scenario.name}")
    for index, patient in enumerate(patients):
        started = time.perf_counter()
        rng = np.random.default_rng([args.seed, index])
        options = {"noiseless": args.noiseless, "rng": rng, "voxel_mm": args.voxel_mm}
        if bids:
            with tempfile.TemporaryDirectory(prefix=".immunopet-", dir=out) as scratch:
                dicom_dir = Path(scratch) / patient.patient_id
                truth = simulate_patient(patient, dicom_dir, **options)
                truth = export_patient_bids(dicom_dir, truth, out)
            where = out / f"sub-{bids_label(patient.patient_id)}"
        else:
            where = out / patient.patient_id
            truth = simulate_patient(patient, where, **options)
        elapsed = time.perf_counter() - started
        print(
            f"{patient.patient_id}: {len(truth['scans'])} PET scans, "
            f"{len(truth['not_simulated'])} items not simulated, {elapsed:.1f} s -> {where}"
        )
    return 0
