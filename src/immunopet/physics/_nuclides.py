"""Radionuclide data from ICRP Publication 107, through maintained packages.

Half-lives, decay modes and progeny come from ``radioactivedecay`` (dataset
``icrp107_ame2020_nubase2020``); emissions (β⁺/β⁻ yields and mean energies,
γ and X-ray lines, annihilation photons) from ``icrp107-database`` (the
OpenGATE collaboration's JSON transcription of ICRP-107). Both are imported on
first use, never at import of immunopet.

Reference: ICRP, 2008. Nuclear Decay Data for Dosimetric Calculations. ICRP
Publication 107. Ann. ICRP 38 (3).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from immunopet.data import read_csv, read_toml
from immunopet.errors import NuclideError
from immunopet.units import KEV_PER_MEV

__all__ = [
    "EmissionLine",
    "Nuclide",
    "canonical_nuclide_name",
    "element_name",
    "known_nuclides",
    "nuclide",
]


@dataclass(frozen=True)
class EmissionLine:
    """One discrete emission: energy (keV) and yield (per decay)."""

    energy_kev: float
    yield_per_decay: float


@dataclass(frozen=True)
class Nuclide:
    """Physical data of one radionuclide (ICRP-107).

    Parameters
    ----------
    name : str
        Canonical name, element symbol, hyphen, mass number and an ``m`` for a
        metastable state: ``"Zr-89"``, ``"Tc-99m"``.
    half_life_s : float
        Half-life, s (radioactivedecay).
    decay_modes : tuple of str
        Decay modes with their branching fractions, e.g. ``("β+ & EC 1.0",)``.
    progeny : tuple of str
        Direct progeny nuclides.
    beta_plus_yield_per_decay : float
        Positrons per decay (sum over β⁺ branches).
    beta_plus_mean_energy_kev : float or None
        Yield-weighted mean β⁺ kinetic energy, keV.
    beta_minus_yield_per_decay : float
        Electrons per decay from β⁻ branches.
    beta_minus_mean_energy_kev : float or None
        Yield-weighted mean β⁻ kinetic energy, keV.
    annihilation_photons_per_decay : float
        511 keV photons per decay.
    gamma_lines, xray_lines : tuple of EmissionLine
        Every γ and X-ray line of the ICRP-107 record of *this* nuclide, sorted
        by energy. The record of a parent already includes lines emitted by a
        short-lived isomeric daughter (e.g. the 909 keV γ of ⁸⁹ᵐY is in the
        ⁸⁹Zr record, 0.9904 per decay), so daughters' lines are never added
        again.
    source : str
        Packages, versions and dataset the numbers come from.

    """

    name: str
    half_life_s: float
    decay_modes: tuple[str, ...]
    progeny: tuple[str, ...]
    beta_plus_yield_per_decay: float
    beta_plus_mean_energy_kev: float | None
    beta_minus_yield_per_decay: float
    beta_minus_mean_energy_kev: float | None
    annihilation_photons_per_decay: float
    gamma_lines: tuple[EmissionLine, ...]
    xray_lines: tuple[EmissionLine, ...]
    source: str

    @property
    def is_positron_emitter(self) -> bool:
        """Whether the nuclide emits positrons (PET-imageable)."""
        return self.beta_plus_yield_per_decay > 0.0

    def main_gamma_lines(self) -> tuple[EmissionLine, ...]:
        """γ lines at or above the listing threshold of ``data/physics.toml``."""
        threshold = float(
            read_toml("physics.toml")["emission_listing"]["min_gamma_yield_per_decay"]
        )
        return tuple(line for line in self.gamma_lines if line.yield_per_decay >= threshold)

    def main_xray_lines(self) -> tuple[EmissionLine, ...]:
        """X-ray lines at or above the listing thresholds (yield, energy) of ``data/physics.toml``."""
        listing = read_toml("physics.toml")["emission_listing"]
        threshold = float(listing["min_xray_yield_per_decay"])
        min_energy_kev = float(listing["min_xray_energy_kev"])
        return tuple(
            line
            for line in self.xray_lines
            if line.yield_per_decay >= threshold and line.energy_kev >= min_energy_kev
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (main lines only)."""
        return {
            "nuclide": self.name,
            "half_life_s": self.half_life_s,
            "decay_modes": list(self.decay_modes),
            "progeny": list(self.progeny),
            "beta_plus_yield_per_decay": self.beta_plus_yield_per_decay,
            "beta_plus_mean_energy_kev": self.beta_plus_mean_energy_kev,
            "beta_minus_yield_per_decay": self.beta_minus_yield_per_decay,
            "beta_minus_mean_energy_kev": self.beta_minus_mean_energy_kev,
            "annihilation_photons_per_decay": self.annihilation_photons_per_decay,
            "gamma_lines": [
                {"energy_kev": g.energy_kev, "yield_per_decay": g.yield_per_decay}
                for g in self.main_gamma_lines()
            ],
            "xray_lines": [
                {"energy_kev": x.energy_kev, "yield_per_decay": x.yield_per_decay}
                for x in self.main_xray_lines()
            ],
            "source": self.source,
        }


