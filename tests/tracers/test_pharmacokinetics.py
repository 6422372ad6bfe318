"""Vector pharmacokinetics: mass balance, closed form vs ODE, cited blood kinetics, decay."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from immunopet.errors import InputError
from immunopet.physics import decay_factor, nuclide
from immunopet.tracers._formats import VectorFormat
from immunopet.tracers._pharmacokinetics import (
    EXTRAVASCULAR_TISSUES,
    MASS_BALANCE_ORGANS,
    TISSUES,
    TwoTissueVectorModel,
    apply_physical_decay,
    decays_per_bq,
    decays_per_mbq,
    label_kinetics,
    pharmacokinetic_formats,
    reference_body,
    residualising_label,
    vector_pharmacokinetics,
)

H = 3600.0
D = 86400.0
FORMATS = pharmacokinetic_formats()
ANTIBODIES = (VectorFormat.IGG, VectorFormat.FC_SILENCED_IGG)
# Dense grid from 0 to 21 d: minutes early, hours late.
TIMES_S = np.unique(np.concatenate(([0.0], np.geomspace(1.0, 21 * D, 3000))))


def model(fmt: VectorFormat | str, **kwargs: object) -> TwoTissueVectorModel:
    return TwoTissueVectorModel(vector_pharmacokinetics(fmt), **kwargs)  # type: ignore[arg-type]


def test_every_vector_format_with_plasma_kinetics_is_tabulated() -> None:
    expected = set(VectorFormat) - {VectorFormat.CELL_LABEL, VectorFormat.REPORTER_SUBSTRATE}
    assert set(FORMATS) == expected
    for fmt in FORMATS:
        pk = vector_pharmacokinetics(fmt)
        assert all(pk.sources)
        assert all(pk.confidence)
        assert pk.alpha_half_life_s < pk.beta_half_life_s


@pytest.mark.parametrize("fmt", ["cell_label", "reporter_substrate"])
def test_cells_and_reporter_substrates_have_no_plasma_kinetics(fmt: str) -> None:
    with pytest.raises(InputError, match="no plasma pharmacokinetics"):
        vector_pharmacokinetics(fmt)


def test_unknown_format_lists_the_choices() -> None:
    with pytest.raises(InputError, match="minibody"):
        vector_pharmacokinetics("affibody")


@pytest.mark.parametrize("residualising", [True, False])
@pytest.mark.parametrize("fmt", FORMATS)
def test_mass_balance(fmt: VectorFormat, residualising: bool) -> None:
    m = model(fmt, residualising=residualising)
    assert m.remainder_distribution_volume_ml_per_g >= 0.0
    assert m.remainder_ki_ml_per_g_per_s >= 0.0
    parts = m.organ_percent_id(TIMES_S)
    body = parts["whole_body"]
    assert body[0] == pytest.approx(100.0, abs=1e-9)
    # The body never gains activity and never holds more than was injected.
    assert np.all(np.diff(body) <= 1e-9)
    assert np.all(body <= 100.0 + 1e-9)
    assert np.all(parts["excreted"] >= -1e-9)
    pieces = parts["blood"] + parts["remainder"] + sum(parts[o] for o in MASS_BALANCE_ORGANS)
    np.testing.assert_allclose(pieces, body, rtol=1e-12)
    for key in ("blood", "remainder", *MASS_BALANCE_ORGANS):
        assert np.all(parts[key] >= 0.0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_body_loses_exactly_what_is_excreted(fmt: VectorFormat) -> None:
    # d(body)/dt = -f_excr k10 V_p Cp - k_loss sum(m I): the closed form obeys the balance.
    m = model(fmt)
    k12, k21, k10 = m.micro_constants_per_s
    times = np.linspace(0.5, 3.0, 2001) * vector_pharmacokinetics(fmt).beta_half_life_s
    body = m.whole_body_percent_id(times)
    numeric = np.gradient(body, times)
    plasma_ml = m.body.plasma_volume_ml
    trapped = sum(
        m.body.organ_mass_g[o] * m._irreversible(o, times) for o in MASS_BALANCE_ORGANS
    ) + m.body.remainder_mass_g * m._irreversible("remainder", times)
    analytic = (
        -m.parameters.direct_excretion_fraction * k10 * plasma_ml
    ) * m.plasma_percent_id_per_ml(times) - m.label_loss_rate_per_s * trapped
    np.testing.assert_allclose(numeric[5:-5], analytic[5:-5], rtol=2e-3, atol=1e-12)
    assert k12 > 0.0
    assert k21 > 0.0


@pytest.mark.parametrize("fmt", ["igg", "minibody", "nanobody"])
def test_closed_form_matches_the_compartment_odes(fmt: str) -> None:
    m = model(fmt, antigen_density=2.0, residualising=False)
    k12, k21, k10 = m.micro_constants_per_s
    plasma_ml = m.body.plasma_volume_ml
    tissue = "tumour"
    vt = m.parameters.distribution_volume_ml_per_g[tissue]
    ki = m._ki_ml_per_g_per_s(tissue)
    loss = m.label_loss_rate_per_s

    def rhs(_: float, y: np.ndarray) -> list[float]:
        plasma, peripheral, reversible, trapped = y
        cp = plasma / plasma_ml
        return [
            -(k10 + k12) * plasma + k21 * peripheral,
            k12 * plasma - k21 * peripheral,
            k21 * (vt * cp - reversible),
            ki * cp - loss * trapped,
        ]

    end_s = 5.0 * vector_pharmacokinetics(fmt).beta_half_life_s
    t_eval = np.linspace(0.0, end_s, 200)
    solution = solve_ivp(
        rhs, (0.0, end_s), [100.0, 0.0, 0.0, 0.0], t_eval=t_eval, rtol=1e-10, atol=1e-14
    )
    plasma, _, reversible, trapped = solution.y
    np.testing.assert_allclose(m.plasma_percent_id_per_ml(t_eval), plasma / plasma_ml, rtol=1e-6)
    expected = (
        m.body.blood_content_ml_per_g[tissue] * plasma / m.body.blood_volume_ml
        + reversible
        + trapped
    )
    np.testing.assert_allclose(
        m.tissue_percent_id_per_g(tissue, t_eval), expected, rtol=1e-5, atol=1e-12
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_blood_clears_monotonically(fmt: VectorFormat) -> None:
    blood = model(fmt).blood_percent_id_per_g(TIMES_S)
    assert np.all(np.diff(blood) < 0.0)
    body = reference_body()
    assert blood[0] == pytest.approx(100.0 / body.blood_volume_ml)


@pytest.mark.parametrize("fmt", FORMATS)
def test_terminal_blood_half_life_is_in_its_cited_range(fmt: VectorFormat) -> None:
    pk = vector_pharmacokinetics(fmt)
    m = TwoTissueVectorModel(pk)
    # Fit the model's own curve where the alpha phase is gone (> 8 alpha half-lives).
    start = max(8.0 * pk.alpha_half_life_s, 0.5 * pk.beta_half_life_s)
    times = np.linspace(start, start + 3.0 * pk.beta_half_life_s, 50)
    slope = np.polyfit(times, np.log(m.blood_percent_id_per_g(times)), 1)[0]
    fitted_s = math.log(2.0) / -slope
    low, high = pk.beta_half_life_range_s
    assert low <= fitted_s <= high
    assert fitted_s == pytest.approx(pk.beta_half_life_s, rel=0.02)


def test_fragments_clear_from_blood_faster_than_igg() -> None:
    day1 = np.array([D])
    igg_day1 = model("igg").blood_percent_id_per_g(day1)[0]
    for fmt in set(FORMATS) - set(ANTIBODIES):
        assert model(fmt).blood_percent_id_per_g(day1)[0] < igg_day1, fmt


def _mean_residence_time_s(fmt: str) -> float:
    pk = vector_pharmacokinetics(fmt)
    # Blood AUC / C0 of the biexponential, the measure of Williams LE et al. 2014 (SU-E-T-45).
    return (
        pk.alpha_fraction * pk.alpha_half_life_s + (1 - pk.alpha_fraction) * pk.beta_half_life_s
    ) / math.log(2.0)


def test_blood_residence_follows_the_cognate_fragment_ladder() -> None:
    # Williams 2014 (cT84.66 cognates): scFv ~ diabody < minibody < F(ab')2 < IgG.
    mrt = {f: _mean_residence_time_s(f) for f in ("scfv", "cys_diabody", "minibody", "f_ab_2")}
    mrt["igg"] = _mean_residence_time_s("igg")
    assert max(mrt["scfv"], mrt["cys_diabody"]) < mrt["minibody"] < mrt["f_ab_2"] < mrt["igg"]


@pytest.mark.parametrize("fmt", ["igg", "minibody", "cys_diabody"])
def test_residualising_label_keeps_more_tumour_activity_late(fmt: str) -> None:
    times = np.array([60.0, 7 * D])
    kept = model(fmt, residualising=True).tissue_percent_id_per_g("tumour", times)
    lost = model(fmt, residualising=False).tissue_percent_id_per_g("tumour", times)
    assert kept[0] == pytest.approx(lost[0], rel=0.01)  # same vector, same early uptake
    assert kept[1] > 1.5 * lost[1]


def test_label_chemistry_follows_the_element() -> None:
    assert residualising_label("89Zr")
    assert residualising_label("Lu-177")
    assert not residualising_label("I-124")
    assert not residualising_label("F-18")
    assert label_kinetics(True).loss_half_life_s > label_kinetics(False).loss_half_life_s
    with pytest.raises(InputError, match="labelling chemistry"):
        residualising_label("Tl-201")


def test_tumour_uptake_rises_with_antigen_density_only_in_the_tumour() -> None:
    times = np.array([D, 6 * D])
    low, ref, high = (
        model("igg", antigen_density=d).time_activity_curves(times) for d in (0, 1, 2)
    )
    assert np.all(low["tumour"] < ref["tumour"])
    assert np.all(ref["tumour"] < high["tumour"])
    for tissue in set(TISSUES) - {"tumour"}:
        np.testing.assert_array_equal(low[tissue], high[tissue])
    with pytest.raises(InputError, match="antigen density"):
        model("igg", antigen_density=-1.0)


def test_curves_have_one_value_per_time() -> None:
    curves = model("minibody").time_activity_curves(TIMES_S)
    assert tuple(curves) == TISSUES
    assert all(c.shape == TIMES_S.shape for c in curves.values())
    assert set(EXTRAVASCULAR_TISSUES) < set(TISSUES)


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), np.array([-1.0, 0.0]), np.array([np.nan])])
def test_times_must_be_seconds_after_injection(bad: np.ndarray) -> None:
    with pytest.raises(InputError, match="times"):
        model("igg").time_activity_curves(bad)


def test_unknown_tissue_is_refused() -> None:
    with pytest.raises(InputError, match="tissue"):
        model("igg").tissue_percent_id_per_g("brain", TIMES_S[:3])


# -- physical decay -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Zr-89", "Cu-64", "Ga-68", "I-124"])
def test_decay_applied_is_physics_decay_factor(name: str) -> None:
    times = np.array([0.0, 3600.0, 86400.0, 6 * 86400.0])
    values = np.array([1.0, 2.0, 3.0, 4.0])
    half_life_s = nuclide(name).half_life_s
    expected = values * np.array([decay_factor(half_life_s, t) for t in times])
    np.testing.assert_array_equal(apply_physical_decay(values, times, name), expected)


def test_decay_beyond_a_thousand_half_lives_is_zero() -> None:
    decayed = apply_physical_decay([1.0], [60 * 86400.0], "Ga-68")
    assert decayed[0] == 0.0


def test_decay_needs_one_value_per_time() -> None:
    with pytest.raises(InputError, match="shape"):
        apply_physical_decay([1.0, 2.0], [0.0], "Zr-89")


@pytest.mark.parametrize(
    ("fmt", "name"), [("igg", "Zr-89"), ("peptide", "Ga-68"), ("fab", "I-124")]
)
def test_time_integrated_activity_matches_the_laplace_transform(fmt: str, name: str) -> None:
    m = model(fmt, residualising=residualising_label(name))
    lam = math.log(2.0) / nuclide(name).half_life_s
    _, k21, _ = m.micro_constants_per_s
    loss = m.label_loss_rate_per_s
    pk = m.parameters
    cp0 = 100.0 / m.body.plasma_volume_ml
    terms = [
        (cp0 * pk.alpha_fraction, math.log(2.0) / pk.alpha_half_life_s),
        (cp0 * (1 - pk.alpha_fraction), math.log(2.0) / pk.beta_half_life_s),
    ]
    plasma = sum(c / (r + lam) for c, r in terms)
    masses = dict(m.body.organ_mass_g, remainder=m.body.remainder_mass_g)
    tissues = 0.0
    for tissue, mass in masses.items():
        vt = m._distribution_volume_ml_per_g(tissue)
        ki = m._ki_ml_per_g_per_s(tissue)
        tissues += mass * (vt * k21 * plasma / (k21 + lam) + ki * plasma / (loss + lam))
    expected_s = (m.body.plasma_volume_ml * plasma + tissues) / 100.0
    assert decays_per_bq(m, name) == pytest.approx(expected_s, rel=2e-3)
    assert decays_per_mbq(m, name) == pytest.approx(1e6 * decays_per_bq(m, name))


# -- known answers from the cited studies ---------------------------------------------------


def test_igg_whole_body_half_life_is_in_the_range_of_odonoghue_2018() -> None:
    # 89Zr-trastuzumab: whole-body biological half-life median 370 h, range 257-578 h (READ).
    times = np.linspace(1 * D, 8 * D, 50)
    body = model("igg").whole_body_percent_id(times)
    half_life_h = math.log(2.0) / -np.polyfit(times, np.log(body), 1)[0] / H
    assert 257.0 <= half_life_h <= 578.0


def test_igg_tumour_suv_on_day_6_is_in_the_range_of_odonoghue_2018() -> None:
    # Lesion SUVmax 2.9-22.7 at 5-8 d (READ); SUV = %ID/g x body mass / 100.
    tumour = model("igg").tissue_percent_id_per_g("tumour", np.array([6 * D]))[0]
    suv = tumour * reference_body().body_mass_g / 100.0
    assert 2.9 <= suv <= 22.7


def test_minibody_tumour_uptake_peaks_within_farwell_2022_window() -> None:
    # 89Zr-IAB22M2C: maximum tumour uptake 24-48 h after injection (READ); decay-free curve.
    times = np.linspace(1 * H, 7 * D, 2000)
    tumour = model("minibody").tissue_percent_id_per_g("tumour", times)
    peak_h = times[np.argmax(tumour)] / H
    assert 18.0 <= peak_h <= 48.0


def test_body_masses_are_the_dosimetry_reference_adult() -> None:
    from immunopet.data import read_toml

    male = read_toml("reference_organs.toml")["male"]
    body = reference_body()
    assert body.body_mass_g == male["total_body_g"]
    for organ in MASS_BALANCE_ORGANS:
        assert body.organ_mass_g[organ] == male["regions"][organ]["mass_g"]
    assert 0.0 < body.remainder_mass_g < body.body_mass_g


def test_region_decays_add_up_and_use_the_dosimetry_region_names() -> None:
    from immunopet.data import read_toml
    from immunopet.tracers._pharmacokinetics import organ_decays_per_bq

    m = model("igg")
    regions = organ_decays_per_bq(m, "Zr-89")
    assert set(MASS_BALANCE_ORGANS) <= set(read_toml("reference_organs.toml")["male"]["regions"])
    assert set(regions) == {"blood", "remainder", "whole_body", *MASS_BALANCE_ORGANS}
    parts = sum(v for k, v in regions.items() if k != "whole_body")
    assert parts == pytest.approx(regions["whole_body"], rel=1e-12)
    assert regions["whole_body"] == decays_per_bq(m, "Zr-89")
    # A residualising label on an IgG: the liver holds more decays than the spleen (Jauw K_i).
    assert regions["liver"] > regions["spleen"]
