"""Study discovery: a folder tree → one patient → timepoints → PET/SPECT and CT series.

:func:`discover_study` walks a folder at any depth with any file names, reads headers only
(never pixels) and returns a :class:`Study`: the patient, its timepoints in time order with
the day since the CAR T-cell infusion, each timepoint's CT and PET (or SPECT) series with the
tracer resolved, and the masks that belong to it.

Layouts
-------
*DICOM, any layout.* Files are recognised by the ``DICM`` prefix after the 128-byte preamble
(DICOM PS3.10 §7.1) and read with ``stop_before_pixels`` and ``specific_tags``. PT, NM (only
reconstructed tomograms) and CT series are scans; SEG and RTSTRUCT objects are kept as masks of
the timepoint whose frame of reference they share; other objects (SR, PR, KO, MR …) are
skipped and counted in the warnings. Series are grouped into timepoints thus:

1. PET and CT of one PET/CT visit share the Study Instance UID. A study with one CT takes all
   its PET series; a study with several CTs pairs each PET with the CT of its Frame of
   Reference UID, and a PET that matches none or several is refused (never guessed).
2. A PET of a study without CT joins the CT of another study acquired on the same calendar day
   with the same Frame of Reference UID (a PET/CT exported as two studies).
3. PET series left without CT form a timepoint per study and calendar day, with a warning.
4. A CT without PET is not a timepoint (warning).

*PET-BIDS* (BIDS 1.9 PET; the CT is kept as ``ct/*_ct.nii[.gz]`` or ``anat/*_ct.nii[.gz]``,
BEP024): ``sub-<label>/[ses-<label>/]pet/*_pet.nii[.gz]`` with the JSON sidecar beside it; one
session is one timepoint. The scan date comes from the sidecar's ``ImmunopetScanStartDateTime``
/ ``ImmunopetInjectionDateTime`` (written by :func:`immunopet.io.bids.write_pet_bids`), else
from ``acq_time`` in the subject's or session's ``*_scans.tsv``; a sidecar with only the time
of day ``TimeZero`` is refused, since the day since infusion cannot be known.

Masks: DICOM SEG and RTSTRUCT by frame of reference; NIfTI label maps named ``*_dseg.nii[.gz]``
under ``derivatives/`` (matched by their ``sub-``/``ses-`` entities); NIfTI files in a folder
named ``masks`` (they belong to the one timepoint whose series lie under the folder that holds
``masks``). ``derivatives/truth`` (the simulator's ground truth), hidden files and folders are
never read. Other NIfTI files outside a BIDS layout are ignored with a warning.

Times and tracers
-----------------
Days count from the CAR T-cell infusion: the manifest's ``car_t.infusion_datetime``, else the
``infusion_datetime`` argument; never guessed. A timepoint's day is that of its CT start, else
of its first PET start. Scan times are the site-local times of the files (a DICOM date-time
with a UTC offset is converted to the site's offset, as the reader does).

A PET's tracer is resolved from its radiopharmaceutical name (DICOM Radiopharmaceutical
(0018,0031), else the Radiopharmaceutical Code Sequence meaning; PET-BIDS ``TracerName``):
first the manifest's ``tracers`` (exact name, then ignoring case; an FDG name matches the
manifest's one FDG entry), then the knowledge base
(:func:`immunopet.tracers.load_tracers`; spaces, hyphens, dots, underscores and brackets
ignored), then ¹⁸F-FDG by its names (:func:`is_fdg`); otherwise the tracer is reported with an
unknown target and a warning.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from os import PathLike
from pathlib import Path
from typing import Final

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import MediaStorageDirectoryStorage

from immunopet.errors import InputError, NuclideError
from immunopet.io.bids import _load_sidecar, _time_zero_instant, sidecar_path
from immunopet.io.dicom._pet import (
    _local,
    _nuclide_from_header,
    _radiopharmaceutical,
    _site_offset,
    _slice_starts,
    scan_start,
)
from immunopet.io.dicom._read import _has_dicom_magic
from immunopet.io.dicom._values import fast_text, field_name, get_str, parse_dt
from immunopet.io.manifest import FDG_KEY, Manifest, load_manifest
from immunopet.io.nifti import NIFTI_SUFFIXES
from immunopet.physics import canonical_nuclide_name
from immunopet.tracers import load_tracers
from immunopet.units import S_PER_DAY

__all__ = [
    "PetRef",
    "SeriesRef",
    "Study",
    "Timepoint",
    "TracerInfo",
    "discover_study",
    "is_fdg",
]

#: File name of a manifest found in the tree when none is passed.
MANIFEST_NAME: Final = "study.yaml"
#: Attributes read from each DICOM file (``dcmread(specific_tags=...)``).
_TAGS: Final = [
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "ImageType",
    "Rows",
    "StudyDate",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "AcquisitionDateTime",
    "SeriesDescription",
    "TimezoneOffsetFromUTC",
    "RadiopharmaceuticalInformationSequence",
    "ReferencedFrameOfReferenceSequence",
]
_SCAN_MODALITIES: Final = ("PT", "NM", "CT")
_MASK_MODALITIES: Final = ("SEG", "RTSTRUCT")
#: Extensions of sidecars and tables, never images: not opened.
_TEXT_SUFFIXES: Final = (".json", ".tsv", ".csv", ".txt", ".md", ".yaml", ".yml", ".html")
#: BIDS folders whose ``*_ct.nii[.gz]`` is a CT (BIDS 1.9 has no CT; BEP024 proposes ``ct``).
_CT_DATATYPES: Final = ("ct", "anat")
#: Names of ¹⁸F-FDG once lower-cased, stripped of everything but letters and digits and of
#: ``18f``/``f18``: FDG, fludeoxyglucose (INN), fluorodeoxyglucose (DICOM CID 25 meaning
#: "Fluorodeoxyglucose F^18^"), 2-deoxy-2-[18F]fluoro-D-glucose.
_FDG_NAMES: Final = frozenset(
    {
        "fdg",
        "fludeoxyglucose",
        "fluorodeoxyglucose",
        "2fluoro2deoxydglucose",
        "2deoxy2fluorodglucose",
        "2fluoro2deoxyglucose",
        "2deoxy2fluoroglucose",
    }
)
_FDG_AGENT: Final = "[18F]FDG"
_FDG_TARGET: Final = "glucose metabolism"
_FDG_FORMAT: Final = "small_molecule"
_FDG_NUCLIDE: Final = "F-18"
_HINT_ONE_PATIENT: Final = "point discovery at one patient's folder"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SeriesRef:
    """One image series found on disk (headers only, no pixels read).

    Parameters
    ----------
    path : pathlib.Path
        The folder holding this series' files (in a flat layout it may hold other series
        too), or the NIfTI file. Read it with ``immunopet.io.load_scan(path,
        series_uid=series_uid)``.
    files : tuple of pathlib.Path
        The series' files (DICOM), or the NIfTI file.
    series_uid : str
        DICOM Series Instance UID; for NIfTI the file name.
    study_uid, frame_of_reference_uid : str or None
        DICOM Study Instance UID and Frame of Reference UID (``None`` for NIfTI).
    modality : str
        ``"PT"``, ``"NM"`` or ``"CT"``.
    acquisition_datetime : datetime.datetime or None
        Series start: the earliest acquisition date-time of its images, else the Series
        Date/Time (site-local, naive).
    radiopharmaceutical : str or None
        DICOM Radiopharmaceutical (0018,0031) (else the code meaning), or PET-BIDS TracerName.
    nuclide : str or None
        Canonical nuclide (``"Zr-89"``), from the radionuclide code, name or half-life as the
        reader finds it.
    injection_datetime : datetime.datetime or None
        Radiopharmaceutical Start DateTime (site-local); ``None`` when the file gives only a
        time of day (the SUV engine decides about those).
    description : str or None
        Series Description.

    """

    path: Path
    files: tuple[Path, ...]
    series_uid: str
    study_uid: str | None
    frame_of_reference_uid: str | None
    modality: str
    acquisition_datetime: datetime | None
    radiopharmaceutical: str | None
    nuclide: str | None
    injection_datetime: datetime | None
    description: str | None


@dataclass(frozen=True)
class TracerInfo:
    """What a PET's tracer is and where that knowledge came from.

    Parameters
    ----------
    key : str
        The manifest's key, ``"fdg"`` for FDG, else a slug of the agent
        (``"89zr_zr_df_iab22m2c"``).
    agent : str
        Radiopharmaceutical name.
    target : str or None
        What it binds (``"CD8"``); ``None`` when unknown.
    vector_format : str or None
        A :class:`~immunopet.tracers.VectorFormat` value, when known.
    nuclide : str or None
        Canonical nuclide (the file's, else the manifest's).
    source : str
        ``"manifest"``, ``"knowledge base"`` or ``"header"`` (nothing known beyond the name).

    """

    key: str
    agent: str
    target: str | None
    vector_format: str | None
    nuclide: str | None
    source: str


@dataclass(frozen=True)
class PetRef:
    """A PET (or SPECT) series with its tracer."""

    series: SeriesRef
    tracer: TracerInfo


@dataclass(frozen=True)
class Timepoint:
    """One imaging visit.

    Parameters
    ----------
    timepoint_id : str
        ``"TP01"``, ``"TP02"`` … in time order.
    day : float
        Days since the infusion of :attr:`datetime`; negative before the infusion.
    datetime : datetime.datetime
        Reference time: the CT start, else the first PET start.
    ct : SeriesRef or None
        The CT of the visit.
    pets : tuple of PetRef
        PET/SPECT series, in acquisition order.
    masks : tuple of pathlib.Path
        DICOM SEG/RTSTRUCT files sharing the visit's frame of reference and NIfTI label maps
        of the visit (see the module text).

    """

    timepoint_id: str
    day: float
    datetime: datetime
    ct: SeriesRef | None
    pets: tuple[PetRef, ...]
    masks: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Study:
    """One patient's imaging course, as found on disk.

    Parameters
    ----------
    patient_id : str
        DICOM Patient ID, or the BIDS subject label.
    timepoints : tuple of Timepoint
        In time order.
    manifest : Manifest or None
        The manifest used.
    infusion_datetime : datetime.datetime
        CAR T-cell infusion (site-local); days count from it.
    warnings : tuple of str
        What discovery noticed or skipped, one sentence each.

    """

    patient_id: str
    timepoints: tuple[Timepoint, ...]
    manifest: Manifest | None
    infusion_datetime: datetime
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- tracers


def is_fdg(name: str) -> bool:
    """Whether a radiopharmaceutical name is ¹⁸F-FDG.

    Examples
    --------
    >>> [is_fdg(n) for n in ("[18F]FDG", "Fludeoxyglucose", "Fluorodeoxyglucose F^18^",
    ...                      "2-deoxy-2-[18F]fluoro-D-glucose", "[18F]FLT")]
    [True, True, True, True, False]

    """
    compact = re.sub(r"[^a-z0-9]", "", name.casefold())
    compact = compact.replace("18f", "").replace("f18", "")
    return compact in _FDG_NAMES


def _slug(text: str) -> str:
    """A tracer key from a name: lower case, runs of other characters as ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", text.casefold()).strip("_") or "tracer"


