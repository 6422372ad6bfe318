"""Writing PET and CT series as a scanner would: one file per slice, int16 with per-slice rescale.

Used by the simulator, the shipped example, the benchmark and the tests, so
that everything downstream exercises the real ingest path. The builders return
``pydicom.Dataset`` objects so a caller can add vendor variations before
:func:`write_datasets` puts them on disk.
"""

from __future__ import annotations

import copy
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from immunopet.errors import InputError
from immunopet.image import DecayCorrection, Quantity, Volume
from immunopet.io._atomic import atomic_directory, atomic_path
from immunopet.physics import element_name, frame_average_decay_factor, nuclide, seconds_between
from immunopet.units import CM_PER_M, MS_PER_S

__all__ = [
    "PetSeriesSpec",
    "StudyIdentity",
    "ct_series_datasets",
    "pet_series_datasets",
    "write_ct_series",
    "write_datasets",
    "write_pet_series",
]

PET_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.128")
CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
_INT16_MAX = 32767


@dataclass(frozen=True)
class PetSeriesSpec:
    """Administration and patient facts written into a PET series.

    Parameters
    ----------
    nuclide : str
        Nuclide name (any spelling :func:`immunopet.physics.nuclide` accepts).
    injected_activity_bq : float
        Radionuclide Total Dose (0018,1074), Bq.
    injection_datetime : datetime
        Radiopharmaceutical Start DateTime (0018,1078).
    series_datetime : datetime
        Series Date/Time: the decay reference of a START-corrected series.
    frame_duration_s : float
        Duration of each bed position, s.
    weight_kg, height_cm : float or None
        Patient's Weight (0010,1030) and Size (0010,1020, written in m).
    sex : {"M", "F"} or None
        Patient's Sex.
    decay_correction : DecayCorrection
        What the pixel values are decay-corrected to.
    radiopharmaceutical : str
        Radiopharmaceutical (0018,0031).
    slices_per_bed : int or None
        When given, each group of this many slices gets its own acquisition
        time (whole-body bed positions, each ``frame_duration_s`` long).
    manufacturer, patient_id : str
        Manufacturer (0008,0070) and Patient ID (used when no study is given).
    series_number : int
        Series Number (0020,0011).
    series_description : str
        Series Description (0008,103E); omitted when empty.

    """

    nuclide: str
    injected_activity_bq: float
    injection_datetime: datetime
    series_datetime: datetime
    frame_duration_s: float
    weight_kg: float | None = None
    height_cm: float | None = None
    sex: str | None = None
    decay_correction: DecayCorrection = DecayCorrection.START
    radiopharmaceutical: str = ""
    slices_per_bed: int | None = None
    manufacturer: str = "immunopet"
    patient_id: str = "IMMUNOPET-PHANTOM"
    series_number: int = 1
    series_description: str = ""


def _da(value: datetime) -> str:
    return value.strftime("%Y%m%d")


def _tm(value: datetime) -> str:
    return value.strftime("%H%M%S.%f")


def _dt(value: datetime) -> str:
    return value.strftime("%Y%m%d%H%M%S.%f")


def _ds(value: float) -> str:
    """Format a float as a DICOM DS (max 16 characters), keeping as many digits as fit."""
    for digits in range(10, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"cannot write {value!r} as a DICOM DS")


@dataclass(frozen=True)
class StudyIdentity:
    """The patient and study facts shared by every series of one visit (PET and CT).

    Series written with the same identity share Study Instance UID and Frame of
    Reference UID, as the PET and CT of one PET/CT acquisition do, so that a
    reader groups them into one study on one patient grid.

    Parameters
    ----------
    patient_id : str
        Patient ID (0010,0020); also written as Patient's Name.
    study_datetime : datetime
        Study Date/Time.
    study_instance_uid, frame_of_reference_uid : str
        The UIDs (see :meth:`new`).
    patient_sex : {"M", "F"} or None
        Patient's Sex (0010,0040), written empty when unknown (Type 2).

    """

    patient_id: str
    study_datetime: datetime
    study_instance_uid: str
    frame_of_reference_uid: str
    patient_sex: str | None = None

    @classmethod
    def new(
        cls,
        patient_id: str,
        when: datetime,
        *,
        frame_of_reference_uid: str | None = None,
        patient_sex: str | None = None,
    ) -> StudyIdentity:
        """A new study with fresh UIDs."""
        return cls(
            patient_id=patient_id,
            study_datetime=when,
            study_instance_uid=generate_uid(),
            frame_of_reference_uid=frame_of_reference_uid or generate_uid(),
            patient_sex=patient_sex,
        )


