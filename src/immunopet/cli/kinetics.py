"""``immunopet kinetics``: Patlak K_i, two-tissue fits or CAR T-cell kinetics of an analysed study."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from typing import Any, Final, get_args

from immunopet.cli._common import print_json
from immunopet.errors import InputError
from immunopet.kinetics import (
    KineticModel,
    KiUnit,
    ki_in_unit,
    kinetics_from_results,
    load_results_document,
)
from immunopet.units import S_PER_DAY, S_PER_HOUR

__all__ = ["add_parser", "run"]

#: K_i is printed in µL/g/h, the unit of Jauw et al. 2019.
_KI_UNIT: Final[KiUnit] = "uL/g/h"


def add_parser(subparsers: Any) -> None:
    """Register the ``kinetics`` subcommand."""
    parser = subparsers.add_parser(
        "kinetics",
        help="Patlak K_i per VOI, two-tissue fits or CAR T-cell kinetics of an analysed study",
        description=(
            "Kinetic analysis of the output of `immunopet analyze`: Patlak K_i (with the "
            "correction for loss of trapped label) per lesion and organ for each injection of a "
            "residualising antibody imaged at >= 2 timepoints, a two-tissue irreversible "
            "compartment model on the same curves, or the Stein 2019 CAR T-cell kinetics of the "
            "blood counts of the manifest. See docs/kinetics.md."
        ),
    )
    parser.add_argument(
        "path",
        metavar="RESULTS_DIR|CSV",
        help="an `immunopet analyze` output folder, its results.json or measurements.csv, or a "
        "table of CAR T-cell counts (day, value, unit, source)",
    )
    parser.add_argument(
        "--model",
        choices=get_args(KineticModel),
        default="patlak",
        help="patlak (default), 2tc (two-tissue irreversible) or stein2019 (CAR T-cell kinetics)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def _ki(value: float | None) -> str:
    return "—" if value is None else f"{float(ki_in_unit(value, _KI_UNIT)):.3g}"


def _days(times_s: list[float]) -> str:
    return ", ".join(f"{t / S_PER_DAY:.2f}" for t in times_s)


def _print_input(section: Mapping[str, Any]) -> None:
    blood = section["input"]
    sources = []
    if blood["blood_voi"]:
        sources.append(f"blood-pool VOI {blood['blood_voi']} ({blood['n_image_points']} scans)")
    if blood["n_samples"]:
        sources.append(f"{blood['n_samples']} blood sample(s)")
    if blood["anchor_plasma_bq_per_ml"] is not None:
        sources.append("injection anchor A0/V_plasma")
    print(
        f"  input: {' + '.join(sources)}; haematocrit {blood['haematocrit']:g} "
        f"({blood['haematocrit_source']})"
    )


def _print_patlak(sections: list[Mapping[str, Any]]) -> None:
    for section in sections:
        loss = section["loss_rate_per_s"]
        half_life = f"T½ {math.log(2.0) / loss / S_PER_HOUR:.0f} h" if loss > 0.0 else "none"
        print(
            f"{section['injection_id']}: {section['agent']} ({section['vector_format']}, "
            f"{section['nuclide']}), scans at {_days(section['time_s'])} d after injection"
        )
        _print_input(section)
        print(f"  loss of trapped label corrected: {half_life}")
        level = round(100 * section["ci_level"])
        print(
            f"  {'VOI':22s} {'K_i µL/g/h':>11s} {'SE':>8s} {f'{level}% CI':>19s} "
            f"{'V0 mL/g':>8s} {'r':>6s} {'n':>2s}"
        )
        for row in section["results"]:
            if "ki_ml_per_g_per_s" not in row:
                print(f"  {row['voi_id']:22s} {'—':>11s}  {'; '.join(row.get('warnings', []))}")
                continue
            low, high = row["ki_ci_ml_per_g_per_s"]
            interval = f"[{_ki(low)}, {_ki(high)}]"
            r = row["pearson_r"]
            print(
                f"  {row['voi_id']:22s} {_ki(row['ki_ml_per_g_per_s']):>11s} "
                f"{_ki(row['ki_se_ml_per_g_per_s']):>8s} {interval:>19s} "
                f"{row['intercept_ml_per_g']:8.3f} {'—' if r is None else f'{r:.3f}':>6s} "
                f"{row['n_points']:2d}"
            )
            for warning in row["warnings"]:
                print(f"      ! {warning}")
        for warning in section["warnings"]:
            print(f"  note: {warning}")


def _print_compartment(sections: list[Mapping[str, Any]]) -> None:
    for section in sections:
        print(f"{section['injection_id']}: {section['agent']} — {section['method']}")
        _print_input(section)
        for row in section["results"]:
            if "values" not in row:
                print(f"  {row['voi_id']:22s} not fitted: {'; '.join(row['identifiability'])}")
                continue
            values = row["values"]
            print(
                f"  {row['voi_id']:22s} K_i {_ki(row['ki_ml_per_g_per_s'])} µL/g/h "
                f"(SE {_ki(row['ki_se_ml_per_g_per_s'])}); K1 {_ki(values['k1_ml_per_g_per_s'])} "
                f"µL/g/h, k2 {values['k2_per_s'] * S_PER_HOUR:.3g}/h, "
                f"k3 {values['k3_per_s'] * S_PER_HOUR:.3g}/h; v_B {row['blood_fraction']:g} "
                f"held; {'identifiable' if row['identifiable'] else 'NOT identifiable'}"
            )
            for note in row["identifiability"]:
                print(f"      ! {note}")


def _estimate(entry: Mapping[str, Any], digits: str = ".3g") -> str:
    value, low, high = entry["value"], entry["ci_low"], entry["ci_high"]
    if value is None:
        return "—"
    interval = "" if low is None or high is None else f" [{low:{digits}}–{high:{digits}}]"
    return f"{value:{digits}}{interval}"


def _print_cells(sections: list[Mapping[str, Any]]) -> None:
    for fit in sections:
        unit = fit["value_unit"]
        print(
            f"{fit['source']} ({unit}), {len(fit['time_d'])} samples, assay CV "
            f"{100 * fit['relative_sd']:.0f} %, prior {fit['prior']}:"
        )
        print(f"  Cmax {_estimate(fit['cmax'])} {unit} at Tmax {_estimate(fit['tmax_d'])} d")
        print(
            f"  doubling time {_estimate(fit['doubling_time_d'])} d; decline half-lives "
            f"{_estimate(fit['alpha_half_life_d'])} d and {_estimate(fit['beta_half_life_d'])} d"
        )
        print(f"  AUC0-28d {_estimate(fit['auc_0_28d'])} {unit}·d")
        verdict = "NO EXPANSION" if fit["non_expansion"] else "expansion"
        print(
            f"  {verdict}: rise {fit['fold_rise']:.3g}-fold over the first sample "
            f"(threshold {fit['non_expansion_threshold']:.3g}-fold)"
        )
        print(f"  intervals: {fit['ci_method']}")
        for warning in fit["warnings"]:
            print(f"  ! {warning}")


def run(args: argparse.Namespace) -> int:
    """Print the kinetic analysis."""
    document = load_results_document(args.path)
    section = kinetics_from_results(document, models=(args.model,), keep_empty=True)
    assert section is not None
    if not any(section.get(k) for k in ("patlak", "compartment", "cell_kinetics")):
        what = {
            "patlak": "no injection of a residualising antibody imaged at >= 2 timepoints",
            "2tc": "no injection of a residualising antibody imaged at >= 2 timepoints",
            "stein2019": "no series of >= 3 CAR T-cell counts (clinical.car_t_counts)",
        }[args.model]
        reasons = "; ".join(
            f"{s.get('injection_id') or s.get('source')}: {s['reason']}" for s in section["skipped"]
        )
        raise InputError(
            f"nothing to analyse with --model {args.model}: {what}"
            + (f" ({reasons})" if reasons else ""),
            field="path",
        )
    if args.json:
        print_json(section)
        return 0
    if args.model == "patlak":
        _print_patlak(section["patlak"])
    elif args.model == "2tc":
        _print_compartment(section["compartment"])
    else:
        _print_cells(section["cell_kinetics"])
    for skipped in section["skipped"]:
        label = skipped.get("injection_id") or f"{skipped.get('source')} counts"
        print(f"skipped {label}: {skipped['reason']}")
    return 0
