"""Change statistics: count noise plus published repeatability, thresholds as Lodge 2017."""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.monitor._change import assess_change, repeatability_wcv


def test_wcv_10_percent_gives_the_published_limits_of_repeatability() -> None:
    # Lodge, J Nucl Med 2017;58:523 (abstract): with wCV about 10 %, reductions of more than
    # 25 % and increases of more than 33 % are unlikely to be measurement variability.
    change = assess_change("suv_mean", 5.0, 5.0, baseline_se=None, current_se=None, wcv=0.10)
    sd = math.sqrt(2.0) * 0.10
    assert change.log_ratio_sd == pytest.approx(sd)
    assert change.threshold_relative_decrease == pytest.approx(
        1 - math.exp(-1.959964 * sd), rel=1e-5
    )
    assert change.threshold_relative_increase == pytest.approx(
        math.exp(1.959964 * sd) - 1, rel=1e-5
    )
    assert 0.23 < change.threshold_relative_decrease < 0.26
    assert 0.30 < change.threshold_relative_increase < 0.34


def test_count_noise_widens_the_threshold() -> None:
    quiet = assess_change("m", 4.0, 2.5, baseline_se=0.0, current_se=0.0, wcv=0.10)
    noisy = assess_change("m", 4.0, 2.5, baseline_se=0.8, current_se=0.5, wcv=0.10)
    expected_sd = math.sqrt(0.02 + (0.8 / 4.0) ** 2 + (0.5 / 2.5) ** 2)
    assert noisy.log_ratio_sd == pytest.approx(expected_sd)
    assert quiet.significant  # -37.5 % beyond -24 %
    assert not noisy.significant  # the same change within the noise of small lesions


def test_false_flags_without_change_are_near_five_percent() -> None:
    rng = np.random.default_rng(3)
    wcv, se = 0.10, 0.05
    flagged = 0
    trials = 4000
    for _ in range(trials):
        a = 5.0 * math.exp(rng.normal(0, math.hypot(wcv, se)))
        b = 5.0 * math.exp(rng.normal(0, math.hypot(wcv, se)))
        flagged += assess_change(
            "m", a, b, baseline_se=se * a, current_se=se * b, wcv=wcv
        ).significant
    assert 0.035 < flagged / trials < 0.065


def test_complete_loss_and_bad_input() -> None:
    lost = assess_change("m", 3.0, 0.0, baseline_se=0.1, current_se=0.1, wcv=0.10)
    assert lost.significant
    assert lost.relative_change == -1.0
    with pytest.raises(InputError, match="cannot test"):
        assess_change("m", 0.0, 1.0, baseline_se=None, current_se=None, wcv=0.1)
    assert repeatability_wcv("fdg") == 0.10
    with pytest.raises(InputError, match="tracer class"):
        repeatability_wcv("decision")


def test_ratio_against_a_threshold_counts_one_repeatability() -> None:
    from immunopet.monitor import assess_ratio

    # One measurement: sd^2 = relative SE^2 + wCV^2 (not 2 wCV^2 as for two scans).
    ratio = assess_ratio("lesion_to_blood", 1.5, 1.2, relative_se=0.05, wcv=0.10)
    assert ratio.log_ratio_sd == pytest.approx(math.hypot(0.05, 0.10))
    assert ratio.log_ratio == pytest.approx(math.log(1.5 / 1.2))
    assert ratio.baseline == 1.2
    assert ratio.current == 1.5
    assert ratio.wcv == 0.10
    assert ratio.significant  # ln(1.25) = 0.223 > 1.96 x 0.112 = 0.219
    assert not assess_ratio("r", 1.45, 1.2, relative_se=0.05, wcv=0.10).significant


def test_change_evidence_reports_change_uncertainty_and_signed_threshold() -> None:
    change = assess_change("suv_mean", 4.0, 2.0, baseline_se=None, current_se=None, wcv=0.10)
    evidence = change.as_dict()
    assert evidence["change"] == -2.0
    assert evidence["uncertainty"] == pytest.approx(2.0 * math.sqrt(2.0) * 0.10)
    assert evidence["threshold"] == pytest.approx(-change.threshold_relative_decrease)
    rise = assess_change("suv_mean", 2.0, 4.0, baseline_se=None, current_se=None, wcv=0.10)
    assert rise.threshold == pytest.approx(rise.threshold_relative_increase)
