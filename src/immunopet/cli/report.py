"""``immunopet report``: re-render ``report.html`` from a results folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Final

#: Bytes per megabyte (SI), for the size printed.
_BYTES_PER_MB: Final = 1_000_000


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="write the HTML report of an analysis folder",
        description=(
            "Render the self-contained HTML report (events, viewer, MIPs, charts, methods) of "
            "an output folder of `immunopet analyze`, from its results.json and images. "
            "Writes RESULTS_DIR/report.html unless --out names another file."
        ),
    )
    parser.add_argument(
        "results_dir", metavar="RESULTS_DIR", type=Path, help="output folder of immunopet analyze"
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="HTML file to write (default RESULTS_DIR/report.html)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and print its path and size."""
    from immunopet.report import write_report

    path = write_report(args.results_dir, args.out)
    size_mb = path.stat().st_size / _BYTES_PER_MB
    print(f"report -> {path} ({size_mb:.1f} MB)")
    return 0
