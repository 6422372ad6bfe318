"""``analyze``: one patient's longitudinal multi-tracer study → tracked, measured lesions and organs.

The main job, composed from the modules of the data path (``docs/architecture.md``)::

    discover (io.discovery) → load + SUV (io, quant) → organs (user masks via io.labels, else
    lesions.segment_organs) → register CTs to the baseline (lesions._register) → detect lesions
    on the lesion-finding tracer (lesions.detect_lesions) → track (lesions._match) → measure
    every VOI × tracer × timepoint (quant.voi_statistics, quant._uncertainty) → StudyResult →
    results.json, CSV tables, DICOM SEG (io.dicom), database (store)

Each lesion VOI found on the lesion-finding tracer (FDG by default) is measured on every
tracer of the same timepoint (PET/CT scans of one visit share the frame of reference; a VOI
is resampled onto another tracer's grid by nearest neighbour when the grids differ).
Everything is written into a temporary folder and swapped into ``--out`` at the end, and the
database is written in one transaction, so a failed or killed run leaves both as they were.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.io import load_scan
from immunopet.io.discovery import PetRef, Study, Timepoint, discover_study
from immunopet.lesions._match import (
    DEFAULT_GATE_MM,
    LesionObservation,
    LesionTrack,
    track_lesions,
)
from immunopet.lesions._organs import LIVER_NOISE_REFERENCE
from immunopet.lesions._register import Registration, register_ct
from immunopet.quant import StandardizedScan, standardize_scan, voi_statistics
from immunopet.quant._uncertainty import (
    ImageNoise,
    estimate_image_noise,
    slice_variance_factors,
)
from immunopet.result import (
    LesionResult,
    LesionTimepoint,
    Measurement,
    ScanResult,
    StudyResult,
    TimepointResult,
    VoiLabelMap,
)

__all__ = ["AnalysisOptions", "analyze_study"]

#: Segmentation helpers that are not organ VOIs (they contain other organs, or only serve the
#: noise estimate): not measured.
NOT_MEASURED = ("body", "bone", LIVER_NOISE_REFERENCE)
#: Organ VOIs that give the blood and muscle references of the lesion ratios.
BLOOD_ORGANS = ("blood_pool_reference", "heart")
MUSCLE_ORGANS = ("muscle",)
#: Noise reference regions, in order of preference.
NOISE_REFERENCES = (LIVER_NOISE_REFERENCE, "liver_reference", "blood_pool_reference", "liver")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AnalysisOptions:
    """Choices of one analysis (each recorded in ``results.json`` under ``methods``)."""

    lesion_tracer: str | None = None
    detection: Any = None
    registration_mode: str = "affine"
    infusion_datetime: datetime | None = None
    manifest: Path | None = None
    progress: Progress | None = None
    #: Image-domain PET resolution (FWHM, mm) for partial-volume correction; None: the
    #: manifest's ``psf_fwhm_mm``, else no correction.
    psf_fwhm_mm: float | None = None
    #: Where lesion VOIs come from: ``"detect"`` (automatic detection; a reader's lesion VOI
    #: in the study's masks replaces the detections it overlaps) or ``"masks"`` (the reader's
    #: lesion VOIs only, as in preclinical studies drawn in PMOD; no automatic detection).
    lesion_vois: str = "detect"


#: Choices of :attr:`AnalysisOptions.lesion_vois`.
LESION_VOIS: Final = ("detect", "masks")


@dataclass
class _Loaded:
    """One timepoint's images, SUV and organ masks."""

    timepoint: Timepoint
    ct: Volume | None
    pets: dict[str, StandardizedScan] = field(default_factory=dict)
    suv: dict[str, Volume] = field(default_factory=dict)
    organs: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)  # on the CT grid
    organ_grid: Volume | None = None
    organ_sources: dict[str, str] = field(default_factory=dict)
    #: Organs the built-in segmentation could not find (and no mask gave): name -> reason.
    organ_missing: dict[str, str] = field(default_factory=dict)
    noise: dict[str, ImageNoise | None] = field(default_factory=dict)
    lesions: list[Any] = field(default_factory=list)  # DetectedLesion of the lesion tracer
    #: A reader's lesion VOIs from the visit's masks: name -> (mask on organ_grid, file name).
    reader_lesions: dict[str, tuple[npt.NDArray[np.bool_], str]] = field(default_factory=dict)
    registration: Registration = field(default_factory=Registration.identity)


def _report(options: AnalysisOptions, stage: str, done: int, total: int) -> None:
    if options.progress is not None:
        options.progress(stage, done, total)


def _lesion_tracer(study: Study, options: AnalysisOptions) -> str:
    keys = {pet.tracer.key for tp in study.timepoints for pet in tp.pets}
    wanted = options.lesion_tracer
    if wanted is None and study.manifest is not None:
        wanted = study.manifest.lesion_tracer
    if wanted is not None:
        if wanted not in keys:
            raise InputError(
                f"lesion-finding tracer {wanted!r} is not among the study's tracers {sorted(keys)}",
                field="--lesion-tracer",
            )
        return wanted
    from immunopet.io.discovery import is_fdg

    fdg = sorted(
        {pet.tracer.key for tp in study.timepoints for pet in tp.pets if is_fdg(pet.tracer.agent)}
    )
    if len(fdg) == 1:
        return fdg[0]
    raise InputError(
        f"which tracer finds the lesions? the study has {sorted(keys)} and no single FDG",
        field="--lesion-tracer",
        hint="pass --lesion-tracer KEY or set lesion_tracer in the manifest",
    )


def _on_grid(mask: npt.NDArray[np.bool_], source: Volume, target: Volume) -> npt.NDArray[np.bool_]:
    """A mask of ``source``'s grid on ``target``'s grid (nearest neighbour)."""
    if source.same_grid(target):
        return mask
    moved = source.mask(mask).resample_to(target, order=0)
    return np.asarray(moved.array, dtype=bool)


def _is_lesion_name(name: str) -> bool:
    """Structures of a user's label map that are lesions, not organs (found by the analysis)."""
    lowered = name.lower()
    return any(word in lowered for word in ("lesion", "tumor", "tumour", "neoplasm", "mass"))


