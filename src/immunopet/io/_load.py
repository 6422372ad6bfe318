"""One entry point for reading a scan from any supported format."""

from __future__ import annotations

import os
from pathlib import Path

from immunopet.errors import InputError
from immunopet.image import DecayCorrection
from immunopet.io._scan import Scan
from immunopet.io.dicom import read_dicom_series
from immunopet.io.nifti import NIFTI_SUFFIXES

__all__ = ["load_scan"]


def load_scan(
    path: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
    decay_correction: DecayCorrection | None = None,
) -> Scan:
    """Read one scan: a DICOM file or series folder, or a PET-BIDS NIfTI with its JSON sidecar.

    Parameters
    ----------
    path : str or os.PathLike
        DICOM file or folder (searched at any depth), or ``*.nii``/``*.nii.gz``.
    series_uid : str, optional
        Which DICOM series to take when a folder holds several.
    decay_correction : DecayCorrection, optional
        What DICOM PET/SPECT values are decay-corrected to, where the files do not say
        (PET-BIDS states it in ``ImageDecayCorrected``).

    Returns
    -------
    Scan

    """
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        from immunopet.io.bids import read_pet_bids

        if decay_correction is not None:
            raise InputError(
                "a PET-BIDS sidecar states its decay correction (ImageDecayCorrected)",
                path=path,
                field="--decay-correction",
                hint="leave the option out for NIfTI input",
            )
        volume, acquisition = read_pet_bids(path)
        return Scan(
            volume,
            "PT",
            acquisition,
            series_uid=Path(path).name,
            files=(str(path),),
            warnings=acquisition.notes,
        )
    return read_dicom_series(path, series_uid=series_uid, decay_correction=decay_correction)
