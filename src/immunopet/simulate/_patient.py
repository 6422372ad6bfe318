"""One virtual patient from a scenario to files: DICOM PET/CT, label map and ``truth.json``.

Folder layout (under ``out_dir``; ``<day>`` is the day after infusion of a visit's first
acquisition, e.g. ``day+007.00``; acquisitions within 12 h of it share the visit's CT)::

    truth.json                       patient, every scan's truth, events, what was skipped
    study.yaml                       the manifest a site would write (no ground truth)
    <day>/CT/IMG0001.dcm …           one CT series per timepoint (the phantom's HU)
    derivatives/truth/<day>/labels.nii.gz   integer label map of that visit (uint8, Quantity
                                     UNITLESS; ids in truth.json "timepoints"[…]["labels"])
    derivatives/truth/<day>/labels_seg.dcm  the same labels as a DICOM SEG referencing the CT
                                     (ground truth stays out of the image folders: the
                                     analysis's discovery never reads derivatives/truth)
    <day>/<tracer>_PT/IMG0001.dcm …  one PET series per scan (Bq/mL, decay correction START)

True activity concentration of a label at the scan start (Bq/mL)::

    C = %ID/g(tissue, t) / 100 × A_inj × 1 g/mL × 2^(−t/T½) × (M_ref / M) × inflammation factor

with ``t`` the time since injection, %ID/g the *biological* curve of
:class:`~immunopet.tracers.TwoTissueVectorModel` for its reference body of mass M_ref, scaled to
the patient's body mass M so that the SUV is kept (first-order allometric scaling, ASSUMED; this
is what makes the human-derived curves usable in a mouse), and this label → model-tissue mapping
(:data:`TISSUE_OF_LABEL`): liver, spleen and kidneys map to themselves; heart (blood pool)
to blood; muscle, fat, red marrow, lungs, brain, lymph nodes, stomach and urinary bladder to the
muscle-like remainder (the model has no such tissues); air is 0; lesions use the tumour
curve of a model whose antigen density is the lesion's antigens per cell of the tracer's
target on that day divided by :data:`REFERENCE_ANTIGENS_PER_CELL` (0 when the lesion does
not carry the target: non-specific uptake only). Tissue density is taken as 1 g/mL.

¹⁸F-FDG does not follow the vector model: each label gets the typical SUVbw of
``data/fdg_uptake.toml`` (about 60 min after injection; the heart label takes the blood-pool
value) and each lesion its scenario ``fdg_suv`` on the scan day, converted with the SUVbw
definition (tissue density 1 g/mL)::

    C = SUV × A_inj × 2^(−t/T½) / (body weight in g) × inflammation factor

with the body weight written to the DICOM header, so that a reader's SUVbw gives back the
table's value (before resolution and partial-volume effects).

Cell-label tracers with a direct PET label (e.g. ⁸⁹Zr-oxine) follow the infused cells of
:mod:`immunopet.simulate._cells`: the tracer's activity is the label bound to the cells at
infusion; on the scan day the cell-bound label of each site plus the free label (efflux, dead
cells; liver and spleen) is spread uniformly over that phantom label (activity / volume). Sites
and lesions the phantom lacks, and the ``muscle`` site (rest of the body), are spread over
every tissue label that is not a cell site. Every timepoint lists the live CAR T cells per site
and per lesion (``"live_car_t_cells"``).

Reporter genes: the probe not taken up by reporter cells follows the small-molecule
pharmacokinetics, and each live CAR T cell holds ``reporter_uptake_bq_per_cell`` at the scan
when the cells are few (many cells share the injected probe, see below).
Antigen on normal tissue (on-target, off-tumour) and CAR T cells carrying a T-cell marker the
tracer targets (CD8, granzyme B, ICOS: ``data/t_cell_markers.toml``) add the specific part of
the tumour curve at their antigen density to the organ (truth key ``organ_antigen_density``).

Mass balance: the body never holds more than the injected activity decayed to the scan.
The vector model treats the tumour as a negligible sink; whole organs carrying the target
(liver bile ducts, marrow and nodes holding 10¹² CD8⁺ CAR T cells) are not. Every label's
specific trapping, and the reporter cells' probe uptake, is therefore a clearance added to
plasma elimination (two-compartment micro-constants, :func:`_with_sink`), and every curve is
that of the depleted plasma (truth key ``specific_sink``: the clearance in the model's reference
body, mL/h, and the specific uptake per unit antigen density relative to no sink). Where the
typical normal-tissue values plus lesions and inflamed organs would still exceed the injected
activity (FDG of a light patient with bulky disease), the normal tissues give up the excess in
proportion (truth key ``normal_tissue_scale``, 1 when not needed; :func:`_conserved`).

Not simulated yet (listed in ``truth.json`` under ``"not_simulated"`` with the reason): SPECT
cell labels and scanners, cell labels imaged before the infusion, vector formats without
pharmacokinetics, and lesion sites, normal tissues and inflamed organs the phantom has no
place for. ``truth.json`` lists under ``"approximations"`` where a scenario item was mapped
onto a coarser phantom label (e.g. a node station's inflammation onto every node).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import DecayCorrection, Quantity
from immunopet.io._atomic import atomic_directory, atomic_path
from immunopet.io.dicom._seg import write_label_seg
from immunopet.io.dicom._write import (
    PetSeriesSpec,
    StudyIdentity,
    write_ct_series,
    write_pet_series,
)
from immunopet.io.discovery import is_fdg
from immunopet.io.manifest import write_manifest
from immunopet.io.nifti import write_nifti
from immunopet.physics import decay_factor, nuclide
from immunopet.planning import DirectLabel, ReporterLabel, scanner
from immunopet.planning._cells import cell_label, resolve_cell_label
from immunopet.simulate._anatomy import LesionSpec, Phantom, anatomy_sites, build_phantom
from immunopet.simulate._cells import (
    direct_label_activity,
    live_cells_by_site,
    reporter_activity,
)
from immunopet.simulate._manifest import manifest_for_simulated_patient
from immunopet.simulate._scanner import PetSystem
from immunopet.simulate._scenario import (
    PatientLesion,
    PatientSpec,
    PatientTracer,
    Scan,
    series_value,
)
from immunopet.tracers import VectorFormat
from immunopet.tracers._pharmacokinetics import (
    TwoTissueVectorModel,
    VectorPharmacokinetics,
    pharmacokinetic_formats,
    vector_pharmacokinetics,
)
from immunopet.units import G_PER_KG, S_PER_HOUR

__all__ = [
    "FRAME_DURATION_S",
    "REFERENCE_ANTIGENS_PER_CELL",
    "TISSUE_OF_LABEL",
    "simulate_patient",
]

#: Antigens per cell of the pharmacokinetic table's reference tumour (antigen density 1.0).
#: ASSUMED: 5000, the order of CD19 on B-cell lymphoma used by the built-in scenarios.
REFERENCE_ANTIGENS_PER_CELL: Final = 5000.0
#: Duration of each PET acquisition (one frame over the whole field), s. ASSUMED convention.
FRAME_DURATION_S: Final = 300.0
#: Acquisitions within this many days of a visit's first one share its CT (ASSUMED: 12 h).
VISIT_WINDOW_D: Final = 0.5
#: Pharmacokinetic tissue of each phantom tissue label (lesions use ``"tumour"``; air is 0).
TISSUE_OF_LABEL: Final[Mapping[str, str]] = {
    "liver": "liver",
    "spleen": "spleen",
    "kidneys": "kidneys",
    "heart": "blood",
    "muscle": "muscle",
    "fat": "muscle",
    "red_marrow": "muscle",
    "lungs": "muscle",
    "brain": "muscle",
    "lymph_node": "muscle",
    "urinary_bladder": "muscle",
    "stomach": "muscle",
}
#: Scenario organ names that are a phantom label under another name.
_ORGAN_ALIASES: Final[Mapping[str, str]] = {"bone_marrow": "red_marrow", "kidney": "kidneys"}
#: Scenario lesion sites placed at a phantom site of another name.
_SITE_ALIASES: Final[Mapping[str, str]] = {
    "bone_marrow": "spine",
    "bone_marrow_pelvis": "pelvis_right",
}
_TISSUE_DENSITY_G_PER_ML: Final = 1.0
_SEX_CODE: Final[Mapping[str, str]] = {"female": "F", "male": "M"}


@dataclass(frozen=True)
class _Acquisition:
    tracer: PatientTracer
    scan: Scan
    day: float
    delay_h: float


def _visits(acquisitions: list[_Acquisition]) -> dict[int, float]:
    """The visit (day of its first acquisition) of each acquisition, keyed by ``id``.

    Acquisitions (sorted by day) within :data:`VISIT_WINDOW_D` of a visit's first one belong
    to that visit: one phantom, one CT and one study for, e.g., FDG and an immuno-PET tracer
    imaged on the same morning.
    """
    visit_of: dict[int, float] = {}
    current: float | None = None
    for acquisition in acquisitions:
        if current is None or acquisition.day - current > VISIT_WINDOW_D:
            current = acquisition.day
        visit_of[id(acquisition)] = current
    return visit_of


def _day_folder(day: float) -> str:
    return f"day{day:+07.2f}"


def _at_second(when: datetime) -> datetime:
    """Round to the whole second (DICOM times are written to the second)."""
    return (when + timedelta(microseconds=500_000)).replace(microsecond=0)


def _lesion_diameter_mm(lesion: PatientLesion, day: float) -> float:
    if lesion.appears_day is not None and day < lesion.appears_day:
        return 0.0
    return lesion.diameter_mm * series_value(lesion.relative_size, day)


def _resolve_site(site: str, sites: Collection[str]) -> str | None:
    """The phantom site for a scenario site; None if there is none.

    Tried in turn: the site, its alias, its right then left station, then the same with
    trailing words dropped (``lung_left_upper_lobe`` → ``lung_left``).
    """
    words = site.split("_")
    for end in range(len(words), 0, -1):
        stem = "_".join(words[:end])
        for candidate in (stem, _SITE_ALIASES.get(stem, ""), f"{stem}_right", f"{stem}_left"):
            if candidate in sites:
                return candidate
    return None


def _organ_label(name: str) -> str:
    """The phantom label of a scenario organ name (node stations share ``lymph_node``)."""
    name = _ORGAN_ALIASES.get(name, name)
    return "lymph_node" if name.endswith("lymph_node") or "_lymph_node_" in name else name


def _is_fdg(tracer: PatientTracer) -> bool:
    return is_fdg(tracer.agent)


def _skip_reason(tracer: PatientTracer, scan: Scan, day: float) -> str | None:
    if _is_fdg(tracer):
        if scanner(scan.scanner).modality != "PET":
            return f"scanner {scan.scanner} is not PET (SPECT not implemented yet)"
        return None
    if tracer.cell_label is not None:
        try:
            label, _ = resolve_cell_label(
                cell_label(tracer.cell_label), bq_per_cell=tracer.reporter_uptake_bq_per_cell
            )
        except InputError as error:
            return f"cell label {tracer.cell_label}: {error}"
        if not isinstance(label, DirectLabel):
            return None
        if day < 0.0:
            return "labelled cells are imaged from the infusion on"
        return None
    if tracer.vector_format not in pharmacokinetic_formats():
        return f"vector format {tracer.vector_format.value} has no pharmacokinetics"
    if scanner(scan.scanner).modality != "PET":
        return f"scanner {scan.scanner} is not PET (SPECT not implemented yet)"
    return None


def _inflammation_factor(
    patient: PatientSpec, label: str, tracer: PatientTracer, day: float
) -> float:
    factor = 1.0
    for item in patient.inflammation:
        organ = _organ_label(item.organ)
        if organ != label or not item.start_day <= day <= item.end_day:
            continue
        if item.tracers and tracer.key not in item.tracers:
            continue
        factor *= item.uptake_factor
    return factor


def _t_cell_marker(target: str) -> float | None:
    """Copies per CAR T cell of a T-cell marker target (``data/t_cell_markers.toml``)."""
    markers: Mapping[str, Mapping[str, Any]] = read_toml("t_cell_markers.toml")["markers"]
    for name, entry in markers.items():
        if name.lower() == target.lower():
            return float(entry["antigens_per_car_t_cell"])
    return None


def _car_t_antigens_per_cell(
    patient: PatientSpec, phantom: Phantom, target: str, day: float
) -> dict[str, float]:
    """Antigens per tissue cell each label gets from the live CAR T cells in it (T-cell targets).

    Zero everywhere for targets that are not T-cell markers and before the infusion.
    """
    per_car_t = _t_cell_marker(target)
    if per_car_t is None or day < 0.0:
        return {}
    cells_per_ml = float(read_toml("t_cell_markers.toml")["tissue"]["cells_per_ml"])
    found: dict[str, float] = {}
    for site, cells in live_cells_by_site(patient, [day]).items():
        volume_ml = phantom.volume_ml.get(site, 0.0)
        if volume_ml > 0.0 and site != "muscle":
            found[site] = float(cells[0]) * per_car_t / (volume_ml * cells_per_ml)
    return found


def _is_pd_l1(target: str | None) -> bool:
    """Whether a tracer's target is PD-L1 (CD274), however it is spelled."""
    if target is None:
        return False
    return target.replace("-", "").replace(" ", "").upper() in {"PDL1", "CD274"}