def _load_timepoint(timepoint: Timepoint) -> _Loaded:
    ct = None
    if timepoint.ct is not None:
        ct = load_scan(timepoint.ct.path, series_uid=timepoint.ct.series_uid).volume
    loaded = _Loaded(timepoint, ct)
    for pet in timepoint.pets:
        scan = load_scan(pet.series.path, series_uid=pet.series.series_uid)
        standardized = standardize_scan(scan)
        loaded.pets[pet.tracer.key] = standardized
        factor = standardized.factors.suv_bw_factor
        loaded.suv[pet.tracer.key] = standardized.activity.with_array(
            np.asarray(standardized.activity.array, dtype=np.float32) * np.float32(factor),
            Quantity.SUV_BW,
        )
    return loaded


def _organs(loaded: _Loaded, lesion_tracer: str) -> None:
    """Organ masks on the CT grid: the user's masks first, built-in segmentation for the rest."""
    from immunopet.io.labels import load_label_map
    from immunopet.lesions import segment_organs

    grid = loaded.ct if loaded.ct is not None else loaded.suv[lesion_tracer]
    loaded.organ_grid = grid
    for path in loaded.timepoint.masks:
        labels = load_label_map(path, grid)
        for name in sorted(set(labels.canonical_names.values())):
            if _is_lesion_name(name):
                mask = np.asarray(labels.mask(name).array, dtype=np.bool_)
                if mask.any() and name not in loaded.reader_lesions:
                    loaded.reader_lesions[name] = (mask, Path(path).name)
                continue
            if name in loaded.organs:
                continue
            loaded.organs[name] = np.asarray(labels.mask(name).array, dtype=np.bool_)
            loaded.organ_sources[name] = f"mask {Path(path).name}"
    if loaded.ct is not None:
        found = segment_organs(loaded.ct, loaded.suv.get(lesion_tracer))
        for name, mask in found.masks.items():
            if name not in loaded.organs:
                loaded.organs[name] = mask
                loaded.organ_sources[name] = f"built-in: {found.method.get(name, '')}"
        loaded.organ_missing = {
            name: reason for name, reason in found.not_found.items() if name not in loaded.organs
        }


def _missing_organ_notes(loaded: Sequence[_Loaded]) -> list[str]:
    """One warning per organ that no visit could segment, carry or take from a mask.

    Without the blood pool (and no heart VOI) lesion-to-blood ratios are missing, without the
    liver reference the noise estimate may be, and without spleen or marrow the CRS and
    expansion rules have nothing to look at: the physician must be told, not left to notice.
    Organs that are never measured (:data:`NOT_MEASURED`) are left out.
    """
    visits: dict[str, list[str]] = {}
    reasons: dict[str, str] = {}
    for item in loaded:
        for name, reason in item.organ_missing.items():
            if name not in item.organs and name not in NOT_MEASURED:
                visits.setdefault(name, []).append(item.timepoint.timepoint_id)
                reasons.setdefault(name, reason)
    return [
        f"organ {name!r} not found at {', '.join(ids)} ({reasons[name]}): not measured there; "
        "rules that need it use the fallback data/guidance.toml names (the heart for the blood "
        "pool) or are skipped; a reader's mask of it (SEG, RTSTRUCT or NIfTI in the study) is "
        "used when given"
        for name, ids in sorted(visits.items())
    ]


def _noise(loaded: _Loaded) -> None:
    assert loaded.organ_grid is not None
    for key, standardized in loaded.pets.items():
        activity = standardized.activity
        loaded.noise[key] = None
        variance = slice_variance_factors(
            activity.timing, standardized.factors.half_life_s, activity.shape[0]
        )
        for name in NOISE_REFERENCES:
            if name in loaded.organs:
                mask = _on_grid(loaded.organs[name], loaded.organ_grid, activity)
                try:
                    loaded.noise[key] = estimate_image_noise(
                        activity.array, mask, region=name, slice_variance=variance
                    )
                except InputError:
                    continue
                break


def _organ_masks(loaded: _Loaded) -> Any:
    from immunopet.lesions import OrganMasks

    assert loaded.organ_grid is not None
    return OrganMasks(dict(loaded.organs), dict(loaded.organ_sources), loaded.organ_grid)


def _detect(
    loaded: _Loaded, lesion_tracer: str, options: AnalysisOptions, length_scale: float
) -> None:
    from immunopet.lesions import detect_lesions, physiological_uptake, reference_levels

    suv = loaded.suv.get(lesion_tracer)
    if suv is None:
        return
    readers = _reader_lesions(loaded, suv)
    if options.lesion_vois == "masks":
        loaded.lesions = readers
        return
    organs = _organ_masks(loaded)
    on_suv = organs.on_grid(suv)
    pet = next(p for p in loaded.timepoint.pets if p.tracer.key == lesion_tracer)
    # The tracer's physiological organs (lesion_detection.toml [physiological]).
    physiology_key, physiology_organs = physiological_uptake(pet.tracer.agent, pet.tracer.target)
    exclude = on_suv.union(physiology_organs)
    try:
        reference = reference_levels(suv, organs)
    except InputError:
        reference = None
    detected = list(
        detect_lesions(
            suv,
            method=options.detection,
            exclude=exclude,
            reference=reference,
            organs=on_suv,
            tracer=physiology_key,
            length_scale=length_scale,
        )
    )
    # A reader's lesion VOI replaces the detections it overlaps.
    drawn = np.zeros(suv.shape, dtype=bool)
    for lesion in readers:
        drawn |= lesion.mask
    loaded.lesions = readers + [d for d in detected if not (d.mask & drawn).any()]


def _reader_lesions(loaded: _Loaded, suv: Volume) -> list[Any]:
    """The reader's lesion VOIs of a visit (lesion-named structures of its masks) on ``suv``."""
    from immunopet.lesions import DetectedLesion, DetectionRecord

    assert loaded.organ_grid is not None
    found = []
    for name, (mask, file_name) in sorted(loaded.reader_lesions.items()):
        region = _on_grid(mask, loaded.organ_grid, suv)
        if not region.any():
            continue
        centre = suv.index_to_lps(np.argwhere(region).mean(axis=0))
        record = DetectionRecord(
            method="reader_voi",
            parameters={},
            threshold_suv=None,
            floor_suv=None,
            background_suv=None,
            peak_to_background=None,
            excluded=(),
            source=f"mask {file_name}, structure {name!r}",
        )
        found.append(
            DetectedLesion(
                mask=region,
                centroid_lps_mm=(float(centre[0]), float(centre[1]), float(centre[2])),
                statistics=voi_statistics(suv, suv.mask(region)),
                method=record,
            )
        )
    return found


