r"""Will the cells be visible? Contrast-to-noise and detection limit of labelled CAR T cells in PET.

The model answers, for one site (a tumour, a lymph node, the spleen) on one day
after infusion: how many counts the labelled cells there give, how noisy the
measurement is, whether the Rose criterion is met, the smallest number of
cells that would meet it, and the last whole day on which the cells stay
visible. PET only: SPECT labels (¹¹¹In-oxine, ⁹⁹ᵐTc-HMPAO) are listed in
``data/cell_labelling.toml`` but refused here, because immunopet has no SPECT
camera model yet.

Model
-----
Times: d = days after infusion; t = scan duration, s. Cells:

* infused cells ``N_inf = cells_per_kg · weight_kg``;
* cells of the infused lineage in the site ``N(d) = h · N_inf · L(d)``, with h
  the homing fraction and L(d) the relative level of the typical CAR T-cell
  curve of Stein et al. 2019 (1 at infusion, ``foldx`` at ``Tmax``;
  :class:`~immunopet.kinetics.Stein2019CellularKinetics`), or L = 1 when no
  kinetic model is given. The site is assumed to follow the blood kinetics.

Activity per cell at the scan start, ``a(d)``:

* **direct label** (ex vivo, e.g. ⁸⁹Zr-oxine): the cells bind
  ``b = offered_bq_per_cell · labelling_efficiency`` each (the efficiency is
  applied here, once; pass efficiency 1 with a measured cell-bound activity).
  The label is then lost by physical decay D(d) = 2^(−d/T½) and first-order
  efflux R(d) = exp(−k_efflux · d). Dividing cells share their label: the total
  label of the population is conserved during expansion, so the label per cell
  is diluted by the expansion so far, ``a(d) = b · D(d) · R(d) / L(min(d, Tmax))``.
  During contraction cells die and take their label out of the site (it
  becomes background elsewhere), so the site's label is
  ``N(d) · a(d) = h · N_inf · b · D · R · L(d)/L(Tmax)``. Dead-cell label is never
  counted as signal.
* **reporter gene** (e.g. hNET/[¹⁸F]MFBG): the probe is injected before each
  scan and taken up by living reporter cells, ``a(d) = u`` (probe Bq per
  reporter cell at the scan start, a measured input). The signal follows the
  number of living cells; there is no dilution and no efflux.

Counts in a scan of duration t on a scanner with ``c`` true coincidences per
decay (NEMA F-18 sensitivity scaled by the positron yield,
:meth:`~immunopet.planning.ScannerModel.counts_per_decay`), with the
frame-average decay F = (1 − e^(−λt))/(λt) of the nuclide over the scan:

* signal ``S = N(d) · a(d) · c · t · F · RC``;
* background ``B = C_bg · V · c · t · F`` (C_bg in Bq/mL, V the site volume).

The volume of interest is the site, a sphere of volume V. ``RC`` is the fraction
of the site's counts that the scanner puts back inside that sphere: for a
uniform sphere of radius r blurred by an isotropic Gaussian of standard
deviation σ = FWHM/(2√(2 ln 2)), the fraction of counts staying inside equals
the mean recovery coefficient of the sphere (the ``RCmean`` of EARL
accreditation). Two points of a sphere at distance s overlap in
V(1 − 3s/(4r) + s³/(16r³)) (s < 2r), and the displacement |x − y| of a Gaussian
blur is Maxwell-distributed, which gives in closed form, with A = 2r/σ::

    RC = √(2/π) · [I₂(A) − (3σ/4r) I₃(A) + (σ³/16r³) I₅(A)]
    I₂ = √(π/2) erf(A/√2) − A e^(−A²/2)
    I₃ = 2 − (A² + 2) e^(−A²/2)
    I₅ = 8 − (A⁴ + 4A² + 8) e^(−A²/2)

(derived here and checked against Monte Carlo in the tests; for r ≪ σ the
series RC ≈ (2/3)(2π)^(−1/2) ρ³ (1 − 3ρ²/5 + 9ρ⁴/35), ρ = r/σ, from the
moments of the distance between two points of a sphere, avoids cancellation). Recovery
coefficients of spheres go back to Hoffman, Huang & Phelps, J Comput Assist
Tomogr 1979;3:299 and Kessler, Ellis & Eden, J Comput Assist Tomogr 1984;8:514
(both RECALLED). The background is uniform, so blurring moves as much of it in
as out and it needs no recovery factor.

Noise and criterion: the counts are Poisson, σ = η · √(S + B), with η an
explicit noise-amplification factor of the reconstruction (1 = ideal counting
statistics). ``CNR = S/σ``; the cells are detectable when CNR ≥ k (Rose
criterion, k = 5 by default). Both S and B are proportional to t·F, so CNR ∝ √(t·F),
which is √t for scans much shorter than the half-life.
Solving S/(η√(S+B)) = k gives the minimum signal in closed form,

    S_min = [k²η² + √(k⁴η⁴ + 4k²η²B)] / 2,

and the minimum detectable number of cells in the site
``N_min = S_min / (a(d) · c · t · F · RC)``: proportional to 1/a, so doubling the
activity per cell halves it whatever the noise.

Background default: for a direct label without a measured background, all the
label bound to the infused cells, decayed to the scan, spread uniformly over
the body at 1 g/mL (SUV 1): ``C_bg = N_inf · b · D(d) / (weight · 1000 mL/kg)``;
efflux and cell death move label within the body, not out of it (excretion is
ignored). A background given for the scan day is carried to other days by the
label's decay (direct labels) or kept (reporter probes, injected afresh). A
reporter needs a measured background (probe pharmacokinetics differ too much).

Not modelled (all make the prediction optimistic): attenuation and scatter
(NEMA sensitivity is measured in air), randoms and prompt-γ background, the
scanner's intrinsic (¹⁷⁶Lu) background, motion, and tissue label outside the
site spilling in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from immunopet.data import read_toml
from immunopet.errors import InputError, TimingError
from immunopet.kinetics import Stein2019CellularKinetics
from immunopet.physics import decay_factor, frame_average_decay_factor, nuclide
from immunopet.planning._scanner import ScannerModel
from immunopet.units import FWHM_PER_SIGMA, G_PER_KG, ML_PER_MM3, S_PER_DAY

__all__ = [
    "CellDetectability",
    "CellDetectabilityInputs",
    "CellLabelEntry",
    "DetectabilityConventions",
    "DirectLabel",
    "ReporterLabel",
    "cell_label",
    "detectability_conventions",
    "known_cell_labels",
    "predict_cell_detectability",
    "resolve_cell_label",
    "sphere_recovery_coefficient",
]

_TABLE = "cell_labelling.toml"
_ML_PER_FL = 1.0e-12
#: Below this radius/σ ratio the closed form loses digits to cancellation; use its series.
_SMALL_SPHERE_RATIO = 0.05
_RECOVERY_SOURCE = (
    "Recovery coefficient: mean RC of a uniform sphere under an isotropic Gaussian PSF, closed "
    "form derived in immunopet.planning._cells (sphere self-overlap with a Maxwell-distributed "
    "blur), checked against Monte Carlo; concept after Hoffman, Huang & Phelps, J Comput Assist "
    "Tomogr 1979;3:299 and Kessler, Ellis & Eden, J Comput Assist Tomogr 1984;8:514 (RECALLED)"
)


def sphere_recovery_coefficient(volume_ml: float, fwhm_mm: float) -> float:
    """Fraction of a uniform sphere's counts reconstructed inside it (mean recovery coefficient).

    Parameters
    ----------
    volume_ml : float
        Sphere volume, mL (> 0).
    fwhm_mm : float
        Isotropic Gaussian resolution, FWHM, mm (> 0).

    Returns
    -------
    float
        RC in (0, 1): the mean of the blurred sphere over the sphere, relative to
        the true concentration. Formula in the module docstring.

    Examples
    --------
    >>> round(sphere_recovery_coefficient(4.0 / 3.0 * 3.141592653589793 * 0.5**3, 7.0), 3)
    0.372

    A 10 mm sphere at 7 mm FWHM: inside the EARL1 band for RCmean (0.27–0.43).

    """
    for name, value in (("volume_ml", volume_ml), ("fwhm_mm", fwhm_mm)):
        if not math.isfinite(value) or value <= 0.0:
            raise InputError(f"{name} must be a positive number, got {value!r}", field=name)
    radius_mm = math.cbrt(3.0 * (volume_ml / ML_PER_MM3) / (4.0 * math.pi))
    sigma_mm = fwhm_mm / FWHM_PER_SIGMA
    ratio = radius_mm / sigma_mm
    if ratio < _SMALL_SPHERE_RATIO:
        cube = ratio * ratio * ratio
        square = ratio * ratio
        series = 1.0 - 0.6 * square + 9.0 / 35.0 * square * square
        return (2.0 / 3.0) / math.sqrt(2.0 * math.pi) * cube * series
    a = 2.0 * ratio
    tail = math.exp(-0.5 * a * a)
    i2 = math.sqrt(math.pi / 2.0) * math.erf(a / math.sqrt(2.0)) - a * tail
    i3 = 2.0 - (a * a + 2.0) * tail
    a2 = a * a
    i5 = 8.0 - (a2 * a2 + 4.0 * a2 + 8.0) * tail
    inverse = 1.0 / ratio
    value = math.sqrt(2.0 / math.pi) * (
        i2 - 0.75 * inverse * i3 + inverse * inverse * inverse / 16.0 * i5
    )
    return min(max(value, 0.0), 1.0)


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class DirectLabel:
    """A radiolabel bound to the cells ex vivo before infusion.

    Parameters
    ----------
    name : str
        Label name for reports (e.g. ``"zr89-oxine"``).
    nuclide : str
        Radionuclide (any spelling :func:`~immunopet.physics.nuclide` reads).
    offered_bq_per_cell : float
        Activity put in the labelling reaction per cell, Bq.
    labelling_efficiency : float
        Fraction of the offered activity bound to the cells, (0, 1].
    efflux_per_day : float
        First-order loss of label from living cells, 1/day (≥ 0).

    """

    name: str
    nuclide: str
    offered_bq_per_cell: float
    labelling_efficiency: float
    efflux_per_day: float

    def __post_init__(self) -> None:
        _require_positive("offered_bq_per_cell", self.offered_bq_per_cell, "--bq-per-cell")
        if not (math.isfinite(self.labelling_efficiency) and 0.0 < self.labelling_efficiency <= 1):
            raise InputError(
                f"labelling efficiency must be in (0, 1], got {self.labelling_efficiency!r}",
                field="--efficiency",
            )
        if not (math.isfinite(self.efflux_per_day) and self.efflux_per_day >= 0.0):
            raise InputError(
                f"efflux rate must be >= 0 per day, got {self.efflux_per_day!r}",
                field="--efflux-per-day",
            )

    @property
    def bound_bq_per_cell(self) -> float:
        """Activity bound per cell at infusion, Bq (offered × efficiency)."""
        return self.offered_bq_per_cell * self.labelling_efficiency


@dataclass(frozen=True)
class ReporterLabel:
    """A reporter gene imaged with a probe injected before each scan.

    Parameters
    ----------
    name : str
        Label name for reports (e.g. ``"hnet-mfbg"``).
    nuclide : str
        Radionuclide of the probe.
    uptake_bq_per_cell : float
        Probe activity per living reporter cell at the scan start, Bq.

    """

    name: str
    nuclide: str
    uptake_bq_per_cell: float

    def __post_init__(self) -> None:
        _require_positive("uptake_bq_per_cell", self.uptake_bq_per_cell, "--bq-per-cell")


@dataclass(frozen=True)
class CellLabelEntry:
    """One label of ``data/cell_labelling.toml``: what the sources say (absent facts are None)."""

    key: str
    kind: Literal["direct", "reporter"]
    name: str
    nuclide: str
    modality: str
    offered_bq_per_cell: float | None
    labelling_efficiency: float | None
    efflux_per_day: float | None
    published_detection_limit_cells: float | None
    source: str
    notes: tuple[str, ...]


def known_cell_labels() -> tuple[str, ...]:
    """Keys of the labels in ``data/cell_labelling.toml``."""
    return tuple(read_toml(_TABLE)["labels"])


def _optional_float(entry: dict[str, Any], key: str) -> float | None:
    return None if key not in entry else float(entry[key])


@cache
def cell_label(key: str) -> CellLabelEntry:
    """The label ``key`` of ``data/cell_labelling.toml`` (e.g. ``"zr89-oxine"``).

    Examples
    --------
    >>> entry = cell_label("zr89-oxine")
    >>> entry.kind, entry.nuclide, entry.labelling_efficiency
    ('direct', 'Zr-89', 0.75)

    """
    table: dict[str, Any] = read_toml(_TABLE)["labels"]
    if key not in table:
        raise InputError(
            f"unknown cell label {key!r}", field="--label", hint=f"choose one of {', '.join(table)}"
        )
    entry = table[key]
    kind = str(entry["kind"])
    if kind not in ("direct", "reporter"):
        raise InputError(f"label {key!r} has unknown kind {kind!r} in {_TABLE}")
    notes = tuple(
        str(entry[name])
        for name in ("offered_note", "efflux_derivation", "detection_limit_note", "confidence")
        if name in entry
    )
    return CellLabelEntry(
        key=key,
        kind="direct" if kind == "direct" else "reporter",
        name=str(entry["name"]),
        nuclide=str(entry["nuclide"]),
        modality=str(entry["modality"]),
        offered_bq_per_cell=_optional_float(entry, "offered_bq_per_cell"),
        labelling_efficiency=_optional_float(entry, "labelling_efficiency"),
        efflux_per_day=_optional_float(entry, "efflux_per_day"),
        published_detection_limit_cells=_optional_float(entry, "published_detection_limit_cells"),
        source=str(entry["source"]),
        notes=notes,
    )


def resolve_cell_label(
    entry: CellLabelEntry,
    *,
    bq_per_cell: float | None = None,
    efficiency: float | None = None,
    efflux_per_day: float | None = None,
) -> tuple[DirectLabel | ReporterLabel, tuple[str, ...]]:
    """Build the label from a table entry and the user's values; say which values came from where.

    Parameters
    ----------
    entry : CellLabelEntry
        From :func:`cell_label`.
    bq_per_cell : float, optional
        Direct label: offered activity per cell, Bq. Reporter: probe uptake per
        reporter cell at the scan start, Bq (required: the sources give none).
    efficiency : float, optional
        Direct labels only: labelling efficiency.
    efflux_per_day : float, optional
        Direct labels only: efflux rate, 1/day.

    Returns
    -------
    label : DirectLabel or ReporterLabel
    assumptions : tuple of str
        One line per value taken from the table, with its source.

    Raises
    ------
    InputError
        For a SPECT label, a fact neither given nor in the table, or an option
        that does not apply to the kind of label.

    """
    if entry.modality != "PET":
        raise InputError(
            f"{entry.key} is a {entry.modality} label: cell detectability is modelled for PET "
            "only (immunopet has no SPECT camera model yet)",
            field="--label",
            hint="choose a PET label (zr89-oxine, zr89-dfo or a reporter)",
        )
    if entry.kind == "reporter":
        for option, value in (("--efficiency", efficiency), ("--efflux-per-day", efflux_per_day)):
            if value is not None:
                raise InputError(
                    f"{option} applies to direct labels; {entry.key} is a reporter gene whose "
                    "probe is injected before each scan",
                    field=option,
                )
        if bq_per_cell is None:
            raise InputError(
                f"the probe uptake per reporter cell of {entry.key} is not in {_TABLE}",
                field="--bq-per-cell",
                hint="pass --bq-per-cell with the probe activity per reporter cell at the scan "
                "(Bq), e.g. from an in-vitro uptake assay",
            )
        reporter = ReporterLabel(
            name=entry.key, nuclide=entry.nuclide, uptake_bq_per_cell=bq_per_cell
        )
        return reporter, ()
    from_table: list[str] = []

    def pick(
        given: float | None, tabled: float | None, option: str, what: str, unit: str = ""
    ) -> float:
        if given is not None:
            return given
        if tabled is None:
            raise InputError(
                f"the {what} of {entry.key} is not in {_TABLE}",
                field=option,
                hint=f"pass {option}",
            )
        from_table.append(f"{what} {tabled:g}{unit}")
        return tabled

    direct = DirectLabel(
        name=entry.key,
        nuclide=entry.nuclide,
        offered_bq_per_cell=pick(
            bq_per_cell,
            entry.offered_bq_per_cell,
            "--bq-per-cell",
            "offered activity per cell",
            " Bq",
        ),
        labelling_efficiency=pick(
            efficiency, entry.labelling_efficiency, "--efficiency", "labelling efficiency"
        ),
        efflux_per_day=pick(
            efflux_per_day, entry.efflux_per_day, "--efflux-per-day", "efflux rate", "/day"
        ),
    )
    if not from_table:
        return direct, ()
    line = f"{', '.join(from_table)} from {_TABLE} [{entry.key}] (source under sources)"
    return direct, (line,)


# --------------------------------------------------------------------------- conventions


@dataclass(frozen=True)
class DetectabilityConventions:
    """Defaults of the detectability model (``[conventions]`` of ``data/cell_labelling.toml``)."""

    cnr_threshold: float
    cnr_threshold_source: str
    noise_amplification: float
    max_day: int
    scan_time_s: float
    tissue_density_g_per_ml: float


@cache
def detectability_conventions() -> DetectabilityConventions:
    """The conventions the planner falls back on, each printed as an assumption when used."""
    table = read_toml(_TABLE)["conventions"]
    return DetectabilityConventions(
        cnr_threshold=float(table["cnr_threshold"]),
        cnr_threshold_source=str(table["cnr_threshold_source"]),
        noise_amplification=float(table["noise_amplification"]),
        max_day=int(table["max_day"]),
        scan_time_s=float(table["scan_time_s"]),
        tissue_density_g_per_ml=float(table["tissue_density_g_per_ml"]),
    )


# --------------------------------------------------------------------------- model


def _require_positive(name: str, value: float, option: str | None = None) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0.0:
        raise InputError(f"{name} must be a positive number, got {value!r}", field=option or name)


@dataclass(frozen=True)
class CellDetectabilityInputs:
    """Everything the detectability model needs (units in the names).

    Parameters
    ----------
    cells_per_kg : float
        Infused CAR T cells per kg body weight.
    weight_kg : float
        Body weight, kg.
    label : DirectLabel or ReporterLabel
        How the cells are made visible.
    homing_fraction : float
        Fraction of the infused cells (and of their progeny) in the site, (0, 1].
    site_volume_ml : float
        Volume of the site, mL (modelled as a sphere; it is also the VOI).
    scanner : ScannerModel
        PET scanner (sensitivity and resolution).
    days_after_infusion : float
        Scan day, days after infusion (≥ 0).
    kinetics : Stein2019CellularKinetics or None
        Expansion and contraction of the cells; None keeps their number constant.
    scan_time_s : float, optional
        Emission time over the site, s. Default: the convention of the data table.
    background_bq_per_ml : float, optional
        Activity concentration around and in the site at the scan start, Bq/mL.
        Default (direct labels only): all bound label spread over the body (SUV 1).
    cnr_threshold : float, optional
        Rose criterion k (default 5).
    noise_amplification : float, optional
        η ≥ 1 typically; noise = η √(S + B) (default 1).
    max_day : int, optional
        Last day searched for :attr:`CellDetectability.last_visible_day` (default 60).

    """

    cells_per_kg: float
    weight_kg: float
    label: DirectLabel | ReporterLabel
    homing_fraction: float
    site_volume_ml: float
    scanner: ScannerModel
    days_after_infusion: float
    kinetics: Stein2019CellularKinetics | None
    scan_time_s: float | None = None
    background_bq_per_ml: float | None = None
    cnr_threshold: float | None = None
    noise_amplification: float | None = None
    max_day: int | None = None

    def __post_init__(self) -> None:
        _require_positive("cells_per_kg", self.cells_per_kg, "--cells-per-kg")
        _require_positive("weight_kg", self.weight_kg, "--weight-kg")
        _require_positive("site_volume_ml", self.site_volume_ml, "--site-volume-ml")
        if not (math.isfinite(self.homing_fraction) and 0.0 < self.homing_fraction <= 1.0):
            raise InputError(
                f"homing fraction must be in (0, 1], got {self.homing_fraction!r}",
                field="--homing-fraction",
            )
        if not (math.isfinite(self.days_after_infusion) and self.days_after_infusion >= 0.0):
            raise InputError(
                f"the scan day must be >= 0 days after infusion, got {self.days_after_infusion!r}",
                field="--day",
            )
        for name, value, option in (
            ("scan_time_s", self.scan_time_s, "--scan-time-s"),
            ("cnr_threshold", self.cnr_threshold, "--cnr-threshold"),
            ("noise_amplification", self.noise_amplification, "--noise-amplification"),
        ):
            if value is not None:
                _require_positive(name, value, option)
        if self.background_bq_per_ml is not None and not (
            math.isfinite(self.background_bq_per_ml) and self.background_bq_per_ml >= 0.0
        ):
            raise InputError(
                f"background must be >= 0 Bq/mL, got {self.background_bq_per_ml!r}",
                field="--background-bq-per-ml",
            )
        if self.max_day is not None and (not isinstance(self.max_day, int) or self.max_day < 0):
            raise InputError(
                f"max_day must be a whole number of days >= 0, got {self.max_day!r}",
                field="--max-day",
            )
        if self.scanner.modality != "PET":
            raise InputError(
                f"scanner {self.scanner.key} is {self.scanner.modality}: the model is PET only",
                field="--scanner",
            )

    @property
    def infused_cells(self) -> float:
        """Number of infused cells."""
        return self.cells_per_kg * self.weight_kg


@dataclass(frozen=True)
class CellDetectability:
    """Prediction for one site on one day (see the module docstring for the equations).

    Attributes
    ----------
    cnr : float
        Contrast-to-noise ratio S/(η√(S + B)).
    detectable : bool
        ``cnr >= cnr_threshold``.
    min_detectable_cells : float
        Fewest cells in the site meeting the criterion on that day (inf if the
        label has decayed to nothing).
    last_visible_day : int or None
        Last whole day in 0..max_day on which the cells meet the criterion.

    """

    inputs: CellDetectabilityInputs
    cnr: float
    cnr_threshold: float
    noise_amplification: float
    detectable: bool
    min_detectable_cells: float
    min_signal_counts: float
    cells_in_site: float
    relative_cell_level: float
    activity_per_cell_bq: float
    site_activity_bq: float
    signal_counts: float
    background_counts: float
    background_bq_per_ml: float
    recovery_coefficient: float
    counts_per_decay: float
    scan_time_s: float
    max_day: int
    daily_cnr: tuple[float, ...]
    last_visible_day: int | None
    visible_through_max_day: bool
    criterion: str
    assumptions: tuple[str, ...] = field(default_factory=tuple)
    sources: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (infinite values become null)."""
        label = self.inputs.label

        def finite(value: float) -> float | None:
            return value if math.isfinite(value) else None

        payload: dict[str, Any] = {
            "cnr": self.cnr,
            "cnr_threshold": self.cnr_threshold,
            "criterion": self.criterion,
            "detectable": self.detectable,
            "min_detectable_cells": finite(self.min_detectable_cells),
            "last_visible_day": self.last_visible_day,
            "visible_through_max_day": self.visible_through_max_day,
            "max_day": self.max_day,
            "day": self.inputs.days_after_infusion,
            "cells_in_site": self.cells_in_site,
            "infused_cells": self.inputs.infused_cells,
            "relative_cell_level": self.relative_cell_level,
            "label": label.name,
            "label_kind": "direct" if isinstance(label, DirectLabel) else "reporter",
            "nuclide": nuclide(label.nuclide).name,
            "activity_per_cell_bq": self.activity_per_cell_bq,
            "site_activity_bq": self.site_activity_bq,
            "site_volume_ml": self.inputs.site_volume_ml,
            "background_bq_per_ml": self.background_bq_per_ml,
            "signal_counts": self.signal_counts,
            "background_counts": self.background_counts,
            "min_signal_counts": self.min_signal_counts,
            "recovery_coefficient": self.recovery_coefficient,
            "noise_amplification": self.noise_amplification,
            "scanner": self.inputs.scanner.key,
            "counts_per_decay": self.counts_per_decay,
            "scan_time_s": self.scan_time_s,
            "daily_cnr": list(self.daily_cnr),
            "assumptions": list(self.assumptions),
            "sources": list(self.sources),
        }
        return payload