@dataclass
class _SliceSeries:
    """One series as a template dataset plus the few elements that change per slice.

    ``slices[i]`` maps keyword → value for slice ``i`` (same keywords for every
    slice; ``SOPInstanceUID`` is added per slice when written or built).
    """

    sop_class: UID
    template: Dataset
    slices: list[dict[str, Any]]

    def datasets(self) -> list[Dataset]:
        """Full datasets, one per slice (for callers that edit them before writing)."""
        built = []
        for overrides in self.slices:
            ds = copy.deepcopy(self.template)
            ds.file_meta = _file_meta(self.sop_class, "")
            for keyword, value in overrides.items():
                setattr(ds, keyword, value)
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            built.append(ds)
        return built

    def write(self, folder: Path) -> list[Path]:
        """Write ``IMG0001.dcm``… into the new folder ``folder``, all or nothing.

        The template is encoded once by pydicom; per slice only the changing
        elements are encoded (:func:`_encode_element`) and spliced in tag order.
        """
        static: dict[int, bytes] = {}
        for element in self.template:
            buffer = DicomBytesIO()
            buffer.is_little_endian, buffer.is_implicit_VR = True, False
            write_data_element(buffer, element)
            static[int(element.tag)] = buffer.getvalue()
        dynamic = [(int(tag_for_keyword(name) or 0), name) for name in self.slices[0]]
        dynamic.append((int(tag_for_keyword("SOPInstanceUID") or 0), "SOPInstanceUID"))
        if any(tag == 0 or tag in static for tag, _ in dynamic):
            raise ValueError("per-slice elements must be known keywords absent from the template")
        order = sorted([*static, *(tag for tag, _ in dynamic)])
        names = dict(dynamic)
        paths = []
        with atomic_directory(folder) as temporary:
            for index, overrides in enumerate(self.slices):
                uid = generate_uid()
                values = {**overrides, "SOPInstanceUID": uid}
                parts = [_PREAMBLE, _encode_file_meta(self.sop_class, uid)]
                for tag in order:
                    chunk = static.get(tag)
                    parts.append(
                        chunk if chunk is not None else _encode_element(tag, values[names[tag]])
                    )
                name = f"IMG{index + 1:04d}.dcm"
                (temporary / name).write_bytes(b"".join(parts))
                paths.append(folder / name)
        return paths


_PREAMBLE: Final = bytes(128) + b"DICM"
#: Family-name component of the Patient's Name written here (the given name is the ID).
_PATIENT_NAME_PREFIX: Final = "IMMUNOPET"
#: Implementation Version Name (0002,0013) of the files written here.
_IMPLEMENTATION_VERSION_NAME: Final = "IMMUNOPET"
#: Ambiguous dictionary VRs as written here (16-bit signed pixels).
_RESOLVED_VR: Final = {"OB or OW": "OW", "US or SS": "US"}
#: Value representations whose explicit-VR header has a 4-byte length.
_LONG_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT"})


