"""NIfTI-1 read and write: the one place where RAS meets LPS.

A NIfTI file stores its voxels indexed ``(i, j, k)`` (``i`` varies fastest on
disk) with an affine (sform, else qform) to RAS+ millimetres. immunopet arrays
are ``(slice, row, column)`` with an affine to DICOM LPS millimetres (see
:class:`~immunopet.image.Volume`). With ``i = column``, ``j = row`` and
``k = slice`` the two are related exactly by

* the array: ``nifti_array = array.transpose(2, 1, 0)``;
* the affine: ``A_ras = F @ A_lps @ P`` with ``F = diag(-1, -1, 1, 1)`` (negate
  x and y: LPS <-> RAS) and ``P`` the 4×4 permutation swapping the first and
  third index. ``F`` and ``P`` are their own inverses, so the same formula maps
  back: ``A_lps = F @ A_ras @ P``.

Nothing else in immunopet converts between RAS and LPS.

Files are written atomically: into a temporary file in the target's folder that
is then moved onto the target with :func:`os.replace`, so a failed write leaves
no partial file.
"""

from __future__ import annotations

import os
import zlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Final

import nibabel as nib
import numpy as np
import numpy.typing as npt
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from immunopet.errors import GeometryError, InputError, UnsupportedInputError
from immunopet.image import Quantity, Volume
from immunopet.io._atomic import atomic_path
from immunopet.units import CM_PER_M, MM_PER_CM

__all__ = ["NIFTI_SUFFIXES", "read_nifti", "write_nifti"]

#: File name endings of NIfTI files, compressed first (matched case-insensitively).
NIFTI_SUFFIXES: Final = (".nii.gz", ".nii")