def _register(loaded: Sequence[_Loaded], mode: str, options: AnalysisOptions) -> None:
    baseline = next((item.ct for item in loaded if item.ct is not None), None)
    for index, item in enumerate(loaded):
        _report(options, "register", index, len(loaded))
        if item.ct is None or baseline is None or item.ct is baseline:
            item.registration = Registration.identity()
        else:
            item.registration = register_ct(baseline, item.ct, mode=mode)  # type: ignore[arg-type]
    _report(options, "register", len(loaded), len(loaded))


def _tracks(loaded: Sequence[_Loaded], length_scale: float = 1.0) -> list[LesionTrack]:
    detections: dict[str, list[LesionObservation]] = {}
    for item in loaded:
        found = []
        for index, lesion in enumerate(item.lesions):
            mapped = item.registration.map_points([lesion.centroid_lps_mm])[0]
            found.append(
                LesionObservation(
                    item.timepoint.timepoint_id,
                    index,
                    (float(mapped[0]), float(mapped[1]), float(mapped[2])),
                    float(lesion.statistics.volume_ml),
                )
            )
        detections[item.timepoint.timepoint_id] = found
    # The matching gate is a length of the patients' scale, as the detection's (species).
    return track_lesions(detections, gate_mm=DEFAULT_GATE_MM * length_scale)


def _ratio(value: float, reference: float | None) -> float | None:
    return None if reference is None or reference <= 0.0 else value / reference


def _measure(
    voi_type: str,
    voi_id: str,
    mask: npt.NDArray[np.bool_],
    loaded: _Loaded,
    pet: PetRef,
    references: Mapping[str, float | None],
) -> Measurement | None:
    """One VOI on one tracer.

    Lesions get the PERCIST SUVpeak (voi_statistics); organs, often large, get max, mean and
    SD only (their peak is not a reported quantity).
    """
    key = pet.tracer.key
    factors = loaded.pets[key].factors
    suv = loaded.suv[key]
    if not mask.any():
        return None
    if voi_type == "lesion":
        stats = voi_statistics(suv, suv.mask(mask))
        n_voxels, volume_ml = stats.n_voxels, stats.volume_ml
        suv_max, suv_mean, suv_sd, suv_peak = stats.max, stats.mean, stats.sd, stats.peak
    else:
        values = np.asarray(suv.array[mask], dtype=np.float64)
        n_voxels = int(values.size)
        volume_ml = n_voxels * suv.voxel_volume_ml
        suv_max, suv_mean = float(values.max()), float(values.mean())
        suv_sd = float(values.std(ddof=1)) if n_voxels > 1 else float("nan")
        suv_peak = None
    # Activity from SUV with the same factors (the SUV engine's, nothing recomputed here).
    mean_bq = suv_mean / factors.suv_bw_factor
    total_bq = mean_bq * volume_ml
    noise = loaded.noise.get(key)
    se_bq = (
        None
        if noise is None
        else noise.mean_standard_error(mean_bq, n_voxels, slice_counts=mask.sum(axis=(1, 2)))
    )
    percent_per_bq = factors.percent_id_per_ml_factor  # %ID per (Bq/mL x mL)
    return Measurement(
        voi_type=voi_type,
        voi_id=voi_id,
        timepoint_id=loaded.timepoint.timepoint_id,
        day=loaded.timepoint.day,
        tracer=key,
        target=pet.tracer.target,
        n_voxels=n_voxels,
        volume_ml=volume_ml,
        suv_max=suv_max,
        suv_mean=suv_mean,
        suv_mean_se=None if se_bq is None else se_bq * factors.suv_bw_factor,
        suv_peak=suv_peak,
        suv_sd=0.0 if not np.isfinite(suv_sd) else suv_sd,
        cov=None if suv_mean <= 0 or not np.isfinite(suv_sd) else suv_sd / suv_mean,
        mean_bq_per_ml=mean_bq,
        mean_bq_per_ml_se=se_bq,
        total_uptake_bq=total_bq,
        percent_id=total_bq * percent_per_bq,
        percent_id_se=None if se_bq is None else se_bq * volume_ml * percent_per_bq,
        lesion_to_blood=_ratio(suv_mean, references.get("blood")) if voi_type == "lesion" else None,
        lesion_to_muscle=_ratio(suv_mean, references.get("muscle"))
        if voi_type == "lesion"
        else None,
    )


def _reference_mean(loaded: _Loaded, key: str, names: Sequence[str]) -> float | None:
    assert loaded.organ_grid is not None
    suv = loaded.suv[key]
    for name in names:
        if name in loaded.organs:
            mask = _on_grid(loaded.organs[name], loaded.organ_grid, suv)
            if mask.any():
                return float(np.mean(suv.array[mask], dtype=np.float64))
    return None


def _lesion_source(item: _Loaded, loaded: Sequence[_Loaded], lesion_tracer: str) -> _Loaded | None:
    """Where a timepoint's lesion VOIs come from.

    Itself when it has the lesion-finding tracer, else the nearest timepoint (in days) that
    has it (the VOIs are carried over by registration).
    """
    if lesion_tracer in item.suv:
        return item
    candidates = [other for other in loaded if lesion_tracer in other.suv]
    if not candidates:
        return None
    return min(candidates, key=lambda other: abs(other.timepoint.day - item.timepoint.day))


