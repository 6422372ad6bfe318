"""DICOM SR measurement reports (TID 1500) of one timepoint, written and read through highdicom.

Writing (:func:`write_measurement_report`): a Comprehensive 3D SR holding one TID 1500
"Measurement Report" (title "PET Measurement Report", observer: the device "immunopet"). Its
"Imaging Measurements" hold one TID 1411 "Volumetric ROI Measurements and Qualitative
Evaluations" group per VOI (lesion by tracking ID ``L001`` …, organ by canonical name) and per
PET scan of the timepoint, each group with

* the VOI's tracking identifier and a tracking UID derived from the study key and the VOI
  (:func:`tracking_uid`), so a lesion has the same UID in the reports of every timepoint;
* the segment of the same name in the timepoint's DICOM SEG ("Referenced Segment") and the
  PET series that SEG was drawn on ("Source series for segmentation");
* finding category and type copied from that segment (lesions: "Morphologically Abnormal
  Structure"/"Neoplasm"; organs: their anatomy code);
* the time point (TID 1502): timepoint ID, order, and "Longitudinal Temporal Offset from
  Event" in days from the CAR T-cell infusion;
* which scan it measures: its scan ID as "Activity Session", its radiopharmaceutical agent and
  radionuclide as coded qualitative evaluations (concept names of PS3.16 TID 10022);
* SUVbw maximum, mean, peak (PERCIST 1 mL sphere) and standard deviation, and the volume in mL,
  each a TID 300 measurement with a "Derivation" modifier and UCUM units.

Codes and their sources are in ``data/sr_codes.toml``. The values are those of
``results.json`` (:meth:`immunopet.result.StudyResult.to_dict`), written as Floating Point
Value (FD) beside the Numeric Value (DS) so they come back to the last bit.

A group claims its SUVs were measured in the referenced segment, so the writer checks that
the segment holds as many voxels as the VOI measured on the SEG's own series
(``n_voxels``); VOIs that differ (e.g. organs eroded for measurement but written whole to the
SEG) or that have no segment are refused, or left out with ``unmatched="omit"``.

Reading (:func:`read_measurement_report`): one row per measurement of any TID 1500 report's
volumetric groups, with tracking identifier, tracer, results.json measurement key, value and
unit.

highdicom is imported on first use, so ``import immunopet.io`` stays light.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import generate_uid

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.io._atomic import atomic_path
from immunopet.io.dicom._read import _functional_group
from immunopet.io.dicom._seg import _PERSON_NAME_WARNING, _inside, _prepared_source, _read_source
from immunopet.io.dicom._values import field_name, get_str
from immunopet.io.nifti import _check_output_path

if TYPE_CHECKING:
    import highdicom as hd

__all__ = ["read_measurement_report", "tracking_uid", "write_measurement_report"]

#: The coding scheme of immunopet's local codes (PS3.16 Section 8: "99" prefix = local).
_LOCAL_SCHEME: Final = "99IMMUNOPET"
#: Code Meaning is LO: at most 64 characters.
_LO_MAX_CHARACTERS: Final = 64
#: What makes the stable UIDs (pydicom generate_uid hashes these with its root prefix).
_TRACKING_ENTROPY: Final = "immunopet tracking identifier"
_DEVICE_ENTROPY: Final = "immunopet device observer"
_DEVICE_NAME: Final = "immunopet"
_ALGORITHM_NAME: Final = "immunopet analyze"
#: TID 1502 "Time Point" (UMLS C2348792), the concept highdicom writes.
_TIME_POINT: Final = ("C2348792", "UMLS")
_SEG_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.66.4"
#: Relationship of a group's measurements (its NUM context items are HAS OBS CONTEXT).
_CONTAINS: Final = "CONTAINS"
#: SUVbw unit spellings of older PS3.16 editions the reader also accepts.
_SUVBW_UNITS: Final = frozenset({"g/ml{SUVbw}", "{SUVbw}g/ml"})

Unmatched = Literal["raise", "omit"]


# -- codes ------------------------------------------------------------------------------------
def _codes() -> dict[str, Any]:
    return read_toml("sr_codes.toml")


def _concept(entry: Mapping[str, Any]) -> hd.sr.CodedConcept:
    import highdicom as hd

    return hd.sr.CodedConcept(
        value=str(entry["value"]), scheme_designator=str(entry["scheme"]), meaning=entry["meaning"]
    )


def _key(value: str, scheme: str) -> tuple[str, str]:
    return (str(value), str(scheme))


def tracking_uid(study_key: str, voi_type: str, voi_id: str) -> str:
    """Tracking Unique Identifier of a VOI: the same for every report of one analysed study.

    Parameters
    ----------
    study_key : str
        ``study.study_key`` of ``results.json`` (hash of the patient ID and all series UIDs).
    voi_type : str
        ``"lesion"`` or ``"organ"``.
    voi_id : str
        Tracking ID (``"L001"``) or canonical organ name (``"liver"``).

    Returns
    -------
    str
        A UID under pydicom's root, hashed from the three strings (SHA-512 via
        :func:`pydicom.uid.generate_uid` ``entropy_srcs``).

    Examples
    --------
    >>> tracking_uid("271b6c65", "lesion", "L001") == tracking_uid("271b6c65", "lesion", "L001")
    True
    >>> tracking_uid("271b6c65", "lesion", "L001") == tracking_uid("271b6c65", "lesion", "L002")
    False

    """
    return str(generate_uid(entropy_srcs=[_TRACKING_ENTROPY, study_key, voi_type, voi_id]))


# -- the SEG ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Segment:
    number: int
    label: str
    category: hd.sr.CodedConcept
    kind: hd.sr.CodedConcept
    n_voxels: int


def _coded(item: Dataset, keyword: str, path: Path, number: int) -> hd.sr.CodedConcept:
    import highdicom as hd

    sequence = item.get(keyword)
    if not sequence:
        raise InputError(f"segment {number} has no {keyword}", path=path, field=field_name(keyword))
    return hd.sr.CodedConcept.from_dataset(sequence[0])


def _segment_voxels(path: Path) -> dict[int, int]:
    """Voxels in each segment, counted over the SEG's frames (overlaps counted in each)."""
    import highdicom as hd

    try:
        seg: Any = hd.seg.segread(path)
    except (InvalidDicomError, ValueError, AttributeError, KeyError, TypeError, EOFError) as exc:
        raise InputError(
            f"cannot read the file as a DICOM Segmentation ({type(exc).__name__}: {exc})",
            path=path,
        ) from exc
    kind = str(seg.SegmentationType).upper()
    maximum = float(seg.get("MaximumFractionalValue", 1) or 1)
    frames = list(seg.get("PerFrameFunctionalGroupsSequence") or [])
    count = int(seg.get("NumberOfFrames", 1) or 1)
    voxels: dict[int, int] = {}
    for index in range(count):
        frame = np.asarray(seg.get_stored_frame(index + 1))
        if kind == "LABELMAP":
            numbers, counts = np.unique(frame[frame != 0], return_counts=True)
            for number, n in zip(numbers.tolist(), counts.tolist(), strict=True):
                voxels[int(number)] = voxels.get(int(number), 0) + int(n)
            continue
        per_frame = frames[index] if index < len(frames) else Dataset()
        identification = _functional_group(seg, per_frame, "SegmentIdentificationSequence")
        if identification is None:
            raise InputError(
                f"frame {index + 1} names no segment",
                path=path,
                field=field_name("SegmentIdentificationSequence"),
            )
        number = int(identification.ReferencedSegmentNumber)
        voxels[number] = voxels.get(number, 0) + int(
            np.count_nonzero(_inside(frame, kind, maximum))
        )
    return voxels


