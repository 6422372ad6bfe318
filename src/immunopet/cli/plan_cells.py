"""``immunopet plan cells``: are labelled CAR T cells visible in a site, and until which day.

Thin over :func:`immunopet.planning._cells.predict_cell_detectability`: parse,
call, print. Facts without a published default are required options; every
default that is a convention is printed under "assumptions".
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from immunopet.cli._common import non_negative_float, positive_float, print_json
from immunopet.kinetics import Stein2019CellularKinetics
from immunopet.planning._cells import (
    CellDetectability,
    CellDetectabilityInputs,
    cell_label,
    predict_cell_detectability,
    resolve_cell_label,
)
from immunopet.planning._scanner import scanner

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register the ``cells`` subcommand."""
    parser = subparsers.add_parser(
        "cells",
        help="contrast-to-noise, minimum detectable cells and last visible day of labelled CAR T cells",
        description=(
            "Predict whether CAR T cells labelled directly (e.g. zr89-oxine) or through a "
            "reporter gene (e.g. hnet-mfbg) are visible by PET in one site on one day after "
            "infusion: CNR against the Rose criterion, the fewest detectable cells and the last "
            "visible day. Cell numbers follow the Stein 2019 tisagenlecleucel kinetics."
        ),
    )
    required = parser.add_argument_group("required")
    required.add_argument(
        "--cells-per-kg", type=positive_float, required=True, metavar="N", help="infused cells/kg"
    )
    required.add_argument(
        "--weight-kg", type=positive_float, required=True, metavar="W", help="body weight, kg"
    )
    required.add_argument(
        "--label",
        required=True,
        metavar="NAME",
        help="label from data/cell_labelling.toml: zr89-oxine, zr89-dfo, hnet-mfbg, hnis-i124, "
        "hdckdm-feau, hsvtk-feau (SPECT labels are refused)",
    )
    required.add_argument(
        "--homing-fraction",
        type=positive_float,
        required=True,
        metavar="H",
        help="fraction of the infused cells (and progeny) in the site, 0-1",
    )
    required.add_argument(
        "--site-volume-ml",
        type=positive_float,
        required=True,
        metavar="V",
        help="site volume, mL (a sphere; also the volume of interest)",
    )
    required.add_argument(
        "--scanner", required=True, metavar="KEY", help="scanner from data/scanners.toml"
    )
    required.add_argument(
        "--day",
        type=non_negative_float,
        required=True,
        metavar="D",
        help="scan day, days after infusion",
    )
    label = parser.add_argument_group("label (defaults from the label table, printed)")
    label.add_argument(
        "--bq-per-cell",
        type=positive_float,
        metavar="A",
        help="direct label: activity offered per cell in the labelling reaction, Bq; reporter: "
        "probe activity per reporter cell at the scan start, Bq (required)",
    )
    label.add_argument(
        "--efficiency",
        type=positive_float,
        metavar="F",
        help="direct label: fraction of the offered activity bound (1 with a measured bound "
        "activity)",
    )
    label.add_argument(
        "--efflux-per-day",
        type=non_negative_float,
        metavar="K",
        help="direct label: first-order loss of label from living cells, 1/day",
    )
    optional = parser.add_argument_group("scan and criterion (conventions, printed)")
    optional.add_argument(
        "--background-bq-per-ml",
        type=non_negative_float,
        metavar="C",
        help="activity concentration around the site at the scan, Bq/mL (direct default: all "
        "label spread over the body, SUV 1; required for reporters)",
    )
    optional.add_argument(
        "--scan-time-s", type=positive_float, metavar="T", help="emission time over the site, s"
    )
    optional.add_argument(
        "--cnr-threshold", type=positive_float, metavar="K", help="Rose criterion (default 5)"
    )
    optional.add_argument(
        "--noise-amplification",
        type=positive_float,
        metavar="ETA",
        help="reconstruction noise over Poisson noise (default 1, ideal)",
    )
    optional.add_argument(
        "--max-day", type=int, metavar="N", help="search the last visible day on days 0..N"
    )
    optional.add_argument(
        "--kinetics",
        choices=("stein2019", "none"),
        default="stein2019",
        help="cell kinetics: Stein 2019 typical tisagenlecleucel curve (default) or none "
        "(constant cell number, e.g. preclinical or in vitro)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Predict and print detectability."""
    entry = cell_label(args.label)
    label, label_assumptions = resolve_cell_label(
        entry,
        bq_per_cell=args.bq_per_cell,
        efficiency=args.efficiency,
        efflux_per_day=args.efflux_per_day,
    )
    kinetics = Stein2019CellularKinetics.published() if args.kinetics == "stein2019" else None
    result = predict_cell_detectability(
        CellDetectabilityInputs(
            cells_per_kg=args.cells_per_kg,
            weight_kg=args.weight_kg,
            label=label,
            homing_fraction=args.homing_fraction,
            site_volume_ml=args.site_volume_ml,
            scanner=scanner(args.scanner),
            days_after_infusion=args.day,
            kinetics=kinetics,
            scan_time_s=args.scan_time_s,
            background_bq_per_ml=args.background_bq_per_ml,
            cnr_threshold=args.cnr_threshold,
            noise_amplification=args.noise_amplification,
            max_day=args.max_day,
        )
    )
    assumptions = [*label_assumptions, *result.assumptions]
    published = entry.published_detection_limit_cells
    if args.json:
        payload = result.as_dict()
        payload["assumptions"] = assumptions
        payload["published_detection_limit_cells"] = published
        print_json(payload)
        return 0
    _print_table(result, assumptions, published)
    return 0


def _print_table(
    result: CellDetectability, assumptions: list[str], published: float | None
) -> None:
    inputs = result.inputs
    verdict = "visible" if result.detectable else "NOT visible"
    if result.last_visible_day is None:
        last = f"never on days 0..{result.max_day}"
    elif result.visible_through_max_day:
        last = f"{result.last_visible_day} (still visible at the end of the search, day {result.max_day})"
    else:
        last = f"{result.last_visible_day}"
    min_cells = (
        f"{result.min_detectable_cells:.3g}"
        if math.isfinite(result.min_detectable_cells)
        else "none (no label left)"
    )
    rows = [
        ("label", f"{inputs.label.name} ({result.as_dict()['nuclide']})"),
        ("scanner", inputs.scanner.key),
        ("day after infusion", f"{inputs.days_after_infusion:g}"),
        ("infused cells", f"{inputs.infused_cells:.3g}"),
        ("cells in site", f"{result.cells_in_site:.3g} (level x{result.relative_cell_level:.3g})"),
        ("activity per cell", f"{result.activity_per_cell_bq:.3g} Bq"),
        ("site activity", f"{result.site_activity_bq:.3g} Bq in {inputs.site_volume_ml:g} mL"),
        ("background", f"{result.background_bq_per_ml:.3g} Bq/mL"),
        ("recovery coefficient", f"{result.recovery_coefficient:.3f}"),
        (
            "signal / background",
            f"{result.signal_counts:.3g} / {result.background_counts:.3g} counts",
        ),
        ("CNR", f"{result.cnr:.3g} -> {verdict} ({result.criterion})"),
        ("min detectable cells", min_cells),
        ("last visible day", last),
    ]
    if published is not None:
        rows.append(("published detection limit", f"{published:.3g} cells (see sources)"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("assumptions:")
    for line in assumptions:
        print(f"  - {line}")
    print("sources:")
    for line in result.sources:
        print(f"  - {line}")
