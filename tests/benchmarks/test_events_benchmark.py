"""The guidance-event benchmark on a small cohort (issue 6: "a small cohort runs in CI").

``benchmarks/detection.py --events-only --quick`` (= ``benchmarks/events.py --quick``): one
patient each of the ``crs`` and ``lineage_switch`` scenarios, simulated, analysed and scored
against the simulator's truth, then the antigen-drop phantom at 15 and 30 mm (185 MBq,
10 trials per cell). The expected events are the scenarios' own (their YAML ``events``
lists); the physics behind each figure is in the comments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("events")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import detection

        status = detection.main(
            ["--events-only", "--quick", "--jobs", "1", "--json", str(out / "figures.json")]
        )
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert status == 0
    # detection.py hands the event figures to events.py's --json beside its own.
    result: dict[str, Any] = json.loads((out / "figures.events.json").read_text())
    return result


def test_the_scenarios_events_are_found(figures: dict[str, Any]) -> None:
    per_scenario = figures["cohorts"]["per_scenario"]
    lineage = per_scenario["lineage_switch"]["sensitivity"]
    # lineage_switch.yaml: marrow CD19 8000 -> 200 per cell (-98 %) and CD33 gained by day 60;
    # the lost lymphoid marker and the gained myeloid one are both imaged. This patient's
    # cervical node (13.8 mm) is below the 15 mm the detection is specified for: counted apart.
    assert lineage["lineage_switch"] == [1, 1]
    assert lineage["antigen_loss"] == [1, 1]
    hidden = per_scenario["lineage_switch"]["not_observable"]
    assert "13.8 mm" in hidden["lineage_switch cervical_node_right"]
    crs = per_scenario["crs"]["sensitivity"]
    # crs.yaml: spleen and marrow FDG x2 and x1.8 (found), liver x1.3: a true +32.7 % rise
    # against the +31.9 % the organ repeatability lets through (benchmarks/README.md), so
    # 2 or 3 of the 3 organs; the mediastinal node is no organ VOI (counted apart).
    hit, total = crs["crs_inflammation"]
    assert total == 3
    assert hit >= 2
    assert crs["car_t_expansion"] == [1, 1]
    # No event outside the scenarios' listed and implied ones.
    assert all(not row["false"] for row in per_scenario.values())


def test_the_antigen_drop_table_is_set_by_lesion_size(figures: dict[str, Any]) -> None:
    rows = {row["diameter_mm"]: row for row in figures["phantom"]}
    # A complete antigen loss of the CD19 IgG is a ~54 % signal drop (non-specific uptake
    # stays); the 80 % detection limit needs a larger antigen drop in a smaller lesion, and
    # no cell reaches 80 % with a drop of 50 % or less at 185 MBq (10 % repeatability).
    small, large = rows[15.0]["drop80"], rows[30.0]["drop80"]
    assert small is not None
    assert large is not None
    assert 0.5 < large < small <= 1.0
    assert rows[15.0]["signal_drops"][-1] == pytest.approx(0.54, abs=0.03)