def _normal_antigens_per_cell(patient: PatientSpec, target: str, day: float) -> dict[str, float]:
    """Antigens per cell of ``target`` on normal tissues (on-target, off-tumour), by label."""
    found: dict[str, float] = {}
    for tissue in patient.normal_tissues:
        series = tissue.antigens_per_cell.get(target)
        if series is not None:
            label = _organ_label(tissue.site)
            found[label] = found.get(label, 0.0) + series_value(series, day)
    return found


@dataclass(frozen=True)
class _Uptake:
    """True activity of a vector-pharmacokinetic scan (see :func:`_concentrations`).

    Attributes
    ----------
    concentration : dict of str to float
        Bq/mL of every label at the scan start.
    density : dict of str to float
        Relative antigen density of every lesion and of the normal labels carrying the target.
    sink_clearance_ml_per_s : float
        Plasma clearance of the specific binding, mL/s, in the model's reference body.
    uptake_factor : float
        Specific uptake per unit antigen density with the sink over that without it (≤ 1).

    """

    concentration: dict[str, float]
    density: dict[str, float]
    sink_clearance_ml_per_s: float
    uptake_factor: float


def _with_sink(
    parameters: VectorPharmacokinetics, sink_clearance_ml_per_s: float
) -> VectorPharmacokinetics:
    """The format's pharmacokinetics with an extra irreversible plasma clearance (a target sink).

    The plasma biexponential is that of a two-compartment model with micro-constants k12, k21,
    k10 (:attr:`TwoTissueVectorModel.micro_constants_per_s`, Gibaldi & Perrier 1982, ch. 2).
    Specific binding trapping ``CL_s`` mL/s of plasma adds ``CL_s / V_plasma`` to k10; the
    exponents become the roots of ``λ² − (k12 + k21 + k10′)·λ + k21·k10′ = 0`` and the α
    fraction of a bolus into the central compartment ``(λ_α − k21)/(λ_α − λ_β)``. The directly
    excreted share of elimination is rewritten so that ``(1 − f_excr)·k10`` and hence every
    organ's and the remainder's trapping stay as tabulated: the model counts the sink as
    activity leaving its body, and the caller puts it in the labels that carry the target.

    Parameters
    ----------
    parameters : VectorPharmacokinetics
        The tabulated format (``data/vector_pk.toml``).
    sink_clearance_ml_per_s : float
        ``CL_s`` ≥ 0, mL/s, in the model's reference body.

    Returns
    -------
    VectorPharmacokinetics
        ``parameters`` itself when ``CL_s`` is 0.

    """
    if sink_clearance_ml_per_s <= 0.0:
        return parameters
    model = TwoTissueVectorModel(parameters)
    k12, k21, k10 = model.micro_constants_per_s
    k10_sink = k10 + sink_clearance_ml_per_s / model.body.plasma_volume_ml
    total = k12 + k21 + k10_sink
    product = k21 * k10_sink
    fast = 0.5 * (total + math.sqrt(total * total - 4.0 * product))
    slow = product / fast  # the smaller root without cancellation
    return dataclasses.replace(
        parameters,
        alpha_half_life_s=math.log(2.0) / fast,
        beta_half_life_s=math.log(2.0) / slow,
        alpha_fraction=(fast - k21) / (fast - slow),
        direct_excretion_fraction=1.0
        - (1.0 - parameters.direct_excretion_fraction) * k10 / k10_sink,
    )


