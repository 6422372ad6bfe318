"""Absorbed dose with the MIRD schema and planning-grade specific absorbed fractions.

D(T) = Σ_S Ã(S) · S(T←S),  S(T←S) = Σ_i y_i E_i Φ_i(T←S)

(Bolch WE, Eckerman KF, Sgouros G, Thomas SR. MIRD Pamphlet No. 21. J Nucl Med
2009;50:477–484), with Ã in Bq·s, y_i E_i in J per decay (ICRP-107, :mod:`._energy`) and the
specific absorbed fraction Φ in kg⁻¹.

Why not published S-values: the ICRP Publication 133 specific absorbed fractions are ICRP
copyright (reproduction needs ICRP's permission), and OpenDose's (CC BY-SA 4.0) are served
only through its web site, not usable offline. Until a shippable set exists, Φ comes from a
documented simplified model — a planning-grade approximation, **not** a replacement for
OLINDA/EXM or IDAC-Dose:

* **Regions.** Each source organ is a sphere of its ICRP Publication 89 mass and density
  (``data/reference_organs.toml``); everything not given as a source is the *rest of body*
  (``"rest_of_body"``), of mass M − Σ m_S. A tissue that is not a source organ gets the
  rest-of-body dose.
* **Non-penetrating** energy (electrons, positrons, Auger, conversion electrons; photons below
  the attenuation table, ≤ 20 keV) is absorbed in the source region: Φ(S←S) = 1/m_S.
* **Photons**, line by line: the self-absorbed fraction of a uniformly filled sphere of radius R
  with attenuation μ = μ_en (soft tissue, ``data/soft_tissue_energy_absorption.toml``) is
  φ = 1 − P_esc(μR), P_esc(τ) = 3/(8τ³)·[2τ² − 1 + (1 + 2τ)e^(−2τ)] (first-flight escape
  probability from a sphere; using μ_en in place of μ stands in for build-up). The whole body
  is a sphere of its mass (φ_b). Energy leaving organ S but absorbed in the body,
  (φ_b − φ_S)·E, is spread evenly over the rest of the body mass (M − m_S).
* **Rest of body as a source** uses the MIRD remainder-of-body correction (the relation OLINDA
  applies to S-values): M·Φ(T←body) = Σ_S m_S Φ(T←S) + m_RB Φ(T←RB), with Φ(T←body) = φ_b/M
  for every target, so that activity spread uniformly through the body gives a uniform dose.

Known biases: a sphere of 60–73 kg absorbs more photon energy than an anthropomorphic body
(overestimates cross-dose), organs are not spheres and are not placed (no distance
dependence of cross-dose), walls of hollow organs are not separated from their contents, and
radioactive progeny are not followed (ICRP-107 records of parents already include the lines of
short-lived isomeric daughters, e.g. ⁸⁹ᵐY in ⁸⁹Zr).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from immunopet.data import read_toml
from immunopet.dosimetry._effective import (
    SEXES,
    Sex,
    effective_dose_tissues,
    sex_averaged_effective_dose_sv,
)
from immunopet.dosimetry._energy import EnergyPerDecay, energy_per_decay, joule_per_kev
from immunopet.errors import InputError, NuclideError
from immunopet.units import G_PER_KG

__all__ = [
    "REST_OF_BODY",
    "DoseEstimate",
    "ReferencePhantom",
    "absorbed_doses_gy",
    "estimate_dose",
    "reference_phantom",
    "sphere_absorbed_fraction",
]

#: Source and target name of everything not given as a source organ.
REST_OF_BODY = "rest_of_body"
#: Target name of the mass-weighted mean dose over the whole body.
TOTAL_BODY = "total_body"

ASSUMPTIONS = (
    "MIRD schema D(T) = Σ_S Ã(S)·S(T←S) with planning-grade specific absorbed fractions; not a "
    "replacement for OLINDA/EXM or IDAC-Dose",
    "ICRP Publication 89 reference adult male and female organ masses; organs as spheres",
    "non-penetrating energy (β±, Auger, conversion electrons, photons ≤ 20 keV) absorbed in "
    "the source region",
    "photon self-absorption from the first-flight escape probability of a sphere with the soft "
    "tissue μ_en; escaping energy absorbed by the body (also a sphere) spread evenly over the "
    "rest of the body",
    "rest-of-body source uses the MIRD remainder-of-body correction; tissues not given as "
    "sources receive the rest-of-body dose",
    "radiation weighting factor 1 (photons and electrons): equivalent dose = absorbed dose",
    "effective dose with ICRP Publication 103 tissue weights, sex-averaged over the male and "
    "female reference adults given the same time-integrated activities",
    "radioactive progeny not followed (ICRP-107 parent records include short-lived isomeric "
    "daughters' lines)",
)

SOURCES = (
    "ICRP Publication 107 (2008): emissions via icrp107-database",
    "ICRP Publication 89 (2002): reference organ masses (data/reference_organs.toml)",
    "ICRP Publication 103 (2007): tissue weighting factors (data/icrp103_tissue_weights.toml)",
    "Hubbell & Seltzer, NIST SRD 126: soft tissue μ_en/ρ (data/soft_tissue_energy_absorption.toml)",
    "Bolch et al., MIRD Pamphlet No. 21, J Nucl Med 2009;50:477-484: MIRD schema",
)

_SERIES_LIMIT = 1.0e-2


def sphere_absorbed_fraction(mu_per_cm: float, radius_cm: float) -> float:
    """Fraction of photon energy absorbed in a uniformly filled sphere (first-flight model).

    φ = 1 − P_esc(τ), τ = μR, P_esc(τ) = 3/(8τ³)·[2τ² − 1 + (1 + 2τ)e^(−2τ)]; for small τ the
    series 1 − 3τ/4 + 2τ²/5 − τ³/6 avoids cancellation.

    Parameters
    ----------
    mu_per_cm : float
        Linear attenuation coefficient, cm⁻¹ (here μ_en/ρ · ρ).
    radius_cm : float
        Sphere radius, cm.

    Returns
    -------
    float
        Absorbed fraction in [0, 1).

    Examples
    --------
    >>> round(sphere_absorbed_fraction(0.001, 1.0), 6), round(sphere_absorbed_fraction(1.0, 50.0), 3)
    (0.00075, 0.985)

    """
    tau = mu_per_cm * radius_cm
    if tau < 0.0 or not math.isfinite(tau):
        raise InputError(f"μR must be finite and ≥ 0, got {tau}")
    if tau < _SERIES_LIMIT:
        escape = 1.0 - 0.75 * tau + 0.4 * tau**2 - tau**3 / 6.0
    else:
        escape = (
            3.0 / (8.0 * tau**3) * (2.0 * tau**2 - 1.0 + (1.0 + 2.0 * tau) * math.exp(-2.0 * tau))
        )
    return 1.0 - escape


@dataclass(frozen=True)
class ReferencePhantom:
    """Masses and densities of one ICRP Publication 89 reference adult.

    Parameters
    ----------
    sex : {"male", "female"}
        Which reference adult.
    total_body_g : float
        Whole-body mass, g.
    region_mass_g : dict of str to float
        Mass of each region that can be a source, g.
    region_density_g_per_ml : dict of str to float
        Density of each region, g/mL.
    soft_tissue_density_g_per_ml : float
        Density used for the whole body, g/mL.

    """

    sex: Sex
    total_body_g: float
    region_mass_g: dict[str, float]
    region_density_g_per_ml: dict[str, float]
    soft_tissue_density_g_per_ml: float


@cache
def reference_phantom(sex: Sex) -> ReferencePhantom:
    """Return the reference adult of one sex (``data/reference_organs.toml``).

    Examples
    --------
    >>> phantom = reference_phantom("female")
    >>> phantom.total_body_g, phantom.region_mass_g["liver"]
    (60000.0, 1400.0)

    """
    if sex not in SEXES:
        raise InputError(f"sex must be 'male' or 'female', got {sex!r}", field="sex")
    table = read_toml("reference_organs.toml")
    soft = float(table["soft_tissue_density_g_per_ml"])
    regions = table[sex]["regions"]
    return ReferencePhantom(
        sex=sex,
        total_body_g=float(table[sex]["total_body_g"]),
        region_mass_g={name: float(row["mass_g"]) for name, row in regions.items()},
        region_density_g_per_ml={
            name: float(row.get("density_g_per_ml", soft)) for name, row in regions.items()
        },
        soft_tissue_density_g_per_ml=soft,
    )


@cache
def _attenuation_table() -> tuple[np.ndarray, np.ndarray]:
    table = read_toml("soft_tissue_energy_absorption.toml")
    return (
        np.asarray(table["energy_kev"], dtype=float),
        np.asarray(table["mu_en_per_rho_cm2_per_g"], dtype=float),
    )


def _mu_en_per_rho_cm2_per_g(energy_kev: float) -> float | None:
    """Log-log interpolated μ_en/ρ; None below the table (absorbed locally)."""
    energies, values = _attenuation_table()
    if energy_kev < energies[0]:
        return None
    clipped = min(energy_kev, float(energies[-1]))
    return float(np.exp(np.interp(np.log(clipped), np.log(energies), np.log(values))))


def _sphere_fraction(energy_kev: float, mass_g: float, density_g_per_ml: float) -> float:
    mu_en_per_rho = _mu_en_per_rho_cm2_per_g(energy_kev)
    if mu_en_per_rho is None:
        return 1.0
    radius_cm = (3.0 * mass_g / (4.0 * math.pi * density_g_per_ml)) ** (1.0 / 3.0)
    return sphere_absorbed_fraction(mu_en_per_rho * density_g_per_ml, radius_cm)


def _s_matrix(
    energy: EnergyPerDecay, phantom: ReferencePhantom, sources: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """S(T←S) in Gy per decay and the region masses, regions = (*sources, rest of body)."""
    masses_kg = (
        np.array([phantom.region_mass_g[name] for name in sources] + [0.0], dtype=float) / G_PER_KG
    )
    body_kg = phantom.total_body_g / G_PER_KG
    masses_kg[-1] = body_kg - float(np.sum(masses_kg[:-1]))
    if masses_kg[-1] <= 0.0:
        raise InputError(
            f"source organs {list(sources)} weigh as much as the whole body",
            field="organ_tia_bq_s",
        )
    n_organs = len(sources)
    # Non-penetrating energy stays in its region.
    s_matrix = np.diag(energy.non_penetrating_j / masses_kg)
    j_per_kev = joule_per_kev()
    for line in energy.photon_lines:
        line_j = line.energy_kev * line.yield_per_decay * j_per_kev
        if _mu_en_per_rho_cm2_per_g(line.energy_kev) is None:
            s_matrix += np.diag(line_j / masses_kg)
            continue
        phi_body = _sphere_fraction(
            line.energy_kev, phantom.total_body_g, phantom.soft_tissue_density_g_per_ml
        )
        saf = np.zeros((n_organs + 1, n_organs + 1))  # saf[target, source], kg⁻¹
        for column, name in enumerate(sources):
            phi_self = _sphere_fraction(
                line.energy_kev,
                phantom.region_mass_g[name],
                phantom.region_density_g_per_ml[name],
            )
            saf[:, column] = max(phi_body - phi_self, 0.0) / (body_kg - masses_kg[column])
            saf[column, column] = phi_self / masses_kg[column]
        # Remainder-of-body correction: M Φ(T←body) = Σ_S m_S Φ(T←S) + m_RB Φ(T←RB).
        from_organs = saf[:, :n_organs] @ masses_kg[:n_organs]
        saf[:, -1] = np.clip(phi_body - from_organs, 0.0, None) / masses_kg[-1]
        s_matrix += line_j * saf
    return s_matrix, masses_kg


def _checked_tia(
    organ_tia_bq_s: Mapping[str, float], phantom: ReferencePhantom
) -> dict[str, float]:
    known = set(phantom.region_mass_g) | {REST_OF_BODY}
    unknown = sorted(set(organ_tia_bq_s) - known)
    if unknown:
        raise InputError(
            f"unknown source regions {unknown} for the reference {phantom.sex}",
            field="organ_tia_bq_s",
            hint=f"use {sorted(known)}",
        )
    checked: dict[str, float] = {}
    for name, value in organ_tia_bq_s.items():
        number = float(value)
        if not math.isfinite(number) or number < 0.0:
            raise InputError(
                f"time-integrated activity of {name!r} must be finite and ≥ 0, got {value!r}",
                field="organ_tia_bq_s",
            )
        checked[name] = number
    return checked


def absorbed_doses_gy(
    organ_tia_bq_s: Mapping[str, float], nuclide_name: str, *, sex: Sex
) -> dict[str, float]:
    """Absorbed dose per tissue of one reference adult (MIRD schema, module docstring).

    Parameters
    ----------
    organ_tia_bq_s : mapping of str to float
        Time-integrated activity per source region, Bq·s. Keys: regions of
        ``data/reference_organs.toml`` for that sex, and ``"rest_of_body"`` for activity
        anywhere else (missing regions hold no activity).
    nuclide_name : str
        The radionuclide, e.g. ``"Zr-89"``.
    sex : {"male", "female"}
        Which reference adult.

    Returns
    -------
    dict of str to float
        Absorbed dose, Gy, for every ICRP 103 tissue of that sex, every region of the
        phantom, ``"rest_of_body"`` and ``"total_body"`` (mass-weighted mean).

    Raises
    ------
    InputError
        For an unknown region or a negative time-integrated activity.
    NuclideError
        For emitters of α particles, fission fragments or neutrons (w_R ≠ 1).

    Examples
    --------
    1 GBq·h of ⁸⁹Zr spread through the body gives about the same dose everywhere:

    >>> doses = absorbed_doses_gy({"rest_of_body": 3.6e12}, "Zr-89", sex="male")
    >>> round(doses["liver"] * 1e3, 3) == round(doses["muscle"] * 1e3, 3)
    True

    """
    energy = energy_per_decay(nuclide_name)
    if energy.high_let_j > 0.0:
        raise NuclideError(
            f"{energy.nuclide} emits α particles, fission fragments or neutrons; the planning "
            "model covers photon and electron emitters only (radiation weighting factor 1)",
            field="nuclide",
        )
    phantom = reference_phantom(sex)
    tia = _checked_tia(organ_tia_bq_s, phantom)
    sources = tuple(name for name in phantom.region_mass_g if name in tia)
    s_matrix, masses_kg = _s_matrix(energy, phantom, sources)
    activity = np.array([tia[name] for name in sources] + [tia.get(REST_OF_BODY, 0.0)])
    region_dose = s_matrix @ activity
    by_region = dict(zip((*sources, REST_OF_BODY), region_dose.tolist(), strict=True))
    names = dict.fromkeys((*effective_dose_tissues(sex), *phantom.region_mass_g))
    doses = {name: by_region.get(name, by_region[REST_OF_BODY]) for name in names}
    doses[REST_OF_BODY] = by_region[REST_OF_BODY]
    doses[TOTAL_BODY] = float(region_dose @ masses_kg) / float(np.sum(masses_kg))
    return doses


@dataclass(frozen=True)
class DoseEstimate:
    """Organ and effective doses of one administration (or per becquerel administered).

    Parameters
    ----------
    nuclide : str
        Canonical nuclide name.
    organ_doses_gy : dict of str to float
        Absorbed dose per tissue, Gy: the mean of the two reference adults for tissues both
        have, the one sex's dose for sex-specific tissues.
    organ_doses_gy_by_sex : dict of str to dict of str to float
        ``{"male": {...}, "female": {...}}``, Gy.
    effective_dose_sv : float
        ICRP 103 sex-averaged effective dose, Sv.
    assumptions : tuple of str
        What the model assumes, in words.
    sources : tuple of str
        Where its data and methods come from.

    """

    nuclide: str
    organ_doses_gy: dict[str, float]
    organ_doses_gy_by_sex: dict[str, dict[str, float]]
    effective_dose_sv: float
    assumptions: tuple[str, ...] = ASSUMPTIONS
    sources: tuple[str, ...] = SOURCES

    @property
    def highest_dose_organ(self) -> str:
        """The tissue with the highest absorbed dose (whole-body summaries excluded)."""
        organs = {
            k: v for k, v in self.organ_doses_gy.items() if k not in (REST_OF_BODY, TOTAL_BODY)
        }
        return max(organs, key=organs.__getitem__)

    def scaled(self, factor: float) -> DoseEstimate:
        """The same estimate for ``factor`` times the activity (doses are linear in activity)."""
        return replace(
            self,
            organ_doses_gy={k: v * factor for k, v in self.organ_doses_gy.items()},
            organ_doses_gy_by_sex={
                sex: {k: v * factor for k, v in doses.items()}
                for sex, doses in self.organ_doses_gy_by_sex.items()
            },
            effective_dose_sv=self.effective_dose_sv * factor,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary in canonical units (Gy, Sv)."""
        return {
            "nuclide": self.nuclide,
            "effective_dose_sv": self.effective_dose_sv,
            "highest_dose_organ": self.highest_dose_organ,
            "organ_doses_gy": dict(self.organ_doses_gy),
            "organ_doses_gy_by_sex": {k: dict(v) for k, v in self.organ_doses_gy_by_sex.items()},
            "assumptions": list(self.assumptions),
            "sources": list(self.sources),
        }


