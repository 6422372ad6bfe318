"""``immunopet plan tracer``: the parser, the JSON contract and the table for people."""

from __future__ import annotations

import argparse
import json

import pytest

from immunopet.cli import plan_tracer
from immunopet.errors import InputError

TOP_KEYS = {
    "vector_format",
    "target",
    "antigen_density",
    "window",
    "ranking",
    "scanner",
    "injected_activity_bq",
    "tumour_mass_g",
    "scan_duration_s",
    "assumptions",
    "sources",
    "known_agents",
}
OPTION_KEYS = {
    "rank",
    "nuclide",
    "modality",
    "half_life_s",
    "window",
    "fraction_remaining_at_start",
    "fraction_remaining_at_end",
    "positron_yield_per_decay",
    "photon_yield_per_decay",
    "expected_counts",
    "decays_per_mbq",
    "score",
    "suitable",
    "theranostic_partner",
    "notes",
}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    plan_tracer.add_parser(sub)
    return parser.parse_args(["tracer", *argv])


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert plan_tracer.run(parse(*argv, "--json")) == 0
    payload: dict[str, object] = json.loads(capsys.readouterr().out)
    return payload


def test_igg_json(capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_json(capsys, "--format", "igg")
    assert payload.keys() == TOP_KEYS
    ranking = payload["ranking"]
    assert isinstance(ranking, list)
    assert ranking[0].keys() >= OPTION_KEYS
    assert ranking[0]["nuclide"] == "Zr-89"
    window = payload["window"]
    assert isinstance(window, dict)
    assert 4 <= window["best_time_s"] / 86400 <= 7
    assert payload["assumptions"]
    assert payload["sources"]


def test_minibody_with_target_scanner_and_activity(capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_json(
        capsys,
        "--format",
        "minibody",
        "--target",
        "CD8",
        "--scanner",
        "biograph_mct",
        "--injected-activity-bq",
        "111e6",
    )
    assert payload["target"] == "CD8"
    assert payload["scanner"] == "biograph_mct"
    agents = payload["known_agents"]
    assert isinstance(agents, list)
    assert "[89Zr]Zr-Df-IAB22M2C" in [a["agent"] for a in agents]
    assert {a["vector_format"] for a in agents} == {"minibody"}
    ranking = payload["ranking"]
    assert isinstance(ranking, list)
    pet = [o for o in ranking if o["modality"] == "PET"]
    assert all(o["expected_counts"] is not None for o in pet)
    spect = [o for o in ranking if o["modality"] == "SPECT"]
    assert all(o["expected_counts"] is None for o in spect)


def test_table_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_tracer.run(parse("--format", "peptide", "--antigen-density", "0.5")) == 0
    out = capsys.readouterr().out
    assert "Imaging window" in out
    assert "antigen density 0.5" in out
    assert "Assumptions:" in out
    assert "Sources:" in out
    first = next(line for line in out.splitlines() if line.startswith(" 1 "))
    assert first.split()[1] in ("Ga-68", "F-18")


def test_target_without_an_agent_of_that_format_lists_all_formats(
    capsys: pytest.CaptureFixture[str],
) -> None:
    payload = run_json(capsys, "--format", "nanobody", "--target", "CD8")
    agents = payload["known_agents"]
    assert isinstance(agents, list)
    assert {a["vector_format"] for a in agents} == {"minibody", "cys_diabody"}
    assert run_json(capsys, "--format", "igg")["known_agents"] == []


def test_a_cell_label_is_refused_with_the_reason() -> None:
    with pytest.raises(InputError, match="no plasma pharmacokinetics"):
        plan_tracer.run(parse("--format", "cell_label"))


@pytest.mark.parametrize(
    "argv",
    [
        ["--format", "affibody"],
        ["--format", "igg", "--scanner", "no_such_scanner"],
        ["--format", "igg", "--antigen-density", "-1"],
        ["--format", "igg", "--injected-activity-bq", "0"],
        [],
    ],
)
def test_bad_options_are_argparse_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)
