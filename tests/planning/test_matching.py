"""Half-life matching: known answers, the numbers behind the rank, and no typed half-lives."""

from __future__ import annotations

import inspect
import math
import re

import pytest

import immunopet.planning._matching as matching_module
import immunopet.tracers._pharmacokinetics as pk_module
from immunopet.errors import InputError, NuclideError
from immunopet.physics import nuclide
from immunopet.planning import plan_dose
from immunopet.planning._matching import (
    default_candidates,
    imaging_window,
    nuclide_modality,
    plan_tracer,
    rank_nuclides,
    theranostic_partner,
)
from immunopet.planning._scanner import scanner
from immunopet.tracers._pharmacokinetics import TwoTissueVectorModel, vector_pharmacokinetics

H = 3600.0
D = 86400.0
SHORT_LIVED = {"F-18", "Ga-68", "Cu-64"}


def names(options: tuple[matching_module.NuclideOption, ...]) -> list[str]:
    return [o.nuclide for o in options]


# -- known answers --------------------------------------------------------------------------


def test_intact_igg_is_matched_to_zr89_with_a_day_4_to_7_window() -> None:
    plan = plan_tracer("igg")
    assert plan.ranking[0].nuclide in ("Zr-89", "I-124")
    # O'Donoghue 2018 (89Zr-trastuzumab): optimal tumour visualisation 5-8 d (READ).
    assert 4 * D <= plan.window.best_time_s <= 7 * D
    assert plan.window.start_s < plan.window.best_time_s < plan.window.end_s


def test_intact_igg_ranks_zr89_or_i124_first_for_a_day_4_to_7_window() -> None:
    ranking = rank_nuclides("igg", window=(4 * D, 7 * D))
    assert ranking[0].nuclide in ("Zr-89", "I-124")
    assert all(4 * D <= o.window.best_time_s <= 7 * D for o in ranking)
    unsuitable = {o.nuclide for o in ranking if not o.suitable}
    assert {"F-18", "Ga-68", "Tc-99m"} <= unsuitable


def test_a_label_almost_gone_at_the_window_is_not_suitable() -> None:
    # Y-86 (14.7 h) on an IgG: 2 % left at the start of its "window" on day 3 (reviewer finding).
    y86 = next(o for o in rank_nuclides("igg") if o.nuclide == "Y-86")
    assert y86.fraction_remaining_at_start < 0.1
    assert not y86.suitable


def test_gamma_lines_are_placed_relative_to_the_energy_window() -> None:
    options = {o.nuclide: o for o in rank_nuclides("igg")}
    # Zr-89's 909 keV (from Y-89m) lies above a 435-650 keV window; I-124's 603 keV inside.
    assert any("above the energy window" in n for n in options["Zr-89"].notes)
    assert not any("inside the" in n for n in options["Zr-89"].notes)
    assert any("inside the 435-650 keV" in n for n in options["I-124"].notes)


def test_residualising_zr89_beats_non_residualising_i124_on_igg() -> None:
    # Seed review ref 264: 89Zr-girentuximab more sensitive than 124I thanks to residualisation.
    ranking = rank_nuclides("igg", candidates=["I-124", "Zr-89"])
    assert names(ranking) == ["Zr-89", "I-124"]
    assert ranking[0].window.tumour_to_blood_at_best > ranking[1].window.tumour_to_blood_at_best


def test_minibody_window_is_one_to_two_days_with_cu64_or_zr89_first() -> None:
    plan = plan_tracer("minibody")
    # Farwell 2022: uptake maximal 24-48 h after 89Zr-IAB22M2C (READ); the review pairs
    # fragments with Cu-64 or Zr-89. Y-86 (about 3 MeV of gamma per decay) must not win once
    # the score is per unit of effective dose.
    assert 18 * H <= plan.window.best_time_s <= 60 * H
    assert set(names(plan.ranking[:2])) == {"Cu-64", "Zr-89"}
    zr89 = imaging_window("minibody", "Zr-89")
    assert 1 * D <= zr89.best_time_s <= 3 * D


@pytest.mark.parametrize(
    "fmt", ["peptide", "small_molecule", "nanobody", "adnectin", "cys_diabody"]
)
def test_small_vectors_rank_short_lived_emitters_first(fmt: str) -> None:
    ranking = rank_nuclides(fmt)
    assert ranking[0].nuclide in SHORT_LIVED
    assert ranking[0].half_life_s < nuclide("Cu-64").half_life_s
    assert ranking[0].window.best_time_s < 6 * H
    assert ranking[0].suitable


