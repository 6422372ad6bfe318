"""Lean body mass and body surface area, the denominators of SUVlbm (SUL) and SUVbsa.

Coefficients live in ``data/body_size.toml`` with their papers.
"""

from __future__ import annotations

import math

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import Sex
from immunopet.units import CM_PER_M

__all__ = ["bsa_dubois_m2", "lbm_james_kg", "lbm_janmahasatian_kg"]

_SEX_KEYS = {"M": "male", "F": "female"}


def _checked(weight_kg: float, height_cm: float) -> tuple[float, float]:
    for name, value in (("weight_kg", weight_kg), ("height_cm", height_cm)):
        if not math.isfinite(value) or value <= 0.0:
            raise InputError(f"{name} must be a positive number, got {value!r}", field=name)
    return float(weight_kg), float(height_cm)


def _coefficients(table: str, sex: Sex) -> dict[str, float]:
    if sex not in _SEX_KEYS:
        raise InputError(f"sex must be 'M' or 'F', got {sex!r}", field="sex")
    values: dict[str, float] = read_toml("body_size.toml")[table][_SEX_KEYS[sex]]
    return values


def lbm_james_kg(weight_kg: float, height_cm: float, sex: Sex) -> float:
    """Lean body mass by James (1976), kg.

    LBM = a·W − b·(W/H)², with (a, b) = (1.10, 128) for men and (1.07, 148) for
    women, W in kg and H in cm. It peaks and then falls at high BMI (about 43
    kg/m² in men, 36 kg/m² in women), which is why Janmahasatian is preferred
    (Tahari et al., J Nucl Med 2014).

    Examples
    --------
    >>> round(lbm_james_kg(75.0, 185.0, "M"), 3)
    61.463

    """
    weight, height = _checked(weight_kg, height_cm)
    c = _coefficients("lbm_james", sex)
    return c["a"] * weight - c["b"] * (weight / height) ** 2


def lbm_janmahasatian_kg(weight_kg: float, height_cm: float, sex: Sex) -> float:
    """Lean body mass by Janmahasatian et al. (2005), kg.

    LBM = 9270·W/(6680 + 216·BMI) for men and 9270·W/(8780 + 244·BMI) for
    women, BMI in kg/m².

    Examples
    --------
    >>> round(lbm_janmahasatian_kg(75.0, 185.0, "M"), 3)
    60.915

    """
    weight, height = _checked(weight_kg, height_cm)
    c = _coefficients("lbm_janmahasatian", sex)
    bmi = weight / (height / CM_PER_M) ** 2
    return c["numerator"] * weight / (c["c"] + c["d"] * bmi)


def bsa_dubois_m2(weight_kg: float, height_cm: float) -> float:
    """Body surface area by Du Bois & Du Bois (1916), m².

    BSA = 0.007184 · W^0.425 · H^0.725, W in kg and H in cm.

    Examples
    --------
    >>> round(bsa_dubois_m2(70.0, 170.0), 4)
    1.8097

    """
    weight, height = _checked(weight_kg, height_cm)
    c = read_toml("body_size.toml")["bsa_dubois"]
    return float(
        c["coefficient_m2"] * weight ** c["weight_exponent"] * height ** c["height_exponent"]
    )