def _folded(name: str) -> str:
    """A name compared without case, spaces, hyphens, dots, underscores or brackets."""
    return re.sub(r"[\s\-_.\[\]()]", "", name.casefold())


def _from_manifest(
    text: str, nuclide: str | None, manifest: Manifest, series: SeriesRef
) -> TracerInfo | None:
    entry = manifest.tracer_for(text)
    if entry is None and is_fdg(text):
        fdg = [tracer for tracer in manifest.tracers if is_fdg(tracer.agent)]
        entry = fdg[0] if len(fdg) == 1 else None  # "FDG" in the file, "[18F]FDG" in the manifest
    if entry is None:
        return None
    if nuclide is not None and entry.nuclide is not None and entry.nuclide != nuclide:
        raise InputError(
            f"the manifest's tracer {entry.key!r} is {entry.nuclide}, the file says {nuclide}",
            path=manifest.path,
            field=f"tracers ({entry.key}).nuclide",
            hint=f"check the manifest against {series.path}",
        )
    return TracerInfo(
        key=entry.key,
        agent=entry.agent,
        target=entry.target,
        vector_format=entry.vector_format,
        nuclide=nuclide or entry.nuclide,
        source="manifest",
    )


def _from_knowledge_base(
    text: str, nuclide: str | None, notes: list[str], label: str
) -> TracerInfo | None:
    rows = [t for t in load_tracers() if t.agent == text] or [
        t for t in load_tracers() if _folded(t.agent) == _folded(text)
    ]
    if not rows:
        return None
    if nuclide is not None:
        labelled = [t for t in rows if t.radionuclide == nuclide]
        if not labelled:
            notes.append(
                f"{label}: {text!r} is {rows[0].radionuclide}-labelled in the knowledge base but "
                f"the file says {nuclide}: tracer not taken from the knowledge base"
            )
            return None
        rows = labelled
    facts = {(t.agent, t.target, t.vector_format.value, t.radionuclide) for t in rows}
    if len(facts) > 1:
        listing = "; ".join(f"{a} ({tg}, {vf}, {n})" for a, tg, vf, n in sorted(facts))
        notes.append(
            f"{label}: {text!r} fits several knowledge-base agents ({listing}): "
            "name the tracer in the manifest"
        )
        return None
    ((agent, target, vector_format, radionuclide),) = facts
    return TracerInfo(
        key=_slug(agent),
        agent=agent,
        target=target,
        vector_format=vector_format,
        nuclide=nuclide or radionuclide,
        source="knowledge base",
    )


