"""Voxel-level absorbed dose by local deposition of the non-penetrating energy.

Each voxel is its own source and target (the "local energy deposition" method; Sanchez-Garcia
M et al., Med Phys 2014;41:112503; Dewaraja YK et al., MIRD Pamphlet No. 23, J Nucl Med
2012;53:1310–1325, §"Local deposition"):

    D(v) = Ã(v) · E_np / (ρ · V_v) = ã(v) · E_np / ρ,

with ã(v) the time-integrated activity *concentration* of the voxel (Bq·s/mL), E_np the energy
per decay of the electrons and positrons (β⁻ and β⁺ kinetic energy, internal-conversion and
Auger electrons; ICRP-107 through :func:`~immunopet.dosimetry.energy_per_decay`) and ρ the
soft-tissue density of the dosimetry data (``data/reference_organs.toml``,
``soft_tissue_density_g_per_ml``, the density :func:`~immunopet.dosimetry.lesion_absorbed_dose_gy`
uses).

* **Time integration** per voxel follows the conventions of
  :func:`~immunopet.dosimetry.time_integrated_activity_bq_s` (MIRD Pamphlet 21), vectorised
  over the volume: the first value held back to the injection (``head="constant"``) or a linear
  rise from 0 (``"linear"``), trapezoids between the acquisitions, and after the last one
  physical decay only (``tail="physical"``: ã(tₙ)/λₚ), the mono-exponential through the last two
  points where it declines faster than physical decay (``"exponential"``, rate
  max(ln(a₍ₙ₋₁₎/aₙ)/Δt, λₚ) per voxel), or nothing (``"none"``).
* **Grid.** All timepoints must lie on one grid: register and resample them onto one reference
  (``immunopet.lesions.register_ct``, :func:`immunopet.image.resample_to`) before calling.
* **Photons are ignored** by local deposition: their mean free paths (≈ 10 cm at 511 keV) are
  far longer than a voxel. For a VOI, :func:`lesion_dose_statistics` adds the self-dose of the
  photons a uniformly filled sphere of the VOI's volume absorbs (the model of
  :func:`~immunopet.dosimetry.lesion_absorbed_dose_gy`); cross-dose from outside is not included.
* **Where it holds.** Local deposition is accurate when the charged-particle ranges are short
  compared with the voxel (⁸⁹Zr positrons: mean range ≈ 1.3 mm in water, against PET voxels of
  2–4 mm); for energetic β emitters (⁹⁰Y: mean range ≈ 2.5 mm, maximum 11 mm) a dose-point
  kernel is needed (not implemented).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from immunopet.dosimetry._energy import low_let_energy_per_decay
from immunopet.dosimetry._mird import reference_phantom
from immunopet.dosimetry._results import lesion_absorbed_dose_gy
from immunopet.dosimetry._tia import Head, Tail
from immunopet.errors import GeometryError, InputError, TimingError
from immunopet.image import Quantity, Volume
from immunopet.physics import decay_factor, nuclide
from immunopet.units import G_PER_KG

__all__ = ["VoxelDose", "lesion_dose_statistics", "voxel_absorbed_dose"]

#: Dose-volume points reported by :func:`lesion_dose_statistics`: D_x for these x, percent.
DVH_PERCENTS: Final = (90, 50, 10)

ASSUMPTIONS: Final = (
    "local deposition: the electrons' and positrons' energy (β±, conversion and Auger "
    "electrons; ICRP-107) is absorbed in the voxel of the decay",
    "photons ignored at voxel level (VOI statistics add the self-absorbed photon energy of a "
    "sphere of the VOI's volume)",
    "one tissue density for every voxel: soft tissue, data/reference_organs.toml",
    "activity concentrations of all timepoints on one registered grid",
    "radioactive progeny not followed",
)


@dataclass(frozen=True)
class VoxelDose:
    """Absorbed dose per voxel by local deposition (result of :func:`voxel_absorbed_dose`).

    Parameters
    ----------
    dose_gy : ndarray of shape (n_slices, n_rows, n_columns)
        Absorbed dose, Gy (float64).
    tia_bq_s_per_ml : ndarray of shape (n_slices, n_rows, n_columns)
        Time-integrated activity concentration, Bq·s/mL (decays per mL).
    affine : ndarray of shape (4, 4)
        Index-to-LPS affine of the grid, mm (that of the input volumes).
    nuclide : str
        Canonical nuclide name.
    times_s : tuple of float
        Acquisition times after injection, s.
    head, tail : str
        Time-integration conventions used (module docstring).
    non_penetrating_j_per_decay : float
        E_np, J per decay.
    density_g_per_ml : float
        Tissue density, g/mL.
    n_negative_voxels : int
        Voxel values below 0 (image noise) that were set to 0, over all timepoints.
    n_fitted_tail_voxels : int
        Voxels whose tail used a fitted rate faster than physical decay (``tail="exponential"``).

    """

    dose_gy: npt.NDArray[np.float64] = field(repr=False)
    tia_bq_s_per_ml: npt.NDArray[np.float64] = field(repr=False)
    affine: npt.NDArray[np.float64] = field(repr=False)
    nuclide: str
    times_s: tuple[float, ...]
    head: Head
    tail: Tail
    non_penetrating_j_per_decay: float
    density_g_per_ml: float
    n_negative_voxels: int
    n_fitted_tail_voxels: int

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel, mL."""
        return self.as_volume().voxel_volume_ml

    def as_volume(self) -> Volume:
        """The dose map as a Volume for writers (quantity UNITLESS; values in Gy, in metadata)."""
        return Volume(
            self.dose_gy,
            self.affine,
            Quantity.UNITLESS,
            metadata={"parameter": "absorbed_dose_gy", "unit": "Gy", "nuclide": self.nuclide},
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description of the method and inputs (no arrays)."""
        return {
            "nuclide": self.nuclide,
            "time_s": list(self.times_s),
            "head": self.head,
            "tail": self.tail,
            "non_penetrating_j_per_decay": self.non_penetrating_j_per_decay,
            "density_g_per_ml": self.density_g_per_ml,
            "voxel_volume_ml": self.voxel_volume_ml,
            "n_negative_voxels": self.n_negative_voxels,
            "n_fitted_tail_voxels": self.n_fitted_tail_voxels,
            "method": "local deposition of non-penetrating energy (MIRD Pamphlet 23)",
            "assumptions": list(ASSUMPTIONS),
        }


def _checked_inputs(
    volumes: Sequence[Volume],
    times_s: Sequence[float] | np.ndarray,
    decay_reference_s: Sequence[float | None] | None,
) -> tuple[np.ndarray, list[float | None]]:
    if len(volumes) == 0 or len(volumes) != len(times_s):
        raise InputError(
            f"need one acquisition time per volume, got {len(volumes)} volumes and "
            f"{len(times_s)} times",
            field="times_s",
        )
    times = np.asarray(times_s, dtype=float)
    if not np.all(np.isfinite(times)) or times[0] < 0.0 or np.any(np.diff(times) <= 0.0):
        raise TimingError(
            "times_s must be finite, non-negative and strictly increasing",
            field="times_s",
            hint=f"got {times.tolist()}",
        )
    references: list[float | None] = (
        [None] * len(volumes) if decay_reference_s is None else list(decay_reference_s)
    )
    if len(references) != len(volumes):
        raise InputError(
            f"decay_reference_s has {len(references)} entries for {len(volumes)} volumes",
            field="decay_reference_s",
        )
    first = volumes[0]
    for index, (volume, reference) in enumerate(zip(volumes, references, strict=True)):
        if volume.quantity is not Quantity.ACTIVITY_CONCENTRATION:
            raise InputError(
                f"volume {index} holds {volume.quantity.value}, not activity concentration (Bq/mL)",
                path=volume.source,
                field="activity",
                hint="pass the PET in Bq/mL, not SUV",
            )
        if not volume.same_grid(first):
            raise GeometryError(
                f"volume {index} is not on the grid of volume 0 ({volume.shape} vs {first.shape})",
                path=volume.source,
                field="activity",
                hint="register the timepoints and resample them onto one grid first "
                "(immunopet.image.resample_to)",
            )
        if volume.timing is not None and volume.timing.decay_corrected and reference is None:
            raise TimingError(
                f"volume {index} is decay-corrected, and decay_reference_s does not say to when",
                path=volume.source,
                field="decay_reference_s",
                hint="pass the decay reference time after injection, s (0 for ADMIN)",
            )
        if (
            volume.timing is not None
            and not volume.timing.decay_corrected
            and reference is not None
        ):
            raise TimingError(
                f"volume {index} is not decay-corrected, yet decay_reference_s gives {reference}",
                path=volume.source,
                field="decay_reference_s",
            )
        if reference is not None and not math.isfinite(reference):
            raise TimingError(f"decay_reference_s[{index}] must be finite, got {reference}")
    return times, references


def _present_activity(
    volume: Volume, scale: float, index: int
) -> tuple[npt.NDArray[np.float64], int]:
    """Bq/mL present at acquisition (float64 copy), negatives set to 0, and their count."""
    values = np.multiply(volume.array, scale, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError(
            f"volume {index} holds NaN or infinite values",
            path=volume.source,
            field="activity",
            hint="fill voxels outside the field of view with 0",
        )
    negative = values < 0.0
    n_negative = int(np.count_nonzero(negative))
    if n_negative:
        values[negative] = 0.0
    return values, n_negative


def voxel_absorbed_dose(
    activity: Sequence[Volume],
    times_s: Sequence[float] | np.ndarray,
    nuclide_name: str,
    *,
    tail: Tail = "physical",
    head: Head = "constant",
    decay_reference_s: Sequence[float | None] | None = None,
) -> VoxelDose:
    """Absorbed dose per voxel from activity-concentration images (local deposition).

    Parameters
    ----------
    activity : sequence of Volume, length N
        Activity concentration (``Quantity.ACTIVITY_CONCENTRATION``, Bq/mL) at each timepoint,
        all on one grid of shape (n_slices, n_rows, n_columns): register and resample the
        timepoints onto one reference first. Negative voxels (noise) are set to 0 and counted.
    times_s : sequence of float, length N
        Acquisition time of each volume after the injection, s (mid-frame); strictly increasing.
    nuclide_name : str
        The radionuclide, e.g. ``"Zr-89"``.
    tail : {"physical", "exponential", "none"}
        After the last acquisition (module docstring; as
        :func:`~immunopet.dosimetry.time_integrated_activity_bq_s`).
    head : {"constant", "linear"}
        Before the first acquisition (idem).
    decay_reference_s : sequence of (float or None), optional
        Per volume, the time after injection its values are decay-corrected to (0 for DICOM
        Decay Correction ADMIN, the series start for START), or None for values not
        decay-corrected. Default: none is decay-corrected. The activity present at the
        acquisition is the value × 2^(−(t − t_ref)/T½).

    Returns
    -------
    VoxelDose
        ``dose_gy`` = ã · E_np / ρ per voxel, with ã in Bq·s/mL.

    Raises
    ------
    InputError
        Wrong quantity, non-finite values, unknown ``tail``/``head``, mismatched lengths.
    GeometryError
        Volumes not on one grid.
    TimingError
        Times not increasing, or decay correction not stated consistently.
    NuclideError
        For α, fission or neutron emitters (progeny and w_R not handled here).

    Examples
    --------
    1 MBq·h/mL of ⁸⁹Zr decays deposits its 101.9 keV of electrons and positrons per decay:

    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> half_life_s = 78.41 * 3600.0
    >>> a0 = 3.6e9 * np.log(2.0) / half_life_s  # Bq/mL at t = 0 whose Ã/mL is 3.6e9 Bq·s/mL
    >>> volume = Volume(np.full((2, 2, 2), a0), np.eye(4), Quantity.ACTIVITY_CONCENTRATION)
    >>> dose = voxel_absorbed_dose([volume], [0.0], "Zr-89")
    >>> round(float(dose.dose_gy[0, 0, 0]) * 1e3, 1)  # mGy: 3.6e9 × 101.9 keV / 1 g
    58.8

    """
    if tail not in ("physical", "exponential", "none"):
        raise InputError(f"tail must be 'physical', 'exponential' or 'none', got {tail!r}")
    if head not in ("constant", "linear"):
        raise InputError(f"head must be 'constant' or 'linear', got {head!r}")
    energy = low_let_energy_per_decay(nuclide_name, model="voxel dose")
    half_life_s = nuclide(energy.nuclide).half_life_s
    physical_per_s = math.log(2.0) / half_life_s
    times, references = _checked_inputs(activity, times_s, decay_reference_s)

    def present(index: int) -> tuple[npt.NDArray[np.float64], int]:
        reference = references[index]
        scale = 1.0 if reference is None else decay_factor(half_life_s, times[index] - reference)
        return _present_activity(activity[index], scale, index)

    # Ã per mL, accumulated one timepoint at a time (memory: three float64 arrays).
    previous, n_negative = present(0)
    tia = previous * (float(times[0]) * (0.5 if head == "linear" else 1.0))
    before_last = previous
    for index in range(1, times.size):
        current, negatives = present(index)
        n_negative += negatives
        trapezoid = previous + current
        trapezoid *= 0.5 * float(times[index] - times[index - 1])
        tia += trapezoid
        before_last, previous = previous, current
    last = previous
    n_fitted = 0
    if tail == "physical":
        tia += last / physical_per_s
    elif tail == "exponential":
        rate_per_s = np.full(last.shape, physical_per_s)
        if times.size >= 2:
            fitted = (before_last > 0.0) & (last > 0.0)
            fitted_per_s = np.log(before_last[fitted] / last[fitted]) / float(times[-1] - times[-2])
            faster = fitted_per_s > physical_per_s
            n_fitted = int(np.count_nonzero(faster))
            rate_per_s[fitted] = np.maximum(fitted_per_s, physical_per_s)
        tia += last / rate_per_s
    density_g_per_ml = reference_phantom("male").soft_tissue_density_g_per_ml
    dose = tia * (energy.non_penetrating_j / (density_g_per_ml / G_PER_KG))
    return VoxelDose(
        dose_gy=dose,
        tia_bq_s_per_ml=tia,
        affine=np.array(activity[0].affine),
        nuclide=energy.nuclide,
        times_s=tuple(float(t) for t in times),
        head=head,
        tail=tail,
        non_penetrating_j_per_decay=energy.non_penetrating_j,
        density_g_per_ml=density_g_per_ml,
        n_negative_voxels=n_negative,
        n_fitted_tail_voxels=n_fitted,
    )


def _dose_at_volume_percent(descending_gy: np.ndarray, percent: float) -> float:
    """D_x: the highest dose d that at least x % of the voxels receive (d ≤ their dose)."""
    count = max(1, math.ceil(round(percent * descending_gy.size / 100.0, 9)))
    return float(descending_gy[count - 1])


def lesion_dose_statistics(
    dose: VoxelDose,
    mask: Volume | npt.NDArray[np.bool_],
    *,
    dose_levels_gy: Sequence[float] = (),
) -> dict[str, Any]:
    """Dose statistics of one VOI of a voxel dose map, JSON-ready.

    Parameters
    ----------
    dose : VoxelDose
        From :func:`voxel_absorbed_dose`.
    mask : Volume or ndarray of bool, shape (n_slices, n_rows, n_columns)
        The VOI on the dose grid (a mask Volume is checked against the grid).
    dose_levels_gy : sequence of float, optional
        Dose levels d for the volume points V(d): the fraction of the VOI receiving ≥ d.

    Returns
    -------
    dict
        ``n_voxels``, ``volume_ml``, ``tia_bq_s`` (Ã of the VOI), ``mean_gy``, ``min_gy``,
        ``max_gy``, ``d90_gy``, ``d50_gy``, ``d10_gy`` (D_x: the highest dose that at least x %
        of the VOI's volume receives; sorted voxel doses d₍₁₎ ≥ … ≥ d₍ₙ₎ give
        D_x = d₍ₖ₎, k = ⌈x·n/100⌉), ``v_gy`` (list of ``{dose_gy, volume_fraction,
        volume_ml}``), ``photon_self_dose_gy`` (the VOI's photon self-dose as a uniform sphere
        of its volume, :func:`~immunopet.dosimetry.lesion_absorbed_dose_gy` minus its
        non-penetrating part, which equals ``mean_gy``), ``mean_with_photons_gy`` and
        ``method``. Doses in Gy.

    Raises
    ------
    InputError
        Empty mask or wrong shape; a non-finite or negative dose level.
    GeometryError
        A mask Volume on another grid.

    Examples
    --------
    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> volume = Volume(np.full((1, 2, 5), 1.0e3), np.eye(4), Quantity.ACTIVITY_CONCENTRATION)
    >>> dose = voxel_absorbed_dose([volume], [0.0], "Zr-89")
    >>> stats = lesion_dose_statistics(dose, np.ones((1, 2, 5), bool), dose_levels_gy=[0.0])
    >>> stats["n_voxels"], stats["v_gy"][0]["volume_fraction"], stats["d90_gy"] == stats["mean_gy"]
    (10, 1.0, True)

    """
    if isinstance(mask, Volume):
        if not mask.same_grid(dose.as_volume()):
            raise GeometryError(
                f"the mask's grid {mask.shape} differs from the dose grid {dose.dose_gy.shape}",
                path=mask.source,
                field="mask",
                hint="resample the mask onto the dose grid (nearest neighbour)",
            )
        selected = np.asarray(mask.array, dtype=bool)
    else:
        selected = np.asarray(mask, dtype=bool)
    if selected.shape != dose.dose_gy.shape:
        raise InputError(
            f"mask shape {selected.shape} differs from the dose grid {dose.dose_gy.shape}",
            field="mask",
        )
    levels = [float(level) for level in dose_levels_gy]
    if any(not math.isfinite(level) or level < 0.0 for level in levels):
        raise InputError(
            f"dose_levels_gy must be finite and ≥ 0, got {levels}", field="dose_levels_gy"
        )
    values = dose.dose_gy[selected]
    if values.size == 0:
        raise InputError("the VOI mask is empty", field="mask")
    descending = np.sort(values)[::-1]
    voxel_ml = dose.voxel_volume_ml
    volume_ml = values.size * voxel_ml
    mean_gy = float(np.mean(values))
    tia_bq_s = float(np.sum(dose.tia_bq_s_per_ml[selected])) * voxel_ml
    with_photons = lesion_absorbed_dose_gy(tia_bq_s, volume_ml, dose.nuclide)
    v_points = []
    for level in levels:
        fraction = float(np.count_nonzero(values >= level)) / values.size
        v_points.append(
            {"dose_gy": level, "volume_fraction": fraction, "volume_ml": fraction * volume_ml}
        )
    return {
        "n_voxels": int(values.size),
        "volume_ml": volume_ml,
        "tia_bq_s": tia_bq_s,
        "mean_gy": mean_gy,
        "min_gy": float(descending[-1]),
        "max_gy": float(descending[0]),
        **{
            f"d{percent}_gy": _dose_at_volume_percent(descending, percent)
            for percent in DVH_PERCENTS
        },
        "v_gy": v_points,
        "photon_self_dose_gy": max(with_photons - mean_gy, 0.0),
        "mean_with_photons_gy": max(with_photons, mean_gy),
        "method": "voxel local deposition (non-penetrating energy); photon self-dose of a "
        "uniform soft-tissue sphere of the VOI's volume added to the mean only",
    }
