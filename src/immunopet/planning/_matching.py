"""Half-life matching: when to image a vector and which radionuclide to label it with.

The seed review (Mulgaonkar et al., Front Med 2023;10:1199146) states the principle: a vector
needs "a half-life-matched radionuclide" — long enough to image after the vector has cleared from
blood, short enough not to irradiate the patient for nothing. This module makes that a
computation on the vector pharmacokinetics of :mod:`immunopet.tracers._pharmacokinetics` (the
model the simulator and the dosimetry use) and the ICRP-107 data of :mod:`immunopet.physics`.

Imaging window
--------------
For a vector labelled with nuclide *n*, the figure of merit at scan time t is the tumour activity
concentration above the blood background, after physical decay (%ID/g)::

    F(t) = [C_tumour(t) − C_blood(t)] · decay_factor(T½(n), t)
         = (1 − B/T) · T(t) · D(t)

the tumour-to-blood contrast (1 − B/T, which grows with the ratio T/B) times the activity the
tumour still holds (T·D). The tumour-to-blood ratio alone keeps rising for residualising labels,
so "T/B near its best and enough activity remains" needs both factors. The best time maximises F
over the horizon (14 d by default); the window is the contiguous interval around it where
F ≥ tolerance × max F (90 % by default). The label chemistry (residualising for radiometal
chelates, not for radiohalogens) follows the nuclide.

Ranking
-------
For each candidate, at its own best time (or inside a window the user gives) a scan of
``scan_duration_s`` is simulated for a tumour of ``tumour_mass_g``::

    N_net  = m_tumour · ∫ (C_tumour − C_blood)⁺/100 · D dt      net tumour decays per MBq injected
    E      = effective dose per MBq injected (ICRP 103, :func:`immunopet.planning.plan_dose`:
             the same pharmacokinetics through the planning-grade dosimetry)
    score  = y · N_net / E                                       imageable quanta per mSv

y is the positron yield per decay (PET) or the yield of the SPECT photon lines in the camera
range (70–400 keV). The score is image statistics from the tumour's signal above background per
unit of radiation dose to the patient, which is what half-life matching trades: it falls when the
half-life is too short for the window (little activity left) and when it is too long or the
emissions too energetic (dose spent outside the scan, e.g. ⁸⁶Y's ~3 MeV of γ per decay). Nuclides are
ranked suitable-first (score ≥ 10 % of the best of their modality), then PET before SPECT (the
review: "In terms of imaging sensitivity, immuno-PET is preferred over immuno-SPECT"), then by
score. With a PET scanner the expected true counts are counts-per-decay (NEMA sensitivity scaled
by β⁺ yield, :mod:`immunopet.planning._scanner`) × tumour decays during the scan, before
attenuation and partial-volume losses. No cited generic SPECT collimator sensitivity was found,
so SPECT options give the photon yield and no counts.

Examples
--------
>>> best = rank_nuclides("igg", window=(4 * 86400.0, 7 * 86400.0))[0]
>>> best.nuclide, best.modality
('Zr-89', 'PET')

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.physics import canonical_nuclide_name, decay_factor, nuclide
from immunopet.planning._dose import plan_dose
from immunopet.planning._scanner import ScannerModel
from immunopet.planning._scanner import scanner as scanner_model
from immunopet.tracers._formats import VectorFormat
from immunopet.tracers._pharmacokinetics import (
    TwoTissueVectorModel,
    apply_physical_decay,
    decays_per_mbq,
    residualising_label,
    vector_pharmacokinetics,
)
from immunopet.units import BQ_PER_MBQ, S_PER_DAY, S_PER_MINUTE

__all__ = [
    "ImagingWindow",
    "NuclideOption",
    "TheranosticPair",
    "TracerPlan",
    "default_candidates",
    "imaging_window",
    "nuclide_modality",
    "plan_tracer",
    "rank_nuclides",
    "theranostic_partner",
]

Modality = Literal["PET", "SPECT", "none"]

#: Defaults of the planner (settings, stated in every plan's assumptions).
DEFAULT_HORIZON_S: Final = 14.0 * S_PER_DAY
DEFAULT_TOLERANCE: Final = 0.9
DEFAULT_SCAN_DURATION_S: Final = 10.0 * S_PER_MINUTE
DEFAULT_TUMOUR_MASS_G: Final = 10.0

_SETTINGS: Final = "nuclide_matching.toml"
_PAIRS: Final = "theranostic_pairs.toml"
#: Time grid for windows: logarithmic from 1 min to the horizon.
_FIRST_TIME_S: Final = 60.0
_WINDOW_POINTS: Final = 2000
_SCAN_POINTS: Final = 65
_SV_PER_MSV: Final = 1.0e-3
#: A best time within 0.1 % of the end of the search is reported as sitting on the limit.
_AT_LIMIT: Final = 0.999


@dataclass(frozen=True)
class ImagingWindow:
    """When to image one vector labelled with one nuclide.

    Parameters
    ----------
    vector_format : VectorFormat
        The vector.
    nuclide : str
        Canonical nuclide name.
    residualising : bool
        Label chemistry used in the model.
    antigen_density : float
        Relative tumour antigen density.
    best_time_s : float
        Time after injection with the largest figure of merit F, s.
    start_s, end_s : float
        The contiguous interval around the best time where F ≥ tolerance × max F, s.
    tolerance : float
        Fraction of the maximum defining the window.
    horizon_s : float
        Latest time considered, s.
    tumour_to_blood_at_best : float
        Tumour-to-blood concentration ratio at the best time.
    tumour_percent_id_per_g_at_best : float
        Biological (non-decayed) tumour concentration at the best time, %ID/g.
    figure_of_merit_at_best : float
        F at the best time, %ID/g after decay; ≤ 0 means the tumour never exceeds blood.

    """

    vector_format: VectorFormat
    nuclide: str
    residualising: bool
    antigen_density: float
    best_time_s: float
    start_s: float
    end_s: float
    tolerance: float
    horizon_s: float
    tumour_to_blood_at_best: float
    tumour_percent_id_per_g_at_best: float
    figure_of_merit_at_best: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (format as its value)."""
        data = asdict(self)
        data["vector_format"] = self.vector_format.value
        return data