def _carried_mask(
    source: _Loaded, mask: npt.NDArray[np.bool_], grid: Volume, target: _Loaded, onto: Volume
) -> npt.NDArray[np.bool_]:
    """A mask of ``source`` (on ``grid``) in ``target``'s patient space, on ``onto``'s grid.

    Source → baseline by the source's registration, baseline → target by the inverse of the
    target's (affine parts; nearest-neighbour resampling).
    """
    from scipy import ndimage

    to_target = np.linalg.inv(target.registration.matrix) @ source.registration.matrix
    # Target voxel index → target LPS → source LPS → source voxel index (an affine
    # registration may shear, so this is applied directly rather than as a Volume affine).
    mapping = np.linalg.inv(grid.affine) @ np.linalg.inv(to_target) @ onto.affine
    if onto.shape == grid.shape and np.allclose(mapping, np.eye(4), atol=1e-6):
        return mask
    moved = ndimage.affine_transform(
        mask.astype(np.uint8),
        mapping[:3, :3],
        offset=mapping[:3, 3],
        output_shape=onto.shape,
        order=0,
        mode="constant",
        cval=0,
    )
    return np.asarray(moved, dtype=bool)


def _carry_organs(loaded: Sequence[_Loaded], lesion_tracer: str) -> None:
    """Carry organs a timepoint could not segment from the nearest timepoint that has them.

    E.g. the spleen, found with the lesion tracer's PET, for a visit with only an antibody
    scan; the mask is moved by the CT registrations (nearest neighbour).
    """
    for item in loaded:
        if item.organ_grid is None:
            continue
        donors = [o for o in loaded if o is not item and o.organ_grid is not None]
        for name in sorted({n for o in donors for n in o.organs} - set(item.organs)):
            if name in NOT_MEASURED:
                continue
            source = min(
                (o for o in donors if name in o.organs),
                key=lambda o: abs(o.timepoint.day - item.timepoint.day),
            )
            assert source.organ_grid is not None
            mask = _carried_mask(
                source, source.organs[name], source.organ_grid, item, item.organ_grid
            )
            if mask.any():
                item.organs[name] = mask
                item.organ_sources[name] = f"carried from {source.timepoint.timepoint_id}"


def _organ_core(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.bool_], str]:
    """The organ eroded by one voxel, so that its mean is not lowered by the blurred edge.

    The edge voxels of an organ share counts with their neighbours (partial volume): whole
    organ means read 2-4 % low at 4 mm voxels, eroded ones within 1 % (simulated organs).
    Organs too thin to keep half their voxels are measured whole.
    """
    from scipy import ndimage

    core = ndimage.binary_erosion(mask)
    if int(core.sum()) * 2 >= int(mask.sum()):
        return core, " (eroded by 1 voxel)"
    return mask, ""


def _measurements(
    loaded: Sequence[_Loaded],
    tracks: Sequence[LesionTrack],
    lesion_tracer: str,
    psf_fwhm_mm: float | None = None,
    length_scale: float = 1.0,
) -> list[Measurement]:
    found: list[Measurement] = []
    cell_tracers = _cell_tracers(loaded)
    for item in loaded:
        source = _lesion_source(item, loaded, lesion_tracer)
        for pet in item.timepoint.pets:
            key = pet.tracer.key
            suv = item.suv[key]
            first = len(found)
            lesion_masks: dict[str, npt.NDArray[np.bool_]] = {}
            references = {
                "blood": _reference_mean(item, key, BLOOD_ORGANS),
                "muscle": _reference_mean(item, key, MUSCLE_ORGANS),
            }
            vois: list[tuple[LesionTrack, npt.NDArray[np.bool_], str]] = []
            unseen: list[LesionTrack] = []
            for track in tracks if source is not None else ():
                assert source is not None
                observation = track.observations.get(source.timepoint.timepoint_id)
                if observation is None:
                    unseen.append(track)
                    continue
                lesion = source.lesions[observation.index]
                grid = source.suv[lesion_tracer]
                mask = np.asarray(lesion.mask, dtype=bool)
                if source is item:
                    vois.append((track, _on_grid(mask, grid, suv), "detected"))
                else:
                    mask = _carried_mask(source, mask, grid, item, suv)
                    vois.append((track, mask, f"carried from {source.timepoint.timepoint_id}"))
            if source is not None and source is not item:
                vois = _redelineated(vois, item, suv, length_scale)
            absent = (
                _absent_sites(unseen, vois, loaded, item, suv, lesion_tracer)
                if key in cell_tracers
                else []
            )
            for (track, mask, origin), lesion_found in [(v, True) for v in vois] + [
                (v, False) for v in absent
            ]:
                measured = _measure("lesion", track.tracking_id, mask, item, pet, references)
                if measured is not None:
                    lesion_masks[track.tracking_id] = mask
                    found.append(
                        dataclasses.replace(measured, voi_source=origin, lesion_found=lesion_found)
                    )
            assert item.organ_grid is not None
            for name, organ in sorted(item.organs.items()):
                if name in NOT_MEASURED:
                    continue
                mask, note = _organ_core(_on_grid(organ, item.organ_grid, suv))
                measured = _measure("organ", name, mask, item, pet, references)
                if measured is not None:
                    how = item.organ_sources.get(name, "")
                    found.append(dataclasses.replace(measured, voi_source=f"{how}{note}"))
            if psf_fwhm_mm is not None:
                found[first:] = _partial_volume_corrected(
                    found[first:], item, key, lesion_masks, psf_fwhm_mm
                )
    return found


def _cell_tracers(loaded: Sequence[_Loaded]) -> set[str]:
    """Tracer keys whose signal is the CAR T cells alone: reporter probes and direct cell labels.

    The classes of the guidance rules (``data/guidance.toml`` ``[tracer_classes]``
    ``reporter_targets`` and ``cell_label_targets``), by the tracer's stated target.
    """
    from immunopet.monitor._document import class_targets

    targets = class_targets("reporter", "cell_label")
    return {
        pet.tracer.key
        for item in loaded
        for pet in item.timepoint.pets
        if (pet.tracer.target or "").casefold() in targets
    }


