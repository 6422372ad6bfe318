"""Reading and writing scans: DICOM (PT, NM, CT), NIfTI (the only place RAS meets LPS) and PET-BIDS.

Only this package knows file formats, DICOM tags and vendor quirks; everything
downstream sees :class:`~immunopet.image.Volume` and
:class:`~immunopet.image.PetAcquisition`.
"""

from immunopet.io._load import load_scan
from immunopet.io._scan import Scan
from immunopet.io.bids import read_pet_bids, write_pet_bids
from immunopet.io.dicom import (
    read_dicom,
    read_dicom_series,
    read_label_seg,
    read_rtstruct,
    write_label_seg,
)
from immunopet.io.labels import LabelMap, canonical_structure_name, load_label_map
from immunopet.io.nifti import read_nifti, write_nifti

__all__ = [
    "LabelMap",
    "Scan",
    "canonical_structure_name",
    "load_label_map",
    "load_scan",
    "read_dicom",
    "read_dicom_series",
    "read_label_seg",
    "read_nifti",
    "read_pet_bids",
    "read_rtstruct",
    "write_label_seg",
    "write_nifti",
    "write_pet_bids",
]
