"""The ``immunopet`` command: one module per subcommand, each thin over the library.

Every subcommand returns an exit code: 0 success, 2 unusable input (one line on
stderr naming the file and field, no traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from immunopet import __version__
from immunopet.cli import (
    analyze,
    demo,
    dose,
    example,
    kinetics,
    nuclide,
    plan,
    report,
    simulate,
    suv,
    tracers,
)
from immunopet.errors import ImmunopetError

__all__ = ["main"]

_SUBCOMMANDS = (
    suv,
    nuclide,
    example,
    tracers,
    plan,
    simulate,
    analyze,
    kinetics,
    dose,
    report,
    demo,
)
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool cut off by `| head`


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="immunopet",
        description="Quantitative, longitudinal immuno-PET/-SPECT for CAR T-cell therapy.",
    )
    parser.add_argument("--version", action="version", version=f"immunopet {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ImmunopetError as exc:
        print(f"immunopet {args.command}: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OverflowError, ZeroDivisionError) as exc:
        # Arithmetic beyond floating point: only reachable with inputs far outside physical ranges.
        print(
            f"immunopet {args.command}: error: a result overflowed ({exc}): the inputs are outside "
            "any physical range; check the magnitudes of the options",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"immunopet {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return code