def _seg_segments(seg: Dataset, path: Path) -> dict[str, _Segment]:
    """Segment Label → segment (number, codes, voxel count)."""
    items = list(seg.get("SegmentSequence") or [])
    if not items:
        raise InputError("the SEG has no segments", path=path, field=field_name("SegmentSequence"))
    voxels = _segment_voxels(path)
    segments: dict[str, _Segment] = {}
    for item in items:
        number = int(item.SegmentNumber)
        label = str(item.get("SegmentLabel", "") or "")
        if label in segments:
            raise InputError(
                f"two segments are labelled {label!r}: the VOI they stand for is ambiguous",
                path=path,
                field=field_name("SegmentLabel"),
            )
        segments[label] = _Segment(
            number=number,
            label=label,
            category=_coded(item, "SegmentedPropertyCategoryCodeSequence", path, number),
            kind=_coded(item, "SegmentedPropertyTypeCodeSequence", path, number),
            n_voxels=voxels.get(number, 0),
        )
    return segments


def _seg_source_series(seg: Dataset, path: Path) -> str:
    referenced = list(seg.get("ReferencedSeriesSequence") or [])
    uids = {str(item.get("SeriesInstanceUID", "")) for item in referenced} - {""}
    if len(uids) != 1:
        raise InputError(
            f"the SEG references {len(uids)} source series; a measurement report needs exactly "
            "one (the PET series the VOIs were drawn on)",
            path=path,
            field=field_name("ReferencedSeriesSequence"),
        )
    return uids.pop()