@dataclass(frozen=True)
class TheranosticPair:
    """An imaging radionuclide and the therapeutic one it stands in for (seed review)."""

    imaging: str
    therapy: str
    same_element: bool
    source: str


@dataclass(frozen=True)
class NuclideOption:
    """One ranked radionuclide with the numbers behind its rank.

    Parameters
    ----------
    rank : int
        1 is best.
    nuclide : str
        Canonical name.
    modality : {"PET", "SPECT", "none"}
        PET if the nuclide emits positrons, SPECT if it has a photon line in the camera range,
        otherwise not imageable.
    half_life_s : float
        ICRP-107 half-life, s.
    residualising_label : bool
        Label chemistry implied by the element.
    window : ImagingWindow
        The window evaluated (the nuclide's own, or the one the user gave).
    fraction_remaining_at_start, fraction_remaining_at_best, fraction_remaining_at_end : float
        Physical decay factor at the window's start, best time and end.
    positron_yield_per_decay : float
        β⁺ per decay (ICRP-107).
    photon_yield_per_decay : float
        Photons per decay in the SPECT camera range (0 for PET-only nuclides).
    main_photon_energy_kev : float or None
        Energy of the most abundant photon line in the SPECT range.
    tumour_decays_per_mbq : float
        Decays in the tumour during the scan per MBq injected.
    net_tumour_decays_per_mbq : float
        The same for the tumour concentration above blood.
    expected_counts_per_mbq : float or None
        PET true counts from the tumour during the scan per MBq injected (needs a scanner).
    expected_counts : float or None
        The same for the injected activity given.
    decays_per_mbq : float
        Whole-body decays per MBq injected (time-integrated activity).
    effective_dose_msv_per_mbq : float
        ICRP 103 effective dose per MBq injected, from the same pharmacokinetics through
        :func:`immunopet.planning.plan_dose` (planning-grade dosimetry).
    score : float
        yield · net tumour decays per MBq / effective dose per MBq: imageable quanta from the
        tumour per mSv (module docstring).
    suitable : bool
        Score ≥ the minimum fraction of the best score of its modality, and at least the
        minimum fraction of the activity left at the window's start.
    theranostic_partner : str or None
        Therapy (or imaging) partner from ``data/theranostic_pairs.toml``.
    notes : tuple of str
        Caveats specific to this option.

    """

    rank: int
    nuclide: str
    modality: Modality
    half_life_s: float
    residualising_label: bool
    window: ImagingWindow
    fraction_remaining_at_start: float
    fraction_remaining_at_best: float
    fraction_remaining_at_end: float
    positron_yield_per_decay: float
    photon_yield_per_decay: float
    main_photon_energy_kev: float | None
    tumour_decays_per_mbq: float
    net_tumour_decays_per_mbq: float
    expected_counts_per_mbq: float | None
    expected_counts: float | None
    decays_per_mbq: float
    effective_dose_msv_per_mbq: float
    score: float
    suitable: bool
    theranostic_partner: str | None
    notes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        data = asdict(self)
        data["window"] = self.window.as_dict()
        data["notes"] = list(self.notes)
        return data


