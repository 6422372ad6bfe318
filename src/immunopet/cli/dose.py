"""``immunopet dose``: time-integrated activities, organ and effective doses of an analysed study."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from immunopet.cli._common import positive_float, print_json
from immunopet.dosimetry import dose_from_results
from immunopet.errors import InputError
from immunopet.kinetics import load_results_document
from immunopet.units import BQ_PER_MBQ, S_PER_DAY, S_PER_HOUR

__all__ = ["add_parser", "run"]

_MILLI = 1.0e3  # mGy per Gy, mSv per Sv
#: Organ doses listed in the text table (highest first).
_TOP_ORGANS = 8


def add_parser(subparsers: Any) -> None:
    """Register the ``dose`` subcommand."""
    parser = subparsers.add_parser(
        "dose",
        help="time-integrated activity, organ doses (MIRD) and effective dose of an analysed study",
        description=(
            "Dose table of the output of `immunopet analyze` for every injection imaged at >= 2 "
            "timepoints: time-integrated activity per source organ and lesion (trapezoids, first "
            "value held back to the injection, physical decay after the last), absorbed dose "
            "per organ (MIRD schema, planning-grade ICRP 89 spheres), ICRP 103 effective dose, "
            "lesion dose by local deposition, published doses beside. See docs/kinetics.md."
        ),
    )
    parser.add_argument(
        "path",
        metavar="RESULTS_DIR|CSV",
        help="an `immunopet analyze` output folder, its results.json or measurements.csv",
    )
    parser.add_argument(
        "--whole-body-half-life-h",
        type=positive_float,
        default=None,
        metavar="H",
        help="biological whole-body retention half-life, h (default: no excretion, an upper "
        "bound; e.g. 370 for 89Zr-trastuzumab, O'Donoghue 2018)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def _print_injection(entry: Mapping[str, Any]) -> None:
    activity_mbq = entry["injected_activity_bq"] / BQ_PER_MBQ
    days = ", ".join(f"{t / S_PER_DAY:.2f}" for t in entry["time_s"])
    print(
        f"{entry['injection_id']}: {entry['agent'] or entry['tracer']} ({entry['nuclide']}), "
        f"{activity_mbq:.1f} MBq, scans at {days} d after injection"
    )
    per_mbq = entry["effective_dose_sv_per_bq"] * BQ_PER_MBQ * _MILLI
    highest = entry["highest_dose_organ"]
    print(
        f"  effective dose {entry['effective_dose_sv'] * _MILLI:.3g} mSv ({per_mbq:.3g} mSv/MBq); "
        f"highest organ dose {highest} {entry['absorbed_dose_gy'][highest] * _MILLI:.3g} mGy"
    )
    print(f"  {'source region':22s} {'Ã/A0 h':>8s}")
    for row in entry["source_regions"]:
        print(f"  {row['region']:22s} {row['tiac_s'] / S_PER_HOUR:8.3g}")
    rest = entry["rest_of_body_tia_bq_s"] / entry["injected_activity_bq"]
    print(f"  {'rest of body':22s} {rest / S_PER_HOUR:8.3g}")
    doses = sorted(
        (
            (name, dose)
            for name, dose in entry["absorbed_dose_gy"].items()
            if name not in ("rest_of_body", "total_body")
        ),
        key=lambda item: -item[1],
    )[:_TOP_ORGANS]
    print("  absorbed dose, mGy: " + ", ".join(f"{n} {d * _MILLI:.3g}" for n, d in doses))
    for lesion in entry["lesions"]:
        dose = lesion["absorbed_dose_gy"]
        volume = lesion["volume_ml"]
        print(
            f"  lesion {lesion['voi_id']}: "
            f"{'—' if volume is None else f'{volume:.3g} mL'}, "
            f"Ã {lesion['tia_bq_s'] / BQ_PER_MBQ / S_PER_HOUR:.3g} MBq·h, "
            f"{'—' if dose is None else f'{dose * _MILLI:.3g} mGy'} (self-dose)"
        )
    method = entry["method"]
    print(f"  time integration: {method['tia']}")
    print(f"  whole body: {method['whole_body']}")
    if entry["published"]:
        print("  published effective doses with this nuclide:")
        for published in entry["published"]:
            value = published["effective_dose_sv_per_bq"] * BQ_PER_MBQ * _MILLI
            print(f"    {value:.3g} mSv/MBq  {published['agent']}")
    for warning in entry["warnings"]:
        print(f"  note: {warning}")


def run(args: argparse.Namespace) -> int:
    """Print the dose table."""
    document = load_results_document(args.path)
    half_life_s = (
        None if args.whole_body_half_life_h is None else args.whole_body_half_life_h * S_PER_HOUR
    )
    section = dose_from_results(document, whole_body_half_life_s=half_life_s)
    if section is None:
        raise InputError(
            "nothing to analyse: no injection was imaged at >= 2 timepoints",
            field="path",
            hint="the dose table needs the scans of one injection on >= 2 days",
        )
    if args.json:
        print_json(section)
        return 0
    for entry in section["injections"]:
        _print_injection(entry)
    for skipped in section["skipped"]:
        print(f"skipped {skipped['injection_id']}: {skipped['reason']}")
    print(f"total effective dose: {section['total_effective_dose_sv'] * _MILLI:.3g} mSv")
    return 0
