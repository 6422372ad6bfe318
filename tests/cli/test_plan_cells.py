"""``plan cells``: options, JSON fields, readable table and errors, run in process."""

from __future__ import annotations

import argparse
import json

import pytest

from immunopet.cli import plan_cells
from immunopet.errors import InputError

BASE = [
    "cells",
    "--cells-per-kg",
    "3.1e6",
    "--weight-kg",
    "39",
    "--homing-fraction",
    "0.01",
    "--site-volume-ml",
    "10",
    "--scanner",
    "biograph_mct",
    "--day",
    "3",
]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    plan_cells.add_parser(subparsers)
    return parser.parse_args(list(argv))


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    args = parse(*BASE, *argv, "--json")
    assert plan_cells.run(args) == 0
    payload: dict[str, object] = json.loads(capsys.readouterr().out)
    return payload


def test_json_fields_for_a_direct_label(capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_json(capsys, "--label", "zr89-oxine")
    for key in (
        "cnr",
        "min_detectable_cells",
        "last_visible_day",
        "detectable",
        "criterion",
        "background_bq_per_ml",
        "assumptions",
        "sources",
    ):
        assert key in payload
    assert isinstance(payload["cnr"], float)
    assert payload["cnr"] > 5.0
    assert isinstance(payload["last_visible_day"], int)
    assumptions = " ".join(payload["assumptions"])  # type: ignore[arg-type]
    assert "cell_labelling.toml [zr89-oxine]" in assumptions
    assert "SUV 1" in assumptions
    assert "600 s" in assumptions
    assert payload["published_detection_limit_cells"] is None


def test_doubling_bq_per_cell_halves_the_limit(capsys: pytest.CaptureFixture[str]) -> None:
    fixed = ["--label", "zr89-oxine", "--background-bq-per-ml", "150"]
    one = run_json(capsys, *fixed, "--bq-per-cell", "0.07")
    two = run_json(capsys, *fixed, "--bq-per-cell", "0.14")
    assert two["min_detectable_cells"] == pytest.approx(one["min_detectable_cells"] / 2)  # type: ignore[operator]
    longer = run_json(capsys, *fixed, "--bq-per-cell", "0.07", "--scan-time-s", "2400")
    assert longer["cnr"] == pytest.approx(2 * one["cnr"], rel=2e-3)  # type: ignore[operator]


def test_reporter_needs_uptake_and_background(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="--bq-per-cell"):
        plan_cells.run(parse(*BASE, "--label", "hnet-mfbg"))
    with pytest.raises(InputError, match="--background-bq-per-ml"):
        plan_cells.run(parse(*BASE, "--label", "hnet-mfbg", "--bq-per-cell", "0.01"))
    payload = run_json(
        capsys, "--label", "hnet-mfbg", "--bq-per-cell", "0.01", "--background-bq-per-ml", "500"
    )
    assert payload["label_kind"] == "reporter"
    assert payload["nuclide"] == "F-18"
    assert payload["published_detection_limit_cells"] == 1.0e5


def test_kinetics_none_keeps_cells_constant(capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_json(capsys, "--label", "zr89-oxine", "--kinetics", "none", "--max-day", "10")
    assert payload["cells_in_site"] == pytest.approx(3.1e6 * 39 * 0.01)
    assert len(payload["daily_cnr"]) == 11  # type: ignore[arg-type]


def test_readable_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_cells.run(parse(*BASE, "--label", "zr89-oxine")) == 0
    out = capsys.readouterr().out
    for needle in ("CNR", "min detectable cells", "last visible day", "assumptions:", "sources:"):
        assert needle in out
    assert "visible (Rose" in out


def test_invisible_and_never_visible_are_said(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*BASE, "--label", "zr89-oxine", "--bq-per-cell", "1e-7", "--max-day", "5"]
    assert plan_cells.run(parse(*argv)) == 0
    out = capsys.readouterr().out
    assert "NOT visible" in out
    assert "never on days 0..5" in out


def test_spect_label_and_unknown_scanner_are_refused() -> None:
    with pytest.raises(InputError, match="SPECT"):
        plan_cells.run(parse(*BASE, "--label", "in111-oxine"))
    args = parse(*BASE, "--label", "zr89-oxine")
    args.scanner = "no-such-scanner"
    with pytest.raises(InputError, match="unknown scanner"):
        plan_cells.run(args)


def test_required_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("cells", "--label", "zr89-oxine")
    assert "required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(*BASE, "--label", "zr89-oxine", "--homing-fraction", "-1")