def _absent_sites(
    unseen: Sequence[LesionTrack],
    present: Sequence[tuple[LesionTrack, npt.NDArray[np.bool_], str]],
    loaded: Sequence[_Loaded],
    item: _Loaded,
    suv: Volume,
    lesion_tracer: str,
) -> list[tuple[LesionTrack, npt.NDArray[np.bool_], str]]:
    """VOIs of lesions not found at this visit, from the nearest visit that found them.

    Only for tracers that see the CAR T cells alone (:func:`_cell_tracers`): there the site of
    a lesion is worth measuring where the lesion is not seen (before the cells arrive, after
    they leave): a reporter probe shows a tumour only once CAR T cells are in it, so homing
    needs the pre-infusion measurement of the same site. The VOI is moved by the CT
    registrations and not re-delineated (the scan does not show the lesion); voxels of the
    lesions measured at this visit are left out of it.
    """
    taken = np.zeros(suv.shape, dtype=bool)
    for _, mask, _ in present:
        taken |= mask
    out = []
    for track in unseen:
        donors = [o for o in loaded if o.timepoint.timepoint_id in track.observations]
        if not donors:
            continue
        donor = min(donors, key=lambda o: abs(o.timepoint.day - item.timepoint.day))
        lesion = donor.lesions[track.observations[donor.timepoint.timepoint_id].index]
        grid = donor.suv[lesion_tracer]
        mask = _carried_mask(donor, np.asarray(lesion.mask, dtype=bool), grid, item, suv)
        mask &= ~taken
        if mask.any():
            origin = (
                f"carried from {donor.timepoint.timepoint_id}; the lesion was not found at "
                "this visit (its site measured for the CAR T cells)"
            )
            out.append((track, mask, origin))
    return out


def _redelineated(
    vois: Sequence[tuple[LesionTrack, npt.NDArray[np.bool_], str]],
    item: _Loaded,
    suv: Volume,
    length_scale: float = 1.0,
) -> list[tuple[LesionTrack, npt.NDArray[np.bool_], str]]:
    """Carried lesion VOIs drawn again on this scan where it shows them (lesions._redelineate)."""
    from immunopet.lesions._redelineate import redelineate_lesion

    assert item.organ_grid is not None
    body = (
        _on_grid(item.organs["body"], item.organ_grid, suv)
        if "body" in item.organs
        else np.ones(suv.shape, dtype=bool)
    )
    taken = np.zeros(suv.shape, dtype=bool)
    for _, mask, _ in vois:
        taken |= mask
    out = []
    for track, mask, origin in vois:
        redone = redelineate_lesion(
            suv, mask, allowed=body & ~(taken & ~mask), length_scale=length_scale
        )
        if redone is None:
            out.append((track, mask, f"{origin}; not re-delineated (the scan does not show it)"))
        else:
            out.append((track, redone.mask, f"{origin}; {redone.describe()}"))
    return out


def _partial_volume_corrected(
    measured: Sequence[Measurement],
    item: _Loaded,
    key: str,
    lesion_masks: Mapping[str, npt.NDArray[np.bool_]],
    psf_fwhm_mm: float,
) -> list[Measurement]:
    """``suv_mean_pvc`` (± SE) by the geometric transfer matrix over one scan's VOIs.

    Regions: the lesion VOIs as measured, the whole (not eroded) organs, a shell around each
    and the rest of the body (Rousset et al., J Nucl Med 1998;39:904). The PSF is a Gaussian of
    the stated image-domain FWHM sampled at voxel centres: a resolution measured on a point or
    line source in reconstructed images already contains the voxel size. Without a body mask
    (no CT) nothing is corrected.
    """
    from immunopet.quant import gtm_correct, gtm_regions

    assert item.organ_grid is not None
    suv = item.suv[key]
    if "body" not in item.organs:
        return list(measured)
    organs = {
        name: _on_grid(mask, item.organ_grid, suv)
        for name, mask in sorted(item.organs.items())
        if name not in NOT_MEASURED and not name.endswith("_reference")
    }
    body = _on_grid(item.organs["body"], item.organ_grid, suv)
    body = np.logical_or.reduce([body, *lesion_masks.values(), *organs.values()])
    regions = gtm_regions(suv, {**lesion_masks, **organs}, body, psf_fwhm_mm)
    pvc = gtm_correct(
        suv,
        regions,
        psf_fwhm_mm,
        noise=item.noise.get(key),
        noise_scale=item.pets[key].factors.suv_bw_factor,
        kernel="sampled",
    )
    out = []
    for m in measured:
        if m.voi_id not in pvc.names:
            out.append(m)
            continue
        region = pvc.region(m.voi_id)
        out.append(
            dataclasses.replace(
                m, suv_mean_pvc=region["corrected_mean"], suv_mean_pvc_se=region["corrected_se"]
            )
        )
    return out


def _cell_model(
    key: str, study: Study, injected_activity_bq: float, notes: list[str]
) -> Any | None:
    """How activity becomes CAR T cells for tracer ``key`` (None: not a cell label, or facts missing).

    Only the manifest says a tracer is a cell label; a missing fact is reported, never assumed.
    """
    from immunopet.physics import nuclide
    from immunopet.planning import cell_label
    from immunopet.quant._cell_numbers import CellNumberModel

    manifest = study.manifest
    tracer = None if manifest is None else next((t for t in manifest.tracers if t.key == key), None)
    if tracer is None or tracer.cell_label is None:
        return None
    entry = cell_label(tracer.cell_label)
    half_life_s = nuclide(entry.nuclide).half_life_s
    if entry.kind == "reporter":
        if tracer.reporter_uptake_bq_per_cell is None:
            notes.append(
                f"no CAR T-cell numbers on {key}: give tracers[].reporter_uptake_bq_per_cell"
            )
            return None
        return CellNumberModel(
            "reporter", tracer.reporter_uptake_bq_per_cell, half_life_s, 0.0, entry.key
        )
    infused = None if manifest is None or manifest.car_t is None else manifest.car_t.infused_cells
    per_cell = tracer.bound_bq_per_cell
    if per_cell is None and infused is not None:
        per_cell = injected_activity_bq / infused
    efflux = tracer.efflux_per_day if tracer.efflux_per_day is not None else entry.efflux_per_day
    if per_cell is None or efflux is None:
        missing = "car_t.infused_cells or tracers[].bound_bq_per_cell" if per_cell is None else ""
        missing = missing or "tracers[].efflux_per_day (the label table has none)"
        notes.append(f"no CAR T-cell numbers on {key}: give {missing}")
        return None
    return CellNumberModel("direct", per_cell, half_life_s, efflux, entry.key)


