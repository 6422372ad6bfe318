"""Reference tables shipped with immunopet, each with its source in ``README.md``.

Tables are read lazily, once, on first use (never at import).
"""

from __future__ import annotations

import csv
import io
import tomllib
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["read_csv", "read_text", "read_toml"]


def read_text(name: str) -> str:
    """Return the text of the package data file ``name`` (UTF-8)."""
    return files(__name__).joinpath(name).read_text(encoding="utf-8")


@cache
def read_toml(name: str) -> dict[str, Any]:
    """Return the parsed TOML data file ``name`` (cached; do not mutate)."""
    return tomllib.loads(read_text(name))


@cache
def read_csv(name: str) -> tuple[dict[str, str], ...]:
    """Return the rows of the CSV data file ``name`` as dicts (cached; lines starting # skipped)."""
    lines = [line for line in read_text(name).splitlines() if not line.startswith("#")]
    return tuple(csv.DictReader(io.StringIO("\n".join(lines))))