def test_lower_antigen_density_needs_a_later_scan() -> None:
    best = [imaging_window("igg", "Zr-89", antigen_density=d).best_time_s for d in (0.25, 1.0, 4.0)]
    assert best[0] > best[1] > best[2]


def test_without_a_nuclide_the_window_is_that_of_the_best_match() -> None:
    assert imaging_window("igg") == plan_tracer("igg").window
    assert imaging_window("igg").nuclide == "Zr-89"


# -- the numbers behind the rank ------------------------------------------------------------


def test_every_half_life_and_fraction_comes_from_icrp107() -> None:
    for option in rank_nuclides("minibody"):
        half_life_s = nuclide(option.nuclide).half_life_s
        assert option.half_life_s == half_life_s
        window = option.window
        # Independent of the code under test: 2^(−t/T½) written out.
        for fraction, t_s in (
            (option.fraction_remaining_at_start, window.start_s),
            (option.fraction_remaining_at_best, window.best_time_s),
            (option.fraction_remaining_at_end, window.end_s),
        ):
            assert fraction == pytest.approx(2.0 ** (-t_s / half_life_s), rel=1e-12)
        assert option.positron_yield_per_decay == nuclide(option.nuclide).beta_plus_yield_per_decay


def _numbers_in(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?", text))


def test_no_half_life_is_typed_into_the_planning_code() -> None:
    typed = set()
    for name in (*default_candidates(), "Cu-67", "I-131", "Y-90"):
        half_life_s = nuclide(name).half_life_s
        for unit_s in (1.0, 60.0, H, D):
            value = half_life_s / unit_s
            typed |= {f"{value:.{digits}g}" for digits in (4, 5)}
    # Rounded spellings found in papers (the review writes 3.27 d, 12.7 h, 6.65 d).
    typed |= {"78.41", "282276", "3.27", "12.7", "109.77", "67.71", "6.65", "4.18"}
    for module in (matching_module, pk_module):
        found = _numbers_in(inspect.getsource(module)) & typed
        assert not found, f"{module.__name__} contains half-life literals {sorted(found)}"


def test_scores_follow_the_documented_formula() -> None:
    for option in rank_nuclides("cys_diabody", scanner="biograph_mct"):
        quanta = (
            option.positron_yield_per_decay
            if option.modality == "PET"
            else option.photon_yield_per_decay
        )
        dose_msv_per_mbq = (
            plan_dose(
                "cys_diabody", option.nuclide, [("1 MBq", 1.0e6)]
            ).budget.per_bq.effective_dose_sv
            * 1.0e9
        )
        expected = quanta * option.net_tumour_decays_per_mbq / dose_msv_per_mbq
        assert option.effective_dose_msv_per_mbq == pytest.approx(dose_msv_per_mbq, rel=1e-12)
        assert option.score == pytest.approx(expected, rel=1e-12)
        assert option.net_tumour_decays_per_mbq <= option.tumour_decays_per_mbq


def test_pet_counts_come_from_the_scanner_and_the_injected_activity() -> None:
    camera = scanner("biograph_mct")
    ranking = rank_nuclides("igg", scanner="biograph_mct", injected_activity_bq=37e6)
    for option in ranking:
        if option.modality == "PET":
            per_mbq = camera.counts_per_decay(option.nuclide) * option.tumour_decays_per_mbq
            assert option.expected_counts_per_mbq == pytest.approx(per_mbq, rel=1e-12)
            assert option.expected_counts == pytest.approx(37 * per_mbq, rel=1e-12)
        else:
            assert option.expected_counts is None
            assert option.expected_counts_per_mbq is None
            assert any("photon yield" in note for note in option.notes)
    zr89 = next(o for o in ranking if o.nuclide == "Zr-89")
    assert zr89.expected_counts is not None
    assert zr89.expected_counts > 1000


def test_without_a_scanner_there_are_no_counts_but_the_same_ranking() -> None:
    plain = rank_nuclides("peptide")
    counted = rank_nuclides("peptide", scanner="vision_quadra")
    assert names(plain) == names(counted)
    assert all(o.expected_counts_per_mbq is None for o in plain)


def test_decays_per_mbq_is_the_model_time_integral() -> None:
    from immunopet.tracers._pharmacokinetics import decays_per_mbq

    option = rank_nuclides("igg", candidates=["Zr-89"])[0]
    model = TwoTissueVectorModel(vector_pharmacokinetics("igg"), residualising=True)
    assert option.decays_per_mbq == pytest.approx(decays_per_mbq(model, "Zr-89"), rel=1e-12)


def test_suitable_options_come_first_and_pet_before_spect() -> None:
    ranking = rank_nuclides("igg")
    flags = [o.suitable for o in ranking]
    assert flags == sorted(flags, reverse=True)
    suitable = [o.modality for o in ranking if o.suitable]
    assert suitable == sorted(suitable, key=["PET", "SPECT"].index)
    assert [o.rank for o in ranking] == list(range(1, len(ranking) + 1))


@pytest.mark.parametrize(
    ("name", "modality"),
    [
        ("Zr-89", "PET"),
        ("Cu-64", "PET"),
        ("In-111", "SPECT"),
        ("Lu-177", "SPECT"),
        ("Y-90", "none"),
    ],
)
def test_modality_follows_icrp107_emissions(name: str, modality: str) -> None:
    assert nuclide_modality(name)[0] == modality


def test_spect_photon_yield_sums_the_lines_in_the_camera_range() -> None:
    _, photons, main_kev = nuclide_modality("In-111")
    lines = [g for g in nuclide("In-111").main_gamma_lines() if 70 <= g.energy_kev <= 400]
    assert photons == pytest.approx(sum(g.yield_per_decay for g in lines))
    assert main_kev == pytest.approx(245.35, abs=0.1)


def test_a_nuclide_that_cannot_be_imaged_ranks_last() -> None:
    ranking = rank_nuclides("igg", candidates=["Y-90", "Zr-89", "In-111"])
    assert names(ranking) == ["Zr-89", "In-111", "Y-90"]
    assert ranking[-1].score == 0.0
    assert not ranking[-1].suitable


# -- theranostic pairs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("imaging", "therapy"),
    [("I-124", "I-131"), ("Cu-64", "Cu-67"), ("Y-86", "Y-90"), ("Ga-68", "Lu-177")],
)
def test_theranostic_pairs_of_the_seed_review(imaging: str, therapy: str) -> None:
    for name in (imaging, therapy):
        pair = theranostic_partner(name)
        assert pair is not None
        assert (pair.imaging, pair.therapy) == (imaging, therapy)
        assert "1199146" in pair.source
    options = {o.nuclide: o for o in rank_nuclides("minibody", candidates=[imaging, therapy])}
    assert options[imaging].theranostic_partner == therapy
    assert options[therapy].theranostic_partner == imaging