def _resolve_tracer(series: SeriesRef, manifest: Manifest | None, notes: list[str]) -> TracerInfo:
    text = series.radiopharmaceutical
    nuclide = series.nuclide
    label = f"{series.modality} series {series.description or series.series_uid}"
    if text is not None:
        if manifest is not None:
            found = _from_manifest(text, nuclide, manifest, series)
            if found is not None:
                return found
        found = _from_knowledge_base(text, nuclide, notes, label)
        if found is not None:
            return found
        if is_fdg(text):
            if nuclide in (None, _FDG_NUCLIDE):
                return TracerInfo(
                    FDG_KEY, _FDG_AGENT, _FDG_TARGET, _FDG_FORMAT, _FDG_NUCLIDE, "knowledge base"
                )
            notes.append(f"{label}: {text!r} is named like FDG but the file says {nuclide}")
    agent = text if text is not None else f"unnamed {nuclide or 'radionuclide'} tracer"
    notes.append(
        f"{label}: radiopharmaceutical {agent!r} is in neither the manifest nor the knowledge "
        "base: its target is unknown; add it to the manifest's tracers"
        if text is not None
        else f"{label}: the file names no radiopharmaceutical: its target is unknown; "
        "add the agent to the file or the manifest"
    )
    return TracerInfo(_slug(agent), agent, None, None, nuclide, "header")


#: Which tracer keeps a key two tracers would share: the better-known one.
_SOURCE_RANK: Final = {"manifest": 0, "knowledge base": 1, "header": 2}


def _with_unique_keys(
    resolved: dict[tuple[str | None, str | None], TracerInfo],
) -> dict[tuple[str | None, str | None], TracerInfo]:
    """The tracers with keys no two different tracers share (``fdg_zr_89`` beside ``fdg``).

    The manifest's and the knowledge base's tracers keep their keys; a tracer known only from
    its header gets its nuclide appended, then a number.
    """
    assigned: dict[TracerInfo, TracerInfo] = {}
    taken: set[str] = set()
    for tracer in sorted(set(resolved.values()), key=lambda t: (_SOURCE_RANK[t.source], t.key)):
        key = tracer.key
        if key in taken:
            key = f"{tracer.key}_{_slug(tracer.nuclide or 'unknown')}"
        number = 2
        while key in taken:
            key, number = f"{tracer.key}_{number}", number + 1
        taken.add(key)
        assigned[tracer] = dataclasses.replace(tracer, key=key)
    return {name: assigned[tracer] for name, tracer in resolved.items()}


