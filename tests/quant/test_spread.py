"""Inter-lesion spread: statistics checked by hand, and the noise decomposition by simulation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.quant import lesion_spread


def _row(voi: str, tp: str, tracer: str, mean: float | None, peak: float, **extra: Any) -> Any:
    return {
        "voi_type": "lesion",
        "voi_id": voi,
        "timepoint_id": tp,
        "day": {"TP01": -7.0, "TP02": 28.0}[tp],
        "tracer": tracer,
        "suv_mean": mean,
        "suv_max": peak,
        **extra,
    }


def test_statistics_per_timepoint_and_tracer_by_hand() -> None:
    rows = [
        _row("L001", "TP02", "fdg", 3.0, 5.0),
        _row("L001", "TP01", "fdg", 10.0, 14.0),
        _row("L002", "TP01", "fdg", 4.0, 6.0),
        _row("L003", "TP01", "fdg", 7.0, 12.0),
        _row("L001", "TP01", "cd19_igg", 8.0, 11.0),
        _row("L002", "TP01", "cd19_igg", 0.0, 1.0),  # antigen-negative: min 0, no ratio
        {"voi_type": "organ", "voi_id": "liver_reference", "timepoint_id": "TP01", "tracer": "fdg"},
    ]
    records = lesion_spread(rows)
    assert [(r["timepoint_id"], r["tracer"]) for r in records] == [
        ("TP01", "cd19_igg"),
        ("TP01", "fdg"),
        ("TP02", "fdg"),
    ]
    fdg = records[1]
    assert fdg["n_lesions"] == 3
    assert fdg["lesions"] == ["L001", "L002", "L003"]
    mean = fdg["suv_mean"]
    # 10, 4, 7: mean 7, SD sqrt((9 + 9 + 0) / 2) = 3, CoV 3/7, range 6, max/min 2.5.
    assert mean["n"] == 3
    assert mean["mean"] == 7.0
    assert mean["sd"] == pytest.approx(3.0, rel=1e-12)
    assert mean["cov"] == pytest.approx(3.0 / 7.0, rel=1e-12)
    assert (mean["min"], mean["max"], mean["range"], mean["max_min_ratio"]) == (4.0, 10.0, 6.0, 2.5)
    assert fdg["suv_max"]["sd"] == pytest.approx(
        math.sqrt(((14 - 32 / 3) ** 2 + (6 - 32 / 3) ** 2 + (12 - 32 / 3) ** 2) / 2)
    )
    assert "noise_sd" not in mean  # no SEs in the rows
    igg = records[0]["suv_mean"]
    assert igg["max_min_ratio"] is None
    assert igg["range"] == 8.0
    single = records[2]["suv_mean"]
    assert single["n"] == 1
    assert single["sd"] is None
    assert single["cov"] is None
    assert single["max_min_ratio"] == 1.0


def test_missing_values_are_skipped_and_bad_rows_refused() -> None:
    rows = [
        _row("L001", "TP01", "fdg", 5.0, 8.0),
        _row("L002", "TP01", "fdg", None, 4.0),
        _row("L003", "TP01", "fdg", float("nan"), 4.0),
    ]
    (record,) = lesion_spread(rows)
    assert record["n_lesions"] == 3
    assert record["suv_mean"]["n"] == 1
    assert record["suv_max"]["n"] == 3
    assert lesion_spread([]) == []
    with pytest.raises(InputError, match="lacks tracer"):
        lesion_spread([{"voi_type": "lesion", "voi_id": "L001", "timepoint_id": "TP01"}])


def test_spread_beyond_noise_recovers_the_between_lesion_sd() -> None:
    # 400 scans of 12 lesions whose true SUVmeans have SD 1.5, each measured with its own
    # count-noise SE (0.5-2.0): SD² − mean SE² estimates the true between-lesion variance.
    rng = np.random.default_rng(4)
    estimates, naive = [], []
    for _ in range(400):
        true = 8.0 + 1.5 * rng.standard_normal(12)
        errors = rng.uniform(0.5, 2.0, 12)
        measured = true + errors * rng.standard_normal(12)
        rows = [
            _row(f"L{i:03d}", "TP01", "fdg", float(m), float(m) * 1.5, suv_mean_se=float(e))
            for i, (m, e) in enumerate(zip(measured, errors, strict=True))
        ]
        (record,) = lesion_spread(rows)
        estimates.append(record["suv_mean"]["sd_beyond_noise"] ** 2)
        naive.append(record["suv_mean"]["sd"] ** 2)
    # The variance decomposition is unbiased (apart from the truncation at zero, rare here);
    # the raw SD² carries the noise on top (mean SE² = (0.5² + 0.5·2.0 + 2.0²)/3 = 1.75).
    assert float(np.mean(estimates)) == pytest.approx(1.5**2, rel=0.08)
    assert float(np.mean(naive)) == pytest.approx(1.5**2 + 1.75, rel=0.08)