def _with_cell_numbers(
    measurements: Sequence[Measurement], loaded: Sequence[_Loaded], study: Study, notes: list[str]
) -> list[Measurement]:
    """Add ``car_t_cells`` (± SE) to the measurements on cell-label tracers (manifest)."""
    scans = {
        (item.timepoint.timepoint_id, key): scan
        for item in loaded
        for key, scan in item.pets.items()
    }
    models: dict[tuple[str, str], Any] = {}
    out = []
    for m in measurements:
        scan = scans[(m.timepoint_id, m.tracer)]
        inputs = scan.factors.inputs
        if (m.timepoint_id, m.tracer) not in models:
            models[(m.timepoint_id, m.tracer)] = _cell_model(
                m.tracer, study, float(inputs.injected_activity_bq), notes
            )
        model = models[(m.timepoint_id, m.tracer)]
        if model is None:
            out.append(m)
            continue
        elapsed_s = (scan.factors.reference_datetime - inputs.injection_datetime).total_seconds()
        se = None if m.mean_bq_per_ml_se is None else m.mean_bq_per_ml_se * m.volume_ml
        cells = model.cells(m.total_uptake_bq, se, elapsed_s)
        out.append(dataclasses.replace(m, car_t_cells=cells.cells, car_t_cells_se=cells.cells_se))
    # One note per tracer, however many timepoints lack the facts.
    notes[:] = list(dict.fromkeys(notes))
    return out


def _study_key(study: Study) -> str:
    uids = sorted(
        uid
        for tp in study.timepoints
        for uid in ([tp.ct.series_uid] if tp.ct else [])
        + [pet.series.series_uid for pet in tp.pets]
    )
    digest = hashlib.sha256("\n".join([study.patient_id, *uids]).encode("utf-8")).hexdigest()
    return digest[:32]


def _scan_result(
    pet: PetRef, standardized: StandardizedScan, timepoint_id: str, noise: ImageNoise | None
) -> ScanResult:
    factors = standardized.factors
    inputs = factors.inputs
    acquisition = standardized.scan.acquisition
    return ScanResult(
        scan_id=f"{timepoint_id}-{pet.tracer.key}",
        tracer=pet.tracer.key,
        agent=pet.tracer.agent,
        target=pet.tracer.target,
        nuclide=str(acquisition.nuclide if acquisition is not None else pet.series.nuclide),
        series_uid=pet.series.series_uid,
        path=str(pet.series.path),
        injected_activity_bq=float(inputs.injected_activity_bq),
        injection_datetime=inputs.injection_datetime.isoformat(),
        scan_datetime=factors.reference_datetime.isoformat(),
        weight_kg=inputs.weight_kg,
        suv_bw_factor=factors.suv_bw_factor,
        decay_correction=("START" if acquisition is None else acquisition.decay_correction.value),
        noise=None if noise is None else noise.as_dict(),
        warnings=tuple(standardized.warnings),
    )


def _describe(method: Any) -> dict[str, Any]:
    return {"name": str(method.name), "parameters": method.parameters(), "source": method.source()}