# --------------------------------------------------------------------------- walking


@dataclass
class _Found:
    dicom: list[Path] = field(default_factory=list)
    nifti: list[Path] = field(default_factory=list)
    manifests: list[Path] = field(default_factory=list)
    other: int = 0


def _walk(root: Path) -> _Found:
    found = _Found()
    for folder, directories, names in os.walk(root):
        here = Path(folder)
        directories[:] = sorted(
            d
            for d in directories
            if not d.startswith(".") and not (here.name == "derivatives" and d == "truth")
        )
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = here / name
            lowered = name.lower()
            if name == MANIFEST_NAME:
                found.manifests.append(path)
            elif lowered.endswith(NIFTI_SUFFIXES):
                found.nifti.append(path)
            elif lowered.endswith(_TEXT_SUFFIXES):
                continue
            elif _has_dicom_magic(str(path)):
                found.dicom.append(path)
            else:
                found.other += 1
    return found


# --------------------------------------------------------------------------- DICOM


@dataclass(frozen=True)
class _DicomMask:
    path: Path
    frame_of_reference_uid: str | None


def _read_headers(paths: Sequence[Path], notes: list[str]) -> list[tuple[Path, Dataset]]:
    headers: list[tuple[Path, Dataset]] = []
    unreadable: list[str] = []
    for path in paths:
        try:
            headers.append((path, dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)))
        except Exception as exc:  # pydicom raises many types on broken files
            unreadable.append(f"{path} ({type(exc).__name__}: {exc})")
    if unreadable:
        notes.append(f"{len(unreadable)} unreadable DICOM file(s) skipped, e.g. {unreadable[0]}")
    return headers


def _mask_frame_of_reference(ds: Dataset) -> str | None:
    uid = get_str(ds, "FrameOfReferenceUID")
    if uid is None:
        for item in ds.get("ReferencedFrameOfReferenceSequence") or []:
            uid = get_str(item, "FrameOfReferenceUID")
            if uid is not None:
                break
    return uid


def _is_tomogram(ds: Dataset) -> bool:
    image_type = " ".join(str(v).upper() for v in (ds.get("ImageType") or []))
    return "TOMO" in image_type


def _series_ref(files: list[tuple[Path, Dataset]], notes: list[str]) -> SeriesRef:
    paths = tuple(path for path, _ in files)
    datasets = [ds for _, ds in files]
    first = datasets[0]
    source = os.path.commonpath([str(p.parent) for p in paths])
    modality = (get_str(first, "Modality") or "").upper()
    site = _site_offset(first, source)
    series_start = scan_start(first, path=source)
    starts = [s for s in _slice_starts(datasets, series_start, site, notes, source) if s]
    start = min(starts) if starts else series_start
    radiopharmaceutical = nuclide = injection = None
    if modality != "CT":
        item = _radiopharmaceutical(first)
        if item is not None:
            radiopharmaceutical = get_str(item, "Radiopharmaceutical", path=source)
            if radiopharmaceutical is None:
                for code in item.get("RadiopharmaceuticalCodeSequence") or []:
                    radiopharmaceutical = get_str(code, "CodeMeaning", path=source)
                    break
            injection = _local(
                parse_dt(item, "RadiopharmaceuticalStartDateTime", path=source),
                site,
                "Radiopharmaceutical Start DateTime",
                notes,
            )
        label: list[str] = []
        nuclide = _nuclide_from_header(first, item, label)
        notes.extend(f"{source}: {note}" for note in label)
    return SeriesRef(
        path=Path(source),
        files=paths,
        series_uid=get_str(first, "SeriesInstanceUID") or "",
        study_uid=get_str(first, "StudyInstanceUID"),
        frame_of_reference_uid=get_str(first, "FrameOfReferenceUID"),
        modality=modality,
        acquisition_datetime=start,
        radiopharmaceutical=radiopharmaceutical,
        nuclide=nuclide,
        injection_datetime=injection,
        description=get_str(first, "SeriesDescription"),
    )


def _dicom_objects(
    paths: Sequence[Path], notes: list[str]
) -> tuple[list[SeriesRef], list[_DicomMask], dict[str, list[Path]]]:
    """Series of PT/NM/CT images, SEG/RTSTRUCT masks, and the files of each Patient ID."""
    by_series: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    masks: list[_DicomMask] = []
    patients: dict[str, list[Path]] = defaultdict(list)
    skipped: Counter[str] = Counter()
    no_uid = 0
    for path, ds in _read_headers(paths, notes):
        meta = getattr(ds, "file_meta", None)
        if meta is not None and meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
            continue  # a DICOMDIR indexes files that the walk finds anyway
        patients[fast_text(ds, "PatientID") or ""].append(path)
        modality = (fast_text(ds, "Modality") or "").upper()
        if modality in _MASK_MODALITIES:
            masks.append(_DicomMask(path, _mask_frame_of_reference(ds)))
        elif modality not in _SCAN_MODALITIES or "Rows" not in ds:
            skipped[modality or "no-modality"] += 1
        elif modality == "NM" and not _is_tomogram(ds):
            skipped["planar NM"] += 1
        elif (uid := fast_text(ds, "SeriesInstanceUID")) is None:
            no_uid += 1
        else:
            by_series[uid].append((path, ds))
    if skipped:
        listing = ", ".join(f"{count} {kind}" for kind, count in sorted(skipped.items()))
        notes.append(
            f"skipped DICOM files that are not PT, NM tomograms, CT, SEG or RTSTRUCT: {listing}"
        )
    if no_uid:
        notes.append(f"{no_uid} DICOM image file(s) without Series Instance UID skipped")
    series = []
    for uid, files in by_series.items():
        modalities = {(get_str(ds, "Modality") or "").upper() for _, ds in files}
        if len(modalities) > 1:
            raise InputError(
                f"series {uid} mixes modalities {', '.join(sorted(modalities))}",
                path=os.path.commonpath([str(p) for p, _ in files]),
                field=field_name("Modality"),
            )
        series.append(_series_ref(sorted(files, key=lambda item: str(item[0])), notes))
    return series, masks, patients


