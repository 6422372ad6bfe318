"""``immunopet plan``: answers before any scan — tracer and nuclide, cell detectability, dose."""

from __future__ import annotations

import argparse
from typing import Any

from immunopet.cli import plan_cells, plan_dose, plan_tracer

__all__ = ["add_parser"]

_PLAN_COMMANDS = (plan_tracer, plan_cells, plan_dose)


def add_parser(subparsers: Any) -> None:
    """Register ``plan`` and its subcommands."""
    parser = subparsers.add_parser(
        "plan",
        help="plan a study: tracer and radionuclide, cell detectability, radiation dose",
        description="Plan an immuno-PET study before any scan; every answer states its sources.",
    )
    commands = parser.add_subparsers(dest="plan_command", required=True, metavar="WHAT")
    for module in _PLAN_COMMANDS:
        module.add_parser(commands)
    parser.set_defaults(run=_missing)


def _missing(args: argparse.Namespace) -> int:  # pragma: no cover - argparse requires WHAT
    raise SystemExit(2)
