"""A small results folder for the report tests, made by the real simulator and analysis.

One virtual patient of the built-in ``cd19_negative_relapse`` scenario at three visits (day −7,
28 and 180), each with FDG (1 h) and the ⁶⁴Cu-CD19 antibody (injected the day before), on an
8 mm phantom so the whole chain (simulate → DICOM → ``analyze_study`` →
``write_analysis_outputs``) runs in about 20 s once per session. The mediastinal mass loses CD19
and a CD19-negative liver lesion appears, so ``results.json`` holds guidance events.

``results_dir`` is shared by every test of this folder (report page and viewer): do not write
into it; copy it (``shutil.copytree``) to change anything. Tests of this folder that use it are
marked ``slow`` (the fixture takes about 20 s of CPU once per session); the others are not.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from immunopet.pipeline import AnalysisOptions, analyze_study, write_analysis_outputs
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._patient import simulate_patient
from immunopet.simulate._scenario import Scan

#: Visit days (FDG day; the antibody is injected the day before and imaged 26 h later).
VISITS = (-7.0, 28.0, 180.0)
VOXEL_MM = 8.0
SEED = 4


HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of this folder that need the simulated study as ``slow``."""
    for item in items:
        if "results_dir" in getattr(item, "fixturenames", ()) and item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``immunopet analyze`` output folder (results.json, images/, VOI maps); read-only."""
    root = tmp_path_factory.mktemp("report_study")
    scenario = load_scenario("cd19_negative_relapse")
    patient = draw_cohort(scenario, 1, seed=SEED)[0]
    scanner = scenario.scans[0].scanner
    scans = tuple(
        scan
        for day in VISITS
        for scan in (
            Scan("fdg", day, (1.0,), scanner),
            Scan("cd19_igg", day - 1.0, (26.0,), scanner),
        )
    )
    simulate_patient(
        dataclasses.replace(patient, scans=scans),
        root / "P0001",
        rng=np.random.default_rng(SEED),
        voxel_mm=VOXEL_MM,
    )
    result = analyze_study(root / "P0001", AnalysisOptions())
    out = root / "analysis"
    write_analysis_outputs(result, out)
    return out