# --------------------------------------------------------------------------- PET-BIDS


@dataclass(frozen=True)
class _BidsPlace:
    subject: str
    session: str | None
    datatype: str


def _bids_parts(path: Path, root: Path) -> tuple[str, ...]:
    """Folders and name of ``path`` below ``root``, from the subject folder when ``root`` is one.

    Discovery may be pointed at a BIDS dataset, a ``sub-<label>`` folder or a session folder.
    """
    parts = path.relative_to(root).parts
    if root.name.startswith("ses-") and root.parent.name.startswith("sub-"):
        return (root.parent.name, root.name, *parts)
    if root.name.startswith("sub-"):
        return (root.name, *parts)
    return parts


def _bids_place(path: Path, root: Path) -> _BidsPlace | None:
    """Subject, session and datatype folder of a raw-data BIDS file, or ``None``."""
    parts = _bids_parts(path, root)[:-1]
    subjects = [i for i, part in enumerate(parts) if part.startswith("sub-")]
    if not subjects or "derivatives" in parts or "sourcedata" in parts:
        return None
    index = subjects[-1]
    rest = parts[index + 1 :]
    session = None
    if rest and rest[0].startswith("ses-"):
        session, rest = rest[0][4:], rest[1:]
    if len(rest) != 1:
        return None
    return _BidsPlace(parts[index][4:], session, rest[0])


def _entities(path: Path) -> dict[str, str]:
    """BIDS entities of a file and its folders (``sub``, ``ses`` …), the file's own winning."""
    found: dict[str, str] = {}
    for part in path.parts:
        for chunk in part.split("_"):
            key, _, value = chunk.partition("-")
            if key in ("sub", "ses") and value:
                found[key] = value.split(".")[0]
    return found