def _remaining(half_life_s: float, elapsed_d: float) -> float:
    """Physical decay over ``elapsed_d`` days; 0 once beyond floating-point range."""
    try:
        return decay_factor(half_life_s, elapsed_d * S_PER_DAY)
    except TimingError:
        if elapsed_d > 0.0:
            return 0.0
        raise


@dataclass(frozen=True)
class _Day:
    relative_level: float
    cells_in_site: float
    activity_per_cell_bq: float
    background_bq_per_ml: float


def _day_state(
    inputs: CellDetectabilityInputs,
    day: float,
    background_at_scan_bq_per_ml: float | None,
    density_g_per_ml: float,
) -> _Day:
    label = inputs.label
    half_life_s = nuclide(label.nuclide).half_life_s
    kinetics = inputs.kinetics
    level = 1.0 if kinetics is None else kinetics.relative_level(day)
    cells = inputs.homing_fraction * inputs.infused_cells * level
    if isinstance(label, DirectLabel):
        divisions = 1.0 if kinetics is None else kinetics.relative_level(min(day, kinetics.tmax_d))
        remaining = _remaining(half_life_s, day)
        per_cell = (
            label.bound_bq_per_cell * remaining * math.exp(-label.efflux_per_day * day) / divisions
        )
        if background_at_scan_bq_per_ml is None:
            body_volume_ml = inputs.weight_kg * G_PER_KG / density_g_per_ml
            background = inputs.infused_cells * label.bound_bq_per_cell * remaining / body_volume_ml
        else:
            background = background_at_scan_bq_per_ml * _remaining(
                half_life_s, day - inputs.days_after_infusion
            )
    else:
        per_cell = label.uptake_bq_per_cell
        if background_at_scan_bq_per_ml is None:
            raise InputError(
                f"a reporter probe's background depends on its pharmacokinetics: give the "
                f"activity concentration around the site for {label.name}",
                field="--background-bq-per-ml",
                hint="pass --background-bq-per-ml (e.g. muscle or blood-pool uptake of the probe "
                "at the scan time)",
            )
        background = background_at_scan_bq_per_ml
    return _Day(level, cells, per_cell, background)


