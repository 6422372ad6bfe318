"""Lean body mass and body surface area against their papers and a known wrong implementation."""

from __future__ import annotations

import pytest

from immunopet.errors import InputError
from immunopet.quant import bsa_dubois_m2, lbm_james_kg, lbm_janmahasatian_kg


def test_james_by_hand() -> None:
    # James 1976: men 1.10 W − 128 (W/H)², women 1.07 W − 148 (W/H)², W kg, H cm.
    assert lbm_james_kg(75.0, 185.0, "M") == pytest.approx(1.10 * 75 - 128 * (75 / 185) ** 2)
    assert lbm_james_kg(75.0, 185.0, "M") == pytest.approx(61.463, abs=1e-3)  # DOMAIN_NUMBERS §2.2
    assert lbm_james_kg(75.0, 185.0, "F") == pytest.approx(55.926, abs=1e-3)


def test_james_is_not_the_popular_wrong_variant() -> None:
    # A widely used open-source SUV library's test expects 58 175.68 g for a 75 kg, 1.85 m man
    # (shared/reference/DOMAIN_NUMBERS.md §2.2); the true James value is 61.463 kg.
    assert abs(lbm_james_kg(75.0, 185.0, "M") - 58.17568) > 3.0


@pytest.mark.parametrize(
    ("sex", "bmi_at_peak"), [("M", 1.10 / (2 * 128) * 1e4), ("F", 1.07 / (2 * 148) * 1e4)]
)
def test_james_peaks_at_high_bmi(sex: str, bmi_at_peak: float) -> None:
    # d(LBM)/dW = a − 2bW/H² = 0 at BMI = a/(2b)·10⁴: ≈ 43 kg/m² for men (Nyman, Radiology 2016
    # reports the James LBM falling above BMI ≈ 43 in men and ≈ 37 in women).
    height = 170.0
    weight_at_peak = bmi_at_peak * (height / 100) ** 2
    assert lbm_james_kg(weight_at_peak, height, sex) > lbm_james_kg(weight_at_peak + 5, height, sex)
    assert lbm_james_kg(weight_at_peak, height, sex) > lbm_james_kg(weight_at_peak - 5, height, sex)
    published = {"M": 43.0, "F": 37.0}[sex]  # Nyman 2016: plateau "at a BMI of about 37 and 43"
    assert bmi_at_peak == pytest.approx(published, abs=1.0)


@pytest.mark.parametrize(("sex", "whs_max", "whs50"), [("M", 42.92, 30.93), ("F", 37.99, 35.98)])
def test_janmahasatian_matches_its_saturation_form(sex: str, whs_max: float, whs50: float) -> None:
    # Janmahasatian 2005 eq.: LBM = WHSmax·H²·W / (WHS50·H² + W), H in m, with the published
    # WHSmax and WHS50 — the same model as 9270·W/(6680 + 216·BMI) (men) and (8780 + 244·BMI) (women).
    for weight, height_cm in [(50.0, 160.0), (75.0, 185.0), (140.0, 170.0)]:
        h2 = (height_cm / 100) ** 2
        expected = whs_max * h2 * weight / (whs50 * h2 + weight)
        assert lbm_janmahasatian_kg(weight, height_cm, sex) == pytest.approx(expected, rel=2e-3)


def test_janmahasatian_keeps_rising_where_james_falls() -> None:
    # Tahari et al., J Nucl Med 2014: the reason to prefer Janmahasatian for SUL.
    assert lbm_janmahasatian_kg(160.0, 170.0, "M") > lbm_janmahasatian_kg(130.0, 170.0, "M")
    assert lbm_james_kg(160.0, 170.0, "M") < lbm_james_kg(130.0, 170.0, "M")


def test_dubois_by_hand() -> None:
    # Du Bois & Du Bois 1916: A[cm²] = 71.84 · W[kg]^0.425 · H[cm]^0.725.
    for weight, height in [(70.0, 170.0), (50.0, 150.0), (100.0, 190.0)]:
        expected_m2 = 71.84 * weight**0.425 * height**0.725 / 1e4
        assert bsa_dubois_m2(weight, height) == pytest.approx(expected_m2, rel=1e-9)
    assert bsa_dubois_m2(70.0, 170.0) == pytest.approx(1.81, abs=0.005)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_body_size_is_refused(bad: float) -> None:
    with pytest.raises(InputError):
        lbm_james_kg(bad, 170.0, "M")
    with pytest.raises(InputError):
        bsa_dubois_m2(70.0, bad)


def test_sex_must_be_given() -> None:
    with pytest.raises(InputError, match="sex"):
        lbm_janmahasatian_kg(70.0, 170.0, "X")  # type: ignore[arg-type]