def _stem(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _acq_time(nifti: Path, place: _BidsPlace) -> datetime | None:
    """``acq_time`` of ``nifti`` in the session's (or subject's) ``*_scans.tsv`` (BIDS)."""
    session = "" if place.session is None else f"_ses-{place.session}"
    table = nifti.parent.parent / f"sub-{place.subject}{session}_scans.tsv"
    if not table.is_file():
        return None
    wanted = f"{place.datatype}/{nifti.name}"
    with table.open(encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream, delimiter="\t"):
            name = (row.get("filename") or "").strip().replace("\\", "/")
            value = (row.get("acq_time") or "").strip()
            if not name.endswith(wanted) or value in ("", "n/a"):
                continue
            try:
                acquired = datetime.fromisoformat(value)
            except ValueError:
                raise InputError(
                    f"{value!r} is not an ISO 8601 date-time", path=table, field="acq_time"
                ) from None
            if acquired.tzinfo is not None:
                raise InputError(
                    f"{value!r} carries a UTC offset; discovery compares site-local times",
                    path=table,
                    field="acq_time",
                    hint="write the site-local time without an offset",
                )
            return acquired
    return None


def _bids_pet(nifti: Path, place: _BidsPlace) -> SeriesRef:
    sidecar = _load_sidecar(sidecar_path(nifti))
    radionuclide = sidecar.text("TracerRadionuclide")
    try:
        nuclide = canonical_nuclide_name(radionuclide)
    except NuclideError as exc:
        raise NuclideError(
            f"TracerRadionuclide {radionuclide!r}: {exc.message}",
            path=sidecar.path,
            field="TracerRadionuclide",
        ) from None
    time_zero_text = sidecar.text("TimeZero")
    try:
        time_zero = time.fromisoformat(time_zero_text)
    except ValueError:
        raise InputError(
            f"TimeZero must be hh:mm:ss, got {time_zero_text!r}",
            path=sidecar.path,
            field="TimeZero",
        ) from None
    injection_s = sidecar.number("InjectionStart")
    scan_start_s = sidecar.number("ScanStart")
    frame_start_s = sidecar.numbers("FrameTimesStart")[0]
    zero, undated = _time_zero_instant(
        sidecar,
        time_zero,
        {"ImmunopetInjectionDateTime": injection_s, "ImmunopetScanStartDateTime": scan_start_s},
    )
    if undated:
        acquired = _acq_time(nifti, place)
        if acquired is None:
            raise InputError(
                "the sidecar gives TimeZero only as a time of day, so the scan date is unknown",
                path=sidecar.path,
                field="TimeZero",
                hint="add acq_time for this file to the *_scans.tsv, or "
                "ImmunopetScanStartDateTime to the sidecar",
            )
        zero = acquired - timedelta(seconds=scan_start_s)
    if zero.tzinfo is not None:
        raise InputError(
            "the sidecar's date-times carry a UTC offset; discovery compares site-local times",
            path=sidecar.path,
            field="ImmunopetScanStartDateTime",
            hint="write site-local date-times without an offset",
        )
    return SeriesRef(
        path=nifti,
        files=(nifti,),
        series_uid=nifti.name,
        study_uid=None,
        frame_of_reference_uid=None,
        modality="PT",
        acquisition_datetime=zero + timedelta(seconds=frame_start_s),
        radiopharmaceutical=sidecar.optional_text("TracerName"),
        nuclide=nuclide,
        injection_datetime=zero + timedelta(seconds=injection_s),
        description=_stem(nifti),
    )


def _bids_ct(nifti: Path, place: _BidsPlace) -> SeriesRef:
    return SeriesRef(
        path=nifti,
        files=(nifti,),
        series_uid=nifti.name,
        study_uid=None,
        frame_of_reference_uid=None,
        modality="CT",
        acquisition_datetime=_acq_time(nifti, place),
        radiopharmaceutical=None,
        nuclide=None,
        injection_datetime=None,
        description=_stem(nifti),
    )


@dataclass
class _Visit:
    """Series of one timepoint being assembled."""

    key: str
    ct: SeriesRef | None = None
    pets: list[SeriesRef] = field(default_factory=list)
    session: str | None = None
    masks: list[Path] = field(default_factory=list)


def _bids_visits(
    nifti: Sequence[Path], root: Path
) -> tuple[list[_Visit], list[str], list[Path], list[Path]]:
    """Visits per BIDS session, the subjects seen, derivative label maps and other NIfTI files."""
    sessions: dict[tuple[str, str | None], _Visit] = {}
    subjects: dict[str, None] = {}
    label_maps: list[Path] = []
    outside: list[Path] = []
    for path in nifti:
        relative = path.relative_to(root).parts
        if "masks" in relative[:-1]:
            label_maps.append(path)
            continue
        if "derivatives" in relative[:-1]:
            if _stem(path).endswith("_dseg"):
                label_maps.append(path)
            continue
        place = _bids_place(path, root)
        stem = _stem(path)
        if place is None:
            outside.append(path)
            continue
        subjects[place.subject] = None
        visit = sessions.setdefault(
            (place.subject, place.session),
            _Visit(
                f"sub-{place.subject}" + (f"/ses-{place.session}" if place.session else ""),
                session=place.session,
            ),
        )
        if place.datatype == "pet" and stem.endswith("_pet"):
            visit.pets.append(_bids_pet(path, place))
        elif place.datatype in _CT_DATATYPES and stem.endswith("_ct"):
            if visit.ct is not None:
                raise InputError(
                    f"two CT images in one session: {visit.ct.path.name} and {path.name}",
                    path=path.parent,
                    hint="keep one CT per session",
                )
            visit.ct = _bids_ct(path, place)
        else:
            outside.append(path)
    return list(sessions.values()), list(subjects), label_maps, outside


# --------------------------------------------------------------------------- grouping


def _start(series: SeriesRef) -> datetime:
    if series.acquisition_datetime is None:
        raise InputError(
            f"{series.modality} series {series.series_uid} has no acquisition or series date-time",
            path=series.path,
            field=field_name("SeriesDate"),
            hint="the scan cannot be placed in the course without its date",
        )
    return series.acquisition_datetime


def _describe(series: SeriesRef) -> str:
    return f"{series.modality} {series.description or series.series_uid} ({series.path})"


def _ct_for_pet(pet: SeriesRef, cts: Sequence[SeriesRef], study: str) -> SeriesRef:
    matching = [ct for ct in cts if ct.frame_of_reference_uid == pet.frame_of_reference_uid]
    if len(matching) != 1:
        listing = "; ".join(_describe(ct) for ct in cts)
        raise InputError(
            f"study {study} holds {len(cts)} CT series and {len(matching)} share the frame of "
            f"reference of {_describe(pet)}: which CT belongs to it is unclear ({listing})",
            path=pet.path,
            field=field_name("FrameOfReferenceUID"),
            hint="keep one CT per PET/CT visit in the folder",
        )
    return matching[0]


def _dicom_visits(series: Sequence[SeriesRef], notes: list[str]) -> list[_Visit]:
    """Group DICOM series into visits (the rules of the module text)."""
    by_study: dict[str | None, list[SeriesRef]] = defaultdict(list)
    for item in series:
        by_study[item.study_uid].append(item)
    visits: dict[str, _Visit] = {}
    waiting: list[SeriesRef] = []
    for study, members in by_study.items():
        cts = [s for s in members if s.modality == "CT"]
        pets = sorted((s for s in members if s.modality != "CT"), key=_start)
        for ct in cts:
            visits[ct.series_uid] = _Visit(ct.series_uid, ct=ct)
        if study is None:
            waiting.extend(pets)  # no Study Instance UID: only the frame of reference can pair
            continue
        for pet in pets:
            if not cts:
                waiting.append(pet)
                continue
            ct = cts[0] if len(cts) == 1 else _ct_for_pet(pet, cts, study)
            if ct.frame_of_reference_uid != pet.frame_of_reference_uid:
                notes.append(
                    f"{_describe(pet)} shares the study of its CT but not the frame of "
                    "reference: the two may not be registered"
                )
            visits[ct.series_uid].pets.append(pet)
    alone: dict[str, _Visit] = {}
    for pet in waiting:
        day = _start(pet).date()
        partners = [
            v
            for v in visits.values()
            if v.ct is not None
            and pet.frame_of_reference_uid is not None
            and v.ct.frame_of_reference_uid == pet.frame_of_reference_uid
            and v.ct.acquisition_datetime is not None
            and v.ct.acquisition_datetime.date() == day
        ]
        if len(partners) > 1:
            raise InputError(
                f"{_describe(pet)} shares its frame of reference with {len(partners)} CT series "
                "of that day: which CT belongs to it is unclear",
                path=pet.path,
                field=field_name("FrameOfReferenceUID"),
                hint="keep one CT per PET/CT visit in the folder",
            )
        if partners:
            partners[0].pets.append(pet)
            continue
        notes.append(f"{_describe(pet)} has no CT: it forms a timepoint without CT")
        key = f"study {pet.study_uid or pet.series_uid} on {day.isoformat()}"
        alone.setdefault(key, _Visit(key)).pets.append(pet)
    result = []
    for visit in visits.values():
        if visit.pets:
            result.append(visit)
        else:
            assert visit.ct is not None
            notes.append(f"{_describe(visit.ct)} has no PET or SPECT series: not a timepoint")
    return result + list(alone.values())


def _reference_time(visit: _Visit) -> datetime:
    if visit.ct is not None and visit.ct.acquisition_datetime is not None:
        return visit.ct.acquisition_datetime
    return min(_start(pet) for pet in visit.pets)


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _assign_masks(
    visits: Sequence[_Visit],
    dicom_masks: Sequence[_DicomMask],
    label_maps: Sequence[Path],
    root: Path,
    notes: list[str],
) -> None:
    unassigned: list[Path] = []
    for mask in dicom_masks:
        owners = [
            v
            for v in visits
            if mask.frame_of_reference_uid is not None
            and mask.frame_of_reference_uid
            in {s.frame_of_reference_uid for s in (*v.pets, *((v.ct,) if v.ct else ()))}
        ]
        if len(owners) == 1:
            owners[0].masks.append(mask.path)
        else:
            unassigned.append(mask.path)
    for path in label_maps:
        parts = path.relative_to(root).parts
        owners = []
        if "masks" in parts[:-1]:
            anchor = root.joinpath(*parts[: parts.index("masks")])
            owners = [
                v
                for v in visits
                if all(
                    _under(f, anchor)
                    for s in (*v.pets, *((v.ct,) if v.ct else ()))
                    for f in s.files
                )
            ]
        else:
            session = _entities(Path(*_bids_parts(path, root))).get("ses")
            owners = [v for v in visits if v.session == session]
        if len(owners) == 1:
            owners[0].masks.append(path)
        else:
            unassigned.append(path)
    if unassigned:
        notes.append(
            f"{len(unassigned)} mask file(s) match no single timepoint and are not used, "
            f"e.g. {unassigned[0]}"
        )


# --------------------------------------------------------------------------- patient, infusion


def _patient_id(
    dicom_patients: dict[str, list[Path]],
    subjects: Sequence[str],
    manifest: Manifest | None,
    root: Path,
) -> str:
    ids = sorted(dicom_patients) if dicom_patients else sorted(subjects)
    if len(ids) > 1:
        listing = ", ".join(
            f"{pid or '(no PatientID)'} in {dicom_patients[pid][0].parent}"
            if dicom_patients
            else f"sub-{pid}"
            for pid in ids
        )
        raise InputError(f"{len(ids)} patients found: {listing}", path=root, hint=_HINT_ONE_PATIENT)
    found = ids[0] if ids else ""
    stated = None if manifest is None else manifest.patient_id
    if not found:
        if stated is None:
            raise InputError(
                "the files give no Patient ID",
                path=root,
                field=field_name("PatientID"),
                hint="add patient_id to the manifest",
            )
        return stated
    if stated is not None and stated != found:
        same = not dicom_patients and re.sub(r"[^A-Za-z0-9]", "", stated) == found
        if not same:
            raise InputError(
                f"the manifest is for patient {stated!r}, the files are of {found!r}",
                path=manifest.path if manifest is not None else None,
                field="patient_id",
                hint="use this patient's manifest",
            )
        return stated
    return found


def _infusion(manifest: Manifest | None, given: datetime | None) -> datetime:
    stated = None if manifest is None else manifest.infusion_datetime
    if given is not None and given.tzinfo is not None:
        raise InputError(
            f"{given.isoformat()} carries a UTC offset; scan times are site-local",
            field="--infusion-datetime",
            hint="give the site's local date and time without an offset",
        )
    if stated is not None and given is not None and stated != given:
        raise InputError(
            f"the manifest says {stated.isoformat()}, the option {given.isoformat()}",
            path=manifest.path if manifest is not None else None,
            field="car_t.infusion_datetime",
            hint="give the infusion once (the manifest or --infusion-datetime)",
        )
    infusion = stated if stated is not None else given
    if infusion is None:
        raise InputError(
            "the CAR T-cell infusion date-time is unknown: days cannot be counted",
            field="infusion_datetime",
            hint="pass --infusion-datetime or a manifest with car_t.infusion_datetime",
        )
    return infusion


def _manifest(given: str | PathLike[str] | None, found: Sequence[Path]) -> Manifest | None:
    if given is not None:
        return load_manifest(given)
    if len(found) > 1:
        raise InputError(
            f"{len(found)} {MANIFEST_NAME} files found: {', '.join(str(p) for p in found)}",
            path=found[0].parent,
            hint="pass --manifest to choose one",
        )
    return load_manifest(found[0]) if found else None


# --------------------------------------------------------------------------- entry point


def discover_study(
    root: str | PathLike[str],
    *,
    manifest: str | PathLike[str] | None = None,
    infusion_datetime: datetime | None = None,
) -> Study:
    """Find one patient's timepoints and scans in a folder tree (headers only).

    Parameters
    ----------
    root : str or os.PathLike
        Folder of one patient: DICOM files in any layout and depth, or a PET-BIDS dataset
        (or subject folder) of one subject.
    manifest : str or os.PathLike, optional
        ``study.yaml`` (``docs/study_manifest.md``). Default: the one ``study.yaml`` in
        the tree, if any.
    infusion_datetime : datetime.datetime, optional
        CAR T-cell infusion, site-local and naive, when the manifest does not give it.

    Returns
    -------
    Study

    Raises
    ------
    InputError
        Several patients, no scans, DICOM mixed with PET-BIDS, an unclear PET/CT pairing, a
        scan without a date, the infusion unknown or given twice differently, or a manifest
        that contradicts the files; one line naming the file or field and the fix.

    Examples
    --------
    One ⁸⁹Zr-minibody PET (no CT) four days and 21 hours after the infusion:

    >>> import tempfile, numpy as np
    >>> from immunopet.image import DecayCorrection, Quantity, Volume
    >>> from immunopet.io.dicom import PetSeriesSpec, pet_series_datasets, write_datasets
    >>> volume = Volume(np.ones((2, 3, 3), np.float32), np.eye(4), Quantity.ACTIVITY_CONCENTRATION)
    >>> spec = PetSeriesSpec(nuclide="Zr-89", injected_activity_bq=37e6,
    ...     injection_datetime=datetime(2026, 3, 2, 9, 0), series_datetime=datetime(2026, 3, 6, 9, 0),
    ...     frame_duration_s=600.0, decay_correction=DecayCorrection.START,
    ...     radiopharmaceutical="[89Zr]Zr-Df-IAB22M2C", patient_id="P1")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = write_datasets(pet_series_datasets(volume, spec), Path(folder) / "pet")
    ...     study = discover_study(folder, infusion_datetime=datetime(2026, 3, 1, 12, 0))
    >>> (timepoint,) = study.timepoints
    >>> timepoint.timepoint_id, timepoint.day, timepoint.pets[0].tracer.target
    ('TP01', 4.875, 'CD8')

    """
    folder = Path(root)
    if not folder.is_dir():
        raise InputError("no such folder", path=folder, hint="pass the patient's folder")
    notes: list[str] = []
    found = _walk(folder)
    study_manifest = _manifest(manifest, found.manifests)
    infusion = _infusion(study_manifest, infusion_datetime)
    series, dicom_masks, patients = _dicom_objects(found.dicom, notes)
    bids_visits, subjects, label_maps, outside = _bids_visits(found.nifti, folder)
    if outside:
        notes.append(
            f"{len(outside)} NIfTI file(s) outside a PET-BIDS pet/ct folder ignored, "
            f"e.g. {outside[0]}"
        )
    if series and any(v.pets or v.ct for v in bids_visits):
        raise InputError(
            "the folder holds both DICOM series and PET-BIDS images",
            path=folder,
            hint="point discovery at the DICOM folder or at the BIDS folder",
        )
    if dicom_masks and bids_visits:
        notes.append(f"{len(dicom_masks)} DICOM SEG/RTSTRUCT file(s) beside PET-BIDS ignored")
        dicom_masks = []
    visits = _dicom_visits(series, notes) if series else []
    for visit in bids_visits:
        if not visit.pets:
            notes.append(f"{visit.key} has no PET image: not a timepoint")
        else:
            if visit.ct is None:
                notes.append(f"{visit.key} has no CT: a timepoint without CT")
            visits.append(visit)
    if not visits:
        raise InputError(
            "no PET or SPECT series found",
            path=folder,
            hint="point discovery at a folder of DICOM PT/NM/CT files or a PET-BIDS dataset",
        )
    patient_id = _patient_id(patients if series else {}, subjects, study_manifest, folder)
    _assign_masks(visits, dicom_masks, label_maps, folder, notes)
    ordered = sorted(visits, key=lambda v: (_reference_time(v), v.key))
    timepoints = []
    resolved: dict[tuple[str | None, str | None], TracerInfo] = {}
    for visit in ordered:
        visit.pets.sort(key=lambda s: (_start(s), s.series_uid))
        for pet in visit.pets:
            name = (pet.radiopharmaceutical, pet.nuclide)
            if name not in resolved:
                resolved[name] = _resolve_tracer(pet, study_manifest, notes)
    tracers = _with_unique_keys(resolved)
    for number, visit in enumerate(ordered, start=1):
        reference = _reference_time(visit)
        pets = [PetRef(pet, tracers[(pet.radiopharmaceutical, pet.nuclide)]) for pet in visit.pets]
        timepoints.append(
            Timepoint(
                timepoint_id=f"TP{number:02d}",
                day=(reference - infusion).total_seconds() / S_PER_DAY,
                datetime=reference,
                ct=visit.ct,
                pets=tuple(pets),
                masks=tuple(sorted(visit.masks)),
            )
        )
    if found.other:
        notes.append(f"{found.other} file(s) that are neither DICOM nor NIfTI ignored")
    return Study(
        patient_id=patient_id,
        timepoints=tuple(timepoints),
        manifest=study_manifest,
        infusion_datetime=infusion,
        warnings=tuple(dict.fromkeys(notes)),
    )
