"""Scanner models for planning: how many counts an activity gives and how sharp the image is.

Values come from NEMA NU 2 measurements in ``data/scanners.toml`` (each entry cites
its paper). PET sensitivity is measured with F-18; for another positron emitter
the count rate per becquerel scales with its β⁺ yield per decay (ICRP-107):

    S_X = S_F18 · y_β⁺(X) / y_β⁺(F-18)

γ lines are not counted here: those inside the 511 keV energy window (¹²⁴I 603 keV, ⁸⁶Y
628/443 keV) add spurious coincidences counted as trues, and those above it (⁸⁹Zr's 909 keV,
emitted by ⁸⁹ᵐY) add singles and randoms; the planner notes both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.physics import nuclide

__all__ = ["ScannerModel", "known_scanners", "scanner"]

_REFERENCE_NUCLIDE = "F-18"
_BQ_PER_KBQ = 1.0e3


@dataclass(frozen=True)
class ScannerModel:
    """A scanner as the planner sees it.

    Parameters
    ----------
    key : str
        Identifier in ``data/scanners.toml`` (e.g. ``"biograph_mct"``).
    name : str
        Human-readable name with the NEMA edition.
    modality : {"PET"}
        Imaging modality.
    sensitivity_cps_per_kbq_f18 : float
        NEMA system sensitivity with F-18, counts/s per kBq.
    resolution_fwhm_mm : float
        Transverse spatial resolution near the centre, FWHM, mm.
    axial_fov_mm : float
        Axial field of view, mm.
    source : str
        The paper the numbers come from.

    """

    key: str
    name: str
    modality: str
    sensitivity_cps_per_kbq_f18: float
    resolution_fwhm_mm: float
    axial_fov_mm: float
    source: str

    def counts_per_decay(self, nuclide_name: str) -> float:
        """True coincidences detected per decay of ``nuclide_name`` in the field of view.

        Examples
        --------
        >>> round(scanner("biograph_mct").counts_per_decay("Zr-89"), 6)
        0.002257

        """
        positrons = nuclide(nuclide_name).beta_plus_yield_per_decay
        reference = nuclide(_REFERENCE_NUCLIDE).beta_plus_yield_per_decay
        if positrons <= 0.0:
            raise InputError(
                f"{nuclide_name} emits no positrons: it cannot be imaged by PET",
                field="nuclide",
                hint="choose a positron emitter or a SPECT scanner",
            )
        return self.sensitivity_cps_per_kbq_f18 / _BQ_PER_KBQ * positrons / reference


def known_scanners() -> tuple[str, ...]:
    """Keys of the scanners in ``data/scanners.toml``."""
    return tuple(read_toml("scanners.toml")["scanners"])


@cache
def scanner(key: str) -> ScannerModel:
    """The scanner model ``key`` from ``data/scanners.toml``."""
    table = read_toml("scanners.toml")["scanners"]
    if key not in table:
        raise InputError(
            f"unknown scanner {key!r}",
            field="scanner",
            hint=f"choose one of {', '.join(table)}",
        )
    entry = table[key]
    return ScannerModel(
        key=key,
        name=str(entry["name"]),
        modality=str(entry["modality"]),
        sensitivity_cps_per_kbq_f18=float(entry["sensitivity_cps_per_kbq_f18"]),
        resolution_fwhm_mm=float(entry["resolution_fwhm_mm"]),
        axial_fov_mm=float(entry["axial_fov_mm"]),
        source=str(entry["source"]),
    )