def _read_seg_header(path: Path) -> Dataset:
    if not path.is_file():
        raise InputError("file not found", path=path, field="seg_path")
    try:
        seg = dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read the SEG ({exc})", path=path) from exc
    if str(seg.get("SOPClassUID", "")) != _SEG_STORAGE:
        raise InputError(
            f"not a DICOM Segmentation (SOP Class UID {seg.get('SOPClassUID', 'missing')})",
            path=path,
            field=field_name("SOPClassUID"),
        )
    return seg


def _datasets(items: Sequence[str | os.PathLike[str] | Dataset], what: str) -> list[Dataset]:
    datasets: list[Dataset] = []
    for item in items:
        if isinstance(item, Dataset):
            datasets.extend(_read_source([item]))
        else:
            datasets.extend(_read_source(item))
    if not datasets:
        raise InputError(f"no {what} given", field=what)
    return datasets


# -- the document -----------------------------------------------------------------------------
def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] is None:
        raise InputError(
            f"{where} has no {key!r}",
            field=f"{where}.{key}",
            hint="pass the results.json document of immunopet analyze (docs/results.md)",
        )
    return mapping[key]


def _timepoint(document: Mapping[str, Any], timepoint_id: str) -> tuple[int, Mapping[str, Any]]:
    timepoints = _require(document, "timepoints", "document")
    for order, timepoint in enumerate(timepoints, start=1):
        if timepoint.get("timepoint_id") == timepoint_id:
            return order, timepoint
    known = [str(tp.get("timepoint_id")) for tp in timepoints]
    raise InputError(
        f"timepoint {timepoint_id!r} is not in the document",
        field="timepoint_id",
        hint=f"use one of {known}",
    )


def _measured_value(measurement: Mapping[str, Any], key: str) -> float | None:
    value = measurement.get(key)
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise InputError(
            f"{measurement.get('voi_id')} on {measurement.get('tracer')}: {key} is {number}",
            field=f"measurements.{key}",
        )
    return number


def _agent_code(scan: Mapping[str, Any]) -> hd.sr.CodedConcept:
    import highdicom as hd

    tracer = str(_require(scan, "tracer", "scan"))
    entry = _codes()["radiopharmaceuticals"].get(tracer)
    if entry is not None:
        return _concept(entry)
    meaning = str(scan.get("agent") or tracer)[:_LO_MAX_CHARACTERS]
    return hd.sr.CodedConcept(value=tracer, scheme_designator=_LOCAL_SCHEME, meaning=meaning)


def _evaluations(scan: Mapping[str, Any]) -> list[hd.sr.QualitativeEvaluation]:
    import highdicom as hd

    names = _codes()["qualitative"]
    evaluations = [
        hd.sr.QualitativeEvaluation(_concept(names["radiopharmaceutical"]), _agent_code(scan))
    ]
    nuclide = _codes()["radionuclides"].get(str(scan.get("nuclide") or ""))
    if nuclide is not None:
        evaluations.append(
            hd.sr.QualitativeEvaluation(_concept(names["radionuclide"]), _concept(nuclide))
        )
    return evaluations


def _measurements(measurement: Mapping[str, Any]) -> list[hd.sr.Measurement]:
    import highdicom as hd

    items = []
    for key, entry in _codes()["measurements"].items():
        value = _measured_value(measurement, key)
        if value is None:
            continue
        derivation = entry.get("derivation")
        items.append(
            hd.sr.Measurement(
                name=_concept(entry["name"]),
                value=value,
                unit=_concept(entry["unit"]),
                derivation=None if derivation is None else _concept(derivation),
            )
        )
    return items


def _unmatched(
    primary: Sequence[Mapping[str, Any]], segments: Mapping[str, _Segment]
) -> dict[str, str]:
    """VOI → why its SEG segment cannot stand for it (no segment, other voxel count)."""
    reasons: dict[str, str] = {}
    for measurement in primary:
        voi_id = str(measurement["voi_id"])
        segment = segments.get(voi_id)
        n_voxels = int(_require(measurement, "n_voxels", "measurement"))
        if segment is None:
            reasons[voi_id] = "no segment of that name"
        elif segment.n_voxels != n_voxels:
            reasons[voi_id] = f"segment {segment.n_voxels} voxels, VOI {n_voxels}"
    return reasons


