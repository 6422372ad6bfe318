"""``immunopet analyze``: a patient's study folder → results.json, tables, SEG and the database."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from immunopet.cli._common import ProgressBar, iso_datetime, positive_float
from immunopet.pipeline import AnalysisOptions, analyze_study, write_analysis_outputs


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "analyze",
        help="find, track and measure lesions and organs across a patient's scans",
        description=(
            "Analyse one patient's longitudinal multi-tracer study (DICOM in any layout, or "
            "PET-BIDS): discover timepoints and tracers, segment organs, register timepoints, "
            "detect lesions on the lesion-finding tracer (FDG by default), track them, and "
            "measure every lesion and organ on every tracer. Writes results.json, "
            "measurements.csv, lesions.csv, events.csv, DICOM SEG and SR, the images and "
            "report.html into --out (replaced as a whole at the end) and saves the results to "
            "the database."
        ),
    )
    parser.add_argument("study_dir", metavar="STUDY_DIR", type=Path, help="one patient's folder")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="study.yaml",
        help="study manifest (docs/study_manifest.md)",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database URL (default: sqlite:///DIR/immunopet.db inside --out)",
    )
    parser.add_argument(
        "--infusion-datetime",
        type=iso_datetime,
        metavar="YYYY-MM-DDTHH:MM",
        help="CAR T-cell infusion (site time) when no manifest gives it",
    )
    parser.add_argument(
        "--lesion-tracer",
        metavar="KEY",
        help="tracer key whose scans find the lesions (default: the manifest's, else FDG)",
    )
    parser.add_argument(
        "--registration",
        choices=("rigid", "affine", "deformable"),
        default="affine",
        help="CT-to-CT registration of the timepoints (default affine)",
    )
    parser.add_argument(
        "--psf-fwhm-mm",
        type=positive_float,
        metavar="MM",
        help="PET resolution in the reconstructed images (FWHM, mm) for partial-volume-corrected "
        "means (default: the manifest's psf_fwhm_mm, else none)",
    )
    parser.add_argument(
        "--lesion-vois",
        choices=("detect", "masks"),
        default="detect",
        help="lesion VOIs by automatic detection, a reader's lesion VOI in the study's masks "
        "replacing the detections it overlaps (default), or the reader's lesion VOIs only "
        "(masks: structures named like lesion/tumor/mass in SEG, RTSTRUCT or NIfTI masks)",
    )
    parser.add_argument("--json", action="store_true", help="print results.json to stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Analyse the study and write the outputs."""
    progress = ProgressBar(enabled=not args.quiet)
    options = AnalysisOptions(
        lesion_tracer=args.lesion_tracer,
        registration_mode=args.registration,
        infusion_datetime=args.infusion_datetime,
        manifest=args.manifest,
        progress=progress,
        psf_fwhm_mm=args.psf_fwhm_mm,
        lesion_vois=args.lesion_vois,
    )
    result = analyze_study(args.study_dir, options)
    document = result.to_dict()
    summary = write_analysis_outputs(result, args.out, db_url=args.db, progress=progress)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(
            f"{result.patient_id}: {len(result.timepoints)} timepoints, "
            f"{sum(len(tp.scans) for tp in result.timepoints)} PET scans, "
            f"{len(result.lesions)} lesion tracks, {len(result.measurements)} measurements "
            f"-> {summary['results']}"
        )
        print(f"report: {summary['report']}")
    return 0
