"""The dose budget of a planned tracer: linear in activity, additive over a schedule."""

from __future__ import annotations

import json

import pytest

from immunopet.cli import main
from immunopet.planning import plan_dose


def test_dose_grows_linearly_with_activity() -> None:
    one = plan_dose("igg", "Zr-89", [("a", 37.0e6)]).budget.scans[0].effective_dose_sv
    two = plan_dose("igg", "Zr-89", [("a", 74.0e6)]).budget.scans[0].effective_dose_sv
    assert two == pytest.approx(2.0 * one, rel=1e-12)


def test_schedule_accumulates() -> None:
    scans = plan_dose(
        "minibody", "Zr-89", [("baseline", 111e6), ("CRS window", 74e6), ("response", 111e6)]
    ).budget.scans
    assert scans[1].effective_dose_sv == pytest.approx(
        scans[0].effective_dose_sv * 74 / 111, rel=1e-12
    )
    assert scans[-1].cumulative_effective_dose_sv == pytest.approx(
        sum(s.effective_dose_sv for s in scans), rel=1e-12
    )


def test_shorter_lived_label_gives_less_dose_per_mbq() -> None:
    # Same vector, ⁶⁴Cu (12.7 h) instead of ⁸⁹Zr (78.4 h): far fewer decays per MBq in the body.
    zr = plan_dose("minibody", "Zr-89", [("a", 1e6)]).budget.per_bq.effective_dose_sv
    cu = plan_dose("minibody", "Cu-64", [("a", 1e6)]).budget.per_bq.effective_dose_sv
    assert cu < zr / 3


def test_plan_dose_cli(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "plan",
        "dose",
        "--format",
        "igg",
        "--nuclide",
        "Zr-89",
        "--scan",
        "baseline:37",
        "--scan",
        "day28:37",
        "--json",
    ]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["nuclide"] == "Zr-89"
    assert len(payload["scans"]) == 2
    assert payload["published"]
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", "dose", "--format", "igg", "--nuclide", "Zr-89", "--scan", "baseline"])
    assert exit_info.value.code == 2
    assert "LABEL:MBQ" in capsys.readouterr().err
