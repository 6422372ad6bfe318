"""``immunopet nuclide NAME``: half-life, β⁺ yield and main photon lines (ICRP-107)."""

from __future__ import annotations

import argparse
from typing import Any

from immunopet.cli._common import print_json
from immunopet.physics import nuclide
from immunopet.units import S_PER_DAY, S_PER_HOUR


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "nuclide",
        help="half-life, positron yield and main gamma lines of a radionuclide (ICRP-107)",
        description="Physical data of a radionuclide from ICRP Publication 107.",
    )
    parser.add_argument("name", help="nuclide, e.g. Zr-89, zr89 or 89Zr")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the nuclide's data."""
    data = nuclide(args.name)
    if args.json:
        print_json(data.as_dict())
        return 0
    half_life = data.half_life_s
    readable = (
        f"{half_life / S_PER_DAY:.4g} d"
        if half_life > S_PER_DAY
        else f"{half_life / S_PER_HOUR:.4g} h"
    )
    print(
        f"{data.name}: half-life {half_life:.8g} s ({readable}); decay {', '.join(data.decay_modes)}"
    )
    print(f"  beta+ yield {data.beta_plus_yield_per_decay:.5g} /decay", end="")
    if data.beta_plus_mean_energy_kev is not None:
        print(f", mean energy {data.beta_plus_mean_energy_kev:.1f} keV", end="")
    print(f"; 511 keV photons {data.annihilation_photons_per_decay:.4g} /decay")
    for line in data.main_gamma_lines():
        print(f"  gamma {line.energy_kev:9.2f} keV  {line.yield_per_decay:.4g} /decay")
    for line in data.main_xray_lines():
        print(f"  X-ray {line.energy_kev:9.3f} keV  {line.yield_per_decay:.4g} /decay")
    print(f"  source: {data.source}")
    return 0