#: Swaps the first and third voxel index: ``(i, j, k) <-> (slice, row, column)``.
_AXIS_SWAP: Final = np.array(
    [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
#: Negates x and y: LPS <-> RAS.
_LPS_RAS_FLIP: Final = np.diag([-1.0, -1.0, 1.0, 1.0])
#: NIfTI xform code "scanner anatomical" (sform_code, qform_code).
_XFORM_SCANNER: Final = 1
_MM_PER_M: Final = MM_PER_CM * CM_PER_M
_MM_PER_MICRON: Final = 1.0e-3
#: Millimetres per NIfTI spatial unit. "unknown" is read as mm, as ITK and nibabel do.
_MM_PER_SPATIAL_UNIT: Final[dict[str, float]] = {
    "mm": 1.0,
    "meter": _MM_PER_M,
    "micron": _MM_PER_MICRON,
    "unknown": 1.0,
}
#: What nibabel raises on a file that is not valid NIfTI (truncated, corrupt, wrong format).
_NIBABEL_ERRORS: Final = (
    ImageFileError,
    HeaderDataError,
    OSError,
    EOFError,
    ValueError,
    zlib.error,
)
#: Mask voxel values that are acceptable in a file read as :attr:`Quantity.MASK`.
_MASK_VALUES: Final = (0, 1)


def _ras_lps_affine(affine: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Map a NIfTI (i, j, k) -> RAS affine to the (slice, row, column) -> LPS one, or back."""
    converted: npt.NDArray[np.float64] = (
        _LPS_RAS_FLIP @ np.asarray(affine, dtype=np.float64) @ _AXIS_SWAP
    )
    return converted


def _nifti_suffix(path: Path) -> str:
    """Return ``".nii.gz"`` or ``".nii"``, the NIfTI ending of ``path``; raise otherwise."""
    name = path.name.lower()
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    raise InputError(
        "not a NIfTI file name",
        path=path,
        field="file name",
        hint="name the file <name>.nii or <name>.nii.gz",
    )


def _check_output_path(path: Path) -> None:
    """Refuse a target that is a folder or whose folder does not exist."""
    if path.is_dir():
        raise InputError(
            "the output is an existing folder, not a file",
            path=path,
            field="path",
            hint="give a file name inside that folder",
        )
    if not path.parent.is_dir():
        raise InputError(
            f"the output folder {path.parent} does not exist", path=path, hint="create it first"
        )


def _atomic_path(path: Path) -> AbstractContextManager[Path]:
    """Atomic write of a NIfTI file whose temporary name keeps the NIfTI ending."""
    lowered = path.name.lower()
    return atomic_path(
        path, ending=next((s for s in NIFTI_SUFFIXES if lowered.endswith(s)), path.suffix)
    )


def _unusable(path: Path, what: str, exc: BaseException) -> InputError:
    return InputError(
        f"cannot read the file as NIfTI ({what}: {exc})",
        path=path,
        hint="check that the file is complete and is NIfTI-1 or NIfTI-2",
    )


def _affine_ras(image: Any, path: Path) -> tuple[npt.NDArray[np.float64], str]:
    """Return the file's (i, j, k) -> RAS affine in mm and which xform it came from."""
    affine, code = image.get_sform(coded=True)
    xform = "sform"
    if not code:
        affine, code = image.get_qform(coded=True)
        xform = "qform"
    if not code or affine is None:
        raise InputError(
            "the file has no orientation (sform_code and qform_code are both 0), so its voxels "
            "cannot be placed in the patient",
            path=path,
            field="sform_code/qform_code",
            hint="convert the scan again from DICOM, or set the orientation with the tool that made it",
        )
    spatial_unit = image.header.get_xyzt_units()[0]
    scale = _MM_PER_SPATIAL_UNIT.get(spatial_unit)
    if scale is None:
        raise UnsupportedInputError(
            f"unknown spatial unit {spatial_unit!r}", path=path, field="xyzt_units"
        )
    matrix = np.array(affine, dtype=np.float64)
    matrix[:3, :] *= scale
    return matrix, xform


def _voxels(image: Any, quantity: Quantity, path: Path) -> npt.NDArray[Any]:
    """Return the (i, j, k) voxel array with scl_slope/scl_inter applied."""
    disk_dtype = np.dtype(image.get_data_dtype())
    if disk_dtype.kind not in "biuf":
        raise UnsupportedInputError(
            f"voxel type {disk_dtype} is not supported (real numbers only)",
            path=path,
            field="datatype",
        )
    if quantity is Quantity.MASK:
        raw: npt.NDArray[Any] = np.asarray(image.dataobj)
        if not np.isin(raw, _MASK_VALUES).all():
            raise InputError(
                "a mask must hold only 0 and 1",
                path=path,
                field="voxel values",
                hint="threshold or select one label first, or read it with another quantity",
            )
        mask: npt.NDArray[np.bool_] = raw != 0
        return mask
    # float64 stays float64; everything else (float32, scaled or plain integers) is float32.
    target = np.float64 if disk_dtype == np.float64 else np.float32
    data: npt.NDArray[Any] = np.asarray(image.get_fdata(dtype=target))
    return data


def read_nifti(path: str | os.PathLike[str], *, quantity: Quantity) -> Volume:
    """Read a 3-D NIfTI-1/NIfTI-2 image (``.nii`` or ``.nii.gz``) as an LPS :class:`Volume`.

    The sform is used when its code is set, otherwise the qform; a file with
    neither is refused. Spatial units in metres or microns are converted to mm.
    A 4-D file whose fourth dimension has one volume is read as 3-D.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    quantity : Quantity
        What the voxel values are (NIfTI does not say); fixes the unit.
        :attr:`Quantity.MASK` files must hold only 0 and 1 and are read as bool.

    Returns
    -------
    Volume
        Array of shape (n_slices, n_rows, n_columns) = (nk, nj, ni) of the file,
        float32 (float64 when the file stores float64; bool for masks), with
        scl_slope/scl_inter applied; affine to LPS mm; no timing.

    Raises
    ------
    InputError
        Missing, unreadable or non-NIfTI file, no orientation, or a sheared or
        degenerate affine.
    UnsupportedInputError
        A real 4-D (dynamic) image, or non-real voxels (complex, RGB).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from immunopet.image import Quantity, Volume
    >>> affine = [[0, 0, -2, 10], [0, 1.5, 0, 20], [3, 0, 0, 30], [0, 0, 0, 1]]
    >>> volume = Volume(np.ones((4, 5, 6), np.float32), affine, Quantity.ACTIVITY_CONCENTRATION)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_nifti(volume, Path(folder) / "pet.nii.gz")
    ...     back = read_nifti(Path(folder) / "pet.nii.gz", quantity=Quantity.ACTIVITY_CONCENTRATION)
    >>> back.shape, back.array.dtype, bool(np.allclose(back.affine, volume.affine))
    ((4, 5, 6), dtype('float32'), True)

    """
    file = Path(path)
    _nifti_suffix(file)
    if not file.is_file():
        raise InputError("file not found", path=file, hint="check the path")
    try:
        image = nib.load(file, mmap=False)
    except _NIBABEL_ERRORS as exc:
        raise _unusable(file, type(exc).__name__, exc) from exc
    if not isinstance(image, nib.Nifti1Image):
        raise InputError(
            f"the file holds a {type(image).__name__}, not NIfTI", path=file, field="header"
        )
    shape = tuple(int(n) for n in image.shape)
    if len(shape) < 2 or any(n != 1 for n in shape[3:]):
        raise UnsupportedInputError(
            f"image of shape {shape}: only 3-D images (or 4-D with one volume) are read",
            path=file,
            field="dim",
            hint="split a dynamic series into one 3-D file per frame",
        )
    affine_ras, xform = _affine_ras(image, file)
    try:
        data = _voxels(image, quantity, file)
    except _NIBABEL_ERRORS as exc:
        raise _unusable(file, type(exc).__name__, exc) from exc
    data = data.reshape((*shape, 1, 1)[:3])
    # Native byte order ("<f4" and ">f4" from disk become float32), C order (slice slowest).
    array = np.ascontiguousarray(data.transpose(2, 1, 0), dtype=data.dtype.newbyteorder("="))
    try:
        return Volume(array, _ras_lps_affine(affine_ras), quantity, source=str(file))
    except GeometryError as exc:
        raise InputError(
            f"the {xform} affine is not usable: {exc.message}",
            path=file,
            field=xform,
            hint="immunopet needs an orthogonal, non-degenerate voxel grid; resample the image first",
        ) from exc


def _nifti_image(volume: Volume) -> Any:
    """Build the nibabel image of ``volume``: (i, j, k) = (column, row, slice), RAS affine."""
    array = volume.array
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    elif array.dtype == np.float16:
        array = array.astype(np.float32)
    elif array.dtype.kind not in "iuf":
        raise UnsupportedInputError(
            f"voxel type {array.dtype} cannot be written to NIfTI (real numbers only)",
            path=volume.source,
            field="dtype",
        )
    data = array.transpose(2, 1, 0)
    affine = _ras_lps_affine(volume.affine)
    image: Any = nib.Nifti1Image(data, affine, dtype=data.dtype)  # type: ignore[no-untyped-call]
    image.set_sform(affine, code=_XFORM_SCANNER)
    image.set_qform(affine, code=_XFORM_SCANNER)
    image.header.set_xyzt_units("mm", "sec")
    image.header["descrip"] = f"immunopet {volume.quantity.value} [{volume.unit}]".encode()[:80]
    return image


def write_nifti(volume: Volume, path: str | os.PathLike[str]) -> None:
    """Write a :class:`Volume` as NIfTI-1 (``.nii``, or gzip-compressed ``.nii.gz``), atomically.

    Parameters
    ----------
    volume : Volume
        Array of shape (n_slices, n_rows, n_columns), affine to LPS mm. Not modified.
        It is stored as (ni, nj, nk) = (n_columns, n_rows, n_slices) with the
        RAS affine in both sform and qform (code 1, scanner), units mm and s.
        Masks are written as uint8, float16 as float32; other dtypes as they are.
    path : str or os.PathLike
        Target file ending in ``.nii`` or ``.nii.gz``; replaced if it exists.

    Raises
    ------
    InputError
        The name does not end in ``.nii``/``.nii.gz``, the target is a folder, or
        its folder does not exist.
    UnsupportedInputError
        Non-real voxels (complex, structured).

    """
    file = Path(path)
    _nifti_suffix(file)
    _check_output_path(file)
    image = _nifti_image(volume)
    with _atomic_path(file) as temporary:
        image.to_filename(temporary)
