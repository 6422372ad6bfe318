"""``immunopet example``: where the shipped example scan is, or a copy of it.

The example is a ⁸⁹Zr-antibody phantom 4 days after injection (see
``scripts/make_example.py``); ``immunopet suv`` reads SUVbw max 5.0 from it.
"""

from __future__ import annotations

import argparse
import shutil
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from immunopet.errors import InputError

EXAMPLE = "zr89_day4"


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "example",
        help="print the path of the shipped example PET series (or copy it with --out)",
        description="The shipped example: a Zr-89 antibody phantom imaged 4 days after injection.",
    )
    parser.add_argument("--out", metavar="DIR", help="copy the example series into DIR/zr89_day4")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the example's path (after copying it when asked)."""
    resource = files("immunopet.data").joinpath("examples", EXAMPLE)
    with as_file(resource) as source:
        if args.out is None:
            print(source)
            return 0
        target = Path(args.out) / EXAMPLE
        if target.exists():
            raise InputError(
                "already exists; immunopet does not overwrite it",
                path=target,
                hint="choose another --out",
            )
        shutil.copytree(source, target)
    print(target)
    return 0