def write_measurement_report(
    document: Mapping[str, Any],
    timepoint_id: str,
    seg_path: str | os.PathLike[str],
    source_files: Sequence[str | os.PathLike[str] | Dataset],
    path: str | os.PathLike[str],
    *,
    other_source_files: Sequence[str | os.PathLike[str] | Dataset] = (),
    unmatched: Unmatched = "raise",
    series_number: int = 400,
) -> Path:
    """Write the TID 1500 measurement report of one timepoint as a Comprehensive 3D SR.

    Parameters
    ----------
    document : mapping
        The ``results.json`` document (:meth:`immunopet.result.StudyResult.to_dict`).
    timepoint_id : str
        The timepoint reported (``"TP03"``).
    seg_path : str or os.PathLike
        The timepoint's DICOM SEG: segments labelled with the VOI names (tracking IDs and
        organ names), drawn on one PET series of the timepoint (the lesion-finding scan).
    source_files : sequence of str, os.PathLike or pydicom.Dataset
        That PET series: files, a folder, or header datasets. They are the report's evidence
        and give it its patient and study.
    path : str or os.PathLike
        The SR file to write (replaced atomically if it exists).
    other_source_files : sequence of str, os.PathLike or pydicom.Dataset, optional
        Images of the timepoint's other PET scans, listed as evidence too.
    unmatched : {"raise", "omit"}, optional
        What to do with VOIs measured on the SEG's series whose segment is missing or holds
        another number of voxels than the VOI: refuse the report (default) or leave them out.
    series_number : int, optional
        Series Number of the SR.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InputError
        A document without the timepoint or its keys, a SEG that is not one or references
        another series than ``source_files``, no scan of the timepoint on the SEG's series,
        unmatched VOIs (``unmatched="raise"``), evidence of several patients, or nothing to
        report.

    Notes
    -----
    Groups come in the SEG's segment order, per VOI the scan of the SEG's series first, then
    the timepoint's other scans in document order. The tracking UIDs depend on the study key,
    which changes when series are added to the study: compare UIDs within one analysis.

    """
    target = Path(path)
    _check_output_path(target)
    seg_file = Path(seg_path)
    seg = _read_seg_header(seg_file)
    series_uid = _seg_source_series(seg, seg_file)
    sources = _datasets(source_files, "source_files")
    source_series = {get_str(ds, "SeriesInstanceUID") for ds in sources}
    if source_series != {series_uid}:
        raise InputError(
            f"source_files hold series {sorted(str(s) for s in source_series)}; the SEG was "
            f"drawn on {series_uid}",
            field="source_files",
            hint="pass the PET series the SEG references",
        )
    others = _datasets(other_source_files, "other_source_files") if other_source_files else []
    evidence = [*_prepared_source(sources), seg, *others]
    patients = {get_str(ds, "PatientID") for ds in evidence}
    if len(patients) != 1:
        raise InputError(
            f"the evidence belongs to {len(patients)} patients ({sorted(map(str, patients))})",
            field="other_source_files" if others else "source_files",
        )
    groups = _groups(document, timepoint_id, seg, seg_file, series_uid, unmatched)
    sr = _document(evidence, groups, timepoint_id, series_number, target)
    with atomic_path(target) as temporary:
        sr.save_as(temporary, enforce_file_format=True)
    return target


