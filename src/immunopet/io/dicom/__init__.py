"""DICOM input (PT, NM/SPECT tomograms, CT, Enhanced CT) and scanner-like PET/CT output."""

from immunopet.io.dicom._read import find_dicom_files, read_dicom, read_dicom_series
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
    "write_ct_series",
    "write_datasets",
    "write_pet_series",
]