@dataclass(frozen=True)
class TracerPlan:
    """The answer of ``immunopet plan tracer``: window, ranking, assumptions and sources."""

    vector_format: VectorFormat
    target: str | None
    antigen_density: float
    window: ImagingWindow
    ranking: tuple[NuclideOption, ...]
    scanner: str | None
    injected_activity_bq: float | None
    tumour_mass_g: float
    scan_duration_s: float
    assumptions: tuple[str, ...]
    sources: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "vector_format": self.vector_format.value,
            "target": self.target,
            "antigen_density": self.antigen_density,
            "window": self.window.as_dict(),
            "ranking": [option.as_dict() for option in self.ranking],
            "scanner": self.scanner,
            "injected_activity_bq": self.injected_activity_bq,
            "tumour_mass_g": self.tumour_mass_g,
            "scan_duration_s": self.scan_duration_s,
            "assumptions": list(self.assumptions),
            "sources": list(self.sources),
        }


def _settings() -> dict[str, Any]:
    return read_toml(_SETTINGS)


def default_candidates() -> tuple[str, ...]:
    """Nuclides ranked when none are named (``data/nuclide_matching.toml``)."""
    return tuple(str(n) for n in _settings()["candidates"]["names"])


def _spect_range() -> tuple[float, float]:
    spect = _settings()["spect"]
    return float(spect["min_photon_energy_kev"]), float(spect["max_photon_energy_kev"])


def _gamma_notes(nuclide_name: str) -> list[str]:
    """Caveats of a PET nuclide's γ lines relative to the 511 keV energy window.

    Lines inside the window (¹²⁴I 603 keV, ⁸⁶Y 628/443 keV) give spurious coincidences that are
    counted as trues; lines above it (⁸⁹Zr 909 keV, emitted by ⁸⁹ᵐY 15.7 s after the positron
    decay) add singles, randoms and scatter. Neither is in the expected counts.
    """
    settings = _settings()
    window = settings["pet_energy_window"]
    low, high = float(window["lower_kev"]), float(window["upper_kev"])
    threshold = float(settings["ranking"]["gamma_note_yield"])
    lines = nuclide(nuclide_name).main_gamma_lines()
    inside = sum(g.yield_per_decay for g in lines if low <= g.energy_kev <= high)
    above = sum(g.yield_per_decay for g in lines if g.energy_kev > high)
    notes = []
    if inside >= threshold:
        notes.append(
            f"gamma lines inside the {low:g}-{high:g} keV energy window: {inside:.2f} /decay "
            "(spurious coincidences counted as trues; not in the counts)"
        )
    if above >= threshold:
        notes.append(
            f"gamma lines above the energy window: {above:.2f} /decay (singles, randoms and "
            "scatter; not in the counts)"
        )
    return notes


@cache
def nuclide_modality(nuclide_name: str) -> tuple[Modality, float, float | None]:
    """How a nuclide can be imaged: (modality, photon yield in the SPECT range, main energy keV).

    Examples
    --------
    >>> nuclide_modality("Zr-89")[0], nuclide_modality("In-111")[0], nuclide_modality("Y-90")[0]
    ('PET', 'SPECT', 'none')

    """
    data = nuclide(nuclide_name)
    low, high = _spect_range()
    lines = [line for line in data.main_gamma_lines() if low <= line.energy_kev <= high]
    photons = sum(line.yield_per_decay for line in lines)
    main = max(lines, key=lambda line: line.yield_per_decay).energy_kev if lines else None
    if data.is_positron_emitter:
        return "PET", photons, main
    if lines:
        return "SPECT", photons, main
    return "none", 0.0, None