def _concentrations(
    patient: PatientSpec,
    phantom: Phantom,
    acquisition: _Acquisition,
    activity_bq: float,
    *,
    cell_bq: Mapping[str, float] | None = None,
) -> _Uptake:
    """True Bq/mL of every label at the scan start, mass-balanced against the injected activity.

    Lesions take the tumour curve at their relative antigen density; normal tissues their own
    curve plus the *specific* part of the tumour curve at theirs (antigen on normal tissue and
    CAR T cells carrying a T-cell marker target): density × (tumour(1) − tumour(0)).

    The model's tumour is a negligible sink of tracer; a normal organ full of antigen (the
    liver of an on-target, off-tumour toxicity, marrow and nodes full of CD8+ CAR T cells) is
    not. Every label's specific trapping K_i,specific × density × inflammation factor × its
    mass (in the reference body: volume × 1 g/mL × M_ref / M) is therefore added to the plasma
    elimination (:func:`_with_sink`), and all curves, normal and specific, are those of the
    depleted plasma. The specific activity is then the activity the sink removed from plasma,
    and the body never holds more than was injected (tested for every built-in scenario).
    The density on the scan day is taken for the whole time since injection (ASSUMED).

    ``cell_bq`` (reporter genes): Bq the cells of each label would hold with no competition
    for the probe (live cells × uptake per cell); they join the sink as the equivalent density
    ``cell_bq / volume / (C per unit density without sinks)`` and are given back, like every
    specific uptake, times :attr:`_Uptake.uptake_factor`.
    """
    tracer, day = acquisition.tracer, acquisition.day
    elapsed_s = acquisition.delay_h * 3600.0
    parameters = vector_pharmacokinetics(tracer.vector_format)
    times = np.array([elapsed_s])
    reference = TwoTissueVectorModel(parameters)
    physical = decay_factor(nuclide(tracer.nuclide).half_life_s, elapsed_s)
    # The model's %ID/g is that of its reference body; another body mass (a heavier patient,
    # a mouse) keeps the same SUV = %ID/g × body mass (first-order allometric scaling, ASSUMED).
    body_scale = reference.body.body_mass_g / (patient.weight_kg * G_PER_KG)
    per_percent = activity_bq / 100.0 * _TISSUE_DENSITY_G_PER_ML * physical * body_scale
    lesions = {lesion.name: lesion for lesion in patient.lesions}
    from_cells = _car_t_antigens_per_cell(patient, phantom, tracer.target, day)
    on_normal = _normal_antigens_per_cell(patient, tracer.target, day)

    def tumour_percent(model_parameters: VectorPharmacokinetics, relative: float) -> float:
        model = TwoTissueVectorModel(model_parameters, antigen_density=relative)
        return float(model.tissue_percent_id_per_g("tumour", times)[0])

    density: dict[str, float] = {}
    factor: dict[str, float] = {}
    for label in phantom.labels:
        factor[label] = _inflammation_factor(patient, label, tracer, day)
        antigens = on_normal.get(label, 0.0) + from_cells.get(label, 0.0)
        if label in lesions:
            own = lesions[label].antigens_per_cell.get(tracer.target)
            if own is None and _is_pd_l1(tracer.target):
                # The scenario's PD-L1 series (pd_l1_per_cell) is what a PD-L1 tracer binds.
                own = lesions[label].pd_l1_per_cell
            antigens += 0.0 if own is None else series_value(own, day)
            density[label] = antigens / REFERENCE_ANTIGENS_PER_CELL
        elif label in TISSUE_OF_LABEL and antigens > 0.0:
            density[label] = antigens / REFERENCE_ANTIGENS_PER_CELL
    unit_free = tumour_percent(parameters, 1.0) - tumour_percent(parameters, 0.0)
    equivalent = {
        label: bq / phantom.volume_ml[label] / (per_percent * unit_free)
        for label, bq in (cell_bq or {}).items()
        if bq > 0.0
    }
    # Specific trapping of every label, as clearance of the reference body's plasma.
    reference_g = {
        label: phantom.volume_ml.get(label, 0.0) * _TISSUE_DENSITY_G_PER_ML * body_scale
        for label in phantom.labels
    }
    weight = sum(value * factor[label] * reference_g[label] for label, value in density.items())
    weight += sum(value * reference_g[label] for label, value in equivalent.items())
    sink_ml_per_s = parameters.tumour_specific_ki_ml_per_g_per_s * weight
    depleted = _with_sink(parameters, sink_ml_per_s)
    normal = TwoTissueVectorModel(depleted).time_activity_curves(times)
    non_specific = tumour_percent(depleted, 0.0)
    unit = tumour_percent(depleted, 1.0) - non_specific
    concentration: dict[str, float] = {}
    for label in phantom.labels:
        if label in lesions:
            percent = non_specific + density[label] * unit
        elif label in TISSUE_OF_LABEL:
            percent = float(normal[TISSUE_OF_LABEL[label]][0]) + density.get(label, 0.0) * unit
        else:  # air
            percent = 0.0
        in_cells = equivalent.get(label, 0.0) * unit  # reporter cells: no inflammation factor
        concentration[label] = (percent * factor[label] + in_cells) * per_percent
    uptake_factor = unit / unit_free if unit_free > 0.0 else 1.0
    return _Uptake(concentration, density, sink_ml_per_s, uptake_factor)


