"""``immunopet plan tracer``: imaging window and radionuclide ranking for a vector format.

Thin over :func:`immunopet.planning._matching.plan_tracer`: parses, calls, prints a table for
people or one JSON object (``--json``) with the window, the ranking and the assumptions and
sources behind it. With ``--target`` the review's agents for that target (knowledge base,
:func:`immunopet.tracers.find_tracers`) are listed too: those of the format asked for, or of any
format when none matches.
"""

from __future__ import annotations

import argparse
from typing import Any

from immunopet.cli._common import (
    add_vector_arguments,
    positive_float,
    print_json,
)
from immunopet.planning._matching import NuclideOption, TracerPlan, plan_tracer
from immunopet.planning._scanner import known_scanners
from immunopet.tracers import Tracer, find_tracers
from immunopet.units import S_PER_DAY, S_PER_HOUR

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register the ``tracer`` subcommand (mounted under ``immunopet plan``)."""
    parser = subparsers.add_parser(
        "tracer",
        help="imaging window and ranked radionuclides for a vector format",
        description=(
            "When to image a vector and which radionuclide to label it with: the tumour signal "
            "above blood after decay, per unit of whole-body radiation burden, from the cited "
            "vector pharmacokinetics and ICRP-107 nuclide data."
        ),
    )
    add_vector_arguments(parser)
    parser.add_argument("--target", help="target antigen (recorded in the output, e.g. CD8)")
    parser.add_argument(
        "--scanner",
        choices=known_scanners(),
        help="PET scanner for expected counts (data/scanners.toml)",
    )
    parser.add_argument(
        "--injected-activity-bq",
        type=positive_float,
        help="injected activity for absolute expected counts, Bq",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def _duration(seconds: float) -> str:
    if seconds >= 2.0 * S_PER_DAY:
        return f"{seconds / S_PER_DAY:.1f} d"
    return f"{seconds / S_PER_HOUR:.1f} h"


def _row(option: NuclideOption) -> str:
    window = option.window
    yield_text = (
        f"b+ {option.positron_yield_per_decay:.3f}"
        if option.modality == "PET"
        else f"g {option.photon_yield_per_decay:.3f}"
    )
    counts = (
        f"{option.expected_counts:.3g}"
        if option.expected_counts is not None
        else (
            f"{option.expected_counts_per_mbq:.3g}/MBq"
            if option.expected_counts_per_mbq is not None
            else "-"
        )
    )
    return (
        f"{option.rank:>2} {option.nuclide:<7} {option.modality:<5} "
        f"{_duration(option.half_life_s):>8} {'res' if option.residualising_label else 'non':<4} "
        f"{_duration(window.best_time_s):>7} {_duration(window.start_s):>7}-{_duration(window.end_s):<7} "
        f"{window.tumour_to_blood_at_best:>6.2f} "
        f"{option.fraction_remaining_at_start:>6.3f} {option.fraction_remaining_at_end:>6.3f} "
        f"{yield_text:<9} {counts:>11} {option.decays_per_mbq:>10.3g} {option.score:>9.3g} "
        f"{'yes' if option.suitable else 'no':<4} {option.theranostic_partner or '-'}"
    )


def _known_agents(target: str | None, vector_format: str) -> tuple[Tracer, ...]:
    if not target:
        return ()
    return find_tracers(target=target, vector_format=vector_format) or find_tracers(target=target)


def _agent_dict(tracer: Tracer) -> dict[str, str]:
    return {
        "agent": tracer.agent,
        "target": tracer.target,
        "vector_format": tracer.vector_format.value,
        "radionuclide": tracer.radionuclide,
        "modality": tracer.modality.value,
        "stage": tracer.stage.value,
    }


def _print_table(plan: TracerPlan, agents: tuple[Tracer, ...]) -> None:
    window = plan.window
    target = f", target {plan.target}" if plan.target else ""
    print(f"Vector {plan.vector_format.value}{target}, antigen density {plan.antigen_density:g}")
    print(
        f"Imaging window ({window.nuclide}): best {_duration(window.best_time_s)} after "
        f"injection, {_duration(window.start_s)} to {_duration(window.end_s)}; "
        f"tumour-to-blood {window.tumour_to_blood_at_best:.2f} at the best time"
    )
    print()
    print(
        " # nuclide mod.  half-life lab.    best  window          T/B  "
        "left@s left@e yield          counts  decays/MBq     score ok   partner"
    )
    for option in plan.ranking:
        print(_row(option))
    print()
    if plan.target is not None:
        print(f"Agents for {plan.target} in the knowledge base:")
        for tracer in agents:
            print(
                f"  {tracer.agent} ({tracer.vector_format.value}, {tracer.radionuclide}, "
                f"{tracer.stage.value})"
            )
        if not agents:
            print("  none")
    print("Notes:")
    for option in plan.ranking:
        for note in option.notes:
            print(f"  {option.nuclide}: {note}")
    print("Assumptions:")
    for line in plan.assumptions:
        print(f"  - {line}")
    print("Sources:")
    for line in plan.sources:
        print(f"  - {line}")


def run(args: argparse.Namespace) -> int:
    """Plan the tracer and print the result."""
    plan = plan_tracer(
        args.vector_format,
        target=args.target,
        antigen_density=args.antigen_density,
        scanner=args.scanner,
        injected_activity_bq=args.injected_activity_bq,
    )
    agents = _known_agents(args.target, args.vector_format)
    if args.json:
        print_json({**plan.as_dict(), "known_agents": [_agent_dict(t) for t in agents]})
    else:
        _print_table(plan, agents)
    return 0
