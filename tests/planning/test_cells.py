"""Cell detectability model: the physics it must obey, and its bookkeeping."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.kinetics import Stein2019CellularKinetics
from immunopet.physics import frame_average_decay_factor, nuclide
from immunopet.planning._cells import (
    CellDetectabilityInputs,
    DirectLabel,
    ReporterLabel,
    cell_label,
    known_cell_labels,
    predict_cell_detectability,
    resolve_cell_label,
    sphere_recovery_coefficient,
)
from immunopet.planning._scanner import scanner

STEIN = Stein2019CellularKinetics.published()
ZR_OXINE = DirectLabel("zr89-oxine", "Zr-89", 0.07, 0.75, 0.0851)


def inputs(**change: object) -> CellDetectabilityInputs:
    """A tisagenlecleucel-like child (39 kg, 3.1e6 cells/kg), 1 % of cells in a 10 mL site."""
    base = CellDetectabilityInputs(
        cells_per_kg=3.1e6,
        weight_kg=39.0,
        label=ZR_OXINE,
        homing_fraction=0.01,
        site_volume_ml=10.0,
        scanner=scanner("biograph_mct"),
        days_after_infusion=3.0,
        kinetics=STEIN,
        scan_time_s=600.0,
        background_bq_per_ml=100.0,
        max_day=40,
    )
    return dataclasses.replace(base, **change)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- recovery


@pytest.mark.parametrize(
    ("radius_mm", "sigma_mm"), [(1.0, 1.0), (3.0, 1.0), (0.5, 1.0), (6.2, 1.83)]
)
def test_recovery_coefficient_matches_monte_carlo(radius_mm: float, sigma_mm: float) -> None:
    rng = np.random.default_rng(20260)
    n = 400_000
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    points = direction * radius_mm * rng.random(n)[:, None] ** (1.0 / 3.0)
    blurred = points + rng.normal(scale=sigma_mm, size=(n, 3))
    inside = float(np.mean(np.linalg.norm(blurred, axis=1) < radius_mm))
    standard_error = math.sqrt(inside * (1 - inside) / n)
    volume_ml = 4.0 / 3.0 * math.pi * radius_mm**3 * 1e-3
    fwhm_mm = sigma_mm * 2.0 * math.sqrt(2.0 * math.log(2.0))
    assert sphere_recovery_coefficient(volume_ml, fwhm_mm) == pytest.approx(
        inside, abs=4 * standard_error
    )


def test_recovery_coefficient_limits_and_series_switch() -> None:
    assert sphere_recovery_coefficient(1.0e9, 4.0) == pytest.approx(1.0, abs=1e-3)
    values = [sphere_recovery_coefficient(v, 4.3) for v in (0.01, 0.1, 1.0, 10.0, 100.0)]
    assert values == sorted(values)
    fwhm = 1.0
    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    # Either side of the switch to the small-sphere series at radius/sigma = 0.05.
    low, high = (
        sphere_recovery_coefficient(4.0 / 3.0 * math.pi * (r * sigma) ** 3 * 1e-3, fwhm)
        for r in (0.05 * (1 - 1e-9), 0.05 * (1 + 1e-9))
    )
    assert low == pytest.approx(high, rel=1e-7)
    assert low == pytest.approx((2 / 3) / math.sqrt(2 * math.pi) * 0.05**3, rel=2e-3)


@pytest.mark.parametrize(("volume", "fwhm"), [(0.0, 4.0), (1.0, -1.0), (math.nan, 4.0)])
def test_recovery_coefficient_refuses_bad_input(volume: float, fwhm: float) -> None:
    with pytest.raises(InputError):
        sphere_recovery_coefficient(volume, fwhm)


# --------------------------------------------------------------------------- scalings


def test_doubling_activity_per_cell_halves_min_detectable_cells_at_fixed_noise() -> None:
    # The background is given, so the noise does not depend on the label's activity.
    one = predict_cell_detectability(inputs())
    doubled = dataclasses.replace(ZR_OXINE, offered_bq_per_cell=0.14)
    two = predict_cell_detectability(inputs(label=doubled))
    assert two.background_counts == one.background_counts
    assert two.min_detectable_cells == pytest.approx(one.min_detectable_cells / 2, rel=1e-12)
    # Efficiency enters the same way as the offered activity.
    efficient = dataclasses.replace(ZR_OXINE, labelling_efficiency=1.0)
    three = predict_cell_detectability(inputs(label=efficient))
    assert three.min_detectable_cells == pytest.approx(one.min_detectable_cells * 0.75, rel=1e-12)


def test_min_detectable_cells_is_where_cnr_meets_the_criterion() -> None:
    result = predict_cell_detectability(inputs(kinetics=None))
    at_limit = predict_cell_detectability(
        inputs(kinetics=None, cells_per_kg=result.min_detectable_cells / 39.0, homing_fraction=1.0)
    )
    assert at_limit.cnr == pytest.approx(5.0, rel=1e-9)
    assert at_limit.cells_in_site == pytest.approx(result.min_detectable_cells, rel=1e-12)


def test_background_free_limit_is_rose_counts() -> None:
    result = predict_cell_detectability(inputs(background_bq_per_ml=0.0))
    assert result.min_signal_counts == pytest.approx(25.0)  # k^2 counts, k = 5
    noisy = predict_cell_detectability(inputs(background_bq_per_ml=0.0, noise_amplification=2.0))
    assert noisy.min_detectable_cells == pytest.approx(4 * result.min_detectable_cells)


def test_cnr_grows_as_square_root_of_scan_time() -> None:
    short = predict_cell_detectability(inputs(scan_time_s=300.0))
    long = predict_cell_detectability(inputs(scan_time_s=1200.0))
    assert long.cnr / short.cnr == pytest.approx(2.0, rel=1e-3)  # Zr-89: decay in-scan is tiny
    half_life = nuclide("Zr-89").half_life_s
    exact = math.sqrt(
        1200.0
        * frame_average_decay_factor(half_life, 1200.0)
        / (300.0 * frame_average_decay_factor(half_life, 300.0))
    )
    assert long.cnr / short.cnr == pytest.approx(exact, rel=1e-12)


def test_cnr_falls_with_efflux() -> None:
    cnrs = [
        predict_cell_detectability(
            inputs(label=dataclasses.replace(ZR_OXINE, efflux_per_day=k))
        ).cnr
        for k in (0.0, 0.0851, 0.3)
    ]
    assert cnrs[0] > cnrs[1] > cnrs[2]
    # Efflux is exp(-k d) on the signal.
    no_efflux = predict_cell_detectability(
        inputs(label=dataclasses.replace(ZR_OXINE, efflux_per_day=0.0))
    )
    with_efflux = predict_cell_detectability(inputs())
    assert with_efflux.signal_counts / no_efflux.signal_counts == pytest.approx(
        math.exp(-0.0851 * 3.0), rel=1e-12
    )


def test_cnr_falls_with_decay_day_by_day() -> None:
    result = predict_cell_detectability(inputs(kinetics=None, background_bq_per_ml=None))
    daily = np.array(result.daily_cnr)
    assert np.all(np.diff(daily) < 0)
    assert result.daily_cnr[3] == pytest.approx(result.cnr, rel=1e-12)
    # Same cells and activity, shorter-lived nuclide: lower CNR three days later.
    copper = dataclasses.replace(ZR_OXINE, nuclide="Cu-64")
    assert predict_cell_detectability(inputs(label=copper)).cnr < result.cnr


def test_last_visible_day_is_monotone_in_activity_per_cell() -> None:
    days = [
        predict_cell_detectability(
            inputs(label=dataclasses.replace(ZR_OXINE, offered_bq_per_cell=a), max_day=60)
        ).last_visible_day
        for a in (0.001, 0.01, 0.07, 0.7, 7.0)
    ]
    known = [d for d in days if d is not None]
    assert known == sorted(known)
    assert days[0] is None or days[0] < days[-1]  # type: ignore[operator]
    assert days[-1] is not None
    assert days[-1] > days[2]


# --------------------------------------------------------------------------- label bookkeeping


def test_direct_label_is_shared_by_daughters_and_lost_with_dying_cells() -> None:
    with_kinetics = predict_cell_detectability(inputs(days_after_infusion=5.0))
    constant = predict_cell_detectability(inputs(days_after_infusion=5.0, kinetics=None))
    # Before Tmax the label is only diluted: same total in the site.
    assert with_kinetics.site_activity_bq == pytest.approx(constant.site_activity_bq, rel=1e-12)
    assert with_kinetics.cells_in_site == pytest.approx(
        constant.cells_in_site * STEIN.relative_level(5.0), rel=1e-12
    )
    # After Tmax dying cells take their label with them.
    day = 20.0
    late = predict_cell_detectability(inputs(days_after_infusion=day))
    late_constant = predict_cell_detectability(inputs(days_after_infusion=day, kinetics=None))
    survivors = STEIN.relative_level(day) / STEIN.relative_level(STEIN.tmax_d)
    assert late.site_activity_bq == pytest.approx(
        late_constant.site_activity_bq * survivors, rel=1e-12
    )


def test_reporter_signal_follows_living_cells() -> None:
    reporter = ReporterLabel("hnet-mfbg", "F-18", 0.01)
    day0 = predict_cell_detectability(inputs(label=reporter, days_after_infusion=0.0))
    peak = predict_cell_detectability(inputs(label=reporter, days_after_infusion=STEIN.tmax_d))
    assert peak.activity_per_cell_bq == day0.activity_per_cell_bq == 0.01
    assert peak.signal_counts / day0.signal_counts == pytest.approx(3900.0, rel=1e-9)
    assert peak.min_detectable_cells == pytest.approx(day0.min_detectable_cells, rel=1e-12)


def test_default_background_is_all_label_spread_over_the_body() -> None:
    result = predict_cell_detectability(inputs(background_bq_per_ml=None, days_after_infusion=0.0))
    # 3.1e6 cells/kg x 0.0525 Bq/cell over 1000 mL/kg.
    assert result.background_bq_per_ml == pytest.approx(3.1e6 * 0.0525 / 1000.0, rel=1e-12)
    assert any("SUV 1" in line for line in result.assumptions)


def test_reporter_needs_a_measured_background() -> None:
    reporter = ReporterLabel("hnet-mfbg", "F-18", 0.01)
    with pytest.raises(InputError, match="--background-bq-per-ml"):
        predict_cell_detectability(inputs(label=reporter, background_bq_per_ml=None))


def test_label_decayed_beyond_range_gives_no_limit() -> None:
    fluorine = DirectLabel("fdg", "F-18", 1.0, 0.5, 0.0)
    result = predict_cell_detectability(
        inputs(label=fluorine, days_after_infusion=80.0, max_day=90, background_bq_per_ml=None)
    )
    assert result.min_detectable_cells == math.inf
    assert result.last_visible_day is not None
    assert result.last_visible_day < 5
    payload = result.as_dict()
    assert payload["min_detectable_cells"] is None
    json.dumps(payload, allow_nan=False)


def test_as_dict_fields_and_sources() -> None:
    payload = predict_cell_detectability(inputs(label=ZR_OXINE)).as_dict()
    for key in ("cnr", "min_detectable_cells", "last_visible_day", "assumptions", "sources"):
        assert key in payload
    assert payload["nuclide"] == "Zr-89"
    assert payload["label_kind"] == "direct"
    assert any("Weist" in source for source in payload["sources"])
    assert any("Stein" in source for source in payload["sources"])
    assert any("Rose" in source for source in payload["sources"])
    json.dumps(payload, allow_nan=False)


def test_conventions_are_stated_when_used() -> None:
    result = predict_cell_detectability(
        inputs(scan_time_s=None, max_day=None, cnr_threshold=None, noise_amplification=None)
    )
    text = " ".join(result.assumptions)
    for needle in ("CNR >= 5", "noise amplification", "600 s", "days 0..60"):
        assert needle in text
    given = predict_cell_detectability(inputs(cnr_threshold=3.0, noise_amplification=1.5))
    assert not any("CNR >= 5" in line for line in given.assumptions)
    assert given.criterion == "Rose: CNR = S / (1.5 * sqrt(S + B)) >= 3"


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"homing_fraction": 0.0}, "--homing-fraction"),
        ({"homing_fraction": 1.5}, "--homing-fraction"),
        ({"site_volume_ml": -1.0}, "--site-volume-ml"),
        ({"days_after_infusion": -1.0}, "--day"),
        ({"weight_kg": math.nan}, "--weight-kg"),
        ({"background_bq_per_ml": -1.0}, "--background-bq-per-ml"),
        ({"scan_time_s": 0.0}, "--scan-time-s"),
        ({"max_day": -1}, "--max-day"),
    ],
)
def test_inputs_are_validated(change: dict[str, object], option: str) -> None:
    with pytest.raises(InputError, match=option):
        inputs(**change)


def test_labels_are_validated() -> None:
    with pytest.raises(InputError, match="--efficiency"):
        DirectLabel("x", "Zr-89", 0.07, 1.2, 0.0)
    with pytest.raises(InputError, match="--efflux-per-day"):
        DirectLabel("x", "Zr-89", 0.07, 0.5, -0.1)
    with pytest.raises(InputError, match="--bq-per-cell"):
        ReporterLabel("x", "F-18", 0.0)
    with pytest.raises(InputError, match="positrons"):
        predict_cell_detectability(inputs(label=DirectLabel("x", "In-111", 0.01, 0.5, 0.0)))


# --------------------------------------------------------------------------- label table


def test_label_table_entries_resolve() -> None:
    assert {"zr89-oxine", "zr89-dfo", "in111-oxine", "tc99m-hmpao", "hnet-mfbg"} <= set(
        known_cell_labels()
    )
    label, notes = resolve_cell_label(cell_label("zr89-oxine"))
    assert label == DirectLabel("zr89-oxine", "Zr-89", 0.07, 0.75, 0.0851)
    assert len(notes) == 1
    assert "0.0851" in notes[0]
    assert "cell_labelling.toml" in notes[0]
    given, none = resolve_cell_label(
        cell_label("zr89-oxine"), bq_per_cell=0.1, efficiency=0.5, efflux_per_day=0.0
    )
    assert given == DirectLabel("zr89-oxine", "Zr-89", 0.1, 0.5, 0.0)
    assert none == ()


def test_efflux_derivation_matches_weist_retention() -> None:
    # > 60 % retained over 6 days -> k <= -ln(0.6)/6.
    assert cell_label("zr89-oxine").efflux_per_day == pytest.approx(-math.log(0.6) / 6, abs=1e-4)
    # Lee 2020: offered x efficiency reproduces the reported bound 98.1-103.6 kBq/1e6 cells.
    lee = cell_label("zr89-dfo")
    assert lee.offered_bq_per_cell is not None
    assert lee.labelling_efficiency is not None
    assert lee.offered_bq_per_cell * lee.labelling_efficiency == pytest.approx(0.10085, rel=1e-3)


def test_missing_facts_are_required_options() -> None:
    with pytest.raises(InputError, match="--efflux-per-day"):
        resolve_cell_label(cell_label("zr89-dfo"))
    with pytest.raises(InputError, match="--bq-per-cell"):
        resolve_cell_label(cell_label("hnet-mfbg"))
    with pytest.raises(InputError, match="--efficiency"):
        resolve_cell_label(cell_label("hnet-mfbg"), bq_per_cell=0.01, efficiency=0.5)
    with pytest.raises(InputError, match="SPECT"):
        resolve_cell_label(cell_label("in111-oxine"))
    with pytest.raises(InputError, match="choose one of"):
        cell_label("zr90-oxine")
    reporter, notes = resolve_cell_label(cell_label("hnis-i124"), bq_per_cell=0.02)
    assert reporter == ReporterLabel("hnis-i124", "I-124", 0.02)
    assert notes == ()
    assert cell_label("hnis-i124").published_detection_limit_cells == 1.0e6


def test_more_cells_than_a_site_can_hold_is_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    # Reviewer's case: 5 % of 7e7 cells expanded 3900-fold (Stein 2019 peak) in 5 mL is about
    # 1.4e10 cells of ~200 fL: more than half the site. The planner must say it is implausible.
    import json

    from immunopet.cli import main

    def assumptions(day: str) -> list[str]:
        argv = [
            "plan", "cells", "--cells-per-kg", "1e6", "--weight-kg", "70", "--label", "zr89-oxine",
            "--homing-fraction", "0.05", "--site-volume-ml", "5", "--scanner", "biograph_mct",
            "--day", day, "--json",
        ]  # fmt: skip
        assert main(argv) == 0
        result: list[str] = json.loads(capsys.readouterr().out)["assumptions"]
        return result

    assert any(a.startswith("IMPLAUSIBLE") for a in assumptions("9.3"))
    assert not any(a.startswith("IMPLAUSIBLE") for a in assumptions("0"))


def test_out_of_range_inputs_give_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from immunopet.cli import main

    base = [
        "plan", "cells", "--cells-per-kg", "1e6", "--weight-kg", "70", "--label", "zr89-oxine",
        "--homing-fraction", "0.05", "--site-volume-ml", "5", "--scanner", "biograph_mct",
        "--day", "3",
    ]  # fmt: skip
    assert main([*base, "--cnr-threshold", "1e160"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert (
        main(
            [
                "plan",
                "tracer",
                "--format",
                "igg",
                "--scanner",
                "biograph_mct",
                "--injected-activity-bq",
                "1e308",
                "--json",
            ]
        )
        == 2
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
