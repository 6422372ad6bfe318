"""Effective dose with the ICRP Publication 103 tissue weighting factors.

E = Σ_T w_T · (H_T^M + H_T^F)/2 (ICRP Publication 103, Ann. ICRP 37(2–4), 2007): equivalent
doses of the reference male and female are averaged per tissue, then weighted. The remainder
dose of each sex is the arithmetic mean of its 13 remainder tissues; the gonads are the testes
(male) and the ovaries (female). Weights and tissue lists: ``data/icrp103_tissue_weights.toml``.

immunopet's dose model covers photons and electrons (radiation weighting factor w_R = 1), so
the equivalent dose of a tissue equals its absorbed dose: H_T [Sv] = D_T [Gy].
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Literal

from immunopet.data import read_toml
from immunopet.errors import InputError

__all__ = [
    "Sex",
    "effective_dose_sv",
    "effective_dose_tissues",
    "sex_averaged_effective_dose_sv",
    "tissue_weights",
]

Sex = Literal["male", "female"]
SEXES: tuple[Sex, Sex] = ("male", "female")


@cache
def tissue_weights() -> dict[str, float]:
    """ICRP 103 tissue weighting factors w_T, by immunopet tissue name (copy; sums to 1).

    Examples
    --------
    >>> weights = tissue_weights()
    >>> weights["red_marrow"], weights["gonads"], round(sum(weights.values()), 12)
    (0.12, 0.08, 1.0)

    """
    table = read_toml("icrp103_tissue_weights.toml")["tissue_weights"]
    return {name: float(value) for name, value in table.items()}


def _remainder_tissues(sex: Sex) -> tuple[str, ...]:
    table = read_toml("icrp103_tissue_weights.toml")["remainder"]
    return (*table["common"], *table[sex])


def _gonad(sex: Sex) -> str:
    return str(read_toml("icrp103_tissue_weights.toml")["gonads"][sex])


def effective_dose_tissues(sex: Sex | None = None) -> tuple[str, ...]:
    """Tissues whose dose the effective dose needs (both sexes' when ``sex`` is None).

    Examples
    --------
    >>> "prostate" in effective_dose_tissues("male"), "prostate" in effective_dose_tissues("female")
    (True, False)

    """
    sexes: tuple[Sex, ...] = SEXES if sex is None else (sex,)
    names: list[str] = []
    for one in sexes:
        for tissue in tissue_weights():
            if tissue == "remainder":
                names.extend(_remainder_tissues(one))
            elif tissue == "gonads":
                names.append(_gonad(one))
            else:
                names.append(tissue)
    return tuple(dict.fromkeys(names))


def _dose(doses: Mapping[str, float], tissue: str) -> float:
    try:
        value = float(doses[tissue])
    except KeyError:
        raise InputError(
            f"no dose for the tissue {tissue!r}",
            field="organ_doses_gy",
            hint="give every tissue of immunopet.dosimetry.effective_dose_tissues()",
        ) from None
    if value < 0.0 or value != value:
        raise InputError(f"dose of {tissue!r} must be ≥ 0, got {value}", field="organ_doses_gy")
    return value


def _weighted_sv(doses_gy: Mapping[str, float], sex: Sex) -> float:
    total = 0.0
    for tissue, weight in tissue_weights().items():
        if tissue == "remainder":
            remainder = _remainder_tissues(sex)
            dose = sum(_dose(doses_gy, name) for name in remainder) / len(remainder)
        elif tissue == "gonads":
            dose = _dose(doses_gy, _gonad(sex))
        else:
            dose = _dose(doses_gy, tissue)
        total += weight * dose
    return total


def sex_averaged_effective_dose_sv(
    male_organ_doses_gy: Mapping[str, float], female_organ_doses_gy: Mapping[str, float]
) -> float:
    """Return the ICRP 103 effective dose from the reference male's and female's organ doses.

    Parameters
    ----------
    male_organ_doses_gy, female_organ_doses_gy : mapping of str to float
        Absorbed (= equivalent, w_R = 1) dose per tissue, Gy, for each sex; keys from
        :func:`effective_dose_tissues` for that sex.

    Returns
    -------
    float
        Effective dose, Sv.

    """
    return 0.5 * (
        _weighted_sv(male_organ_doses_gy, "male") + _weighted_sv(female_organ_doses_gy, "female")
    )


def effective_dose_sv(organ_doses_gy: Mapping[str, float], sex: Sex | None = None) -> float:
    """Return the effective dose of one set of organ doses (ICRP Publication 103).

    Parameters
    ----------
    organ_doses_gy : mapping of str to float
        Absorbed (= equivalent, w_R = 1) dose per tissue, Gy. Keys: :func:`effective_dose_tissues`.
    sex : {"male", "female"} or None
        None (default): the doses stand for both reference adults and the result is the
        sex-averaged effective dose of ICRP 103 (needs the testes, ovaries, prostate and
        uterus). "male" or "female": Σ w_T H_T with that sex's gonads and remainder only — a
        sex-specific weighted dose, not the ICRP protection quantity; use it to show how much
        of a sex-averaged E each sex contributes.

    Returns
    -------
    float
        Effective dose, Sv.

    Raises
    ------
    InputError
        If a needed tissue is missing or a dose is negative.

    Examples
    --------
    A uniform 1 Gy to every tissue gives 1 Sv:

    >>> effective_dose_sv(dict.fromkeys(effective_dose_tissues(), 1.0))
    1.0

    """
    if sex is None:
        return sex_averaged_effective_dose_sv(organ_doses_gy, organ_doses_gy)
    if sex not in SEXES:
        raise InputError(f"sex must be 'male', 'female' or None, got {sex!r}", field="sex")
    return _weighted_sv(organ_doses_gy, sex)