def estimate_dose(organ_tia_bq_s: Mapping[str, float], nuclide_name: str) -> DoseEstimate:
    """Organ doses of both reference adults and the ICRP 103 effective dose.

    Both reference adults receive the same time-integrated activities (as OLINDA/EXM does when
    the phantom is switched); the effective dose averages their equivalent doses per tissue.

    Parameters
    ----------
    organ_tia_bq_s : mapping of str to float
        Time-integrated activity per source region, Bq·s (see :func:`absorbed_doses_gy`). A
        region only one sex has (testes, ovaries, uterus) is not accepted here.
    nuclide_name : str
        The radionuclide.

    Returns
    -------
    DoseEstimate

    Examples
    --------
    >>> estimate = estimate_dose({"liver": 1.0e11, "rest_of_body": 5.0e11}, "Zr-89")
    >>> estimate.highest_dose_organ
    'liver'

    """
    by_sex: dict[str, dict[str, float]] = {
        sex: absorbed_doses_gy(organ_tia_bq_s, nuclide_name, sex=sex) for sex in SEXES
    }
    male, female = by_sex["male"], by_sex["female"]
    averaged = {
        name: 0.5 * (male[name] + female[name]) if name in female else male[name] for name in male
    }
    averaged.update({name: dose for name, dose in female.items() if name not in male})
    return DoseEstimate(
        nuclide=energy_per_decay(nuclide_name).nuclide,
        organ_doses_gy=averaged,
        organ_doses_gy_by_sex=by_sex,
        effective_dose_sv=sex_averaged_effective_dose_sv(male, female),
    )