def _encode_element(tag: int, value: Any) -> bytes:
    """Explicit VR little endian bytes of one element (string, US/UL or byte values)."""
    vr = _RESOLVED_VR.get(dictionary_VR(tag), dictionary_VR(tag))
    if vr == "US":
        data = struct.pack("<H", int(value))
    elif vr == "UL":
        data = struct.pack("<L", int(value))
    elif isinstance(value, bytes):
        data = value if len(value) % 2 == 0 else value + b"\0"
    else:
        items = value if isinstance(value, list | tuple) else [value]
        data = "\\".join(str(item) for item in items).encode("ascii")
        if len(data) % 2:
            data += b"\0" if vr == "UI" else b" "
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in _LONG_VRS:
        return head + struct.pack("<HL", 0, len(data)) + data
    return head + struct.pack("<H", len(data)) + data


def _encode_file_meta(sop_class: UID, sop_instance: str) -> bytes:
    """File meta information group (PS3.10 §7.1), explicit VR little endian."""
    body = b"".join(
        [
            _encode_element(0x00020001, b"\x00\x01"),
            _encode_element(0x00020002, str(sop_class)),
            _encode_element(0x00020003, sop_instance),
            _encode_element(0x00020010, str(ExplicitVRLittleEndian)),
            _encode_element(0x00020012, str(PYDICOM_IMPLEMENTATION_UID)),
            _encode_element(0x00020013, _IMPLEMENTATION_VERSION_NAME),
        ]
    )
    return _encode_element(0x00020000, len(body)) + body