def _sink_truth(uptake: _Uptake) -> dict[str, float]:
    """Truth of the specific sink of a scan (``"specific_sink"`` in ``truth.json``)."""
    return {
        "clearance_ml_per_h": uptake.sink_clearance_ml_per_s * S_PER_HOUR,
        "uptake_factor": uptake.uptake_factor,
    }


def _fdg_suv_of_label() -> dict[str, float]:
    """Typical FDG SUVbw of every phantom tissue label (``data/fdg_uptake.toml``)."""
    table: Mapping[str, Mapping[str, Any]] = read_toml("fdg_uptake.toml")["suv_bw"]
    return {label: float(entry["suv"]) for label, entry in table.items()}


def _fdg_concentrations(
    patient: PatientSpec,
    phantom: Phantom,
    acquisition: _Acquisition,
    activity_bq: float,
    weight_kg: float,
) -> tuple[dict[str, float], dict[str, Any]]:
    """True Bq/mL of every label for an FDG scan and the true SUVbw of every label."""
    tracer, day = acquisition.tracer, acquisition.day
    physical = decay_factor(nuclide(tracer.nuclide).half_life_s, acquisition.delay_h * 3600.0)
    per_suv = activity_bq * physical / (weight_kg * 1000.0) * _TISSUE_DENSITY_G_PER_ML
    normal = _fdg_suv_of_label()
    lesions = {lesion.name: lesion for lesion in patient.lesions}
    suv: dict[str, float] = {}
    for label in phantom.labels:
        if label in lesions:
            value = series_value(lesions[label].fdg_suv, day)
        else:
            value = normal.get(label, 0.0)
        suv[label] = value * _inflammation_factor(patient, label, tracer, day)
    return {label: value * per_suv for label, value in suv.items()}, {"suv_bw": suv}


