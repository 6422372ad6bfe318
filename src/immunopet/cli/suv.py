"""``immunopet suv PATH``: SUV factors and their inputs for one PET/SPECT scan."""

from __future__ import annotations

import argparse
from typing import Any

from immunopet.cli._common import iso_datetime, non_negative_float, positive_float, print_json
from immunopet.image import DecayCorrection, Quantity
from immunopet.io import load_scan
from immunopet.quant import standardize_scan
from immunopet.units import S_PER_HOUR


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "suv",
        help="SUV factors (bw, lbm, bsa) and %%ID of a PET/SPECT scan, with every input shown",
        description=(
            "Read a DICOM file or series folder (or a PET-BIDS NIfTI) and print the SUV scale "
            "factors, the inputs they come from and the maximum SUVbw. Options override the file."
        ),
    )
    parser.add_argument("path", help="DICOM file, DICOM series folder, or PET-BIDS .nii/.nii.gz")
    parser.add_argument(
        "--injection-datetime", type=iso_datetime, metavar="ISO", help="injection date and time"
    )
    parser.add_argument("--weight-kg", type=positive_float, metavar="W", help="body weight, kg")
    parser.add_argument("--height-cm", type=positive_float, metavar="H", help="height, cm")
    parser.add_argument("--sex", choices=("M", "F"), help="sex for lean body mass")
    parser.add_argument("--nuclide", metavar="NAME", help="radionuclide, e.g. Zr-89")
    parser.add_argument(
        "--injected-activity-bq",
        type=positive_float,
        metavar="A",
        help="injected activity at injection, Bq",
    )
    parser.add_argument(
        "--residual-activity-bq",
        type=non_negative_float,
        metavar="A",
        help="activity left in the syringe, Bq",
    )
    parser.add_argument(
        "--residual-datetime",
        type=iso_datetime,
        metavar="ISO",
        help="when the residual was measured",
    )
    parser.add_argument(
        "--tissue-density-g-per-ml",
        type=positive_float,
        metavar="RHO",
        help="for %%ID/g (default 1.0 g/mL)",
    )
    parser.add_argument(
        "--decay-correction",
        choices=[mode.value for mode in DecayCorrection],
        help="what the values are decay-corrected to, where the DICOM files do not say",
    )
    parser.add_argument(
        "--series", metavar="UID", help="series to use when the folder holds several"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Compute and print the SUV factors."""
    mode = None if args.decay_correction is None else DecayCorrection(args.decay_correction)
    scan = load_scan(args.path, series_uid=args.series, decay_correction=mode)
    result = standardize_scan(
        scan,
        nuclide_name=args.nuclide,
        injected_activity_bq=args.injected_activity_bq,
        injection_datetime=args.injection_datetime,
        weight_kg=args.weight_kg,
        height_cm=args.height_cm,
        sex=args.sex,
        residual_activity_bq=args.residual_activity_bq,
        residual_datetime=args.residual_datetime,
        tissue_density_g_per_ml=args.tissue_density_g_per_ml,
    )
    factors, inputs = result.factors, result.factors.inputs
    assert scan.acquisition is not None  # standardize_scan refuses scans without one
    payload: dict[str, Any] = {
        "path": str(args.path),
        "modality": scan.modality,
        "series_uid": scan.series_uid,
        **factors.as_dict(),
        "units": scan.acquisition.stored_units or Quantity.ACTIVITY_CONCENTRATION.unit,
        "decay_correction": scan.acquisition.decay_correction.value,
        "radiopharmaceutical": scan.acquisition.radiopharmaceutical,
        "max_suv_bw": result.max_suv_bw,
        "max_activity_concentration_bq_per_ml": result.max_activity_bq_per_ml,
        "warnings": list(result.warnings),
    }
    if args.json:
        print_json(payload)
        return 0
    print(
        f"{payload['path']}: {scan.modality}, {factors.inputs.nuclide}, units {payload['units']}, "
        f"decay correction {payload['decay_correction']}"
    )
    print(
        f"  injected {inputs.injected_activity_bq:.6g} Bq at {inputs.injection_datetime.isoformat()}"
    )
    print(
        f"  reference {factors.reference_datetime.isoformat()} "
        f"({factors.uptake_time_s / S_PER_HOUR:.2f} h after injection): decayed dose {factors.decayed_dose_bq:.6g} Bq"
    )
    for key in (
        "suv_bw_factor",
        "suv_lbm_james_factor",
        "suv_lbm_janmahasatian_factor",
        "suv_bsa_factor",
    ):
        value = payload[key]
        print(f"  {key:30s} {'n/a' if value is None else f'{value:.6g}'}")
    print(f"  max SUVbw {result.max_suv_bw:.4f}")
    for warning in payload["warnings"]:
        print(f"  warning: {warning}")
    return 0