def _groups(
    document: Mapping[str, Any],
    timepoint_id: str,
    seg: Dataset,
    seg_file: Path,
    series_uid: str,
    unmatched: Unmatched,
) -> list[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations]:
    """TID 1411 groups: per segment with a matching VOI, per scan of the timepoint."""
    import highdicom as hd

    from immunopet import __version__

    study_key = str(_require(_require(document, "study", "document"), "study_key", "study"))
    order, timepoint = _timepoint(document, timepoint_id)
    scans = list(_require(timepoint, "scans", f"timepoint {timepoint_id}"))
    primary_scan = next((s for s in scans if s.get("series_uid") == series_uid), None)
    if primary_scan is None:
        raise InputError(
            f"no scan of timepoint {timepoint_id} is series {series_uid}, the SEG's source",
            path=seg_file,
            hint="pass the SEG written for this timepoint",
        )
    ordered_scans = [primary_scan, *(s for s in scans if s is not primary_scan)]
    measurements = [
        m
        for m in _require(document, "measurements", "document")
        if m.get("timepoint_id") == timepoint_id
    ]
    by_voi_tracer = {(str(m["voi_id"]), str(m["tracer"])): m for m in measurements}
    primary = [m for m in measurements if m.get("tracer") == primary_scan["tracer"]]
    segments = _seg_segments(seg, seg_file)
    reasons = _unmatched(primary, segments)
    if reasons and unmatched == "raise":
        listing = "; ".join(f"{voi}: {why}" for voi, why in list(reasons.items())[:10])
        raise InputError(
            f"{len(reasons)} VOI(s) measured at {timepoint_id} are not the SEG's segments "
            f"({listing})",
            path=seg_file,
            hint="write the SEG from the measured VOI masks, or pass unmatched='omit'",
        )
    codes = _codes()
    time_point = hd.sr.TimePointContext(
        time_point=timepoint_id,
        time_point_order=order,
        temporal_offset_from_event=hd.sr.LongitudinalTemporalOffsetFromEvent(
            value=float(_require(timepoint, "day", f"timepoint {timepoint_id}")),
            unit=_concept(codes["time"]["unit"]),
            event_type=_concept(codes["time"]["event"]),
        ),
    )
    algorithm = hd.sr.AlgorithmIdentification(name=_ALGORITHM_NAME, version=__version__)
    groups = []
    for label, segment in sorted(segments.items(), key=lambda item: item[1].number):
        if label in reasons or (label, primary_scan["tracer"]) not in by_voi_tracer:
            continue
        for scan in ordered_scans:
            measurement = by_voi_tracer.get((label, str(scan["tracer"])))
            if measurement is None:
                continue
            voi_type = str(_require(measurement, "voi_type", "measurement"))
            groups.append(
                hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                    tracking_identifier=hd.sr.TrackingIdentifier(
                        uid=tracking_uid(study_key, voi_type, label), identifier=label
                    ),
                    referenced_segment=hd.sr.ReferencedSegment(
                        sop_class_uid=str(seg.SOPClassUID),
                        sop_instance_uid=str(seg.SOPInstanceUID),
                        segment_number=segment.number,
                        source_series=hd.sr.SourceSeriesForSegmentation(series_uid),
                    ),
                    time_point_context=time_point,
                    finding_type=segment.kind,
                    finding_category=segment.category,
                    algorithm_id=algorithm,
                    session=str(scan.get("scan_id") or f"{timepoint_id}-{scan['tracer']}"),
                    measurements=_measurements(measurement),
                    qualitative_evaluations=_evaluations(scan),
                )
            )
    if not groups:
        raise InputError(
            f"nothing to report at {timepoint_id}: no measured VOI has a segment in the SEG",
            path=seg_file,
        )
    return groups


