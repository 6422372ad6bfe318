"""Writing voxelwise Patlak maps: NIfTI volumes and a DICOM Parametric Map of K_i.

NIfTI goes through :func:`immunopet.io.write_nifti` (the one place RAS meets LPS). The DICOM
object is a Parametric Map (SOP Class 1.2.840.10008.5.1.4.1.1.30) built with
``highdicom.pm.ParametricMap``: 32-bit float pixels, one frame per slice, on the PET grid, in the
PET's study and frame of reference, with a Real World Value Mapping that states the unit as a
UCUM code (K_i in µL/g/h by default, the unit of Jauw et al. 2019).

The NIfTI maps carry their values in canonical units, named in the file names
(``<stem>_ki_ml_per_g_per_s.nii.gz`` …), because :class:`~immunopet.image.Quantity` has no member
for a rate constant yet: the NIfTI header describes them as unitless.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path
from typing import Final

import numpy as np
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.kinetics._patlak import KiUnit, PatlakMaps, ki_in_unit

__all__ = ["patlak_volumes", "write_ki_parametric_map", "write_patlak_nifti"]

#: The maps of PatlakMaps; each name carries its canonical unit into the file name.
_MAP_NAMES: Final = (
    "ki_ml_per_g_per_s",
    "intercept_ml_per_g",
    "ki_se_ml_per_g_per_s",
    "intercept_se_ml_per_g",
)
#: UCUM codes of the K_i units (UCUM is case-sensitive: L litre, h hour, d day).
_UCUM: Final[dict[str, str]] = {
    "mL/g/s": "mL/g/s",
    "mL/g/min": "mL/g/min",
    "mL/g/h": "mL/g/h",
    "uL/g/h": "uL/g/h",
    "mL/g/d": "mL/g/d",
}
#: Patient and study attributes a derived object copies; Type 2 (may be empty) in PS3.3.
_TYPE2_COPIED: Final = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
_PIXEL_DATA: Final = Tag(0x7FE0, 0x0010)
_SOFTWARE: Final = "immunopet"


def patlak_volumes(maps: PatlakMaps, reference: Volume) -> dict[str, Volume]:
    """The four Patlak maps as Volumes on ``reference``'s grid (values in canonical units).

    Parameters
    ----------
    maps : PatlakMaps
        From :meth:`Patlak1983.fit_voxels`, spatial shape (n_slices, n_rows, n_columns).
    reference : Volume
        A PET volume of the series the maps were computed from (its grid and source).

    Returns
    -------
    dict of str to Volume
        Keys ``ki_ml_per_g_per_s``, ``intercept_ml_per_g``, ``ki_se_ml_per_g_per_s``,
        ``intercept_se_ml_per_g``; quantity UNITLESS (see the module docstring).

    """
    result = {}
    for name in _MAP_NAMES:
        array = np.asarray(getattr(maps, name))
        if array.shape != reference.shape:
            raise InputError(
                f"the {name} map has shape {array.shape}, the reference grid {reference.shape}",
                field="reference",
                hint="fit the voxels of volumes resampled onto one grid",
            )
        result[name] = Volume(
            array,
            reference.affine,
            Quantity.UNITLESS,
            source=reference.source,
            metadata={"parameter": name, "loss_rate_per_s": maps.loss_rate_per_s},
        )
    return result


def write_patlak_nifti(
    maps: PatlakMaps,
    reference: Volume,
    folder: str | os.PathLike[str],
    *,
    stem: str = "patlak",
) -> dict[str, Path]:
    """Write the four Patlak maps as ``<folder>/<stem>_<map>.nii.gz`` (atomically, each).

    Returns
    -------
    dict of str to Path
        The file written for each map name of :func:`patlak_volumes`.

    """
    from immunopet.io import write_nifti  # lazy: the io package is imported on use

    target = Path(folder)
    written = {}
    for name, volume in patlak_volumes(maps, reference).items():
        path = target / f"{stem}_{name}.nii.gz"
        write_nifti(volume, path)
        written[name] = path
    return written


def _source_headers(source_images: Sequence[Dataset]) -> list[Dataset]:
    """Header copies (no pixels) with empty Type 2 patient/study attributes where absent."""
    headers = []
    for dataset in source_images:
        header = Dataset()
        for element in dataset:
            if element.tag != _PIXEL_DATA:
                header.add(deepcopy(element))
        for keyword in _TYPE2_COPIED:
            if keyword not in header:
                setattr(header, keyword, "")
        headers.append(header)
    return headers


def write_ki_parametric_map(
    ki_ml_per_g_per_s: Volume,
    source_images: Sequence[Dataset],
    path: str | os.PathLike[str],
    *,
    unit: KiUnit = "uL/g/h",
    series_number: int = 901,
    series_description: str = "Patlak Ki",
) -> Path:
    """Write a K_i map as a DICOM Parametric Map (float pixels, PET grid), atomically.

    Parameters
    ----------
    ki_ml_per_g_per_s : Volume
        K_i in mL/g/s on the PET grid (e.g. ``patlak_volumes(maps, pet)["ki_ml_per_g_per_s"]``).
        Voxels without a value (NaN, outside the mask) are written as 0: DICOM float pixels
        are read as numbers by most viewers.
    source_images : sequence of pydicom.Dataset
        Headers of the PET series the map derives from (same study and frame of reference).
        Not modified; pixel data, if present, are not copied.
    path : str or os.PathLike
        File to write (replaced if it exists).
    unit : KiUnit, optional
        Unit of the stored values, written as a UCUM code in the Real World Value Mapping.
    series_number : int, optional
        Series Number of the new series.
    series_description : str, optional
        Series Description.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InputError
        If there are no source images or they lack a Frame of Reference UID.

    """
    import highdicom as hd  # lazy: 0.4 s import, only when writing DICOM

    from immunopet.io._atomic import atomic_path

    if not source_images:
        raise InputError("a parametric map needs the source PET headers", field="source_images")
    headers = _source_headers(source_images)
    frame_of_reference = getattr(headers[0], "FrameOfReferenceUID", None)
    if not frame_of_reference:
        raise InputError(
            "the source images have no Frame of Reference UID", field="FrameOfReferenceUID"
        )
    values = ki_in_unit(ki_ml_per_g_per_s.array, unit).astype(np.float32)
    values = np.where(np.isfinite(values), values, np.float32(0.0))
    low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1.0
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="Ki",
        lut_explanation=f"Patlak net influx rate Ki ({unit})",
        unit=hd.sr.CodedConcept(_UCUM[unit], "UCUM", _UCUM[unit]),
        value_range=(low, high),
        slope=1.0,
        intercept=0.0,
    )
    grid = hd.Volume(
        values,
        ki_ml_per_g_per_s.affine,
        coordinate_system="PATIENT",
        frame_of_reference_uid=str(frame_of_reference),
    )
    parametric_map = hd.pm.ParametricMap(
        source_images=headers,
        pixel_array=grid,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=_SOFTWARE,
        manufacturer_model_name=_SOFTWARE,
        software_versions=_SOFTWARE,
        device_serial_number="0",
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[
            hd.VOILUTTransformation(window_center=0.5 * (low + high), window_width=high - low)
        ],
        series_description=series_description,
    )
    target = Path(path)
    with atomic_path(target) as temporary:
        parametric_map.save_as(temporary)
    return target