_SYMBOL_FIRST = re.compile(r"^(?P<element>[a-z]+)-?(?P<mass>\d{1,3})(?P<meta>m\d?)?$")
_MASS_FIRST = re.compile(r"^(?P<mass>\d{1,3})(?P<meta>m\d?)?-?(?P<element>[a-z]+)$")


@cache
def _element_symbols() -> dict[str, str]:
    """Lower-case symbol or English element name -> element symbol."""
    table = {row["symbol"].lower(): row["symbol"] for row in read_csv("elements.csv")}
    for row in read_csv("nuclides.csv"):
        symbol = row["name"].split("-")[0]
        table[row["element_name"].lower()] = symbol
    return table


def canonical_nuclide_name(name: str) -> str:
    """Return the canonical spelling of a nuclide name.

    Accepts the spellings found in files and on command lines: ``"Zr-89"``,
    ``"zr89"``, ``"89Zr"``, ``"89-Zr"``, ``"^89^Zirconium"`` (DICOM code
    meaning), ``"Zirconium-89"``, ``"Tc99m"``, ``"99mTc"``.

    Parameters
    ----------
    name : str
        The name to resolve.

    Returns
    -------
    str
        ``"Zr-89"``, ``"Tc-99m"``, ...

    Raises
    ------
    NuclideError
        If the name does not parse or the nuclide is not in ICRP-107.

    Examples
    --------
    >>> canonical_nuclide_name("89Zr"), canonical_nuclide_name("^18^Fluorine")
    ('Zr-89', 'F-18')

    """
    compact = re.sub(r"[\s_^]", "", str(name)).lower()
    match = _SYMBOL_FIRST.match(compact) or _MASS_FIRST.match(compact)
    if match is None:
        raise NuclideError(
            f"cannot read {name!r} as a radionuclide",
            field="nuclide",
            hint="write it like Zr-89, 89Zr or zr89",
        )
    symbol = _element_symbols().get(match["element"])
    if symbol is None:
        raise NuclideError(
            f"{name!r}: {match['element']!r} is not a chemical element", field="nuclide"
        )
    meta = match["meta"] or ""
    candidate = f"{symbol}-{int(match['mass'])}{meta}"
    if not _icrp107_path(candidate).is_file():
        raise NuclideError(
            f"{name!r} ({candidate}) is not in the ICRP-107 dataset", field="nuclide"
        )
    return candidate


def element_name(nuclide_name: str) -> str:
    """English element name of a nuclide (``data/nuclides.csv``), e.g. for DICOM code meanings.

    Falls back to the element symbol for nuclides the table does not list.

    Examples
    --------
    >>> element_name("89Zr"), element_name("Tc-99m")
    ('Zirconium', 'Technetium')

    """
    symbol = canonical_nuclide_name(nuclide_name).split("-")[0]
    names = {row["name"].split("-")[0]: row["element_name"] for row in read_csv("nuclides.csv")}
    return names.get(symbol, symbol)