def _min_signal_counts(background_counts: float, k: float, eta: float) -> float:
    """S solving S/(η√(S + B)) = k."""
    k2 = (k * eta) ** 2
    return 0.5 * (k2 + math.sqrt(k2 * k2 + 4.0 * k2 * background_counts))


def _cnr(signal: float, background: float, eta: float) -> float:
    total = signal + background
    return 0.0 if total <= 0.0 else signal / (eta * math.sqrt(total))


def predict_cell_detectability(inputs: CellDetectabilityInputs) -> CellDetectability:
    """Predict CNR, detection limit and last visible day of labelled cells in one site.

    Parameters
    ----------
    inputs : CellDetectabilityInputs
        Dose, label, site, scanner, scan day and the optional conventions.

    Returns
    -------
    CellDetectability

    Raises
    ------
    InputError
        If the nuclide is not a positron emitter, or a reporter has no background.

    Examples
    --------
    >>> from immunopet.planning._scanner import scanner
    >>> label = DirectLabel("zr89-oxine", "Zr-89", 0.07, 0.75, 0.0851)
    >>> result = predict_cell_detectability(CellDetectabilityInputs(
    ...     cells_per_kg=3.1e6, weight_kg=39.0, label=label, homing_fraction=0.01,
    ...     site_volume_ml=10.0, scanner=scanner("biograph_mct"), days_after_infusion=2.0,
    ...     kinetics=Stein2019CellularKinetics.published(), scan_time_s=600.0))
    >>> result.detectable, round(result.cnr, 1)
    (True, 195.7)

    """
    conventions = detectability_conventions()
    label = inputs.label
    nuclide_data = nuclide(label.nuclide)
    counts_per_decay = inputs.scanner.counts_per_decay(nuclide_data.name)
    assumptions: list[str] = []
    sources: list[str] = []

    def convention(value: float | None, default: float, text: str) -> float:
        if value is not None:
            return value
        assumptions.append(text.format(default))
        return default

    k = convention(
        inputs.cnr_threshold,
        conventions.cnr_threshold,
        "detection criterion: Rose, CNR >= {:g} (convention; pass --cnr-threshold)",
    )
    eta = convention(
        inputs.noise_amplification,
        conventions.noise_amplification,
        "noise amplification of the reconstruction {:g}: ideal Poisson counting statistics, "
        "optimistic: with it the model predicts ~54x fewer detectable cells than measured in "
        "vitro (Lechermann 2020), which an amplification of about 7.4 reproduces "
        "(tests/validation/test_detectability.py; pass --noise-amplification)",
    )
    scan_time_s = convention(
        inputs.scan_time_s,
        conventions.scan_time_s,
        "scan time {:g} s over the site (convention; pass --scan-time-s)",
    )
    max_day = (
        int(convention(None, conventions.max_day, "last visible day searched on days 0..{:g}"))
        if inputs.max_day is None
        else inputs.max_day
    )
    frame_factor = frame_average_decay_factor(nuclide_data.half_life_s, scan_time_s)
    counts_per_bq = counts_per_decay * scan_time_s * frame_factor
    recovery = sphere_recovery_coefficient(inputs.site_volume_ml, inputs.scanner.resolution_fwhm_mm)
    density = conventions.tissue_density_g_per_ml

    def evaluate(day: float) -> tuple[_Day, float, float, float]:
        state = _day_state(inputs, day, inputs.background_bq_per_ml, density)
        signal = state.cells_in_site * state.activity_per_cell_bq * counts_per_bq * recovery
        background = state.background_bq_per_ml * inputs.site_volume_ml * counts_per_bq
        return state, signal, background, _cnr(signal, background, eta)

    state, signal, background, cnr = evaluate(inputs.days_after_infusion)
    min_signal = _min_signal_counts(background, k, eta)
    counts_per_cell = state.activity_per_cell_bq * counts_per_bq * recovery
    min_cells = math.inf if counts_per_cell <= 0.0 else min_signal / counts_per_cell
    daily = tuple(evaluate(float(day))[3] for day in range(max_day + 1))
    visible_days = [day for day, value in enumerate(daily) if value >= k]

    # Assumptions and sources, in the order of the model.
    if inputs.kinetics is None:
        assumptions.append("number of cells in the site constant after infusion (no kinetics)")
    else:
        assumptions.append(
            "cells in the site = homing fraction x infused cells x relative level of the typical "
            "CAR T-cell curve (Stein 2019: CAR transgene copies per ug DNA in the blood of "
            "paediatric and young-adult B-ALL patients, relative to the model's level at infusion): "
            "the site is assumed to expand and contract like the blood"
        )
        sources.append(inputs.kinetics.source)
    packing = read_toml(_TABLE)["packing"]
    occupied = (
        state.cells_in_site
        * float(packing["t_cell_volume_fl"])
        * _ML_PER_FL
        / inputs.site_volume_ml
    )
    if occupied > float(packing["max_site_fraction"]):
        assumptions.append(
            f"IMPLAUSIBLE: {state.cells_in_site:.3g} cells of ~{float(packing['t_cell_volume_fl']):g} fL "
            f"would fill {100 * occupied:.0f} % of the {inputs.site_volume_ml:g} mL site; the "
            "blood-derived expansion factor overstates the cells a site can hold (lower "
            "--homing-fraction or pass --kinetics none)"
        )
    if isinstance(label, DirectLabel):
        assumptions.append(
            f"direct label: bound {label.bound_bq_per_cell:.4g} Bq/cell at infusion "
            f"(offered {label.offered_bq_per_cell:.4g} x efficiency {label.labelling_efficiency:g}),"
            f" lost by decay and efflux {label.efflux_per_day:g}/day; daughter cells share the "
            "label (diluted by the expansion); dying cells take their label out of the site"
        )
        if inputs.background_bq_per_ml is None:
            assumptions.append(
                f"background {state.background_bq_per_ml:.4g} Bq/mL: all bound label spread "
                f"uniformly over the body at {density:g} g/mL (SUV 1), decayed to the scan; "
                "pass --background-bq-per-ml for a measured value"
            )
        else:
            assumptions.append(
                "background as given for the scan day; carried to other days by physical decay"
            )
    else:
        assumptions.append(
            f"reporter: {label.uptake_bq_per_cell:.4g} Bq of probe per living reporter cell at "
            "the scan start; the signal follows living cells (no dilution, no efflux); the "
            "background as given, the same on every day (probe injected before each scan)"
        )
    assumptions.append(
        f"site: sphere of {inputs.site_volume_ml:g} mL, also the volume of interest; recovery "
        f"coefficient {recovery:.3f} at FWHM {inputs.scanner.resolution_fwhm_mm:g} mm"
    )
    assumptions.append(
        f"counts: NEMA F-18 sensitivity scaled by the {nuclide_data.name} positron yield "
        f"({counts_per_decay:.4g} counts per decay), decay during the scan included; attenuation, "
        "scatter, randoms and the scanner's intrinsic background are ignored (optimistic)"
    )
    sources.extend(
        source
        for source in (
            cell_label(label.name).source if label.name in known_cell_labels() else "",
            inputs.scanner.source,
            nuclide_data.source,
            _RECOVERY_SOURCE,
            conventions.cnr_threshold_source,
        )
        if source
    )
    return CellDetectability(
        inputs=inputs,
        cnr=cnr,
        cnr_threshold=k,
        noise_amplification=eta,
        detectable=cnr >= k,
        min_detectable_cells=min_cells,
        min_signal_counts=min_signal,
        cells_in_site=state.cells_in_site,
        relative_cell_level=state.relative_level,
        activity_per_cell_bq=state.activity_per_cell_bq,
        site_activity_bq=state.cells_in_site * state.activity_per_cell_bq,
        signal_counts=signal,
        background_counts=background,
        background_bq_per_ml=state.background_bq_per_ml,
        recovery_coefficient=recovery,
        counts_per_decay=counts_per_decay,
        scan_time_s=scan_time_s,
        max_day=max_day,
        daily_cnr=daily,
        last_visible_day=visible_days[-1] if visible_days else None,
        visible_through_max_day=bool(daily) and daily[-1] >= k,
        criterion=f"Rose: CNR = S / ({eta:g} * sqrt(S + B)) >= {k:g}",
        assumptions=tuple(assumptions),
        sources=tuple(dict.fromkeys(sources)),
    )