def _document(
    evidence: Sequence[Dataset],
    groups: Sequence[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations],
    timepoint_id: str,
    series_number: int,
    target: Path,
) -> hd.sr.Comprehensive3DSR:
    """The SR: TID 1500 with the device observer "immunopet", local codes declared."""
    import highdicom as hd
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    from immunopet import __version__

    codes = _codes()
    observer = hd.sr.ObserverContext(
        observer_type=_concept(codes["document"]["observer_type"]),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=str(generate_uid(entropy_srcs=[_DEVICE_ENTROPY])),
            name=_DEVICE_NAME,
            manufacturer_name=_DEVICE_NAME,
            model_name=_ALGORITHM_NAME,
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=_concept(codes["document"]["procedure"]),
        imaging_measurements=groups,
        title=_concept(codes["document"]["title"]),
    )
    schemes = [
        CodingSchemeIdentificationItem(
            designator=designator,
            name=entry["name"],
            responsible_organization=entry["responsible_organization"],
        )
        for designator, entry in codes["coding_schemes"].items()
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PERSON_NAME_WARNING, category=UserWarning)
        try:
            return hd.sr.Comprehensive3DSR(
                evidence=evidence,
                content=report,
                series_instance_uid=hd.UID(),
                series_number=series_number,
                sop_instance_uid=hd.UID(),
                instance_number=1,
                manufacturer=_DEVICE_NAME,
                is_complete=True,
                series_description=f"immunopet measurements {timepoint_id}"[:_LO_MAX_CHARACTERS],
                manufacturer_model_name=_ALGORITHM_NAME,
                software_versions=__version__,
                coding_schemes=schemes,
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise InputError(
                f"highdicom refused the measurement report: {exc}",
                path=target,
                hint="check the source images' patient and study attributes",
            ) from exc


# -- reading ----------------------------------------------------------------------------------
def _reverse_tables() -> tuple[dict[tuple[str, str], str], dict[tuple[tuple[str, str], Any], str]]:
    """Agent code → tracer key; (name code, derivation code) → results.json key."""
    codes = _codes()
    agents = {
        _key(entry["value"], entry["scheme"]): tracer
        for tracer, entry in codes["radiopharmaceuticals"].items()
    }
    measurements: dict[tuple[tuple[str, str], Any], str] = {}
    for key, entry in codes["measurements"].items():
        derivation = entry.get("derivation")
        measurements[
            (
                _key(entry["name"]["value"], entry["name"]["scheme"]),
                None if derivation is None else _key(derivation["value"], derivation["scheme"]),
            )
        ] = key
    return agents, measurements


def _text_item(group: Any, code: tuple[str, str]) -> str | None:
    for item in group[0].ContentSequence:
        name = item.ConceptNameCodeSequence[0]
        if (str(name.CodeValue), str(name.CodingSchemeDesignator)) == code:
            return str(item.TextValue)
    return None


def read_measurement_report(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of the measurements in a TID 1500 report's volumetric ROI groups.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM SR file holding a TID 1500 Measurement Report (any producer).

    Returns
    -------
    list of dict
        One row per measurement, in document order: ``tracking_id``, ``tracking_uid``,
        ``timepoint_id`` (the group's Time Point, ``None`` if absent), ``tracer`` (the
        immunopet tracer key of the group's "Radiopharmaceutical agent"; another producer's
        standard code gives its meaning; ``None`` if absent), ``measurement`` (the
        ``results.json`` key, e.g. ``"suv_max"``, else the concept name and derivation
        meanings), ``value`` (float: the Floating Point Value when present, else the
        Numeric Value) and ``unit`` (UCUM code value; the older SUVbw spelling
        ``{SUVbw}g/ml`` is returned as ``g/ml{SUVbw}``).

    Raises
    ------
    InputError
        Not a readable SR, or an SR without a TID 1500 Measurement Report.

    """
    import highdicom as hd

    file = Path(path)
    if not file.is_file():
        raise InputError("file not found", path=file)
    try:
        sr: Any = hd.sr.srread(file)
    except (InvalidDicomError, RuntimeError, ValueError, AttributeError, KeyError, EOFError) as exc:
        raise InputError(
            f"cannot read the file as a DICOM SR ({type(exc).__name__}: {exc})", path=file
        ) from exc
    content = sr.content
    if not isinstance(content, hd.sr.MeasurementReport):
        raise InputError(
            "the SR holds no TID 1500 Measurement Report",
            path=file,
            field=field_name("ContentTemplateSequence"),
        )
    agents, names = _reverse_tables()
    agent_name = _concept(_codes()["qualitative"]["radiopharmaceutical"])
    rows: list[dict[str, Any]] = []
    for group in content.get_volumetric_roi_measurement_groups():
        tracer: str | None = None
        for evaluation in group.get_qualitative_evaluations(name=agent_name):
            code: Any = evaluation.value  # highdicom types it int | float; it is a code
            if code.scheme_designator == _LOCAL_SCHEME:
                tracer = str(code.value)
            else:
                tracer = agents.get(_key(code.value, code.scheme_designator), str(code.meaning))
        uid = group.tracking_uid
        for item in group[0].ContentSequence:
            # The group's own NUM items (time point order, offset) are observation context.
            if item.ValueType != "NUM" or item.RelationshipType != _CONTAINS:
                continue
            measurement = hd.sr.Measurement.from_sequence([item])
            derivation = measurement.derivation
            name = _key(measurement.name.value, measurement.name.scheme_designator)
            lookup = (
                name,
                None
                if derivation is None
                else _key(derivation.value, derivation.scheme_designator),
            )
            label = names.get(lookup)
            if label is None:
                label = " ".join(
                    str(c.meaning) for c in (measurement.name, derivation) if c is not None
                )
            unit = str(measurement.unit.value)
            rows.append(
                {
                    "tracking_id": group.tracking_identifier,
                    "tracking_uid": None if uid is None else str(uid),
                    "timepoint_id": _text_item(group, _TIME_POINT),
                    "tracer": tracer,
                    "measurement": label,
                    "value": float(measurement.value),
                    "unit": "g/ml{SUVbw}" if unit in _SUVBW_UNITS else unit,
                }
            )
    return rows