@cache
def _pairs() -> tuple[TheranosticPair, ...]:
    return tuple(
        TheranosticPair(
            imaging=canonical_nuclide_name(str(p["imaging"])),
            therapy=canonical_nuclide_name(str(p["therapy"])),
            same_element=bool(p["same_element"]),
            source=str(p["source"]),
        )
        for p in read_toml(_PAIRS)["pairs"]
    )


def theranostic_partner(nuclide_name: str) -> TheranosticPair | None:
    """The theranostic pair a nuclide belongs to, or None.

    Examples
    --------
    >>> theranostic_partner("Cu-64").therapy, theranostic_partner("Lu-177").imaging
    ('Cu-67', 'Ga-68')
    >>> theranostic_partner("Zr-89") is None
    True

    """
    name = canonical_nuclide_name(nuclide_name)
    for pair in _pairs():
        if name in (pair.imaging, pair.therapy):
            return pair
    return None


def _partner_name(nuclide_name: str) -> str | None:
    pair = theranostic_partner(nuclide_name)
    if pair is None:
        return None
    return pair.therapy if pair.imaging == nuclide_name else pair.imaging


def _check_positive(value: float, name: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0.0:
        raise InputError(f"{name} must be a positive number, got {value!r}", field=name)
    return number


def _model(
    vector_format: VectorFormat | str,
    nuclide_name: str,
    antigen_density: float,
    residualising: bool | None,
) -> TwoTissueVectorModel:
    chemistry = residualising_label(nuclide_name) if residualising is None else residualising
    return TwoTissueVectorModel(
        vector_pharmacokinetics(vector_format),
        antigen_density=antigen_density,
        residualising=chemistry,
    )


def _figure_of_merit(
    model: TwoTissueVectorModel, nuclide_name: str, times_s: NDArray[np.float64]
) -> NDArray[np.float64]:
    net = model.tissue_percent_id_per_g("tumour", times_s) - model.blood_percent_id_per_g(times_s)
    return apply_physical_decay(net, times_s, nuclide_name)


def _window_from_model(
    model: TwoTissueVectorModel,
    nuclide_name: str,
    *,
    horizon_s: float,
    tolerance: float,
    within_s: tuple[float, float] | None,
) -> ImagingWindow:
    times = np.geomspace(_FIRST_TIME_S, horizon_s, _WINDOW_POINTS)
    if within_s is not None:
        start, end = within_s
        inside = np.geomspace(max(start, _FIRST_TIME_S), end, _WINDOW_POINTS)
        times = inside
    merit = _figure_of_merit(model, nuclide_name, times)
    best = int(np.argmax(merit))
    if within_s is not None:
        start_s, end_s = within_s
    else:
        threshold = tolerance * merit[best]
        low = best
        while low > 0 and merit[low - 1] >= threshold:
            low -= 1
        high = best
        while high < merit.size - 1 and merit[high + 1] >= threshold:
            high += 1
        start_s, end_s = float(times[low]), float(times[high])
    best_time = times[best : best + 1]
    tumour = model.tissue_percent_id_per_g("tumour", best_time)
    blood = model.blood_percent_id_per_g(best_time)
    return ImagingWindow(
        vector_format=model.parameters.vector_format,
        nuclide=canonical_nuclide_name(nuclide_name),
        residualising=model.is_residualising,
        antigen_density=float(model.antigen_density),
        best_time_s=float(times[best]),
        start_s=start_s,
        end_s=end_s,
        tolerance=tolerance,
        horizon_s=horizon_s,
        tumour_to_blood_at_best=float(tumour[0] / blood[0]),
        tumour_percent_id_per_g_at_best=float(tumour[0]),
        figure_of_merit_at_best=float(merit[best]),
    )


def _check_window(window: tuple[float, float] | None) -> tuple[float, float] | None:
    if window is None:
        return None
    start, end = (float(v) for v in window)
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0.0 or end <= start:
        raise InputError(
            f"window must be (start_s, end_s) with 0 <= start < end, got {window!r}",
            field="window",
            hint="e.g. (4 * 86400, 7 * 86400) for days 4-7",
        )
    return start, end


def imaging_window(
    vector_format: VectorFormat | str,
    nuclide_name: str | None = None,
    *,
    antigen_density: float = 1.0,
    residualising: bool | None = None,
    horizon_s: float = DEFAULT_HORIZON_S,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ImagingWindow:
    """When to image a vector: the best time and the window around it.

    Parameters
    ----------
    vector_format : VectorFormat or str
        The vector, e.g. ``"igg"``.
    nuclide_name : str, optional
        The label. None takes the best-ranked nuclide of :func:`rank_nuclides` (the vector's
        half-life-matched label) and returns its window.
    antigen_density : float, optional
        Tumour antigen density relative to the reference tumour.
    residualising : bool, optional
        Override the label chemistry implied by the nuclide.
    horizon_s : float, optional
        Latest scan time considered, s (14 d).
    tolerance : float, optional
        Window = where the figure of merit is at least this fraction of its maximum (0.9).

    Returns
    -------
    ImagingWindow

    Examples
    --------
    >>> w = imaging_window("igg", "Zr-89")
    >>> 4 <= w.best_time_s / 86400 <= 7
    True

    """
    horizon = _check_positive(horizon_s, "horizon_s")
    if not 0.0 < tolerance < 1.0:
        raise InputError(f"tolerance must be in (0, 1), got {tolerance!r}", field="tolerance")
    if nuclide_name is None:
        return rank_nuclides(
            vector_format,
            antigen_density=antigen_density,
            horizon_s=horizon,
            tolerance=tolerance,
        )[0].window
    model = _model(vector_format, nuclide_name, antigen_density, residualising)
    return _window_from_model(
        model, nuclide_name, horizon_s=horizon, tolerance=tolerance, within_s=None
    )


def _scan_decays_per_mbq(
    model: TwoTissueVectorModel,
    nuclide_name: str,
    start_s: float,
    scan_duration_s: float,
    tumour_mass_g: float,
) -> tuple[float, float]:
    """(tumour, net tumour) decays during the scan per MBq injected."""
    times = np.linspace(start_s, start_s + scan_duration_s, _SCAN_POINTS)
    tumour = model.tissue_percent_id_per_g("tumour", times)
    net = np.clip(tumour - model.blood_percent_id_per_g(times), 0.0, None)
    per_mbq = tumour_mass_g / 100.0 * BQ_PER_MBQ
    gross = np.trapezoid(apply_physical_decay(tumour, times, nuclide_name), times) * per_mbq
    above = np.trapezoid(apply_physical_decay(net, times, nuclide_name), times) * per_mbq
    return float(gross), float(above)


@dataclass(frozen=True)
class _Unranked:
    option: dict[str, Any]
    modality: Modality
    score: float


def rank_nuclides(
    vector_format: VectorFormat | str,
    *,
    candidates: Sequence[str] | None = None,
    antigen_density: float = 1.0,
    window: tuple[float, float] | None = None,
    scanner: str | ScannerModel | None = None,
    injected_activity_bq: float | None = None,
    tumour_mass_g: float = DEFAULT_TUMOUR_MASS_G,
    scan_duration_s: float = DEFAULT_SCAN_DURATION_S,
    horizon_s: float = DEFAULT_HORIZON_S,
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[NuclideOption, ...]:
    """Rank radionuclides for a vector, with the numbers behind the rank.

    Parameters
    ----------
    vector_format : VectorFormat or str
        The vector.
    candidates : sequence of str, optional
        Nuclide names (any spelling); default :func:`default_candidates`.
    antigen_density : float, optional
        Tumour antigen density relative to the reference tumour.
    window : tuple of float, optional
        (start_s, end_s) to image in, e.g. days 4-7; the best time of each nuclide is then
        sought inside it. Default: each nuclide's own window (:func:`imaging_window`).
    scanner : str or ScannerModel, optional
        PET scanner (``data/scanners.toml`` key) for expected counts.
    injected_activity_bq : float, optional
        Injected activity for absolute expected counts.
    tumour_mass_g : float, optional
        Tumour mass, g (10 g).
    scan_duration_s : float, optional
        Duration of the scan, s (600 s).
    horizon_s, tolerance : float, optional
        As in :func:`imaging_window`.

    Returns
    -------
    tuple of NuclideOption
        Best first (scoring and ordering rules in the module docstring).

    """
    fmt = vector_format if isinstance(vector_format, VectorFormat) else None
    names = tuple(default_candidates() if candidates is None else candidates)
    if not names:
        raise InputError("no candidate nuclides given", field="candidates")
    canonical = tuple(dict.fromkeys(canonical_nuclide_name(n) for n in names))
    given = _check_window(window)
    horizon = _check_positive(horizon_s, "horizon_s")
    mass_g = _check_positive(tumour_mass_g, "tumour_mass_g")
    duration_s = _check_positive(scan_duration_s, "scan_duration_s")
    activity_bq = (
        None
        if injected_activity_bq is None
        else _check_positive(injected_activity_bq, "injected_activity_bq")
    )
    camera = scanner_model(scanner) if isinstance(scanner, str) else scanner
    if not 0.0 < tolerance < 1.0:
        raise InputError(f"tolerance must be in (0, 1), got {tolerance!r}", field="tolerance")

    unranked: list[_Unranked] = []
    for name in canonical:
        data = nuclide(name)
        modality, photons, main_kev = nuclide_modality(name)
        model = _model(fmt or vector_format, name, antigen_density, None)
        found = _window_from_model(
            model, name, horizon_s=horizon, tolerance=tolerance, within_s=given
        )
        gross, net = _scan_decays_per_mbq(model, name, found.best_time_s, duration_s, mass_g)
        body = decays_per_mbq(model, name)
        dose_msv_per_mbq = (
            plan_dose(
                model.parameters.vector_format,
                name,
                [("1 MBq", BQ_PER_MBQ)],
                antigen_density=antigen_density,
            ).budget.per_bq.effective_dose_sv
            * BQ_PER_MBQ
            / _SV_PER_MSV
        )
        quanta = data.beta_plus_yield_per_decay if modality == "PET" else photons
        score = quanta * net / dose_msv_per_mbq if modality != "none" else 0.0
        notes: list[str] = []
        counts_per_mbq: float | None = None
        if modality == "PET" and camera is not None:
            counts_per_mbq = camera.counts_per_decay(name) * gross
        elif modality == "SPECT":
            notes.append(
                "no cited generic SPECT collimator sensitivity: photon yield given, no counts"
            )
        elif modality == "none":
            notes.append("emits neither positrons nor photons in the SPECT range: not imageable")
        if found.figure_of_merit_at_best <= 0.0:
            notes.append("the tumour never exceeds the blood concentration in this window")
        search_end_s = horizon if given is None else given[1]
        if found.best_time_s >= search_end_s * _AT_LIMIT:
            notes.append(
                "best time at the end of the search: the optimum may lie later (not a real window)"
            )
        if not model.is_residualising:
            notes.append("non-residualising label: internalised label washes out of the tumour")
        if modality == "PET":
            notes.extend(_gamma_notes(name))
        unranked.append(
            _Unranked(
                option={
                    "nuclide": name,
                    "modality": modality,
                    "half_life_s": data.half_life_s,
                    "residualising_label": model.is_residualising,
                    "window": found,
                    "fraction_remaining_at_start": decay_factor(data.half_life_s, found.start_s),
                    "fraction_remaining_at_best": decay_factor(data.half_life_s, found.best_time_s),
                    "fraction_remaining_at_end": decay_factor(data.half_life_s, found.end_s),
                    "positron_yield_per_decay": data.beta_plus_yield_per_decay,
                    "photon_yield_per_decay": photons,
                    "main_photon_energy_kev": main_kev,
                    "tumour_decays_per_mbq": gross,
                    "net_tumour_decays_per_mbq": net,
                    "expected_counts_per_mbq": counts_per_mbq,
                    "expected_counts": (
                        None
                        if counts_per_mbq is None or activity_bq is None
                        else counts_per_mbq * activity_bq / BQ_PER_MBQ
                    ),
                    "decays_per_mbq": body,
                    "effective_dose_msv_per_mbq": dose_msv_per_mbq,
                    "theranostic_partner": _partner_name(name),
                    "notes": tuple(notes),
                },
                modality=modality,
                score=score,
            )
        )
    return _order(unranked)


def _order(unranked: list[_Unranked]) -> tuple[NuclideOption, ...]:
    ranking = _settings()["ranking"]
    order = [str(m) for m in ranking["modality_order"]]
    minimum = float(ranking["min_relative_score"])
    best_of = {
        modality: max((u.score for u in unranked if u.modality == modality), default=0.0)
        for modality in order
    }

    left = float(ranking["min_fraction_remaining_at_start"])

    def suitable(u: _Unranked) -> bool:
        return (
            u.modality in best_of
            and u.score > 0.0
            and u.score >= minimum * best_of[u.modality]
            and u.option["fraction_remaining_at_start"] >= left
        )

    def key(u: _Unranked) -> tuple[bool, int, float]:
        place = order.index(u.modality) if u.modality in order else len(order)
        return (not suitable(u), place, -u.score)

    return tuple(
        NuclideOption(rank=i, score=u.score, suitable=suitable(u), **u.option)
        for i, u in enumerate(sorted(unranked, key=key), start=1)
    )


def plan_tracer(
    vector_format: VectorFormat | str,
    *,
    target: str | None = None,
    antigen_density: float = 1.0,
    candidates: Sequence[str] | None = None,
    window: tuple[float, float] | None = None,
    scanner: str | None = None,
    injected_activity_bq: float | None = None,
    tumour_mass_g: float = DEFAULT_TUMOUR_MASS_G,
    scan_duration_s: float = DEFAULT_SCAN_DURATION_S,
    horizon_s: float = DEFAULT_HORIZON_S,
    tolerance: float = DEFAULT_TOLERANCE,
) -> TracerPlan:
    """Plan a tracer: the half-life-matched window and the nuclide ranking, with sources.

    Parameters are those of :func:`rank_nuclides`; ``target`` is recorded as given.

    Examples
    --------
    >>> plan = plan_tracer("peptide")
    >>> plan.ranking[0].nuclide in ("F-18", "Ga-68")
    True

    """
    ranking = rank_nuclides(
        vector_format,
        candidates=candidates,
        antigen_density=antigen_density,
        window=window,
        scanner=scanner,
        injected_activity_bq=injected_activity_bq,
        tumour_mass_g=tumour_mass_g,
        scan_duration_s=scan_duration_s,
        horizon_s=horizon_s,
        tolerance=tolerance,
    )
    pk = vector_pharmacokinetics(vector_format)
    settings = _settings()
    assumptions = (
        "activity per injected activity from the two-tissue vector model "
        "(immunopet.tracers._pharmacokinetics) for the ICRP 89 reference adult male",
        f"tumour antigen density {antigen_density:g} x the reference tumour of data/vector_pk.toml; "
        "tracer dose, no target saturation",
        "window: tumour-minus-blood concentration after physical decay within "
        f"{tolerance:.0%} of its maximum over {horizon_s / S_PER_DAY:g} d"
        if window is None
        else f"window given: {window[0] / S_PER_DAY:g}-{window[1] / S_PER_DAY:g} d",
        f"scan of {scan_duration_s / S_PER_MINUTE:g} min at the best time, tumour of "
        f"{tumour_mass_g:g} g; counts before attenuation and partial-volume losses",
        "label chemistry by element: radiometal chelates residualising, radiohalogens not",
        "score = 1e6 x (positron or SPECT photon yield) x net tumour decays / whole-body decays; "
        f"suitable = score >= {float(settings['ranking']['min_relative_score']):g} x the best of "
        "its modality; PET ranked before SPECT",
        "decays_per_mbq is the whole-body time-integrated activity, not an effective dose",
    )
    sources = (
        *pk.sources,
        "ICRP Publication 107 (half-lives, yields, photon lines) via immunopet.physics",
        str(settings["ranking"]["modality_source"]),
        str(settings["spect"]["source"]),
        *(p.source for p in _pairs()),
    )
    if scanner is not None:
        sources = (*sources, scanner_model(scanner).source)
    return TracerPlan(
        vector_format=pk.vector_format,
        target=target,
        antigen_density=antigen_density,
        window=ranking[0].window,
        ranking=ranking,
        scanner=scanner,
        injected_activity_bq=injected_activity_bq,
        tumour_mass_g=tumour_mass_g,
        scan_duration_s=scan_duration_s,
        assumptions=assumptions,
        sources=sources,
    )