def analyze_study(study_dir: str | Path, options: AnalysisOptions | None = None) -> StudyResult:
    """Analyse one patient's study folder and return the :class:`~immunopet.result.StudyResult`.

    Parameters
    ----------
    study_dir : str or pathlib.Path
        Folder of one patient (DICOM in any layout, or PET-BIDS).
    options : AnalysisOptions, optional
        Lesion tracer, detection method, registration mode, infusion, manifest, progress.

    Returns
    -------
    StudyResult

    Raises
    ------
    InputError
        Anything the study lacks or contradicts (one line naming file and field).

    """
    import immunopet
    from immunopet.lesions import DetectionMethod, species_length_scale

    options = options or AnalysisOptions()
    if options.lesion_vois not in LESION_VOIS:
        raise InputError(
            f"lesion VOIs from {options.lesion_vois!r}?",
            field="--lesion-vois",
            hint=f"use one of {', '.join(LESION_VOIS)}",
        )
    started = time.perf_counter()
    study = discover_study(
        study_dir, manifest=options.manifest, infusion_datetime=options.infusion_datetime
    )
    lesion_tracer = _lesion_tracer(study, options)
    # Preclinical images: the detection's lengths scaled to the species (lesion_detection.toml).
    species = None if study.manifest is None else study.manifest.species
    length_scale = species_length_scale(species)
    loaded: list[_Loaded] = []
    for index, timepoint in enumerate(study.timepoints):
        _report(options, "load", index, len(study.timepoints))
        item = _load_timepoint(timepoint)
        _organs(item, lesion_tracer)
        _noise(item)
        _detect(item, lesion_tracer, options, length_scale)
        loaded.append(item)
    _report(options, "load", len(loaded), len(loaded))
    if options.lesion_vois == "masks" and not any(item.reader_lesions for item in loaded):
        raise InputError(
            f"{study_dir}: no lesion VOI in the study's masks (a structure named like "
            "'lesion', 'tumor', 'mass')",
            field="--lesion-vois",
            hint="add the reader's SEG/RTSTRUCT/NIfTI lesion masks, or use --lesion-vois detect",
        )
    _register(loaded, options.registration_mode, options)
    _carry_organs(loaded, lesion_tracer)
    tracks = _tracks(loaded, length_scale)
    _report(options, "measure", 0, 1)
    psf_fwhm_mm = options.psf_fwhm_mm
    if psf_fwhm_mm is None and study.manifest is not None:
        psf_fwhm_mm = study.manifest.psf_fwhm_mm
    measurements = _measurements(loaded, tracks, lesion_tracer, psf_fwhm_mm, length_scale)
    notes: list[str] = [
        f"{item.timepoint.timepoint_id}: the reader's lesion VOI {name!r} ({source}) is not "
        f"used: the visit has no {lesion_tracer} scan to draw lesions on"
        for item in loaded
        if lesion_tracer not in item.suv
        for name, (_, source) in sorted(item.reader_lesions.items())
    ]
    notes += _missing_organ_notes(loaded)
    measurements = _with_cell_numbers(measurements, loaded, study, notes)
    _report(options, "measure", 1, 1)
    # Lesion status over the timepoints that can show lesions (those with the lesion tracer).
    ids = [item.timepoint.timepoint_id for item in loaded if lesion_tracer in item.suv]
    days = {item.timepoint.timepoint_id: item.timepoint.day for item in loaded}
    lesions = []
    for track in tracks:
        states: dict[str, LesionTimepoint] = {}
        for item in loaded:
            tp = item.timepoint.timepoint_id
            observation = track.observations.get(tp)
            if observation is None:
                states[tp] = LesionTimepoint(detected=False)
                continue
            detected = item.lesions[observation.index]
            states[tp] = LesionTimepoint(
                detected=True,
                centroid_lps_mm=tuple(float(v) for v in detected.centroid_lps_mm),  # type: ignore[arg-type]
                centroid_baseline_lps_mm=observation.centroid_mm,
                volume_ml=float(detected.statistics.volume_ml),
                detection=asdict(detected.method),
            )
        lesions.append(
            LesionResult(track.tracking_id, track.status(ids), days[track.first_timepoint], states)
        )
    timepoints = tuple(
        TimepointResult(
            timepoint_id=item.timepoint.timepoint_id,
            day=item.timepoint.day,
            datetime=item.timepoint.datetime.isoformat(),
            ct_series_uid=None if item.timepoint.ct is None else item.timepoint.ct.series_uid,
            ct_path=None if item.timepoint.ct is None else str(item.timepoint.ct.path),
            scans=tuple(
                _scan_result(
                    pet,
                    item.pets[pet.tracer.key],
                    item.timepoint.timepoint_id,
                    item.noise.get(pet.tracer.key),
                )
                for pet in item.timepoint.pets
            ),
            registration=item.registration.as_dict(),
            organ_sources=dict(item.organ_sources),
        )
        for item in loaded
    )
    label_maps = {
        item.timepoint.timepoint_id: found
        for item in loaded
        if (found := _voi_label_map(item, tracks, lesion_tracer)) is not None
    }
    images = {item.timepoint.timepoint_id: _report_images(item, lesion_tracer) for item in loaded}
    manifest = study.manifest
    car_t = None if manifest is None else manifest.car_t
    method = options.detection
    result = StudyResult(
        patient_id=study.patient_id,
        study_key=_study_key(study),
        infusion_datetime=study.infusion_datetime.isoformat(),
        car_t_product=None if car_t is None else car_t.product,
        car_t_target=None if car_t is None else car_t.target,
        lesion_tracer=lesion_tracer,
        detection_method=_describe(method or DetectionMethod.default()),
        timepoints=timepoints,
        lesions=tuple(lesions),
        measurements=tuple(measurements),
        warnings=(*study.warnings, *notes),
        software_version=getattr(immunopet, "__version__", ""),
        label_maps=label_maps,
        images=images,
        clinical=_clinical(manifest),
        methods={
            "suv": "SUVbw = C x body weight / decay-corrected injected activity (quant engine)",
            "registration": f"CT-to-CT {options.registration_mode}, SimpleITK Mattes MI",
            "detection_length_scale": f"{length_scale:g} (species {species or 'not stated: patient'};"
            " lesion_detection.toml [species])",
            "lesion_vois": "the reader's lesion VOIs of the study's masks only"
            if options.lesion_vois == "masks"
            else "automatic detection; a reader's lesion VOI (study masks) replaces the "
            "detections it overlaps",
            "matching": "gated Hungarian assignment on registered centroids (lesions._match)",
            "uncertainty": "count statistics from a reference region (quant._uncertainty)",
            "partial_volume": "none: no PET resolution given (psf_fwhm_mm)"
            if psf_fwhm_mm is None
            else "geometric transfer matrix over lesion, organ, shell and background regions "
            f"(Rousset 1998), Gaussian PSF FWHM {psf_fwhm_mm:g} mm sampled at voxel centres",
            "elapsed_s": round(time.perf_counter() - started, 3),
        },
    )
    # The guidance rules read only the result document (monitor never reads files or pixels).
    from immunopet.dosimetry import dose_from_results
    from immunopet.kinetics import kinetics_from_results
    from immunopet.monitor import guidance_events
    from immunopet.quant import lesion_spread

    document = result.to_dict()
    # Kinetics and dose read the measurements (curves over each injection's scans) only.
    result = dataclasses.replace(
        result,
        kinetics=kinetics_from_results(document),
        dosimetry=dose_from_results(document),
        lesion_spread=tuple(
            lesion_spread(
                document["measurements"], quantities=("suv_mean", "suv_max", "suv_mean_pvc")
            )
        ),
    )
    return dataclasses.replace(result, events=tuple(guidance_events(result.to_dict())))


def _clinical(manifest: Any) -> dict[str, Any]:
    """The manifest's blood counts, samples and ASTCT grades per day (``StudyResult.clinical``).

    Grades come from the clinical records only (Lee 2019); imaging never changes them.
    """
    if manifest is None:
        return {}
    from immunopet.monitor import astct_grades

    return {
        "grades": astct_grades(manifest),
        "car_t_counts": [asdict(count) for count in manifest.car_t_counts],
        "blood_samples": [
            {
                **asdict(sample),
                "datetime": None if sample.datetime is None else sample.datetime.isoformat(),
            }
            for sample in manifest.blood_samples
        ],
        "hematocrit": manifest.hematocrit,
    }


def _report_images(item: _Loaded, lesion_tracer: str) -> dict[str, Volume]:
    """SUV volumes of one timepoint and its CT moved onto the first PET grid (for the report).

    The lesion tracer's grid comes first, so the CT lies on the grid of the VOI label map.
    """
    keys = sorted(item.suv, key=lambda key: (key != lesion_tracer, key))
    images: dict[str, Volume] = {key: item.suv[key] for key in keys}
    if item.ct is not None and keys:
        grid = item.suv[keys[0]]
        ct = item.ct if item.ct.same_grid(grid) else item.ct.resample_to(grid, order=1)
        clipped = np.clip(np.rint(np.asarray(ct.array, dtype=np.float64)), -1024, 32767)
        images["ct"] = ct.with_array(clipped.astype(np.int16), ct.quantity)
    return images