def _file_meta(sop_class: UID, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION_NAME
    return meta


def _template(sop_class: UID, volume: Volume, study: StudyIdentity) -> Dataset:
    """Elements every slice of a series shares: patient, study, grid and pixel format."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    # Patient's Name in two components (family^given) so that readers do not warn.
    ds.PatientName = f"{_PATIENT_NAME_PREFIX}^{study.patient_id}"
    ds.PatientID = study.patient_id
    # Type 2 attributes of the Patient and General Study modules: present, empty if unknown.
    ds.PatientBirthDate = ""
    ds.PatientSex = study.patient_sex or ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.StudyInstanceUID = study.study_instance_uid
    ds.FrameOfReferenceUID = study.frame_of_reference_uid
    ds.StudyDate = _da(study.study_datetime)
    ds.StudyTime = _tm(study.study_datetime)
    affine = volume.affine
    spacing = volume.spacing_mm
    row_cosine = affine[:3, 2] / spacing[2]
    column_cosine = affine[:3, 1] / spacing[1]
    ds.ImageOrientationPatient = [_ds(float(v)) for v in (*row_cosine, *column_cosine)]
    ds.PixelSpacing = [_ds(float(spacing[1])), _ds(float(spacing[2]))]
    ds.SliceThickness = _ds(float(spacing[0]))
    ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def _slice_position(volume: Volume, index: int) -> list[str]:
    return [_ds(float(v)) for v in volume.index_to_lps([index, 0, 0])]


def _study_for(volume: Volume, patient_id: str, when: datetime) -> StudyIdentity:
    return StudyIdentity.new(
        patient_id, when, frame_of_reference_uid=volume.metadata.get("frame_of_reference_uid")
    )


def _stored_int16(values: npt.NDArray[np.floating]) -> tuple[npt.NDArray[np.int16], float]:
    peak = float(np.max(np.abs(values)))
    slope = peak / _INT16_MAX if peak > 0.0 else 1.0
    slope = float(_ds(slope))  # the slope as written, so stored × slope reproduces the values
    stored = np.clip(np.rint(values / slope), -_INT16_MAX, _INT16_MAX).astype(np.int16)
    return stored, slope


def _pet_series(
    volume: Volume, spec: PetSeriesSpec, study: StudyIdentity | None, series_uid: str | None
) -> _SliceSeries:
    if volume.quantity is not Quantity.ACTIVITY_CONCENTRATION:
        raise InputError(f"a PET series holds Bq/mL, got {volume.quantity.value}", field="quantity")
    nuc = nuclide(spec.nuclide)
    study = study or _study_for(volume, spec.patient_id, spec.series_datetime)
    mass = nuc.name.split("-")[1]
    element = element_name(nuc.name)
    n_slices = volume.shape[0]
    per_bed = spec.slices_per_bed or n_slices
    ds = _template(PET_IMAGE_STORAGE, volume, study)
    ds.Modality = "PT"
    ds.Manufacturer = spec.manufacturer
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = spec.series_number
    if spec.series_description:
        ds.SeriesDescription = spec.series_description
    ds.SeriesDate, ds.SeriesTime = _da(spec.series_datetime), _tm(spec.series_datetime)
    ds.SeriesType = ["WHOLE BODY", "IMAGE"]
    ds.Units = "BQML"
    ds.CountsSource = "EMISSION"
    ds.DecayCorrection = spec.decay_correction.value
    corrections = ["NORM", "DTIM", "ATTN", "SCAT", "RAN"]
    if spec.decay_correction is not DecayCorrection.NONE:
        corrections.append("DECY")
    ds.CorrectedImage = corrections
    ds.NumberOfSlices = n_slices
    ds.ActualFrameDuration = round(spec.frame_duration_s * MS_PER_S)
    if spec.weight_kg is not None:
        ds.PatientWeight = _ds(spec.weight_kg)
    if spec.height_cm is not None:
        ds.PatientSize = _ds(spec.height_cm / CM_PER_M)
    if spec.sex is not None:
        ds.PatientSex = spec.sex  # the administration facts win over the study's
    radiopharmaceutical = Dataset()
    radiopharmaceutical.Radiopharmaceutical = spec.radiopharmaceutical
    radiopharmaceutical.RadiopharmaceuticalStartTime = _tm(spec.injection_datetime)
    radiopharmaceutical.RadiopharmaceuticalStartDateTime = _dt(spec.injection_datetime)
    radiopharmaceutical.RadionuclideTotalDose = _ds(spec.injected_activity_bq)
    radiopharmaceutical.RadionuclideHalfLife = _ds(nuc.half_life_s)
    radiopharmaceutical.RadionuclidePositronFraction = _ds(nuc.beta_plus_yield_per_decay)
    code = Dataset()
    code.CodeValue = f"immunopet-{nuc.name}"
    code.CodingSchemeDesignator = "99IMMUNOPET"
    code.CodeMeaning = f"^{mass}^{element}"
    radiopharmaceutical.RadionuclideCodeSequence = DicomSequence([code])
    ds.RadiopharmaceuticalInformationSequence = DicomSequence([radiopharmaceutical])
    ds.RescaleIntercept = "0"

    reference = {
        DecayCorrection.START: spec.series_datetime,
        DecayCorrection.ADMIN: spec.injection_datetime,
    }
    average = frame_average_decay_factor(nuc.half_life_s, spec.frame_duration_s)
    effective_s = -np.log(average) * nuc.half_life_s / np.log(2.0)
    slices = []
    for index in range(n_slices):
        acquired = spec.series_datetime + (index // per_bed) * timedelta(
            seconds=spec.frame_duration_s
        )
        start_offset_s = seconds_between(reference.get(spec.decay_correction, acquired), acquired)
        if spec.decay_correction is DecayCorrection.NONE:
            decay = "1"
        else:
            decay = _ds(2.0 ** (start_offset_s / nuc.half_life_s) / average)
        stored, slope = _stored_int16(volume.array[index])
        slices.append(
            {
                "AcquisitionDate": _da(acquired),
                "AcquisitionTime": _tm(acquired),
                "ContentDate": _da(acquired),
                "ContentTime": _tm(acquired),
                "InstanceNumber": str(index + 1),
                "ImagePositionPatient": _slice_position(volume, index),
                "ImageIndex": index + 1,
                "DecayFactor": decay,
                "FrameReferenceTime": _ds((start_offset_s + effective_s) * MS_PER_S),
                "RescaleSlope": _ds(slope),
                "PixelData": stored.tobytes(),
            }
        )
    return _SliceSeries(PET_IMAGE_STORAGE, ds, slices)


def _ct_series(
    volume: Volume,
    when: datetime,
    patient_id: str,
    study: StudyIdentity | None,
    series_uid: str | None,
) -> _SliceSeries:
    if volume.quantity is not Quantity.HOUNSFIELD:
        raise InputError(f"a CT series holds HU, got {volume.quantity.value}", field="quantity")
    study = study or _study_for(volume, patient_id, when)
    intercept = -1024
    stored_all = np.clip(np.rint(volume.array - intercept), -_INT16_MAX, _INT16_MAX).astype(
        np.int16
    )
    ds = _template(CT_IMAGE_STORAGE, volume, study)
    ds.Modality = "CT"
    ds.Manufacturer = "immunopet"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = 2
    ds.SeriesDate, ds.SeriesTime = _da(when), _tm(when)
    ds.AcquisitionDate, ds.AcquisitionTime = _da(when), _tm(when)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.KVP = "120"
    ds.RescaleSlope = "1"
    ds.RescaleIntercept = str(intercept)
    ds.RescaleType = "HU"
    slices = [
        {
            "InstanceNumber": str(index + 1),
            "ImagePositionPatient": _slice_position(volume, index),
            "PixelData": stored_all[index].tobytes(),
        }
        for index in range(volume.shape[0])
    ]
    return _SliceSeries(CT_IMAGE_STORAGE, ds, slices)


def pet_series_datasets(
    volume: Volume,
    spec: PetSeriesSpec,
    *,
    series_uid: str | None = None,
    study: StudyIdentity | None = None,
) -> list[Dataset]:
    """Build a PET Image Storage series from an activity-concentration volume.

    Parameters
    ----------
    volume : Volume
        Bq/mL, decay-corrected as ``spec.decay_correction`` says (the values are
        written as they are).
    spec : PetSeriesSpec
        What the headers state.
    series_uid : str, optional
        Series Instance UID (generated when omitted).
    study : StudyIdentity, optional
        Study and frame of reference shared with other series (new when omitted).

    Returns
    -------
    list of pydicom.Dataset
        One per slice, ``Units = BQML``, int16 pixels with per-slice Rescale Slope.

    """
    return _pet_series(volume, spec, study, series_uid).datasets()


def write_pet_series(
    volume: Volume,
    spec: PetSeriesSpec,
    folder: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
    study: StudyIdentity | None = None,
) -> list[Path]:
    """Write the series of :func:`pet_series_datasets` into the new folder ``folder``.

    The same files as ``write_datasets(pet_series_datasets(...), folder)``, written
    about ten times faster (the shared elements are encoded once) and all or
    nothing: the folder appears complete or not at all.
    """
    return _pet_series(volume, spec, study, series_uid).write(Path(folder))


def ct_series_datasets(
    volume: Volume,
    *,
    when: datetime,
    patient_id: str = "IMMUNOPET-PHANTOM",
    series_uid: str | None = None,
    study: StudyIdentity | None = None,
) -> list[Dataset]:
    """Build a CT Image Storage series from a Hounsfield-unit volume (int16, intercept −1024)."""
    return _ct_series(volume, when, patient_id, study, series_uid).datasets()


def write_ct_series(
    volume: Volume,
    folder: str | os.PathLike[str],
    *,
    when: datetime,
    patient_id: str = "IMMUNOPET-PHANTOM",
    series_uid: str | None = None,
    study: StudyIdentity | None = None,
) -> list[Path]:
    """Write the series of :func:`ct_series_datasets` into the new folder ``folder`` (fast)."""
    return _ct_series(volume, when, patient_id, study, series_uid).write(Path(folder))


def write_datasets(datasets: Sequence[Dataset], folder: str | os.PathLike[str]) -> list[Path]:
    """Write datasets as ``IMG0001.dcm``… into ``folder``, atomically per file.

    The folder is created if needed. Each file is written to a temporary name
    in the same folder and then renamed, so a crash leaves no half-written file.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, ds in enumerate(datasets):
        path = target / f"IMG{index + 1:04d}.dcm"
        with atomic_path(path) as temporary:
            ds.save_as(temporary, enforce_file_format=True)
        paths.append(path)
    return paths
