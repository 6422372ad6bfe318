"""``immunopet tracers``: the review's immuno-PET/-SPECT agents, filtered by target, question, nuclide."""

from __future__ import annotations

import argparse
from typing import Any

from immunopet.cli._common import print_json
from immunopet.tracers import Question, Tracer, VectorFormat, find_tracers

_SOURCE = "Mulgaonkar et al., Front Med 2023;10:1199146 (CC BY 4.0); data/tracers.csv"
_HEADINGS = ("agent", "target", "question", "format", "nuclide", "modality", "stage", "refs")


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "tracers",
        help="immuno-PET/-SPECT agents named by the review, by target, question or nuclide",
        description=(
            "List the immuno-PET/-SPECT agents and reporter/probe pairs of the knowledge base "
            f"({_SOURCE}). Filters combine."
        ),
    )
    parser.add_argument("--target", help="target, gene symbol or CD number, e.g. PD-L1, CD274, CD8")
    parser.add_argument(
        "--question", choices=[q.value for q in Question], help="the review's question"
    )
    parser.add_argument("--nuclide", help="radionuclide, e.g. Zr-89, 89Zr or zr89")
    parser.add_argument(
        "--format",
        dest="vector_format",
        choices=[f.value for f in VectorFormat],
        help="vector format",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of row objects")
    parser.set_defaults(run=run)


def _cells(tracer: Tracer) -> tuple[str, ...]:
    return (
        tracer.agent,
        tracer.target,
        tracer.question.value,
        tracer.vector_format.value,
        tracer.radionuclide,
        tracer.modality.value,
        tracer.stage.value,
        ",".join(str(ref) for ref in tracer.review_refs),
    )


def run(args: argparse.Namespace) -> int:
    """Print the matching agents as a table or as JSON."""
    tracers = find_tracers(
        target=args.target,
        question=args.question,
        nuclide=args.nuclide,
        vector_format=args.vector_format,
    )
    if args.json:
        print_json([t.as_dict() for t in tracers])
        return 0
    if not tracers:
        print("no agent matches these filters")
        return 0
    rows = [_HEADINGS, *(_cells(t) for t in tracers)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADINGS))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"{len(tracers)} agent(s); refs are the review's reference numbers; source: {_SOURCE}")
    return 0