def _cell_concentrations(
    patient: PatientSpec, phantom: Phantom, acquisition: _Acquisition, activity_bq: float
) -> tuple[dict[str, float], dict[str, float]]:
    """True Bq/mL of every label for a directly labelled cell tracer; bound and free label, Bq."""
    tracer = acquisition.tracer
    assert tracer.cell_label is not None
    label, _ = resolve_cell_label(cell_label(tracer.cell_label))
    assert isinstance(label, DirectLabel)
    activity = direct_label_activity(
        patient, label, [acquisition.day], bound_bq_at_infusion=activity_bq
    )
    present = {
        site: float(value[0])
        for site, value in activity.by_site_bq.items()
        if site != "muscle" and phantom.volume_ml.get(site, 0.0) > 0.0
    }
    rest_bq = sum(
        float(value[0]) for site, value in activity.by_site_bq.items() if site not in present
    )
    rest_labels = [
        name
        for name in phantom.labels
        if name != "air" and name not in present and name not in activity.by_site_bq
    ]
    rest_labels.append("muscle")
    rest_ml = sum(phantom.volume_ml[name] for name in rest_labels)
    concentration = dict.fromkeys(phantom.labels, 0.0)
    for site, bq in present.items():
        concentration[site] = bq / phantom.volume_ml[site]
    for name in rest_labels:
        concentration[name] = rest_bq / rest_ml
    totals = {
        "cell_bound_bq": float(activity.bound_bq[0]),
        "free_label_bq": float(activity.free_bq[0]),
    }
    return concentration, totals


def _reporter_concentrations(
    patient: PatientSpec, phantom: Phantom, acquisition: _Acquisition, activity_bq: float
) -> tuple[dict[str, float], dict[str, Any]]:
    """True Bq/mL of every label for a reporter-gene probe; probe Bq in reporter cells by site.

    The probe not taken up by reporter cells distributes as a small molecule
    (:class:`~immunopet.tracers.TwoTissueVectorModel` of the ``small_molecule`` format,
    ASSUMED for every probe); each live CAR T cell takes up ``reporter_uptake_bq_per_cell`` at
    the scan start (:func:`~immunopet.simulate._cells.reporter_activity`) when the cells are
    few, spread over its label. The probe in the cells comes out of the injected probe: the
    cells are a plasma sink (:func:`_concentrations`), so many cells each hold less than that
    and together never more than was injected (``reporter_cell_bq_by_site`` holds what they
    hold). Cells of the ``muscle`` site (the rest of the body) are neither imaged nor a sink.
    Before the infusion there are no reporter cells.
    """
    tracer = acquisition.tracer
    assert tracer.cell_label is not None
    label, _ = resolve_cell_label(
        cell_label(tracer.cell_label), bq_per_cell=tracer.reporter_uptake_bq_per_cell
    )
    assert isinstance(label, ReporterLabel)
    probe = dataclasses.replace(
        acquisition,
        tracer=dataclasses.replace(
            tracer, vector_format=VectorFormat.SMALL_MOLECULE, target="", cell_label=None
        ),
    )
    demand: dict[str, float] = {}
    if acquisition.day >= 0.0:
        for site, value in reporter_activity(patient, label, [acquisition.day]).items():
            if site != "muscle" and phantom.volume_ml.get(site, 0.0) > 0.0:
                demand[site] = float(value[0])
    uptake = _concentrations(patient, phantom, probe, activity_bq, cell_bq=demand)
    in_cells = {site: bq * uptake.uptake_factor for site, bq in demand.items()}
    return uptake.concentration, {
        "reporter_cell_bq_by_site": in_cells,
        "specific_sink": _sink_truth(uptake),
    }


