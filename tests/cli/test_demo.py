"""``immunopet demo``: the default scenario simulated, analysed and reported, checked against truth.

The demo runs once per module on a coarse setting (hidden options ``--voxel-mm 8
--registration rigid``; the default is 4 mm and affine) so the test stays near 15 s of CPU.
Expected values come from the simulator's ground truth (``truth.json``: the concentrations
and SUVs it put into each label), not from the analysis under test.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from immunopet.cli import main
from immunopet.cli.demo import MARKER, _claim

FAST = ["--voxel-mm", "8", "--registration", "rigid", "--quiet"]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any], Any]:
    out = tmp_path_factory.mktemp("demo") / "immunopet-demo"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["demo", "--out", str(out), *FAST]) == 0
    truth = _load(out / "patients" / "P0001" / "truth.json")
    return out, buffer.getvalue(), truth, _load(out / "analysis" / "results.json")


def _truth_scan(truth: dict[str, Any], tracer: str, day: float) -> dict[str, Any]:
    scan: dict[str, Any] = next(
        s for s in truth["scans"] if s["tracer"] == tracer and abs(s["day"] - day) < 0.5
    )
    return scan


def _nearest_truth_lesion(truth: dict[str, Any], centroid: list[float]) -> str:
    centres = truth["scans"][0]["lesion_centroids_lps_mm"]
    return min(centres, key=lambda name: math.dist(centres[name], centroid))


@pytest.mark.slow
def test_demo_finds_the_scenario_truth_events(
    demo: tuple[Path, str, dict[str, Any], Any],
) -> None:
    _, _, truth, results = demo
    assert truth["patient"]["scenario"] == "cd19_lymphoma_demo"
    assert [tp["day"] for tp in results["timepoints"]] == [-7.0, 6.0, 60.0]
    assert all(
        {s["tracer"] for s in tp["scans"]} == {"fdg", "cd19_zr"} for tp in results["timepoints"]
    )
    expected = {(e["type"], e["site"] or e["lesion"]) for e in truth["events"]}
    # The phantom's normal lymph nodes are not segmented (docs/architecture.md), so their CRS
    # uptake cannot be measured; every other truth event must be found.
    expected.discard(("crs_inflammation", "mediastinal_lymph_node"))
    found = set()
    for event in results["events"]:
        where = event["site"]
        if where is None:
            where = _nearest_truth_lesion(truth, event["centroid_lps_mm"])
        found.add((event["type"], where))
    assert found == expected


@pytest.mark.slow
def test_crs_uptake_in_the_first_week_matches_the_simulated_factors(
    demo: tuple[Path, str, dict[str, Any], Any],
) -> None:
    """Spleen ×2.0 and marrow ×1.8 on FDG on day 6 (cd19_lymphoma_demo.yaml) against day −7."""
    _, _, truth, results = demo
    before, during = _truth_scan(truth, "fdg", -7.0), _truth_scan(truth, "fdg", 6.0)
    crs = {e["site"]: e for e in results["events"] if e["type"] == "crs_inflammation"}
    for site, label in (("spleen", "spleen"), ("bone_marrow", "red_marrow")):
        event = crs[site]
        assert event["day"] == 6.0  # the first week
        true_change = during["suv_bw"][label] / before["suv_bw"][label] - 1.0
        evidence = event["evidence"]
        assert evidence["baseline"] == pytest.approx(before["suv_bw"][label], rel=0.1)
        assert evidence["current"] == pytest.approx(during["suv_bw"][label], rel=0.1)
        assert evidence["relative_change"] == pytest.approx(true_change, abs=0.15)
        assert evidence["relative_change"] > evidence["threshold_relative_increase"]


@pytest.mark.slow
def test_antigen_negative_relapse_is_flagged_and_stays_fdg_avid(
    demo: tuple[Path, str, dict[str, Any], Any],
) -> None:
    """CD19 down 95 % on the mediastinal mass by day 60, its FDG uptake back (Figure 2)."""
    _, _, truth, results = demo
    (loss,) = [e for e in results["events"] if e["type"] == "antigen_loss"]
    assert _nearest_truth_lesion(truth, loss["centroid_lps_mm"]) == "mediastinal_mass"
    assert loss["day"] == 60.0
    assert loss["evidence"]["baseline_day"] == -7.0
    first, last = _truth_scan(truth, "cd19_zr", -7.0), _truth_scan(truth, "cd19_zr", 60.0)
    # Same activity and uptake time on both days: the SUV ratio is the concentration ratio.
    true_change = (
        last["lesion_bq_per_ml"]["mediastinal_mass"] / first["lesion_bq_per_ml"]["mediastinal_mass"]
        - 1.0
    )
    assert true_change == pytest.approx(-0.74, abs=0.01)
    assert loss["evidence"]["relative_change"] == pytest.approx(true_change, abs=0.08)
    fdg = {
        m["timepoint_id"]: m["suv_mean"]
        for m in results["measurements"]
        if m["voi_id"] == loss["voi_id"] and m["tracer"] == "fdg"
    }
    # Truth FDG SUV 13 at baseline and 12 on day 60: still avid while CD19-negative.
    assert fdg["TP03"] / fdg["TP01"] == pytest.approx(12.0 / 13.0, abs=0.15)


@pytest.mark.slow
def test_demo_prints_events_and_the_report_path(
    demo: tuple[Path, str, dict[str, Any], Any],
) -> None:
    out, printed, _, results = demo
    lines = printed.splitlines()
    assert f"{len(results['events'])} guidance events" in lines[0]
    assert sum(" day " in line for line in lines) == len(results["events"])
    assert (out / MARKER).is_file()
    _claim(out)  # an earlier demo's output may be replaced
    report = out / "analysis" / "report.html"
    html = report.read_text(encoding="utf-8")
    # Every event of results.json is in the report (docs/report.md: one article per event).
    for index, event in enumerate(results["events"]):
        assert f'id="event-{index}"' in html
        assert f'data-type="{event["type"]}"' in html
    assert lines[-1] == f"report: {report.resolve()}"


def test_refuses_a_folder_that_is_not_a_demo_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "scans"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine", encoding="utf-8")
    assert main(["demo", "--out", str(precious), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert MARKER in err
    assert "--out" in err
    assert [p.name for p in precious.iterdir()] == ["keep.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    assert main(["demo", "--out", str(a_file), "--quiet"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_unknown_scenario_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new"
    assert main(["demo", "--out", str(out), "--scenario", "no_such_scenario", "--quiet"]) == 2
    assert "no_such_scenario" in capsys.readouterr().err
    assert not out.exists()
