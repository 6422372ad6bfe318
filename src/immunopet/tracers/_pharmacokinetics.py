"""Vector pharmacokinetics: one model of tumour, blood and organ activity for every vector format.

The planner, the simulator and the dosimetry all use :class:`TwoTissueVectorModel`, with the
cited parameters of ``data/vector_pk.toml`` (every number there carries its source and a
confidence tag: READ, COMPUTED, RECALLED, CALIBRATED or ASSUMED).

Model
-----
Plasma follows the biexponential measured for the format (%ID/mL, t in s)::

    Cp(t) = Cp0 · [f_α·exp(−λ_α t) + (1 − f_α)·exp(−λ_β t)],   Cp0 = 100 / V_plasma,
    λ = ln 2 / T½(biological)

and whole blood carries the plasma activity diluted by the cells, ``Cb = Cp · V_plasma / V_blood``.
Each tissue *j* (tumour, liver, spleen, kidneys, muscle and the remainder of the body) holds a
reversible pool R (free vector in the extravascular space) and an irreversible pool I (vector
bound and internalised or catabolised, with the label kept in the cell)::

    dR_j/dt = k21 · (V_T,j · Cp − R_j)
    dI_j/dt = K_i,j · Cp − k_loss · I_j
    C_j(t)  = v_j · Cb(t) + R_j(t) + I_j(t)                    (%ID/g)

This is the decomposition of immuno-PET uptake into reversible (distribution volume V_T) and
irreversible (net influx rate K_i) parts used by Jauw et al. [1]_ with Patlak analysis [2]_,
written as compartments so that it also holds before equilibrium. k21 and the micro-constants
k12 and k10 are those of the two-compartment (mammillary) model that reproduces the plasma
biexponential [3]_; the reversible pools of all tissues together form its peripheral compartment,
so that Σ_j m_j·V_T,j = V_plasma·k12/k21. The remainder of the body takes the distribution volume
and trapping the blood kinetics require beyond the organs listed::

    V_T,rem = (V_plasma·k12/k21 − Σ_organs m_j V_T,j) / m_rem
    K_i,rem = ((1 − f_excr)·k10·V_plasma − Σ_organs m_j K_i,j) / m_rem

where f_excr is the share of plasma elimination excreted directly (renal filtration, bile). Both
must be ≥ 0; then the body starts with 100 %ID and never gains activity (mass balance)::

    d(body)/dt = −f_excr·k10·V_plasma·Cp − k_loss·Σ_j m_j I_j ≤ 0.

Tumour trapping is K_i,tumour = K_i,non-specific + K_i,specific · (antigen density), linear in the
relative antigen density (tracer dose; saturation is not modelled). k_loss is the loss rate of
trapped label: slow for residualising labels (radiometal chelates stay in the lysosome), fast for
non-residualising ones (radiohalogen catabolites leave the cell) [4]_. The tumour is not part of
the mass balance (its mass is small against the body).

All functions here are biological: activity per injected activity with no physical decay.
:func:`apply_physical_decay` multiplies by :func:`immunopet.physics.decay_factor` for a nuclide.

References
----------
.. [1] Jauw YWS et al. 89Zr-immuno-PET: toward a noninvasive clinical tool to measure target
   engagement of therapeutic antibodies in vivo. J Nucl Med 2019;60:1825-1832.
.. [2] Patlak CS, Blasberg RG, Fenstermacher JD. Graphical evaluation of blood-to-brain transfer
   constants from multiple-time uptake data. J Cereb Blood Flow Metab 1983;3:1-7.
.. [3] Gibaldi M, Perrier D. Pharmacokinetics, 2nd ed. Marcel Dekker 1982, ch. 2 (two-compartment
   model: micro-constants from the biexponential).
.. [4] Adv Drug Deliv Rev 2013;65(8):1098-1111, doi:10.1016/j.addr.2012.10.012, Fig. 2.

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from types import MappingProxyType
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.physics import canonical_nuclide_name, decay_factor, nuclide
from immunopet.tracers._formats import VectorFormat
from immunopet.units import BQ_PER_MBQ, S_PER_HOUR

__all__ = [
    "EXTRAVASCULAR_TISSUES",
    "MASS_BALANCE_ORGANS",
    "TISSUES",
    "LabelKinetics",
    "ReferenceBody",
    "TwoTissueVectorModel",
    "VectorPharmacokinetics",
    "apply_physical_decay",
    "decays_per_bq",
    "decays_per_mbq",
    "label_kinetics",
    "organ_decays_per_bq",
    "pharmacokinetic_formats",
    "reference_body",
    "residualising_label",
    "vector_pharmacokinetics",
]

_TABLE: Final = "vector_pk.toml"
#: Organ masses shared with the dosimetry; the model's reference adult is the ICRP 89 male.
_ORGANS: Final = "reference_organs.toml"
_SEX: Final = "male"

#: Tissues with a time-activity curve, in the order curves are returned.
TISSUES: Final[tuple[str, ...]] = ("blood", "tumour", "liver", "spleen", "kidneys", "muscle")
#: Tissues outside the blood with their own parameters.
EXTRAVASCULAR_TISSUES: Final[tuple[str, ...]] = ("tumour", "liver", "spleen", "kidneys", "muscle")
#: Organs counted in the mass balance (the tumour is not; the remainder is derived).
MASS_BALANCE_ORGANS: Final[tuple[str, ...]] = ("liver", "spleen", "kidneys", "muscle")

_LN2: Final = math.log(2.0)
#: decay_factor refuses more than 1000 half-lives; beyond that the activity is 0 in doubles.
_MAX_HALF_LIVES: Final = 1000.0
#: Below this |Δrate·t| the convolution of two exponentials uses its series form.
_SERIES_LIMIT: Final = 1.0e-6
#: Points of the logarithmic time grid used for time integrals to infinity.
_INTEGRAL_POINTS: Final = 4000
#: Time integrals stop after this many physical half-lives (2^-60 of the activity is left).
_INTEGRAL_HALF_LIVES: Final = 60.0
_FIRST_GRID_TIME_S: Final = 1.0


@dataclass(frozen=True)
class ReferenceBody:
    """Masses and volumes of the reference adult the model distributes activity over.

    Parameters
    ----------
    body_mass_g : float
        Whole-body mass, g.
    blood_volume_ml : float
        Blood volume, mL.
    haematocrit : float
        Volume fraction of cells in blood.
    organ_mass_g : Mapping[str, float]
        Mass of each organ of :data:`MASS_BALANCE_ORGANS`, g.
    blood_content_ml_per_g : Mapping[str, float]
        Vascular blood in each extravascular tissue, mL/g (seen in the image, counted once in the
        blood volume).
    source : str
        Where the numbers come from.

    """

    body_mass_g: float
    blood_volume_ml: float
    haematocrit: float
    organ_mass_g: Mapping[str, float]
    blood_content_ml_per_g: Mapping[str, float]
    source: str

    @property
    def plasma_volume_ml(self) -> float:
        """Plasma volume, mL: blood volume × (1 − haematocrit)."""
        return self.blood_volume_ml * (1.0 - self.haematocrit)

    @property
    def remainder_mass_g(self) -> float:
        """Body mass outside the blood and the listed organs, g (1 mL of blood taken as 1 g)."""
        return self.body_mass_g - self.blood_volume_ml - sum(self.organ_mass_g.values())


@dataclass(frozen=True)
class LabelKinetics:
    """Fate of label in the irreversible pool.

    Parameters
    ----------
    residualising : bool
        Whether the label stays in the cell after the vector is catabolised.
    loss_half_life_s : float
        Half-life of the loss of trapped label from tissue, s.
    confidence, source : str
        Confidence tag and citation of ``loss_half_life_s``.

    """

    residualising: bool
    loss_half_life_s: float
    confidence: str
    source: str


@dataclass(frozen=True)
class VectorPharmacokinetics:
    """Cited pharmacokinetic parameters of one vector format (``data/vector_pk.toml``).

    Parameters
    ----------
    vector_format : VectorFormat
        The format.
    description : str
        What the format is, in words.
    molecular_weight_kda : float
        Typical molecular weight, kDa.
    fc_mediated_uptake : bool
        Whether Fc-γ receptor binding adds non-target uptake (intact IgG).
    default_residualising : bool
        The usual labelling chemistry of the format (used when no nuclide decides it).
    alpha_half_life_s, beta_half_life_s : float
        Plasma biexponential half-lives, s.
    alpha_fraction : float
        Fraction of the plasma intercept in the α phase.
    beta_half_life_range_s : tuple of float
        The cited range of the terminal half-life, s.
    direct_excretion_fraction : float
        Share of plasma elimination excreted without trapping in a tissue.
    renal_fraction : float
        Share of excreted activity leaving in urine (the rest hepatobiliary).
    distribution_volume_ml_per_g : Mapping[str, float]
        V_T of the reversible pool per tissue of :data:`EXTRAVASCULAR_TISSUES`, mL/g.
    ki_ml_per_g_per_s : Mapping[str, float]
        Irreversible trapping rate K_i per tissue (tumour: the non-specific part), mL/g/s.
    tumour_specific_ki_ml_per_g_per_s : float
        Specific tumour trapping at antigen density 1.0, mL/g/s.
    sources : tuple of str
        Citations (blood kinetics, tissue terms).
    confidence : tuple of str
        Confidence tags, in the order of ``sources``.

    """

    vector_format: VectorFormat
    description: str
    molecular_weight_kda: float
    fc_mediated_uptake: bool
    default_residualising: bool
    alpha_half_life_s: float
    beta_half_life_s: float
    alpha_fraction: float
    beta_half_life_range_s: tuple[float, float]
    direct_excretion_fraction: float
    renal_fraction: float
    distribution_volume_ml_per_g: Mapping[str, float]
    ki_ml_per_g_per_s: Mapping[str, float]
    tumour_specific_ki_ml_per_g_per_s: float
    sources: tuple[str, ...]
    confidence: tuple[str, ...]


def _table() -> dict[str, Any]:
    return read_toml(_TABLE)


def _as_format(vector_format: VectorFormat | str) -> VectorFormat:
    try:
        return VectorFormat(vector_format)
    except ValueError:
        raise InputError(
            f"unknown vector format {vector_format!r}",
            field="vector_format",
            hint=f"choose one of {', '.join(f.value for f in VectorFormat)}",
        ) from None


def pharmacokinetic_formats() -> tuple[VectorFormat, ...]:
    """Vector formats with plasma pharmacokinetics (all but cell labels and reporter substrates).

    Examples
    --------
    >>> VectorFormat.CELL_LABEL in pharmacokinetic_formats()
    False

    """
    return tuple(VectorFormat(key) for key in _table()["formats"])


@cache
def reference_body() -> ReferenceBody:
    """The reference adult male of ICRP Publication 89.

    Body and organ masses come from ``data/reference_organs.toml`` (shared with the dosimetry),
    blood volume, haematocrit and vascular blood contents from ``data/vector_pk.toml``.
    """
    entry = _table()["reference_body"]
    organs = read_toml(_ORGANS)[_SEX]
    return ReferenceBody(
        body_mass_g=float(organs["total_body_g"]),
        blood_volume_ml=float(entry["blood_volume_ml"]),
        haematocrit=float(entry["haematocrit"]),
        organ_mass_g=MappingProxyType(
            {organ: float(organs["regions"][organ]["mass_g"]) for organ in MASS_BALANCE_ORGANS}
        ),
        blood_content_ml_per_g=MappingProxyType(
            {t: float(entry["blood_content_ml_per_g"][t]) for t in EXTRAVASCULAR_TISSUES}
        ),
        source=f"{entry['source']}; masses: {_ORGANS} (ICRP Publication 89)",
    )


@cache
def label_kinetics(residualising: bool) -> LabelKinetics:
    """Loss of trapped label for a residualising or a non-residualising label."""
    key = "residualising" if residualising else "non_residualising"
    entry = _table()["labels"][key]
    return LabelKinetics(
        residualising=residualising,
        loss_half_life_s=float(entry["loss_half_life_h"]) * S_PER_HOUR,
        confidence=str(entry["confidence"]),
        source=str(entry["source"]),
    )


def residualising_label(nuclide_name: str) -> bool:
    """Whether the usual labelling chemistry of ``nuclide_name`` is residualising.

    Radiometals attached through chelators are; radiohalogens are not
    (``data/vector_pk.toml``, ``[labels.residualising_by_element]``).

    Examples
    --------
    >>> residualising_label("Zr-89"), residualising_label("I-124")
    (True, False)

    """
    element = canonical_nuclide_name(nuclide_name).split("-")[0]
    table = _table()["labels"]["residualising_by_element"]
    if element not in table:
        known = ", ".join(k for k, v in table.items() if isinstance(v, bool))
        raise InputError(
            f"no labelling chemistry is recorded for element {element} ({nuclide_name})",
            field="nuclide",
            hint=f"add it to data/vector_pk.toml [labels.residualising_by_element] ({known})",
        )
    return bool(table[element])


@cache
def vector_pharmacokinetics(vector_format: VectorFormat | str) -> VectorPharmacokinetics:
    """Return the cited pharmacokinetic parameters of a vector format.

    Parameters
    ----------
    vector_format : VectorFormat or str
        E.g. ``VectorFormat.MINIBODY`` or ``"minibody"``.

    Raises
    ------
    InputError
        If the format is unknown or has no plasma pharmacokinetics (cell labels, reporter
        substrates).

    Examples
    --------
    >>> pk = vector_pharmacokinetics("minibody")
    >>> round(pk.beta_half_life_s / 3600, 1), round(pk.alpha_fraction, 3)
    (33.8, 0.407)

    """
    fmt = _as_format(vector_format)
    table = _table()
    if fmt.value in table["excluded"]:
        raise InputError(
            f"vector format {fmt.value!r} has no plasma pharmacokinetics: "
            f"{table['excluded'][fmt.value]}",
            field="vector_format",
        )
    entry = table["formats"][fmt.value]
    blood = entry["blood"]
    low_h, high_h = (float(v) for v in blood["beta_half_life_range_h"])
    per_h = 1.0 / S_PER_HOUR
    return VectorPharmacokinetics(
        vector_format=fmt,
        description=str(entry["description"]),
        molecular_weight_kda=float(entry["molecular_weight_kda"]),
        fc_mediated_uptake=bool(entry["fc_mediated_uptake"]),
        default_residualising=bool(entry["default_residualising"]),
        alpha_half_life_s=float(blood["alpha_half_life_h"]) * S_PER_HOUR,
        beta_half_life_s=float(blood["beta_half_life_h"]) * S_PER_HOUR,
        alpha_fraction=float(blood["alpha_fraction"]),
        beta_half_life_range_s=(low_h * S_PER_HOUR, high_h * S_PER_HOUR),
        direct_excretion_fraction=float(entry["direct_excretion_fraction"]),
        renal_fraction=float(entry["renal_fraction"]),
        distribution_volume_ml_per_g=MappingProxyType(
            {t: float(entry["distribution_volume_ml_per_g"][t]) for t in EXTRAVASCULAR_TISSUES}
        ),
        ki_ml_per_g_per_s=MappingProxyType(
            {t: float(entry["ki_ml_per_g_per_h"][t]) * per_h for t in EXTRAVASCULAR_TISSUES}
        ),
        tumour_specific_ki_ml_per_g_per_s=float(
            entry["tumour"]["tumour_specific_ki_ml_per_g_per_h"]
        )
        * per_h,
        sources=(str(blood["source"]), str(entry["provenance"]["source"])),
        confidence=(str(blood["confidence"]), str(entry["provenance"]["confidence"])),
    )


def _times(times_s: ArrayLike) -> NDArray[np.float64]:
    times = np.asarray(times_s, dtype=np.float64)
    if times.ndim != 1:
        raise InputError(
            f"times must be a 1-D array of seconds, got shape {times.shape}", field="times_s"
        )
    if not np.all(np.isfinite(times)) or np.any(times < 0.0):
        raise InputError(
            "times must be finite and >= 0 s (seconds after injection)", field="times_s"
        )
    return times


def _exp_convolution(
    rate_in_per_s: float, rate_out_per_s: float, times_s: NDArray[np.float64]
) -> NDArray[np.float64]:
    """∫₀ᵗ exp(−a·τ)·exp(−b·(t − τ)) dτ = (e^(−a t) − e^(−b t))/(b − a); t·e^(−a t) when a = b."""
    difference = rate_out_per_s - rate_in_per_s
    x = difference * times_s
    decay_in = np.exp(-rate_in_per_s * times_s)
    decay_out = np.exp(-rate_out_per_s * times_s)
    general = (decay_in - decay_out) / (difference if difference != 0.0 else 1.0)
    series = times_s * decay_in * (1.0 - 0.5 * x)
    result: NDArray[np.float64] = np.where(np.abs(x) < _SERIES_LIMIT, series, general)
    return result


@dataclass(frozen=True)
class TwoTissueVectorModel:
    """Reversible + irreversible tissue uptake driven by a biexponential plasma curve.

    The equations are in the module docstring (Jauw et al. 2019 decomposition, two-compartment
    micro-constants). Curves are biological (no physical decay), per injected activity.

    Parameters
    ----------
    parameters : VectorPharmacokinetics
        The format's parameters, from :func:`vector_pharmacokinetics`.
    antigen_density : float, optional
        Tumour antigen density relative to the reference tumour of the table (1.0). Scales the
        specific tumour trapping linearly; 0 leaves only non-specific uptake.
    residualising : bool or None, optional
        Label chemistry; None takes the format's default.
    body : ReferenceBody, optional
        The body the activity is distributed over (default: ICRP 89 reference adult male).

    Raises
    ------
    InputError
        If ``antigen_density`` is negative or not finite, or if the organs of the table need
        more distribution volume or trapping than the blood kinetics provide (a negative
        remainder).

    Examples
    --------
    >>> import numpy as np
    >>> model = TwoTissueVectorModel(vector_pharmacokinetics("igg"))
    >>> t_s = np.array([0.0, 24.0, 144.0]) * 3600
    >>> curves = model.time_activity_curves(t_s)
    >>> curves["blood"].shape
    (3,)
    >>> bool(curves["tumour"][2] > curves["tumour"][1])  # IgG tumour uptake still rising on day 6
    True
    >>> round(float(model.whole_body_percent_id(np.array([0.0]))[0]), 6)
    100.0

    """

    parameters: VectorPharmacokinetics
    antigen_density: float = 1.0
    residualising: bool | None = None
    body: ReferenceBody = field(default_factory=reference_body)

    def __post_init__(self) -> None:
        density = float(self.antigen_density)
        if not math.isfinite(density) or density < 0.0:
            raise InputError(
                f"antigen density must be a finite number >= 0 (1.0 = reference tumour), "
                f"got {self.antigen_density!r}",
                field="antigen_density",
            )
        fmt = self.parameters.vector_format.value
        if self.remainder_distribution_volume_ml_per_g < 0.0:
            raise InputError(
                f"{fmt}: the organ distribution volumes exceed the peripheral volume that the "
                f"plasma biexponential implies ({self.peripheral_volume_ml:.0f} mL)",
                field="distribution_volume_ml_per_g",
                hint="lower the organ values or revise the blood kinetics in data/vector_pk.toml",
            )
        if self.remainder_ki_ml_per_g_per_s < 0.0:
            raise InputError(
                f"{fmt}: the organ trapping rates exceed the plasma elimination the "
                "biexponential implies",
                field="ki_ml_per_g_per_h",
                hint="lower the organ K_i or direct_excretion_fraction in data/vector_pk.toml",
            )

    # -- derived constants ---------------------------------------------------------------
    @property
    def is_residualising(self) -> bool:
        """The label chemistry in use."""
        if self.residualising is None:
            return self.parameters.default_residualising
        return self.residualising

    @cached_property
    def _plasma_rates_per_s(self) -> tuple[float, float]:
        p = self.parameters
        return _LN2 / p.alpha_half_life_s, _LN2 / p.beta_half_life_s

    @cached_property
    def micro_constants_per_s(self) -> tuple[float, float, float]:
        """(k12, k21, k10) of the two-compartment model with the plasma biexponential, 1/s.

        k21 = f_α·λ_β + f_β·λ_α, k10 = λ_α·λ_β / k21, k12 = λ_α + λ_β − k21 − k10
        (Gibaldi & Perrier 1982).
        """
        lam_a, lam_b = self._plasma_rates_per_s
        f_a = self.parameters.alpha_fraction
        k21 = f_a * lam_b + (1.0 - f_a) * lam_a
        k10 = lam_a * lam_b / k21
        k12 = lam_a + lam_b - k21 - k10
        return k12, k21, k10

    @property
    def peripheral_volume_ml(self) -> float:
        """Total distribution volume of the reversible pools, mL: V_plasma·k12/k21."""
        k12, k21, _ = self.micro_constants_per_s
        return self.body.plasma_volume_ml * k12 / k21

    @cached_property
    def remainder_distribution_volume_ml_per_g(self) -> float:
        """V_T of the remainder of the body, mL/g (derived; see the module docstring)."""
        organs = sum(
            self.body.organ_mass_g[o] * self.parameters.distribution_volume_ml_per_g[o]
            for o in MASS_BALANCE_ORGANS
        )
        return (self.peripheral_volume_ml - organs) / self.body.remainder_mass_g

    @cached_property
    def remainder_ki_ml_per_g_per_s(self) -> float:
        """K_i of the remainder of the body, mL/g/s (derived; see the module docstring)."""
        _, _, k10 = self.micro_constants_per_s
        trapped = (1.0 - self.parameters.direct_excretion_fraction) * k10
        organs = sum(
            self.body.organ_mass_g[o] * self.parameters.ki_ml_per_g_per_s[o]
            for o in MASS_BALANCE_ORGANS
        )
        return (trapped * self.body.plasma_volume_ml - organs) / self.body.remainder_mass_g

    @property
    def label_loss_rate_per_s(self) -> float:
        """Loss rate of trapped label, 1/s (residualising or not)."""
        return _LN2 / label_kinetics(self.is_residualising).loss_half_life_s

    def _ki_ml_per_g_per_s(self, tissue: str) -> float:
        if tissue == "remainder":
            return self.remainder_ki_ml_per_g_per_s
        ki = self.parameters.ki_ml_per_g_per_s[tissue]
        if tissue == "tumour":
            ki += self.parameters.tumour_specific_ki_ml_per_g_per_s * float(self.antigen_density)
        return ki

    def _distribution_volume_ml_per_g(self, tissue: str) -> float:
        if tissue == "remainder":
            return self.remainder_distribution_volume_ml_per_g
        return self.parameters.distribution_volume_ml_per_g[tissue]

    # -- curves --------------------------------------------------------------------------
    def _plasma_terms(self) -> tuple[tuple[float, float], ...]:
        """(intercept %ID/mL, rate 1/s) of each plasma exponential."""
        cp0 = 100.0 / self.body.plasma_volume_ml
        lam_a, lam_b = self._plasma_rates_per_s
        f_a = self.parameters.alpha_fraction
        return ((cp0 * f_a, lam_a), (cp0 * (1.0 - f_a), lam_b))

    def plasma_percent_id_per_ml(self, times_s: ArrayLike) -> NDArray[np.float64]:
        """Plasma activity concentration, %ID/mL, shape ``(n_times,)``.

        Parameters
        ----------
        times_s : array_like of shape (n_times,)
            Seconds after injection (≥ 0).

        """
        times = _times(times_s)
        total = np.zeros_like(times)
        for intercept, rate in self._plasma_terms():
            total += intercept * np.exp(-rate * times)
        return total

    def blood_percent_id_per_g(self, times_s: ArrayLike) -> NDArray[np.float64]:
        """Whole-blood activity concentration, %ID/g (1 mL = 1 g), shape ``(n_times,)``."""
        dilution = self.body.plasma_volume_ml / self.body.blood_volume_ml
        return self.plasma_percent_id_per_ml(times_s) * dilution

    def _reversible(self, tissue: str, times: NDArray[np.float64]) -> NDArray[np.float64]:
        _, k21, _ = self.micro_constants_per_s
        k1 = self._distribution_volume_ml_per_g(tissue) * k21
        total = np.zeros_like(times)
        for intercept, rate in self._plasma_terms():
            total += k1 * intercept * _exp_convolution(rate, k21, times)
        return total

    def _irreversible(self, tissue: str, times: NDArray[np.float64]) -> NDArray[np.float64]:
        ki = self._ki_ml_per_g_per_s(tissue)
        loss = self.label_loss_rate_per_s
        total = np.zeros_like(times)
        for intercept, rate in self._plasma_terms():
            total += ki * intercept * _exp_convolution(rate, loss, times)
        return total

    def tissue_percent_id_per_g(self, tissue: str, times_s: ArrayLike) -> NDArray[np.float64]:
        """Activity concentration of one tissue as an image sees it, %ID/g.

        Parameters
        ----------
        tissue : str
            One of :data:`TISSUES`.
        times_s : array_like of shape (n_times,)
            Seconds after injection.

        Returns
        -------
        ndarray of shape (n_times,)
            v·Cb + R + I for extravascular tissues; Cb for ``"blood"``.

        """
        times = _times(times_s)
        if tissue == "blood":
            return self.blood_percent_id_per_g(times)
        if tissue not in EXTRAVASCULAR_TISSUES:
            raise InputError(
                f"unknown tissue {tissue!r}", field="tissue", hint=f"choose one of {TISSUES}"
            )
        vascular = self.body.blood_content_ml_per_g[tissue] * self.blood_percent_id_per_g(times)
        return vascular + self._reversible(tissue, times) + self._irreversible(tissue, times)

    def time_activity_curves(self, times_s: ArrayLike) -> dict[str, NDArray[np.float64]]:
        """Biological time-activity curves of every tissue of :data:`TISSUES`, %ID/g.

        Parameters
        ----------
        times_s : array_like of shape (n_times,)
            Seconds after injection.

        Returns
        -------
        dict of str to ndarray of shape (n_times,)

        """
        times = _times(times_s)
        return {tissue: self.tissue_percent_id_per_g(tissue, times) for tissue in TISSUES}

    def tumour_to_blood_ratio(self, times_s: ArrayLike) -> NDArray[np.float64]:
        """Tumour-to-blood concentration ratio (the same with or without physical decay)."""
        times = _times(times_s)
        return self.tissue_percent_id_per_g("tumour", times) / self.blood_percent_id_per_g(times)

    def organ_percent_id(self, times_s: ArrayLike) -> dict[str, NDArray[np.float64]]:
        """Activity per organ and in the whole body, %ID, shape ``(n_times,)`` each.

        Keys: ``blood`` (whole blood volume), the organs of :data:`MASS_BALANCE_ORGANS` and
        ``remainder`` (extravascular content only: their vascular blood is in ``blood``),
        ``whole_body`` (their sum) and ``excreted`` (100 − whole body). The tumour is left out.
        """
        times = _times(times_s)
        result = {"blood": self.plasma_percent_id_per_ml(times) * self.body.plasma_volume_ml}
        masses = dict(self.body.organ_mass_g)
        masses["remainder"] = self.body.remainder_mass_g
        for tissue, mass_g in masses.items():
            result[tissue] = mass_g * (
                self._reversible(tissue, times) + self._irreversible(tissue, times)
            )
        whole_body = np.sum([result[k] for k in ("blood", *masses)], axis=0)
        result["whole_body"] = whole_body
        result["excreted"] = 100.0 - whole_body
        return result

    def whole_body_percent_id(self, times_s: ArrayLike) -> NDArray[np.float64]:
        """Activity retained in the body, %ID, shape ``(n_times,)``."""
        return self.organ_percent_id(times_s)["whole_body"]


def apply_physical_decay(
    values: ArrayLike, times_s: ArrayLike, nuclide_name: str
) -> NDArray[np.float64]:
    """Multiply biological values by the fraction of ``nuclide_name`` left at each time.

    activity(t) = biological(t) · :func:`immunopet.physics.decay_factor` (T½, t), with T½ from
    ICRP-107 (:func:`immunopet.physics.nuclide`). Beyond 1000 half-lives the factor is 0.

    Parameters
    ----------
    values : array_like of shape (n_times,)
        Biological (non-decayed) values, e.g. %ID/g.
    times_s : array_like of shape (n_times,)
        Seconds after injection.
    nuclide_name : str
        Any spelling :func:`immunopet.physics.nuclide` accepts.

    Returns
    -------
    ndarray of shape (n_times,)

    Examples
    --------
    >>> one_half_life_s = nuclide("Zr-89").half_life_s
    >>> round(float(apply_physical_decay([2.0], [one_half_life_s], "Zr-89")[0]), 9)
    1.0

    """
    times = _times(times_s)
    biological = np.asarray(values, dtype=np.float64)
    if biological.shape != times.shape:
        raise InputError(
            f"values have shape {biological.shape} but times have shape {times.shape}",
            field="values",
        )
    return biological * _decay_factors(nuclide(nuclide_name).half_life_s, times)


def _decay_factors(half_life_s: float, times: NDArray[np.float64]) -> NDArray[np.float64]:
    limit_s = _MAX_HALF_LIVES * half_life_s
    return np.fromiter(
        (decay_factor(half_life_s, float(t)) if t <= limit_s else 0.0 for t in times),
        dtype=np.float64,
        count=times.size,
    )


def decays_per_bq(model: TwoTissueVectorModel, nuclide_name: str) -> float:
    """Decays in the whole body per becquerel injected (time-integrated activity / A0), s.

    ∫₀^∞ (whole-body %ID(t)/100) · decay_factor(T½, t) dt, by the trapezoidal rule on a
    logarithmic grid of 4000 points from 1 s to 60 physical half-lives. This is the
    cumulated-activity coefficient (MIRD Ã/A0) of the whole body, the input of a dose estimate;
    multiply by 10⁶ for decays per MBq.

    Examples
    --------
    >>> model = TwoTissueVectorModel(vector_pharmacokinetics("igg"))
    >>> round(decays_per_bq(model, "Zr-89") / 3600)  # hours; 113 if nothing were excreted
    95

    """
    return organ_decays_per_bq(model, nuclide_name)["whole_body"]


def organ_decays_per_bq(model: TwoTissueVectorModel, nuclide_name: str) -> dict[str, float]:
    """Decays in each region per becquerel injected (Ã/A0 per region), s.

    The same integral as :func:`decays_per_bq` for each key of
    :meth:`TwoTissueVectorModel.organ_percent_id`: ``blood`` (the whole blood volume), the
    organs of :data:`MASS_BALANCE_ORGANS`, ``remainder`` (the rest of the body outside the
    blood) and ``whole_body``. Multiplied by the injected activity these are the time-integrated
    activities a MIRD dose calculation takes (the organ names are those of
    ``data/reference_organs.toml``).

    Examples
    --------
    >>> model = TwoTissueVectorModel(vector_pharmacokinetics("minibody"))
    >>> per_region = organ_decays_per_bq(model, "Zr-89")
    >>> parts = sum(v for k, v in per_region.items() if k != "whole_body")
    >>> round(parts / per_region["whole_body"], 9)
    1.0

    """
    half_life_s = nuclide(nuclide_name).half_life_s
    end_s = _INTEGRAL_HALF_LIVES * half_life_s
    times = np.concatenate(([0.0], np.geomspace(_FIRST_GRID_TIME_S, end_s, _INTEGRAL_POINTS)))
    decay = _decay_factors(half_life_s, times)
    regions = model.organ_percent_id(times)
    return {
        region: float(np.trapezoid(percent / 100.0 * decay, times))
        for region, percent in regions.items()
        if region != "excreted"
    }


def decays_per_mbq(model: TwoTissueVectorModel, nuclide_name: str) -> float:
    """Decays in the whole body per MBq injected (see :func:`decays_per_bq`)."""
    return decays_per_bq(model, nuclide_name) * BQ_PER_MBQ
