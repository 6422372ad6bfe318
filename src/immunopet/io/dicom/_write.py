"""Writing PET and CT series as a scanner would: one file per slice, int16 with per-slice rescale.

Used by the simulator, the shipped example, the benchmark and the tests, so
that everything downstream exercises the real ingest path. The builders return
``pydicom.Dataset`` objects so a caller can add vendor variations before
:func:`write_datasets` puts them on disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from immunopet.errors import InputError
from immunopet.image import DecayCorrection, Quantity, Volume
from immunopet.io._atomic import atomic_path
from immunopet.physics import element_name, frame_average_decay_factor, nuclide, seconds_between
from immunopet.units import CM_PER_M, MS_PER_S

__all__ = [
    "PetSeriesSpec",
    "ct_series_datasets",
    "pet_series_datasets",
    "write_datasets",
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


def _base_dataset(sop_class: UID, volume: Volume, index: int, study: Dataset) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = sop_class
    for keyword in (
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "FrameOfReferenceUID",
        "StudyDate",
        "StudyTime",
    ):
        setattr(ds, keyword, getattr(study, keyword))
    ds.InstanceNumber = index + 1
    affine = volume.affine
    spacing = volume.spacing_mm
    ds.ImagePositionPatient = [_ds(float(v)) for v in volume.index_to_lps([index, 0, 0])]
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


def _study(volume: Volume, patient_id: str, when: datetime) -> Dataset:
    study = Dataset()
    study.PatientName = patient_id
    study.PatientID = patient_id
    study.StudyInstanceUID = generate_uid()
    study.FrameOfReferenceUID = volume.metadata.get("frame_of_reference_uid") or generate_uid()
    study.StudyDate = _da(when)
    study.StudyTime = _tm(when)
    return study


def _stored_int16(values: npt.NDArray[np.floating]) -> tuple[npt.NDArray[np.int16], float]:
    peak = float(np.max(np.abs(values)))
    slope = peak / _INT16_MAX if peak > 0.0 else 1.0
    slope = float(_ds(slope))  # the slope as written, so stored × slope reproduces the values
    stored = np.clip(np.rint(values / slope), -_INT16_MAX, _INT16_MAX).astype(np.int16)
    return stored, slope


def pet_series_datasets(
    volume: Volume, spec: PetSeriesSpec, *, series_uid: str | None = None
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

    Returns
    -------
    list of pydicom.Dataset
        One per slice, ``Units = BQML``, int16 pixels with per-slice Rescale Slope.

    """
    if volume.quantity is not Quantity.ACTIVITY_CONCENTRATION:
        raise InputError(f"a PET series holds Bq/mL, got {volume.quantity.value}", field="quantity")
    nuc = nuclide(spec.nuclide)
    study = _study(volume, spec.patient_id, spec.series_datetime)
    uid = series_uid or generate_uid()
    mass = nuc.name.split("-")[1]
    element = element_name(nuc.name)
    n_slices = volume.shape[0]
    per_bed = spec.slices_per_bed or n_slices
    datasets = []
    for index in range(n_slices):
        ds = _base_dataset(PET_IMAGE_STORAGE, volume, index, study)
        bed = index // per_bed
        acquired = spec.series_datetime + bed * timedelta(seconds=spec.frame_duration_s)
        ds.Modality = "PT"
        ds.Manufacturer = spec.manufacturer
        ds.SeriesInstanceUID = uid
        ds.SeriesNumber = 1
        ds.SeriesDate, ds.SeriesTime = _da(spec.series_datetime), _tm(spec.series_datetime)
        ds.AcquisitionDate, ds.AcquisitionTime = _da(acquired), _tm(acquired)
        ds.ContentDate, ds.ContentTime = ds.AcquisitionDate, ds.AcquisitionTime
        ds.SeriesType = ["WHOLE BODY", "IMAGE"]
        ds.Units = "BQML"
        ds.CountsSource = "EMISSION"
        ds.DecayCorrection = spec.decay_correction.value
        corrections = ["NORM", "DTIM", "ATTN", "SCAT", "RAN"]
        if spec.decay_correction is not DecayCorrection.NONE:
            corrections.append("DECY")
        ds.CorrectedImage = corrections
        ds.ImageIndex = index + 1
        ds.NumberOfSlices = n_slices
        ds.ActualFrameDuration = round(spec.frame_duration_s * MS_PER_S)
        reference = {
            DecayCorrection.START: spec.series_datetime,
            DecayCorrection.ADMIN: spec.injection_datetime,
            DecayCorrection.NONE: acquired,
        }[spec.decay_correction]
        start_offset_s = seconds_between(reference, acquired)
        average = frame_average_decay_factor(nuc.half_life_s, spec.frame_duration_s)
        if spec.decay_correction is DecayCorrection.NONE:
            ds.DecayFactor = "1"
        else:
            ds.DecayFactor = _ds(2.0 ** (start_offset_s / nuc.half_life_s) / average)
        effective_s = -np.log(average) * nuc.half_life_s / np.log(2.0)
        ds.FrameReferenceTime = _ds((start_offset_s + effective_s) * MS_PER_S)
        if spec.weight_kg is not None:
            ds.PatientWeight = _ds(spec.weight_kg)
        if spec.height_cm is not None:
            ds.PatientSize = _ds(spec.height_cm / CM_PER_M)
        if spec.sex is not None:
            ds.PatientSex = spec.sex
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
        stored, slope = _stored_int16(volume.array[index])
        ds.RescaleSlope = _ds(slope)
        ds.RescaleIntercept = "0"
        ds.PixelData = stored.tobytes()
        datasets.append(ds)
    return datasets


def ct_series_datasets(
    volume: Volume,
    *,
    when: datetime,
    patient_id: str = "IMMUNOPET-PHANTOM",
    series_uid: str | None = None,
) -> list[Dataset]:
    """Build a CT Image Storage series from a Hounsfield-unit volume (int16, intercept −1024)."""
    if volume.quantity is not Quantity.HOUNSFIELD:
        raise InputError(f"a CT series holds HU, got {volume.quantity.value}", field="quantity")
    study = _study(volume, patient_id, when)
    uid = series_uid or generate_uid()
    intercept = -1024
    stored_all = np.clip(np.rint(volume.array - intercept), -_INT16_MAX, _INT16_MAX).astype(
        np.int16
    )
    datasets = []
    for index in range(volume.shape[0]):
        ds = _base_dataset(CT_IMAGE_STORAGE, volume, index, study)
        ds.Modality = "CT"
        ds.Manufacturer = "immunopet"
        ds.SeriesInstanceUID = uid
        ds.SeriesNumber = 2
        ds.SeriesDate, ds.SeriesTime = _da(when), _tm(when)
        ds.AcquisitionDate, ds.AcquisitionTime = _da(when), _tm(when)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.KVP = "120"
        ds.RescaleSlope = "1"
        ds.RescaleIntercept = str(intercept)
        ds.RescaleType = "HU"
        ds.PixelData = stored_all[index].tobytes()
        datasets.append(ds)
    return datasets


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