def _conserved(
    concentration: Mapping[str, float],
    phantom: Phantom,
    lesions: Collection[str],
    available_bq: float,
) -> tuple[dict[str, float], float]:
    """Concentrations the body can hold, and the factor applied to its normal tissues.

    The normal-tissue values are typical ones (``data/fdg_uptake.toml``, the vector model's
    organs); lesions and inflamed organs add to them. When the labels would hold more than
    ``available_bq`` (the injected activity decayed to the scan start), the normal-tissue
    labels (every label but the lesions) give up the excess in proportion to their activity,
    as a large tumour burden lowers normal-organ uptake (tumour sink effect; ASSUMED
    proportional). The factor is 1 when nothing has to be given up.

    Raises
    ------
    InputError
        If the lesions alone would hold more than ``available_bq``.

    """
    held = {label: concentration[label] * phantom.volume_ml[label] for label in phantom.labels}
    total = sum(held.values())
    if total <= available_bq:
        return dict(concentration), 1.0
    in_lesions = sum(bq for label, bq in held.items() if label in lesions)
    if in_lesions >= available_bq:
        raise InputError(
            f"the lesions would hold {in_lesions / available_bq:.0%} of the injected activity "
            "at the scan",
            field="lesions",
            hint="lower the lesions' uptake (fdg_suv, antigens_per_cell) or their diameters",
        )
    scale = (available_bq - in_lesions) / (total - in_lesions)
    return {
        label: value if label in lesions else value * scale
        for label, value in concentration.items()
    }, scale


def _scan_concentrations(
    patient: PatientSpec, phantom: Phantom, acquisition: _Acquisition, activity_bq: float
) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """True Bq/mL of every label of one scan, antigen densities and extra truth keys.

    Dispatches on the tracer: FDG, vector pharmacokinetics, reporter gene or direct cell label
    (whose bound plus free label is the decayed label by construction). The others pass through
    :func:`_conserved`: ``normal_tissue_scale`` in the truth is its factor.
    ``patient.weight_kg`` must be the weight written to the headers (FDG's SUVbw uses it).
    """
    tracer = acquisition.tracer
    if tracer.cell_label is not None and tracer.reporter_uptake_bq_per_cell is None:
        concentration, totals = _cell_concentrations(patient, phantom, acquisition, activity_bq)
        return concentration, {}, dict(totals)
    density: dict[str, float] = {}
    if _is_fdg(tracer):
        concentration, extra = _fdg_concentrations(
            patient, phantom, acquisition, activity_bq, patient.weight_kg
        )
    elif tracer.cell_label is None:
        uptake = _concentrations(patient, phantom, acquisition, activity_bq)
        concentration, density = uptake.concentration, uptake.density
        extra = {"specific_sink": _sink_truth(uptake)}
    else:
        concentration, extra = _reporter_concentrations(patient, phantom, acquisition, activity_bq)
    lesions = {lesion.name for lesion in patient.lesions}
    available_bq = activity_bq * decay_factor(
        nuclide(tracer.nuclide).half_life_s, acquisition.delay_h * S_PER_HOUR
    )
    concentration, scale = _conserved(concentration, phantom, lesions, available_bq)
    for key in ("suv_bw", "reporter_cell_bq_by_site"):
        if key in extra:
            extra[key] = {
                label: value if label in lesions else value * scale
                for label, value in extra[key].items()
            }
    return concentration, density, extra | {"normal_tissue_scale": scale}


def _acquisitions(patient: PatientSpec) -> list[_Acquisition]:
    tracers = {tracer.key: tracer for tracer in patient.tracers}
    found = [
        _Acquisition(tracers[scan.tracer], scan, scan.injection_day + delay / 24.0, delay)
        for scan in patient.scans
        for delay in scan.scan_delays_h
    ]
    return sorted(found, key=lambda item: (item.day, item.tracer.key))


def _injected_activity_bq(tracer: PatientTracer) -> float:
    """Injected activity as written to the headers, Bq (to 10 kBq)."""
    return round(tracer.activity_mbq * 1e6, -4)


def _as_written(patient: PatientSpec) -> PatientSpec:
    """The patient with weight and height rounded as written to the DICOM headers."""
    # Mice weigh grams: keep four decimals of kg (DICOM PatientWeight is a decimal string).
    weight_kg = round(patient.weight_kg, 1 if patient.species == "adult" else 4)
    height_cm = None if patient.height_cm is None else round(patient.height_cm, 1)
    return dataclasses.replace(patient, weight_kg=weight_kg, height_cm=height_cm)


def _phantom_sex(patient: PatientSpec) -> Literal["M", "F"]:
    return "M" if _SEX_CODE[patient.sex] == "M" else "F"


