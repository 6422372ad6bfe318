"""DICOM input (PT, NM/SPECT tomograms, CT, Enhanced CT), scanner-like PET/CT output, SEG, RTSTRUCT, SR."""

from immunopet.io.dicom._read import find_dicom_files, read_dicom, read_dicom_series
from immunopet.io.dicom._rtstruct import read_rtstruct
from immunopet.io.dicom._seg import read_label_seg, segment_codes, write_label_seg
from immunopet.io.dicom._sr import read_measurement_report, tracking_uid, write_measurement_report
from immunopet.io.dicom._write import (
    PetSeriesSpec,
    StudyIdentity,
    ct_series_datasets,
    pet_series_datasets,
    write_ct_series,
    write_datasets,
    write_pet_series,
)

__all__ = [
    "PetSeriesSpec",
    "StudyIdentity",
    "ct_series_datasets",
    "find_dicom_files",
    "pet_series_datasets",
    "read_dicom",
    "read_dicom_series",
    "read_label_seg",
    "read_measurement_report",
    "read_rtstruct",
    "segment_codes",
    "tracking_uid",
    "write_ct_series",
    "write_datasets",
    "write_label_seg",
    "write_measurement_report",
    "write_pet_series",
]
