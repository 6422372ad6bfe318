"""Dose table of an analysed study: time-integrated activities, organ doses, effective dose.

:func:`dose_from_results` reads a ``results.json`` document and, for every injection imaged at
≥ 2 timepoints, returns (JSON-ready; keys in ``docs/kinetics.md``):

* **Time-integrated activity** per source organ and lesion
  (:func:`~immunopet.dosimetry.time_integrated_activity_bq_s`, MIRD Pamphlet 21): the activity
  present at each acquisition (not decay-corrected; :func:`immunopet.kinetics.curves_from_results`
  with ``decay_corrected=False``), the first value held back to the injection and physical
  decay only after the last one (``data/kinetics_analysis.toml [dose]``; both stated in the
  output, both err on the high side).
* **Source organs** are the organ VOIs that are regions of the reference phantoms
  (``[dose] source_organs``; a reference sphere stands in for a missing organ VOI: the liver
  sphere for the liver, the blood-pool sphere for the heart with its blood). An organ VOI is eroded by one voxel and may cover only part of the
  organ, so its activity is its mean concentration times the organ volume of the ICRP
  Publication 89 reference adults (mass/density of ``data/reference_organs.toml``, mean of the
  two sexes), the usual scaling of organ concentrations to a reference phantom.
* **Urinary bladder contents**: the organ VOI ``urinary_bladder`` (``data/urinary_bladder.toml
  [analysis]``) is found from the urinary uptake: it measures the urine, not the 50 g / 40 g
  wall. Its curve is the ``urinary_bladder_contents`` source (mean concentration × the 200 mL
  reference content volume, integrated as the organs: the scans sample the contents between
  voids, no voiding model is laid over them); the wall is a target, dosed by the contents
  through the ICRP 30 surface convention (:mod:`immunopet.dosimetry._mird`). Putting the same
  activity on the wall region would overstate the wall dose from it 7–9-fold (2·m_C/m_W ≈ 9
  for the non-penetrating part); leaving it in the rest of body (as before) understates it.
* **Rest of body**: the whole body's time-integrated activity minus the source organs'. The
  whole body comes, in this order, from a whole-body VOI of the results (``[dose]
  whole_body_vois``, its total activity integrated like an organ), from a biological
  whole-body retention half-life the caller states (Ã_WB = A₀/(λ_phys + λ_bio)), or else from
  no excretion at all (physical decay only: Ã_WB = A₀/λ_phys). The last is an upper bound: for
  ⁸⁹Zr-IgG with the published whole-body retention half-life (median 370 h, O'Donoghue 2018)
  it is 21 % above the true Ã_WB.
* **Absorbed dose per target organ** (:func:`~immunopet.dosimetry.estimate_dose`: MIRD schema,
  planning-grade specific absorbed fractions of spherical ICRP 89 organs) and the **ICRP 103
  effective dose**, per injection and in total, with the published effective doses of agents
  with the same nuclide beside them (``data/published_doses.toml``).
* **Lesion absorbed dose** by local deposition: all non-penetrating energy plus the photon
  energy a uniformly filled sphere of the lesion's volume absorbs (first-flight escape, soft
  tissue μ_en; :func:`~immunopet.dosimetry.sphere_absorbed_fraction`), divided by its mass (VOI
  volume × soft-tissue density). Cross-dose from organs to the lesion is not included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from typing import Any, Final, cast, get_args

import numpy as np

from immunopet.data import read_toml
from immunopet.dosimetry._budget import published_doses
from immunopet.dosimetry._effective import Sex
from immunopet.dosimetry._energy import energy_per_decay, joule_per_kev
from immunopet.dosimetry._mird import (
    REST_OF_BODY,
    URINARY_BLADDER_CONTENTS,
    _sphere_fraction,
    estimate_dose,
    reference_phantom,
)
from immunopet.dosimetry._tia import Head, Tail, time_integrated_activity_bq_s
from immunopet.errors import ImmunopetError, InputError
from immunopet.physics import decay_factor
from immunopet.units import G_PER_KG

__all__ = ["dose_from_results", "lesion_absorbed_dose_gy"]

_TABLE: Final = "kinetics_analysis.toml"
_SEXES: Final[tuple[Sex, ...]] = ("male", "female")


@cache
def _settings() -> dict[str, Any]:
    return dict(read_toml(_TABLE)["dose"])


@cache
def _contents_vois() -> tuple[str, ...]:
    """Organ VOIs that measure the urinary bladder contents (``data/urinary_bladder.toml``)."""
    return tuple(
        str(v) for v in read_toml("urinary_bladder.toml")["analysis"]["contents_vois"]["value"]
    )


def _reference_volume_ml(region: str) -> float:
    """Mean region volume of the two reference adults (ICRP 89; bladder contents 200 mL), mL."""
    volumes = []
    for sex in _SEXES:
        phantom = reference_phantom(sex)
        volumes.append(phantom.source_mass_g()[region] / phantom.source_density_g_per_ml()[region])
    return float(np.mean(volumes))


def lesion_absorbed_dose_gy(tia_bq_s: float, volume_ml: float, nuclide_name: str) -> float:
    """Mean absorbed dose of a lesion from its own activity (local deposition, sphere photons).

    Parameters
    ----------
    tia_bq_s : float
        Time-integrated activity in the lesion, Bq·s.
    volume_ml : float
        Lesion volume, mL (> 0).
    nuclide_name : str
        The radionuclide.

    Returns
    -------
    float
        Gy: Ã·[E_np + Σ_γ y·E·φ(E, R)]/m with φ the self-absorbed fraction of a soft-tissue
        sphere of the lesion's volume and m its mass.

    Examples
    --------
    1 MBq·h of ⁸⁹Zr in a 10 mL lesion: mostly its positrons (mean 396 keV, yield 22.7 %); a
    few percent of the 909 keV γ and annihilation photons stay in so small a sphere.

    >>> round(lesion_absorbed_dose_gy(3.6e9, 10.0, "Zr-89") * 1e3, 2)  # mGy
    8.35

    """
    energy = energy_per_decay(nuclide_name)
    density = reference_phantom("male").soft_tissue_density_g_per_ml
    mass_g = volume_ml * density
    j_per_kev = joule_per_kev()
    photons = sum(
        line.energy_kev
        * line.yield_per_decay
        * j_per_kev
        * _sphere_fraction(line.energy_kev, mass_g, density)
        for line in energy.photon_lines
    )
    return float(tia_bq_s * (energy.non_penetrating_j + photons) / (mass_g / G_PER_KG))


def _injection_dose(
    injection: Any,
    curves: list[Any],
    settings: Mapping[str, Any],
    whole_body_half_life_s: float | None,
) -> dict[str, Any]:
    head_name, tail_name = str(settings["head"]), str(settings["tail"])
    if head_name not in get_args(Head) or tail_name not in get_args(Tail):
        raise InputError(
            f"data/{_TABLE} [dose]: head {head_name!r} or tail {tail_name!r} is not a known method",
            field="dose",
        )
    head, tail = cast(Head, head_name), cast(Tail, tail_name)
    half_life_s = float(injection.half_life_s)
    physical_per_s = math.log(2.0) / half_life_s
    organs = {c.voi_id: c for c in curves if c.voi_type == "organ"}
    contents_vois = _contents_vois()
    chosen = []
    for region in settings["source_organs"]:
        substitute = settings.get("substitutes", {}).get(region)
        # A bladder VOI measures the urine: never a tissue region (the wall), only the contents.
        if region in organs and region not in contents_vois:
            chosen.append((region, organs[region]))
        elif substitute in organs and substitute not in contents_vois:
            chosen.append((region, organs[substitute]))
    contents = next((organs[voi] for voi in contents_vois if voi in organs), None)
    if contents is not None:
        chosen.append((URINARY_BLADDER_CONTENTS, contents))
    organ_rows, lesion_rows = [], []
    organ_tia: dict[str, float] = {}
    notes: list[str] = list(injection.warnings)
    total_activity = np.zeros(injection.time_s.size)
    for region, curve in chosen:
        volume_ml = _reference_volume_ml(region)
        activity = np.clip(curve.concentration_bq_per_ml, 0.0, None) * volume_ml
        tia = time_integrated_activity_bq_s(
            curve.time_s, activity, half_life_s=half_life_s, tail=tail, head=head
        )
        organ_tia[region] = tia
        total_activity[np.isin(injection.time_s, curve.time_s)] += activity
        organ_rows.append(
            {
                "region": region,
                "voi_id": curve.voi_id,
                "time_s": curve.time_s.tolist(),
                "activity_bq": activity.tolist(),
                "reference_volume_ml": volume_ml,
                "tia_bq_s": tia,
                "tiac_s": tia / injection.injected_activity_bq,
            }
        )
    present = injection.injected_activity_bq * np.array(
        [decay_factor(half_life_s, float(t)) for t in injection.time_s]
    )
    over = np.flatnonzero(total_activity > present)
    if over.size:
        notes.append(
            "the source organs hold more activity than was injected at "
            + ", ".join(injection.timepoint_ids[i] for i in over)
            + " (concentration × reference organ volume): check those measurements"
        )
    for curve in curves:
        if curve.voi_type == "lesion":
            activity = np.clip(np.nan_to_num(curve.activity_bq, nan=0.0), 0.0, None)
            volumes = curve.volume_ml[np.isfinite(curve.volume_ml) & (curve.volume_ml > 0)]
            tia = time_integrated_activity_bq_s(
                curve.time_s,
                activity,
                half_life_s=half_life_s,
                tail=tail,
                head=head,
            )
            volume = float(np.median(volumes)) if volumes.size else math.nan
            dose = (
                lesion_absorbed_dose_gy(tia, volume, injection.nuclide)
                if math.isfinite(volume)
                else None
            )
            lesion_rows.append(
                {
                    "voi_id": curve.voi_id,
                    "n_points": int(curve.time_s.size),
                    "time_s": curve.time_s.tolist(),
                    "activity_bq": activity.tolist(),
                    "volume_ml": volume if math.isfinite(volume) else None,
                    "tia_bq_s": tia,
                    "absorbed_dose_gy": dose,
                }
            )
    body = [c for c in curves if c.voi_type == "organ" and c.voi_id in settings["whole_body_vois"]]
    if body:
        activity = np.clip(np.nan_to_num(body[0].activity_bq, nan=0.0), 0.0, None)
        whole_body = time_integrated_activity_bq_s(
            body[0].time_s,
            activity,
            half_life_s=half_life_s,
            tail=tail,
            head=head,
        )
        whole_body_method = f"whole-body VOI {body[0].voi_id!r}, integrated as the organs"
    elif whole_body_half_life_s is not None:
        biological_per_s = math.log(2.0) / whole_body_half_life_s
        whole_body = injection.injected_activity_bq / (physical_per_s + biological_per_s)
        whole_body_method = (
            f"stated biological retention half-life {whole_body_half_life_s / 3600.0:g} h: "
            "A0/(lambda_phys + lambda_bio)"
        )
    else:
        whole_body = injection.injected_activity_bq / physical_per_s
        whole_body_method = "no excretion assumed (physical decay only): an upper bound"
    in_organs = sum(organ_tia.values())
    rest = whole_body - in_organs
    if rest < 0.0:
        notes.append(
            "the source organs hold more decays than the whole body retains with physical decay "
            "only: rest of body set to 0"
        )
        rest = 0.0
    estimate = estimate_dose({**organ_tia, REST_OF_BODY: rest}, injection.nuclide)
    per_bq = 1.0 / injection.injected_activity_bq
    return {
        **injection.to_dict(),
        "n_timepoints": int(injection.time_s.size),
        "method": {
            "activity": "activity at each acquisition (not decay-corrected)",
            "organ_activity": "VOI mean concentration × ICRP 89 reference organ volume (mean of "
            "the male and female reference adults)",
            "bladder": (
                f"VOI {contents.voi_id!r} = urinary bladder contents (urine): mean concentration × "
                f"reference content volume {_reference_volume_ml(URINARY_BLADDER_CONTENTS):g} mL, "
                "integrated as the organs; wall dose = half the contents' equilibrium dose "
                "(ICRP 30) + photons absorbed in the wall shell"
                if contents is not None
                else "no urinary bladder VOI: urine counted in the rest of body, wall dose = "
                "rest-of-body dose"
            ),
            "head": head,
            "tail": tail,
            "tia": "trapezoid between acquisitions; before the first: "
            + ("the first value held" if head == "constant" else "linear rise from 0")
            + "; after the last: "
            + {
                "physical": "physical decay only",
                "exponential": "mono-exponential through the last two points",
                "none": "nothing",
            }[tail],
            "whole_body": whole_body_method,
            "absorbed_dose": "MIRD schema, planning-grade spherical ICRP 89 phantoms "
            "(immunopet.dosimetry.estimate_dose)",
            "lesion_dose": "local deposition of non-penetrating energy + photon self-absorption "
            "in a sphere of the lesion volume; no cross-dose",
        },
        "source_regions": organ_rows,
        "rest_of_body_tia_bq_s": rest,
        "whole_body_tia_bq_s": whole_body,
        "lesions": lesion_rows,
        "absorbed_dose_gy": dict(estimate.organ_doses_gy),
        "highest_dose_organ": estimate.highest_dose_organ,
        "effective_dose_sv": estimate.effective_dose_sv,
        "effective_dose_sv_per_bq": estimate.effective_dose_sv * per_bq,
        "published": [entry.as_dict() for entry in published_doses(injection.nuclide)],
        "assumptions": list(estimate.assumptions),
        "sources": list(estimate.sources),
        "warnings": notes,
    }


def dose_from_results(
    document: Mapping[str, Any], *, whole_body_half_life_s: float | None = None
) -> dict[str, Any] | None:
    """The ``dosimetry`` section of a results document (module docstring), or None.

    Parameters
    ----------
    document : Mapping
        ``results.json`` as a mapping (``immunopet.kinetics.load_results_document``).
    whole_body_half_life_s : float, optional
        Biological whole-body retention half-life, s, used when the results hold no whole-body
        VOI. Default: none (no excretion; physical decay only, an upper bound).

    Returns
    -------
    dict or None
        ``{"injections": [...], "total_effective_dose_sv": float, "skipped": [...]}``
        in canonical units (Bq·s, Gy, Sv); None when no injection was imaged at ≥ 2 timepoints.

    Raises
    ------
    InputError
        For a malformed document.

    """
    from immunopet.kinetics import curves_from_results, injections_from_results

    if whole_body_half_life_s is not None and not (
        math.isfinite(whole_body_half_life_s) and whole_body_half_life_s > 0.0
    ):
        raise InputError(
            f"whole_body_half_life_s must be a positive number of seconds, got "
            f"{whole_body_half_life_s!r}",
            field="whole_body_half_life_s",
        )
    settings = _settings()
    curves = curves_from_results(document, decay_corrected=False)
    injections = []
    skipped = []
    for injection in injections_from_results(document):
        if injection.time_s.size < 2:
            continue
        members = [c for c in curves if c.injection.injection_id == injection.injection_id]
        try:
            injections.append(_injection_dose(injection, members, settings, whole_body_half_life_s))
        except ImmunopetError as error:
            skipped.append({"injection_id": injection.injection_id, "reason": str(error)})
    if not injections:
        return None
    return {
        "injections": injections,
        "total_effective_dose_sv": float(sum(i["effective_dose_sv"] for i in injections)),
        "skipped": skipped,
    }