def test_nuclides_without_a_pair() -> None:
    assert theranostic_partner("zr89") is None
    assert rank_nuclides("igg", candidates=["Zr-89"])[0].theranostic_partner is None


# -- inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": (7 * D, 4 * D)}, "window"),
        ({"candidates": []}, "candidates"),
        ({"tumour_mass_g": 0.0}, "tumour_mass_g"),
        ({"injected_activity_bq": -1.0}, "injected_activity_bq"),
        ({"tolerance": 1.5}, "tolerance"),
        ({"scanner": "no_such_scanner"}, "scanner"),
    ],
)
def test_bad_planning_inputs_name_the_argument(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        rank_nuclides("igg", **kwargs)  # type: ignore[arg-type]


def test_unknown_nuclide_is_refused() -> None:
    with pytest.raises(NuclideError):
        rank_nuclides("igg", candidates=["Xx-999"])


def test_plan_lists_assumptions_and_sources() -> None:
    plan = plan_tracer("minibody", target="CD8", scanner="biograph_mct")
    data = plan.as_dict()
    assert data["target"] == "CD8"
    assert any("Pandit-Taskar" in s for s in data["sources"])
    assert any("Rausch" in s for s in data["sources"])
    assert any("not an effective dose" in a for a in data["assumptions"])
    assert math.isfinite(data["window"]["best_time_s"])


def test_an_optimum_on_the_search_limit_is_flagged() -> None:
    # No antigen: IgG tumour contrast only grows with time, so the "best" day is the horizon.
    zr = next(o for o in rank_nuclides("igg", antigen_density=0.0) if o.nuclide == "Zr-89")
    assert any("end of the search" in n for n in zr.notes)
    zr_normal = next(o for o in rank_nuclides("igg") if o.nuclide == "Zr-89")
    assert not any("end of the search" in n for n in zr_normal.notes)
