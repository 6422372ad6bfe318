"""``immunopet demo``: simulate the default virtual patient, analyse it and write the report.

The main job on its embedded default: one patient of a built-in scenario (default
``cd19_lymphoma_demo``: large B-cell lymphoma, CD19 CAR T cells, FDG and ⁸⁹Zr-anti-CD19 PET at
three visits, CRS in the first week, a CD19-negative relapse) is simulated as DICOM PET/CT into
``DIR/patients`` exactly as ``immunopet simulate --scenario NAME --seed N`` writes it, then
analysed into ``DIR/analysis`` by the functions ``immunopet analyze`` runs
(:func:`immunopet.pipeline.analyze_study`, :func:`immunopet.pipeline.write_analysis_outputs`),
and the report is written beside ``results.json``.

``DIR`` (default ``./immunopet-demo``) must be new, empty, or the output of an earlier demo
(marked by the file ``.immunopet-demo``); anything else is refused with exit code 2. The patient
folder and the analysis folder are each swapped in whole when complete
(:func:`immunopet.store.atomic_output_folder`), so a failed run never leaves half-written files.

Hidden options, for tests and quick looks (not shown by ``--help``): ``--voxel-mm MM`` (the
phantom's isotropic voxel size, as ``immunopet simulate --voxel-mm``; default 4 mm for an
adult) and ``--registration rigid|affine|deformable`` (as ``immunopet analyze``; default
affine).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from immunopet import __version__
from immunopet.cli._common import ProgressBar, non_negative_int, positive_float
from immunopet.errors import InputError
from immunopet.io._atomic import atomic_path
from immunopet.pipeline import AnalysisOptions, analyze_study, write_analysis_outputs
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._patient import simulate_patient
from immunopet.store import atomic_output_folder

DEFAULT_SCENARIO = "cd19_lymphoma_demo"
DEFAULT_SEED = 1
DEFAULT_OUT = Path("immunopet-demo")
MARKER = ".immunopet-demo"
"""File marking a folder written by ``immunopet demo``: only such a folder is ever replaced."""


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="simulate a virtual CAR-T patient, analyse it and write the report",
        description=(
            "Simulate one virtual patient of a scenario (default: large B-cell lymphoma "
            "treated with CD19 CAR T cells, FDG and 89Zr-anti-CD19 PET at baseline, day 6 and "
            "day 60, CRS in the first week, a CD19-negative relapse) as DICOM PET/CT into "
            "DIR/patients, analyse it as `immunopet analyze` does into DIR/analysis and write "
            "the report. DIR must be new, empty or an earlier demo's output."
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"output folder (default ./{DEFAULT_OUT}; an earlier demo's output is replaced)",
    )
    parser.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        metavar="NAME|FILE.yaml",
        help=f"scenario name (immunopet simulate --list) or file (default {DEFAULT_SCENARIO})",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=DEFAULT_SEED,
        metavar="N",
        help=f"random seed of the patient and the noise (default {DEFAULT_SEED})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    # Hidden: a coarser phantom or a cheaper registration make the demo fast enough for tests.
    parser.add_argument("--voxel-mm", type=positive_float, help=argparse.SUPPRESS)
    parser.add_argument(
        "--registration",
        choices=("rigid", "affine", "deformable"),
        default="affine",
        help=argparse.SUPPRESS,
    )
    parser.set_defaults(run=run)


def _claim(out: Path) -> None:
    """Check that ``out`` may be written by the demo, create it and mark it.

    Raises
    ------
    InputError
        ``out`` is a file, or a non-empty folder without :data:`MARKER`.

    """
    if out.exists():
        if not out.is_dir():
            raise InputError(
                "exists and is not a folder",
                path=out,
                field="--out",
                hint="give a new folder, or an earlier demo's output folder",
            )
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise InputError(
                f"exists and is not an immunopet demo output (no {MARKER} file); "
                "refusing to replace what it holds",
                path=out,
                field="--out",
                hint="give a new or empty folder, or remove this one",
            )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / MARKER) as temporary:
        temporary.write_text(
            f"Written by immunopet {__version__} demo; `immunopet demo` may replace this folder.\n",
            encoding="utf-8",
        )


def _write_report(analysis: Path, progress: ProgressBar) -> Path:
    """``analysis/report.html``: kept when the analysis outputs include it, else rendered."""
    from immunopet.report import REPORT_NAME, write_report

    report = analysis / REPORT_NAME
    if report.is_file():
        return report
    progress("report", 0, 1)
    written = write_report(analysis)
    progress("report", 1, 1)
    return written


def _describe(event: Mapping[str, Any]) -> str:
    """One line per guidance event: type, where, day and, when given, the change it rests on."""
    evidence = event.get("evidence") or {}
    where = event.get("site") or event.get("voi_id") or ""
    line = f"  {event['type']:28} {where:14} day {event['day']:6.1f}"
    if {"tracer", "metric", "baseline", "current", "relative_change"} <= evidence.keys():
        line += (
            f"  {evidence['tracer']} {evidence['metric']} {evidence['baseline']:.2f} -> "
            f"{evidence['current']:.2f} ({evidence['relative_change']:+.0%})"
        )
    return line


def run(args: argparse.Namespace) -> int:
    """Simulate, analyse and report; print the report's path last."""
    progress = ProgressBar(enabled=not args.quiet)
    scenario = load_scenario(args.scenario)
    out = Path(args.out)
    _claim(out)
    patient = draw_cohort(scenario, 1, args.seed)[0]
    # The noise generator of patient 0 of `immunopet simulate --seed N` (cli/simulate.py).
    rng = np.random.default_rng([args.seed, 0])
    analysis = out / "analysis"
    progress("simulate", 0, 1)
    with atomic_output_folder(out / "patients") as folder:
        simulate_patient(patient, folder / patient.patient_id, rng=rng, voxel_mm=args.voxel_mm)
    # The previous analysis described the patient just replaced.
    shutil.rmtree(analysis, ignore_errors=True)
    progress("simulate", 1, 1)
    study = out / "patients" / patient.patient_id
    options = AnalysisOptions(registration_mode=args.registration, progress=progress)
    result = analyze_study(study, options)
    summary = write_analysis_outputs(result, analysis, progress=progress)
    report = _write_report(analysis, progress)
    document = json.loads(Path(summary["results"]).read_text(encoding="utf-8"))
    print(
        f"{scenario.name}, seed {args.seed}: {result.patient_id}, {len(result.timepoints)} "
        f"timepoints, {sum(len(tp.scans) for tp in result.timepoints)} PET scans, "
        f"{len(result.lesions)} lesion tracks, {len(document['events'])} guidance events"
    )
    for event in document["events"]:
        print(_describe(event))
    print(f"results: {Path(summary['results']).resolve()}")
    print(f"report: {report.resolve()}")
    return 0
