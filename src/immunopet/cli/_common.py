"""Argument types shared by subcommands (parsing only; no science here)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import datetime
from typing import Any

from immunopet.errors import InputError


def iso_datetime(text: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM[:SS][±HH:MM]`` for argparse."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date-time such as 2026-03-02T09:15:00"
        ) from exc


def positive_float(text: str) -> float:
    """Parse a positive finite number for argparse."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not math.isfinite(value) or value <= 0.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def non_negative_float(text: str) -> float:
    """Parse a finite number >= 0 for argparse."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not math.isfinite(value) or value < 0.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or positive")
    return value


def print_json(payload: Any) -> None:
    """Print one JSON value (strict: no NaN or infinity) to stdout.

    Raises
    ------
    InputError
        When a result is not finite: the inputs were out of any physical range.

    """
    try:
        text = json.dumps(payload, indent=2, allow_nan=False, ensure_ascii=False)
    except ValueError as exc:
        raise InputError(
            "a result is not a finite number: the inputs are outside any physical range",
            hint="check the magnitudes of the options",
        ) from exc
    sys.stdout.write(text + "\n")


def add_vector_arguments(parser: argparse.ArgumentParser) -> None:
    """``--format`` (required) and ``--antigen-density`` (default 1.0), shared by planner commands."""
    from immunopet.tracers import VectorFormat

    parser.add_argument(
        "--format",
        dest="vector_format",
        required=True,
        choices=[f.value for f in VectorFormat],
        help="vector format (cell_label and reporter_substrate have no plasma kinetics)",
    )
    parser.add_argument(
        "--antigen-density",
        type=non_negative_float,
        default=1.0,
        help="tumour antigen density relative to the reference tumour (default 1.0)",
    )


def non_negative_int(text: str) -> int:
    """Parse a whole number >= 0 for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


class ProgressBar:
    """One line per stage on stderr: a bar redrawn in place on a terminal, else its end only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 24
        filled = width if total == 0 else round(width * done / total)
        line = f"{stage:9} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        line += f"  {time.perf_counter() - self.started:6.1f} s"
        if self.tty:
            end = "\n" if done >= total else ""
            print(f"\r{line}", end=end, file=sys.stderr, flush=True)
        elif done >= total:
            print(line, file=sys.stderr, flush=True)
