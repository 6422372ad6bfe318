"""Energy emitted per decay, split into non-penetrating and penetrating radiation (ICRP-107).

MIRD convention (Loevinger R, Budinger TF, Watson EE. MIRD Primer, SNM 1991): particles whose
range in tissue is short compared with organ sizes (electrons, positrons, α particles and
recoils) are *non-penetrating* and deposit their energy where they are emitted; photons (γ, X,
annihilation) are *penetrating*. A positron's kinetic energy is non-penetrating; its two
511 keV annihilation photons are listed by ICRP-107 as a separate emission and are penetrating.

The emissions of each kind are the ICRP-107 lines (mean energy × yield per decay) of
``icrp107-database``; the β spectra ("b-spectra") are shapes, not extra energy, and are
skipped. An emission kind this module does not know is an error, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from immunopet.errors import NuclideError
from immunopet.physics import EmissionLine, canonical_nuclide_name
from immunopet.physics._nuclides import _icrp107_record
from immunopet.units import KEV_PER_MEV

__all__ = ["EnergyPerDecay", "energy_per_decay", "joule_per_kev", "low_let_energy_per_decay"]

#: ICRP-107 emission kinds deposited locally (charged particles).
NON_PENETRATING_KINDS = (
    "beta+",
    "beta-",
    "auger",
    "IE",
    "alpha",
    "alpha recoil",
    "fission",
    "betaD",
)
#: ICRP-107 photon emission kinds.
PHOTON_KINDS = ("gamma", "X", "annihilation")
#: Penetrating but not photons: refused by the photon model in ``_mird``.
NEUTRON_KINDS = ("neutron",)
#: Present in the records but not an emission of energy of its own.
SPECTRUM_KINDS = ("b-spectra",)
#: Kinds whose energy needs a radiation weighting factor other than 1 (ICRP 103: α, fission
#: fragments, heavy ions 20; neutrons energy-dependent).
HIGH_LET_KINDS = ("alpha", "alpha recoil", "fission", "neutron")


def joule_per_kev() -> float:
    """Energy of 1 keV in joules (CODATA, through ``scipy.constants``)."""
    from scipy import constants  # imported on first use: keeps `import immunopet` light

    return float(constants.kilo * constants.electron_volt)


@dataclass(frozen=True)
class EnergyPerDecay:
    """Energy emitted per nuclear transformation, by kind (ICRP-107).

    Parameters
    ----------
    nuclide : str
        Canonical nuclide name.
    by_kind_j : dict of str to float
        Σ energy × yield of every ICRP-107 emission kind, J per decay.
    photon_lines : tuple of EmissionLine
        Every γ, X-ray and annihilation line (keV, yield per decay), sorted by energy.

    Examples
    --------
    >>> zr = energy_per_decay("Zr-89")
    >>> round(zr.non_penetrating_j / joule_per_kev(), 1), round(zr.penetrating_j / joule_per_kev(), 1)
    (101.9, 1158.1)

    """

    nuclide: str
    by_kind_j: dict[str, float]
    photon_lines: tuple[EmissionLine, ...] = field(repr=False)

    @property
    def non_penetrating_j(self) -> float:
        """Electrons, positrons (kinetic), Auger and conversion electrons, α and recoils, J."""
        return sum(self.by_kind_j.get(kind, 0.0) for kind in NON_PENETRATING_KINDS)

    @property
    def penetrating_j(self) -> float:
        """Photons (γ, X, annihilation) and neutrons, J."""
        return sum(self.by_kind_j.get(kind, 0.0) for kind in (*PHOTON_KINDS, *NEUTRON_KINDS))

    @property
    def total_j(self) -> float:
        """All energy emitted per decay, J."""
        return self.non_penetrating_j + self.penetrating_j

    @property
    def high_let_j(self) -> float:
        """Energy of α particles, recoils, fission fragments and neutrons, J (w_R ≠ 1)."""
        return sum(self.by_kind_j.get(kind, 0.0) for kind in HIGH_LET_KINDS)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary, J per decay."""
        return {
            "nuclide": self.nuclide,
            "non_penetrating_j": self.non_penetrating_j,
            "penetrating_j": self.penetrating_j,
            "by_kind_j": dict(self.by_kind_j),
        }


@cache
def energy_per_decay(nuclide_name: str) -> EnergyPerDecay:
    """Return the energy a nuclide emits per decay, split by kind (ICRP-107).

    Parameters
    ----------
    nuclide_name : str
        Any spelling :func:`immunopet.physics.canonical_nuclide_name` accepts.

    Returns
    -------
    EnergyPerDecay

    Raises
    ------
    NuclideError
        If the nuclide is unknown or its record holds an emission kind not classified here.

    """
    name = canonical_nuclide_name(nuclide_name)
    emissions: dict[str, list[list[float]]] = _icrp107_record(name)["emissions"]
    known = (*NON_PENETRATING_KINDS, *PHOTON_KINDS, *NEUTRON_KINDS, *SPECTRUM_KINDS)
    unknown = sorted(kind for kind, rows in emissions.items() if rows and kind not in known)
    if unknown:
        raise NuclideError(
            f"{name}: ICRP-107 emission kinds {unknown} are not classified as penetrating or "
            "non-penetrating",
            field="nuclide",
            hint="extend immunopet.dosimetry._energy",
        )
    j_per_kev = joule_per_kev()
    by_kind_j = {
        kind: j_per_kev * KEV_PER_MEV * sum(float(e) * float(y) for e, y in rows)
        for kind, rows in emissions.items()
        if kind not in SPECTRUM_KINDS and rows
    }
    lines = sorted(
        (
            EmissionLine(float(e) * KEV_PER_MEV, float(y))
            for kind in PHOTON_KINDS
            for e, y in emissions.get(kind, [])
        ),
        key=lambda line: line.energy_kev,
    )
    return EnergyPerDecay(nuclide=name, by_kind_j=by_kind_j, photon_lines=tuple(lines))


def low_let_energy_per_decay(nuclide_name: str, *, model: str) -> EnergyPerDecay:
    """:func:`energy_per_decay` for a model that covers photon and electron emitters only.

    Parameters
    ----------
    nuclide_name : str
        As for :func:`energy_per_decay`.
    model : str
        What refuses the nuclide, for the message (e.g. ``"voxel dose"``).

    Raises
    ------
    NuclideError
        If the nuclide emits α particles, fission fragments or neutrons (radiation weighting
        factor > 1; progeny not followed).

    """
    energy = energy_per_decay(nuclide_name)
    if energy.high_let_j > 0.0:
        raise NuclideError(
            f"{energy.nuclide} emits α particles, fission fragments or neutrons; {model} covers "
            "photon and electron emitters only (radiation weighting factor 1, progeny not "
            "followed)",
            field="nuclide",
        )
    return energy
