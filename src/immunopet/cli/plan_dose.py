"""``immunopet plan dose``: effective dose per scan and cumulative for a tracer and a schedule."""

from __future__ import annotations

import argparse
from typing import Any

from immunopet.cli._common import add_vector_arguments, positive_float, print_json
from immunopet.errors import InputError
from immunopet.planning._dose import plan_dose
from immunopet.units import BQ_PER_MBQ

__all__ = ["add_parser", "run"]

_SV_PER_MSV = 1.0e-3
_GY_PER_MGY = 1.0e-3


def _scan(text: str) -> tuple[str, float]:
    """Parse ``LABEL:MBQ`` (e.g. ``baseline:37``)."""
    label, separator, amount = text.rpartition(":")
    if not separator or not label.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not LABEL:MBQ, e.g. baseline:37")
    return label.strip(), positive_float(amount) * BQ_PER_MBQ


def add_parser(subparsers: Any) -> None:
    """Register the ``dose`` subcommand (mounted under ``immunopet plan``)."""
    parser = subparsers.add_parser(
        "dose",
        help="effective dose per scan and cumulative for a tracer and an imaging schedule",
        description=(
            "Effective dose (ICRP 103) of each administration of a schedule, from the vector "
            "pharmacokinetics and a planning-grade MIRD model; published effective doses of "
            "agents with the same nuclide are shown beside."
        ),
    )
    add_vector_arguments(parser)
    parser.add_argument("--nuclide", required=True, help="label, e.g. Zr-89")
    parser.add_argument(
        "--scan",
        dest="scans",
        type=_scan,
        action="append",
        required=True,
        metavar="LABEL:MBQ",
        help="one administration (repeat): e.g. --scan baseline:37 --scan crs-window:37",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the dose budget."""
    if not args.scans:
        raise InputError("no administration given", field="--scan", hint="add --scan LABEL:MBQ")
    plan = plan_dose(
        args.vector_format, args.nuclide, args.scans, antigen_density=args.antigen_density
    )
    if args.json:
        print_json(plan.as_dict())
        return 0
    per_bq = plan.budget.per_bq
    per_mbq_msv = per_bq.effective_dose_sv * BQ_PER_MBQ / _SV_PER_MSV
    print(
        f"{plan.vector_format.value} labelled with {plan.nuclide}: {per_mbq_msv:.3g} mSv/MBq "
        f"(highest organ dose: {per_bq.highest_dose_organ})"
    )
    for scan in plan.budget.scans:
        print(
            f"  {scan.label:20s} {scan.injected_activity_bq / BQ_PER_MBQ:8.1f} MBq  "
            f"{scan.effective_dose_sv / _SV_PER_MSV:7.2f} mSv  "
            f"(cumulative {scan.cumulative_effective_dose_sv / _SV_PER_MSV:.2f} mSv)"
        )
    if plan.budget.published:
        print("  published effective doses with this nuclide:")
        for entry in plan.budget.published:
            print(
                f"    {entry.effective_dose_sv_per_bq * BQ_PER_MBQ / _SV_PER_MSV:.3g} mSv/MBq  "
                f"{entry.agent} — {entry.citation}"
            )
    print("  assumptions:")
    for line in plan.assumptions:
        print(f"    - {line}")
    return 0