def _write_report_images(result: StudyResult, folder: Path) -> None:
    """``images/``: per timepoint the SUVbw volumes and the CT as NIfTI, and ``index.json``.

    Names: ``<TP>_<tracer>_suv.nii.gz`` (float32 SUVbw, g/mL) and ``<TP>_ct.nii.gz`` (int16
    HU on the grid of the timepoint's first PET, the lesion tracer's where it has one). The
    index lists them per timepoint with the VOI label map written beside ``results.json``.
    """
    import json

    from immunopet.io.nifti import write_nifti

    if not result.images:
        return
    target = folder / "images"
    target.mkdir()
    index: dict[str, Any] = {}
    for timepoint_id, volumes in result.images.items():
        entry: dict[str, Any] = {"suv": {}, "ct": None, "vois": None, "voi_names": None}
        for key, volume in volumes.items():
            name = (
                f"{timepoint_id}_ct.nii.gz" if key == "ct" else f"{timepoint_id}_{key}_suv.nii.gz"
            )
            write_nifti(volume, target / name)
            if key == "ct":
                entry["ct"] = f"images/{name}"
            else:
                entry["suv"][key] = f"images/{name}"
        if (folder / f"{timepoint_id}_vois.nii.gz").is_file():
            entry["vois"] = f"{timepoint_id}_vois.nii.gz"
            entry["voi_names"] = f"{timepoint_id}_vois.json"
        index[timepoint_id] = entry
    document = {"lesion_tracer": result.lesion_tracer, "timepoints": index}
    (target / "index.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _voi_label_map(
    item: _Loaded, tracks: Sequence[LesionTrack], lesion_tracer: str
) -> VoiLabelMap | None:
    """Organs, then lesions (by tracking ID) of one timepoint on the lesion tracer's grid."""
    suv = item.suv.get(lesion_tracer)
    if suv is None or item.organ_grid is None:
        return None
    labels = np.zeros(suv.shape, dtype=np.uint16)
    names: dict[int, str] = {}
    # The masks as measured (eroded organs); reference spheres after the organs they lie in.
    ordered = sorted(item.organs, key=lambda n: (n.endswith("_reference"), n))
    for name in ordered:
        if name in NOT_MEASURED:
            continue
        mask, _ = _organ_core(_on_grid(item.organs[name], item.organ_grid, suv))
        names[len(names) + 1] = name
        labels[mask] = len(names)
    lesion_names = []
    for track in tracks:
        observation = track.observations.get(item.timepoint.timepoint_id)
        if observation is None:
            continue
        names[len(names) + 1] = track.tracking_id
        lesion_names.append(track.tracking_id)
        labels[np.asarray(item.lesions[observation.index].mask, dtype=bool)] = len(names)
    pet = next(p for p in item.timepoint.pets if p.tracer.key == lesion_tracer)
    files = tuple(str(f) for f in pet.series.files)
    return VoiLabelMap(suv.with_array(labels, Quantity.UNITLESS), names, tuple(lesion_names), files)


def _write_label_maps(result: StudyResult, folder: Path) -> None:
    """Per timepoint the VOI label map (NIfTI + names) and, for DICOM input, SEG and SR.

    The SR is the TID 1500 measurement report referencing the SEG and the PET series.
    """
    import json

    from immunopet.io.dicom import write_label_seg, write_measurement_report
    from immunopet.io.nifti import write_nifti

    document = result.to_dict()
    for timepoint_id, label_map in result.label_maps.items():
        present = {i: n for i, n in label_map.names.items() if np.any(label_map.labels.array == i)}
        if not present:
            continue
        write_nifti(label_map.labels, folder / f"{timepoint_id}_vois.nii.gz")
        (folder / f"{timepoint_id}_vois.json").write_text(
            json.dumps({str(i): n for i, n in present.items()}, indent=2) + "\n", encoding="utf-8"
        )
        dicom_files = [f for f in label_map.source_files if not f.endswith((".nii", ".nii.gz"))]
        if dicom_files:
            import pydicom

            sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in dicom_files]
            write_label_seg(
                label_map.labels,
                present,
                sources,
                folder / f"{timepoint_id}_vois_seg.dcm",
                lesions=[n for n in label_map.lesions if n in present.values()],
                series_description=f"immunopet VOIs {timepoint_id}",
                algorithm="immunopet analyze",
                algorithm_family="morphological_operations",
            )
            timepoint = next(t for t in document["timepoints"] if t["timepoint_id"] == timepoint_id)
            seg_series = str(sources[0].SeriesInstanceUID)
            others = [
                scan["path"]
                for scan in timepoint["scans"]
                if scan["series_uid"] != seg_series
                and not scan["path"].endswith((".nii", ".nii.gz"))
            ]
            # VOIs whose SEG segment differs from the measured mask (a voxel painted over by an
            # overlapping VOI) are left out of the SR rather than referenced wrongly.
            write_measurement_report(
                document,
                timepoint_id,
                folder / f"{timepoint_id}_vois_seg.dcm",
                sources,
                folder / f"{timepoint_id}_measurements_sr.dcm",
                other_source_files=others,
                unmatched="omit",
            )


def write_analysis_outputs(
    result: StudyResult,
    out_dir: str | Path,
    *,
    db_url: str | None = None,
    progress: Progress | None = None,
) -> dict[str, str]:
    """Write ``results.json``, the tables, label maps, images and report; save to the database.

    Everything goes into a temporary folder swapped into ``out_dir`` at the end
    (:func:`immunopet.store.atomic_output_folder`); the default SQLite database lives in
    that folder, so a failed or killed run leaves outputs and database as they were.

    Returns
    -------
    dict of str to str
        Paths of what was written (``results``, ``report``, ``database``).

    """
    from immunopet.result import write_result_files
    from immunopet.store import DEFAULT_DB_NAME, atomic_output_folder, default_url, save_results

    document = result.to_dict()
    out = Path(out_dir)
    with atomic_output_folder(out, keep=[DEFAULT_DB_NAME]) as folder:
        if progress is not None:
            progress("write", 0, 2)
        write_result_files(document, folder)
        _write_label_maps(result, folder)
        _write_report_images(result, folder)
        # The report reads only what was just written (results.json, images/, VOI maps).
        from immunopet.report import write_report

        write_report(folder)
        if progress is not None:
            progress("write", 1, 2)
        url = db_url or default_url(folder)
        save_results(document, url)
        if progress is not None:
            progress("write", 2, 2)
    return {
        "results": str(out / "results.json"),
        "report": str(out / "report.html"),
        "database": db_url or default_url(out),
    }