def _placed_lesions(patient: PatientSpec) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Phantom site of each lesion that has one, and the lesions that have none (skipped)."""
    site_names = anatomy_sites(patient.species, _phantom_sex(patient))
    placed: dict[str, str] = {}
    skipped: list[dict[str, Any]] = []
    for lesion in patient.lesions:
        resolved = _resolve_site(lesion.site, site_names)
        if resolved is None:
            skipped.append(
                {"lesion": lesion.name, "reason": f"site {lesion.site!r} is not in the phantom"}
            )
        else:
            placed[lesion.name] = resolved
    return placed, skipped


def _visit_phantom(
    patient: PatientSpec, placed: Mapping[str, str], visit: float, voxel_mm: float | None
) -> tuple[Phantom, list[LesionSpec]]:
    """The phantom of a visit (lesions at their size that day) and its lesion specs."""
    lesion_specs = [
        LesionSpec(placed[lesion.name], diameter, lesion.name)
        for lesion in patient.lesions
        if lesion.name in placed and (diameter := _lesion_diameter_mm(lesion, visit)) > 0.0
    ]
    phantom = build_phantom(
        patient.species,
        voxel_mm=voxel_mm,
        sex=_phantom_sex(patient),
        weight_kg=patient.weight_kg,
        height_cm=patient.height_cm,
        lesions=lesion_specs,
    )
    return phantom, lesion_specs


def _simulated_acquisitions(
    patient: PatientSpec,
) -> tuple[list[_Acquisition], list[dict[str, Any]]]:
    """Acquisitions the simulator can make, by day, and the skipped ones with the reason."""
    acquisitions: list[_Acquisition] = []
    skipped: list[dict[str, Any]] = []
    for acquisition in _acquisitions(patient):
        reason = _skip_reason(acquisition.tracer, acquisition.scan, acquisition.day)
        if reason is None:
            acquisitions.append(acquisition)
        else:
            tracer = acquisition.tracer
            skipped.append(
                {"tracer": tracer.key, "agent": tracer.agent, "day": acquisition.day}
                | {"reason": reason}
            )
    return acquisitions, skipped


def _write_json(payload: Any, path: Path) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def simulate_patient(
    patient: PatientSpec,
    out_dir: str | Path,
    *,
    noiseless: bool = False,
    rng: np.random.Generator,
    voxel_mm: float | None = None,
) -> dict[str, Any]:
    """Simulate every scan of ``patient`` and write the files and ``truth.json`` to ``out_dir``.

    Parameters
    ----------
    patient : PatientSpec
        From :func:`~immunopet.simulate.draw_cohort`.
    out_dir : str or pathlib.Path
        Folder of this patient: must not exist or be empty. It is written in a
        temporary folder beside it and renamed when complete, so an interrupted
        simulation leaves nothing behind (the layout is in the module text).
    noiseless : bool
        Write the expected (noise-free, resolution-blurred) images.
    rng : numpy.random.Generator
        Source of the counting noise.
    voxel_mm : float, optional
        Isotropic voxel size of the phantom (default: the species' default).

    Returns
    -------
    dict
        The content of ``truth.json``.

    """
    with atomic_directory(out_dir) as work:
        return _simulate_into(patient, work, noiseless=noiseless, rng=rng, voxel_mm=voxel_mm)


def _simulate_into(
    patient: PatientSpec,
    out: Path,
    *,
    noiseless: bool,
    rng: np.random.Generator,
    voxel_mm: float | None,
) -> dict[str, Any]:
    sex = _SEX_CODE[patient.sex]
    patient = _as_written(patient)
    weight_kg, height_cm = patient.weight_kg, patient.height_cm
    scans: list[dict[str, Any]] = []
    timepoints: dict[str, dict[str, Any]] = {}
    phantoms: dict[float, Phantom] = {}
    studies: dict[float, StudyIdentity] = {}
    placed, not_simulated = _placed_lesions(patient)
    labels_in_phantom = set(read_toml("anatomy.toml")["tissues"])
    not_simulated.extend(
        {"normal_tissue": tissue.site, "reason": "tissue is not a phantom label"}
        for tissue in patient.normal_tissues
        if _organ_label(tissue.site) not in labels_in_phantom
    )
    not_simulated.extend(
        {"inflammation": item.organ, "reason": "organ is not a phantom label"}
        for item in patient.inflammation
        if _organ_label(item.organ) not in labels_in_phantom
    )
    approximations = [
        {
            "inflammation": item.organ,
            "applied_to": "lymph_node",
            "note": "the phantom has one label for the normal nodes of every station",
        }
        for item in patient.inflammation
        if _organ_label(item.organ) == "lymph_node" and item.organ != "lymph_node"
    ]

    acquisitions, skipped = _simulated_acquisitions(patient)
    not_simulated.extend(skipped)
    visit_of = _visits(acquisitions)
    for acquisition in acquisitions:
        tracer, scan, day = acquisition.tracer, acquisition.scan, acquisition.day
        visit = visit_of[id(acquisition)]
        injection = _at_second(patient.infusion_datetime + timedelta(days=scan.injection_day))
        start = _at_second(injection + timedelta(hours=acquisition.delay_h))
        folder = out / _day_folder(visit)
        if visit not in phantoms:
            phantom, lesion_specs = _visit_phantom(patient, placed, visit, voxel_mm)
            phantoms[visit] = phantom
            # One study per visit: its CT and PET share study and frame of reference.
            studies[visit] = StudyIdentity.new(patient.patient_id, start, patient_sex=sex)
            write_ct_series(phantom.ct, folder / "CT", when=start, study=studies[visit])
            # Ground truth apart from the images (derivatives/truth is never read by discovery).
            truth_folder = out / "derivatives" / "truth" / folder.name
            truth_folder.mkdir(parents=True)
            write_nifti(phantom.label_map, truth_folder / "labels.nii.gz")
            lesion_names_all = {lesion.name for lesion in patient.lesions}
            write_label_seg(
                phantom.label_map,
                {index: name for name, index in phantom.labels.items() if index},
                folder / "CT",
                truth_folder / "labels_seg.dcm",
                lesions=[name for name in phantom.labels if name in lesion_names_all],
                series_description="immunopet phantom ground truth",
                algorithm="immunopet phantom",
            )
            # No CAR T cells before the infusion (baseline scans).
            infused = 1.0 if visit >= 0.0 else 0.0
            cells = {
                site: infused * float(value[0])
                for site, value in live_cells_by_site(patient, [max(visit, 0.0)]).items()
            }
            timepoints[folder.name] = {
                "day": visit,
                "live_car_t_cells": {
                    site: value for site, value in cells.items() if site not in lesion_names_all
                },
                "live_car_t_cells_in_lesions": {
                    site: value for site, value in cells.items() if site in lesion_names_all
                },
                "ct_datetime": start.isoformat(),
                "labels_file": str((truth_folder / "labels.nii.gz").relative_to(out)),
                "labels_seg_file": str((truth_folder / "labels_seg.dcm").relative_to(out)),
                "labels": dict(phantom.labels),
                "lesion_sites": {spec.name: spec.site for spec in lesion_specs},
                "lesion_diameters_mm": {spec.name: spec.diameter_mm for spec in lesion_specs},
                "lesion_centroids_lps_mm": {
                    name: list(centre) for name, centre in phantom.lesion_centres_mm.items()
                },
            }
        phantom = phantoms[visit]
        activity_bq = _injected_activity_bq(tracer)
        concentration, density, extra = _scan_concentrations(
            patient, phantom, acquisition, activity_bq
        )
        lookup = np.zeros(len(phantom.labels), dtype=np.float64)
        for label, index in phantom.labels.items():
            lookup[index] = concentration[label]
        truth = phantom.label_map.with_array(
            lookup[phantom.label_map.array], Quantity.ACTIVITY_CONCENTRATION
        )
        model = scanner(scan.scanner)
        slices_per_bed = max(1, int(model.axial_fov_mm // truth.spacing_mm[0]))
        system = PetSystem(model)
        image = system.acquire(
            truth,
            nuclide=tracer.nuclide,
            frame_duration_s=FRAME_DURATION_S,
            rng=None if noiseless else rng,
            slices_per_bed=slices_per_bed,
        )
        spec = PetSeriesSpec(
            nuclide=tracer.nuclide,
            injected_activity_bq=activity_bq,
            injection_datetime=injection,
            series_datetime=start,
            frame_duration_s=FRAME_DURATION_S,
            weight_kg=weight_kg,
            height_cm=height_cm,
            sex=sex,
            decay_correction=DecayCorrection.START,
            radiopharmaceutical=tracer.agent,
            patient_id=patient.patient_id,
            slices_per_bed=slices_per_bed,
            series_description=f"{tracer.agent} PET {acquisition.delay_h:g} h p.i.",
        )
        pet_folder = folder / f"{tracer.key}_PT"
        write_pet_series(image, spec, pet_folder, study=studies[visit])
        lesion_names = {lesion.name for lesion in patient.lesions}
        scans.append(
            {
                **extra,
                "tracer": tracer.key,
                "agent": tracer.agent,
                "target": tracer.target,
                "vector_format": tracer.vector_format.value,
                "nuclide": nuclide(tracer.nuclide).name,
                "scanner": scan.scanner,
                "resolution_fwhm_mm": system.resolution_fwhm_mm,
                "cell_label": tracer.cell_label,
                "reporter_uptake_bq_per_cell": tracer.reporter_uptake_bq_per_cell,
                "injected_activity_bq": activity_bq,
                "injection_datetime": injection.isoformat(),
                "scan_datetime": start.isoformat(),
                "frame_duration_s": FRAME_DURATION_S,
                "slices_per_bed": slices_per_bed,
                "day": day,
                "folder": str(pet_folder.relative_to(out)),
                "ct_folder": str((folder / "CT").relative_to(out)),
                "noiseless": noiseless,
                "organ_bq_per_ml": {
                    name: value for name, value in concentration.items() if name not in lesion_names
                },
                "lesion_bq_per_ml": {
                    name: value for name, value in concentration.items() if name in lesion_names
                },
                "lesion_antigen_density": {
                    name: value for name, value in density.items() if name in lesion_names
                },
                "organ_antigen_density": {
                    name: value for name, value in density.items() if name not in lesion_names
                },
                "lesion_centroids_lps_mm": {
                    name: list(centre) for name, centre in phantom.lesion_centres_mm.items()
                },
            }
        )

    payload: dict[str, Any] = {
        "patient": {
            "patient_id": patient.patient_id,
            "scenario": patient.scenario,
            "seed": patient.seed,
            "species": patient.species,
            "sex": sex,
            "weight_kg": weight_kg,
            "height_cm": height_cm,
            "infusion_datetime": patient.infusion_datetime.isoformat(),
            "car_t_target": patient.car_t_target,
            "car_t_product": patient.car_t_product,
            "infused_cells": patient.infused_cells,
        },
        "conventions": {
            "concentration": "Bq/mL at the scan start (PET decay correction START)",
            "tissue_of_label": dict(TISSUE_OF_LABEL),
            "reference_antigens_per_cell": REFERENCE_ANTIGENS_PER_CELL,
            "fdg": "SUVbw per label from data/fdg_uptake.toml, lesions their fdg_suv; "
            "C = SUV x decayed activity / body weight in g (scan key 'suv_bw')",
            "mass_balance": "labels hold at most the injected activity decayed to the scan: "
            "specific binding and reporter cells deplete the plasma (scan key 'specific_sink'); "
            "normal tissues give up any remaining excess (scan key 'normal_tissue_scale')",
            "labels_nifti": "uint8 label ids, Quantity unitless; ids per timepoint",
            "coordinates": "DICOM LPS, mm",
        },
        "timepoints": timepoints,
        "scans": scans,
        "events": [
            {
                "type": event.type.value,
                "lesion": event.lesion,
                "site": event.site,
                "day": event.day,
                "note": event.note,
            }
            for event in patient.events
        ],
        "not_simulated": not_simulated,
        "approximations": approximations,
    }
    _write_json(payload, out / "truth.json")
    # What a site would know (never the truth): the analysis reads it like a real manifest.
    write_manifest(manifest_for_simulated_patient(payload), out / "study.yaml")
    return payload