def known_nuclides() -> tuple[str, ...]:
    """Names of the nuclides immunopet documents and tests (``data/nuclides.csv``)."""
    return tuple(row["name"] for row in read_csv("nuclides.csv"))


def _icrp107_path(name: str) -> Path:
    """Where icrp107-database keeps a nuclide's record (found without importing the package)."""
    spec = find_spec("icrp107_database")
    if spec is None or spec.origin is None:
        raise NuclideError(
            "the icrp107-database package is not installed", hint="pip install icrp107-database"
        )
    return Path(spec.origin).parent / "icrp107" / f"{name}.json"


def _icrp107_record(name: str) -> dict[str, Any]:
    path = _icrp107_path(name)
    if not path.is_file():
        raise NuclideError(f"{name} has no emission record in icrp107-database", field="nuclide")
    # The package stores each record as a JSON string inside a JSON document.
    payload = json.loads(path.read_text(encoding="utf-8"))
    record: dict[str, Any] = json.loads(payload) if isinstance(payload, str) else payload
    return record


def _lines(record: dict[str, Any], kind: str) -> tuple[EmissionLine, ...]:
    rows = record["emissions"].get(kind, [])
    return tuple(
        sorted(
            (EmissionLine(float(e) * KEV_PER_MEV, float(y)) for e, y in rows),
            key=lambda line: line.energy_kev,
        )
    )


def _yield_and_mean(lines: tuple[EmissionLine, ...]) -> tuple[float, float | None]:
    total = sum(line.yield_per_decay for line in lines)
    if total <= 0.0:
        return 0.0, None
    mean = sum(line.energy_kev * line.yield_per_decay for line in lines) / total
    return total, mean


@cache
def nuclide(name: str) -> Nuclide:
    """Return the ICRP-107 data of a radionuclide.

    Parameters
    ----------
    name : str
        Any spelling :func:`canonical_nuclide_name` accepts.

    Returns
    -------
    Nuclide

    Examples
    --------
    >>> zr = nuclide("zr89")
    >>> round(zr.half_life_s / 3600, 2), round(zr.beta_plus_yield_per_decay, 4)
    (78.41, 0.2274)

    """
    canonical = canonical_nuclide_name(name)
    from radioactivedecay import DEFAULTDATA
    from radioactivedecay import Nuclide as RdNuclide

    rd_nuclide = RdNuclide(canonical)
    record = _icrp107_record(canonical)
    beta_plus_yield, beta_plus_mean = _yield_and_mean(_lines(record, "beta+"))
    beta_minus_yield, beta_minus_mean = _yield_and_mean(_lines(record, "beta-"))
    annihilation = sum(line.yield_per_decay for line in _lines(record, "annihilation"))
    modes = tuple(
        f"{mode} {fraction:g}"
        for mode, fraction in zip(
            rd_nuclide.decay_modes(), rd_nuclide.branching_fractions(), strict=True
        )
    )
    source = (
        f"ICRP Publication 107: half-life from radioactivedecay {version('radioactivedecay')} "
        f"(dataset {DEFAULTDATA.dataset_name}); emissions from icrp107-database "
        f"{version('icrp107-database')}"
    )
    return Nuclide(
        name=canonical,
        half_life_s=float(rd_nuclide.half_life("s")),
        decay_modes=modes,
        progeny=tuple(str(p) for p in rd_nuclide.progeny()),
        beta_plus_yield_per_decay=beta_plus_yield,
        beta_plus_mean_energy_kev=beta_plus_mean,
        beta_minus_yield_per_decay=beta_minus_yield,
        beta_minus_mean_energy_kev=beta_minus_mean,
        annihilation_photons_per_decay=annihilation,
        gamma_lines=_lines(record, "gamma"),
        xray_lines=_lines(record, "X"),
        source=source,
    )
