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
* **Urinary bladder contents** (``"urinary_bladder_contents"``, :data:`URINARY_BLADDER_CONTENTS`)
  are a source region but not a tissue (no dose is reported for them): a sphere of urine of the
  reference content mass m_C (``data/urinary_bladder.toml``: 200 g, RECALLED) inside the body
  mass M (ICRP 89's total-body mass includes the contents of walled organs). Their target is
  the bladder **wall** (``"urinary_bladder"``, the ICRP 103 tissue), a spherical shell of the
  wall mass m_W around them (the geometry of MIRD Pamphlet No. 14 revised, Thomas et al., J Nucl
  Med 1999;40:102S). Non-penetrating energy: the ICRP Publication 30 / MIRD convention that the
  wall receives the dose at the surface of the contents, half their equilibrium dose:
  Φ(W←C) = 0.5/m_C (the contents keep Φ(C←C) = 1/m_C, so the wall term is a surface dose, not
  energy taken from the contents: it adds 0.5·m_W/m_C of the contents' non-penetrating energy).
  Photons: Φ(C←C) = φ_C/m_C (sphere of m_C); the wall absorbs the first-flight fraction φ_shell
  of the energy emitted uniformly in the inner sphere that is absorbed between its radius and
  that of the sphere of m_C + m_W (:func:`shell_absorbed_fraction`), Φ(W←C) = φ_shell/m_W;
  the rest absorbed in the body, (φ_b − φ_C − φ_shell), is spread over M − m_C − m_W. When the
  contents are a source and the wall is not, the wall is taken out of the rest of body with
  the rest-of-body concentration (its share m_W/m_RB of the rest-of-body activity), so that it
  gets its own dose from the contents plus what any other tissue of the rest of body gets.
  With contents at the same concentration as the rest of the body every tissue gets the
  uniform dose except the wall, which gets in addition 0.5·c·E_np (the surface convention).
  Contents given with no activity are cold urine: through the remainder correction the wall's
  photon dose from the rest of body then lacks the share the urine would have given it (about
  a tenth of its photon dose at 511 keV), as for a tissue next to any cold region.

Known biases: a sphere of 60–73 kg absorbs more photon energy than an anthropomorphic body
(overestimates cross-dose), organs are not spheres and are not placed (no distance
dependence of cross-dose), walls of hollow organs other than the urinary bladder are not
separated from their contents, the bladder content volume is fixed (no filling, no residual
urine), and radioactive progeny are not followed (ICRP-107 records of parents already include
the lines of short-lived isomeric daughters, e.g. ⁸⁹ᵐY in ⁸⁹Zr).
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
from immunopet.dosimetry._energy import (
    EnergyPerDecay,
    energy_per_decay,
    joule_per_kev,
    low_let_energy_per_decay,
)
from immunopet.errors import InputError
from immunopet.units import G_PER_KG

__all__ = [
    "REST_OF_BODY",
    "URINARY_BLADDER_CONTENTS",
    "URINARY_BLADDER_WALL",
    "DoseEstimate",
    "ReferencePhantom",
    "absorbed_doses_gy",
    "estimate_dose",
    "reference_phantom",
    "shell_absorbed_fraction",
    "sphere_absorbed_fraction",
]

#: Source and target name of everything not given as a source organ.
REST_OF_BODY = "rest_of_body"
#: Source region of the urine in the bladder (not a tissue: no dose is reported for it).
URINARY_BLADDER_CONTENTS = "urinary_bladder_contents"
#: The bladder wall: region of ``data/reference_organs.toml`` and ICRP 103 tissue.
URINARY_BLADDER_WALL = "urinary_bladder"
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
    "urinary bladder contents (when a source): a sphere of the reference content mass inside the "
    "body; wall dose from their non-penetrating radiation = half the contents' equilibrium dose "
    "(ICRP 30 surface convention), from their photons = first-flight absorption in a spherical "
    "wall shell",
)

SOURCES = (
    "ICRP Publication 107 (2008): emissions via icrp107-database",
    "ICRP Publication 89 (2002): reference organ masses (data/reference_organs.toml)",
    "ICRP Publication 103 (2007): tissue weighting factors (data/icrp103_tissue_weights.toml)",
    "Hubbell & Seltzer, NIST SRD 126: soft tissue μ_en/ρ (data/soft_tissue_energy_absorption.toml)",
    "Bolch et al., MIRD Pamphlet No. 21, J Nucl Med 2009;50:477-484: MIRD schema",
    "ICRP Publication 30 (1979) wall-contents convention; bladder contents and voiding schedule: "
    "data/urinary_bladder.toml",
)

_SERIES_LIMIT = 1.0e-2
#: Gauss-Legendre nodes per dimension of the shell absorbed fraction (radius × direction).
_SHELL_NODES = 64


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


@cache
def _legendre(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    return nodes, weights


def shell_absorbed_fraction(
    mu_per_cm: float, inner_radius_cm: float, outer_radius_cm: float
) -> float:
    """Fraction of photon energy emitted in a sphere that a concentric shell absorbs (first flight).

    A source uniform in the sphere of radius R_i, isotropic emission, attenuation μ (here
    μ_en, as in :func:`sphere_absorbed_fraction`) inside and outside: the fraction absorbed
    between R_i and R_o is ⟨e^(−μ d_i) − e^(−μ d_o)⟩ over source points and directions, with
    d = −r·cosθ + √(R² − r² sin²θ) the path from the point to the sphere of radius R. The mean
    is a 64 × 64-node Gauss–Legendre quadrature over r (weight 3r²/R_i³) and cosθ. For a thin
    shell of thickness t ≪ R_i and μR_i ≪ 1 it tends to (3/2)·μt (photons leave a uniformly
    filled sphere with a cos²-weighted exit angle, mean 1/cos = 3/2).

    Parameters
    ----------
    mu_per_cm : float
        Linear attenuation coefficient, cm⁻¹ (≥ 0).
    inner_radius_cm : float
        Radius of the source sphere, cm (> 0).
    outer_radius_cm : float
        Outer radius of the shell, cm (≥ the inner radius).

    Returns
    -------
    float
        Absorbed fraction in the shell, in [0, 1 − φ(R_i)].

    Examples
    --------
    A 2.8 mm wall around 200 mL of urine at 511 keV (μ_en = 0.0327 cm⁻¹) takes 1.15 %:

    >>> round(shell_absorbed_fraction(0.0327, 3.628, 3.906), 4)
    0.0115

    """
    if not (
        math.isfinite(mu_per_cm)
        and mu_per_cm >= 0.0
        and math.isfinite(outer_radius_cm)
        and 0.0 < inner_radius_cm <= outer_radius_cm
    ):
        raise InputError(
            f"need μ ≥ 0 and 0 < inner ≤ outer radius, got μ = {mu_per_cm}, "
            f"R_i = {inner_radius_cm}, R_o = {outer_radius_cm}"
        )
    nodes, weights = _legendre(_SHELL_NODES)
    fraction = 0.5 * (nodes + 1.0)  # r / R_i on (0, 1)
    radial_weights = 0.5 * weights * 3.0 * fraction**2
    cosine_weights = 0.5 * weights
    radius = fraction[:, None] * inner_radius_cm
    cosine = nodes[None, :]
    perpendicular_sq = radius**2 * (1.0 - cosine**2)
    to_inner = -radius * cosine + np.sqrt(np.clip(inner_radius_cm**2 - perpendicular_sq, 0.0, None))
    to_outer = -radius * cosine + np.sqrt(outer_radius_cm**2 - perpendicular_sq)
    absorbed = np.exp(-mu_per_cm * to_inner) - np.exp(-mu_per_cm * to_outer)
    return float(radial_weights @ absorbed @ cosine_weights)


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
    bladder_contents_g : float
        Reference mass of the urine in the bladder (``data/urinary_bladder.toml``), g; part of
        ``total_body_g``.
    bladder_contents_density_g_per_ml : float
        Density of the urine, g/mL.
    bladder_wall_surface_fraction : float
        Wall dose from the contents' non-penetrating radiation per their equilibrium dose (0.5,
        ICRP 30).

    """

    sex: Sex
    total_body_g: float
    region_mass_g: dict[str, float]
    region_density_g_per_ml: dict[str, float]
    soft_tissue_density_g_per_ml: float
    bladder_contents_g: float = 200.0
    bladder_contents_density_g_per_ml: float = 1.0
    bladder_wall_surface_fraction: float = 0.5

    def source_mass_g(self) -> dict[str, float]:
        """Mass of every region that can hold activity, bladder contents included, g."""
        return {**self.region_mass_g, URINARY_BLADDER_CONTENTS: self.bladder_contents_g}

    def source_density_g_per_ml(self) -> dict[str, float]:
        """Density of every region that can hold activity, bladder contents included, g/mL."""
        return {
            **self.region_density_g_per_ml,
            URINARY_BLADDER_CONTENTS: self.bladder_contents_density_g_per_ml,
        }


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
    bladder = read_toml("urinary_bladder.toml")
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
        bladder_contents_g=float(bladder["contents"]["mass_g"][sex]),
        bladder_contents_density_g_per_ml=float(bladder["contents"]["density_g_per_ml"]["value"]),
        bladder_wall_surface_fraction=float(
            bladder["wall"]["non_penetrating_surface_fraction"]["value"]
        ),
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
    return sphere_absorbed_fraction(
        mu_en_per_rho * density_g_per_ml, _radius_cm(mass_g, density_g_per_ml)
    )


def _radius_cm(mass_g: float, density_g_per_ml: float) -> float:
    """Radius of a sphere of that mass and density, cm."""
    return float(math.cbrt(3.0 * mass_g / (4.0 * math.pi * density_g_per_ml)))


def _s_matrix(
    energy: EnergyPerDecay, phantom: ReferencePhantom, sources: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """S(T←S) in Gy per decay and the region masses, regions = (*sources, rest of body).

    When the bladder contents are among the sources the bladder wall must be one too (see
    :func:`absorbed_doses_gy`); the contents column then follows the module docstring.
    """
    mass_g = phantom.source_mass_g()
    density = phantom.source_density_g_per_ml()
    masses_kg = np.array([mass_g[name] for name in sources] + [0.0], dtype=float) / G_PER_KG
    body_kg = phantom.total_body_g / G_PER_KG
    masses_kg[-1] = body_kg - float(np.sum(masses_kg[:-1]))
    if masses_kg[-1] <= 0.0:
        raise InputError(
            f"source organs {list(sources)} weigh as much as the whole body",
            field="organ_tia_bq_s",
        )
    n_organs = len(sources)
    contents = wall = -1
    if URINARY_BLADDER_CONTENTS in sources:
        contents = sources.index(URINARY_BLADDER_CONTENTS)
        wall = sources.index(URINARY_BLADDER_WALL)
    # Non-penetrating energy stays in its region; the wall gets the contents' surface dose.
    local = np.diag(1.0 / masses_kg)
    if contents >= 0:
        local[wall, contents] = phantom.bladder_wall_surface_fraction / masses_kg[contents]
    s_matrix = energy.non_penetrating_j * local
    j_per_kev = joule_per_kev()
    for line in energy.photon_lines:
        line_j = line.energy_kev * line.yield_per_decay * j_per_kev
        mu_en_per_rho = _mu_en_per_rho_cm2_per_g(line.energy_kev)
        if mu_en_per_rho is None:
            s_matrix += line_j * local
            continue
        phi_body = _sphere_fraction(
            line.energy_kev, phantom.total_body_g, phantom.soft_tissue_density_g_per_ml
        )
        saf = np.zeros((n_organs + 1, n_organs + 1))  # saf[target, source], kg⁻¹
        for column, name in enumerate(sources):
            phi_self = _sphere_fraction(line.energy_kev, mass_g[name], density[name])
            if column == contents:
                # Wall shell around the contents sphere (one μ for urine and wall: both 1 g/mL).
                contents_ml = mass_g[name] / density[name]
                wall_ml = mass_g[URINARY_BLADDER_WALL] / density[URINARY_BLADDER_WALL]
                inner_cm = _radius_cm(contents_ml, 1.0)  # radius of a volume: unit density
                outer_cm = _radius_cm(contents_ml + wall_ml, 1.0)
                phi_wall = min(
                    shell_absorbed_fraction(
                        mu_en_per_rho * density[URINARY_BLADDER_WALL], inner_cm, outer_cm
                    ),
                    max(phi_body - phi_self, 0.0),
                )
                elsewhere_kg = body_kg - masses_kg[column] - masses_kg[wall]
                saf[:, column] = max(phi_body - phi_self - phi_wall, 0.0) / elsewhere_kg
                saf[wall, column] = phi_wall / masses_kg[wall]
            else:
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
    known = set(phantom.source_mass_g()) | {REST_OF_BODY}
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
        ``data/reference_organs.toml`` for that sex, ``"urinary_bladder_contents"`` for the
        urine in the bladder (:data:`URINARY_BLADDER_CONTENTS`, e.g. from
        :func:`~immunopet.dosimetry.bladder_contents_tiac_s`), and ``"rest_of_body"`` for
        activity anywhere else (missing regions hold no activity).
    nuclide_name : str
        The radionuclide, e.g. ``"Zr-89"``.
    sex : {"male", "female"}
        Which reference adult.

    Returns
    -------
    dict of str to float
        Absorbed dose, Gy, for every ICRP 103 tissue of that sex, every region of the
        phantom (not the bladder contents: not a tissue; ``"urinary_bladder"`` is the wall),
        ``"rest_of_body"`` and ``"total_body"`` (mean over the body mass, contents included).

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

    10 MBq·h of ¹⁸F in the urine, beside 1 GBq·h in the rest of the body, nearly doubles the
    bladder wall dose:

    >>> doses = absorbed_doses_gy(
    ...     {"urinary_bladder_contents": 3.6e10, "rest_of_body": 3.6e12}, "F-18", sex="male"
    ... )
    >>> round(doses["urinary_bladder"] / doses["muscle"], 2)
    1.84

    """
    energy = low_let_energy_per_decay(nuclide_name, model="the planning model")
    phantom = reference_phantom(sex)
    tia = _checked_tia(organ_tia_bq_s, phantom)
    if URINARY_BLADDER_CONTENTS in tia and URINARY_BLADDER_WALL not in tia:
        # The wall leaves the rest of body with the rest-of-body concentration.
        rest_g = phantom.total_body_g - sum(
            phantom.source_mass_g()[name] for name in tia if name != REST_OF_BODY
        )
        rest_bq_s = tia.get(REST_OF_BODY, 0.0)
        tia[URINARY_BLADDER_WALL] = rest_bq_s * phantom.region_mass_g[URINARY_BLADDER_WALL] / rest_g
        tia[REST_OF_BODY] = rest_bq_s - tia[URINARY_BLADDER_WALL]
    sources = tuple(name for name in phantom.source_mass_g() if name in tia)
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
