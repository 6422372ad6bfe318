"""Named label maps: organ and lesion masks from DICOM SEG, RTSTRUCT or NIfTI.

A label map is an integer :class:`~immunopet.image.Volume` (0 = background) with a
name for each id. :func:`load_label_map` reads any of

* a DICOM Segmentation (SEG) file, any producer (:func:`~immunopet.io.dicom.read_label_seg`);
* a DICOM RT Structure Set (RTSTRUCT) file, rasterised onto a reference grid
  (:func:`~immunopet.io.dicom.read_rtstruct`);
* a NIfTI label map (``.nii``/``.nii.gz``) with its names in a sidecar JSON;
* a folder of one NIfTI mask per structure, as TotalSegmentator writes it
  (``liver.nii.gz``, ``kidney_left.nii.gz`` …), the file name being the structure name.

Names stay as the file gives them; :func:`canonical_structure_name` maps other tools'
names (TotalSegmentator's ``kidney_left``, ``lung_upper_lobe_right``, ``vertebrae_L1`` …)
onto the simulator's organ names (``kidneys``, ``lungs``, ``red_marrow`` …) through
``data/structure_names.toml``, so :meth:`LabelMap.mask` finds ``"kidneys"`` in either.

One rule for overlaps everywhere: a voxel claimed by several structures gets the
*highest* id (segment number, ROI number, or the later file in name order); the number
of such voxels is reported in :attr:`LabelMap.notes`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from immunopet.data import read_toml
from immunopet.errors import InputError, UnsupportedInputError
from immunopet.image import Quantity, Volume
from immunopet.io.nifti import NIFTI_SUFFIXES, read_nifti

__all__ = ["LabelMap", "canonical_structure_name", "load_label_map"]

#: Largest offset from a whole voxel (in voxels) for two grids to count as aligned, so a
#: label map is pasted onto a reference grid instead of resampled. Covers DS rounding of
#: positions (16 characters) with room to spare; far below what nearest-neighbour
#: resampling would shift.
ALIGNED_TOLERANCE_VOXELS: Final = 0.05
#: Direction cosines of two grids agree to this for them to count as aligned.
_DIRECTION_TOLERANCE: Final = 1.0e-4
#: Largest id a label map may hold (uint16).
_MAX_LABEL_ID: Final = 65535
#: Names of label 0 in sidecars (ignored: 0 is always background).
_BACKGROUND_NAMES: Final = frozenset(
    {"air", "background", "unlabeled", "unlabelled", "clear label"}
)


# -- names ------------------------------------------------------------------------------------
def _normalised(name: str) -> str:
    """Lower case, blanks trimmed, spaces and hyphens as underscores."""
    return "_".join(name.strip().lower().replace("-", " ").split())


@cache
def _aliases() -> dict[str, str]:
    table = read_toml("structure_names.toml")
    return {_normalised(alias): canonical for alias, canonical in table["aliases"].items()}


def canonical_structure_name(name: str) -> str:
    """Map a structure name onto immunopet's canonical name (the phantom's organ names).

    Parameters
    ----------
    name : str
        A structure name as a tool writes it (TotalSegmentator, Slicer, a SEG's
        Segment Label, an RTSTRUCT ROI Name).

    Returns
    -------
    str
        The canonical name from ``data/structure_names.toml`` when the name is a known
        alias, else the normalised name itself (lower case, underscores).

    Examples
    --------
    >>> canonical_structure_name("kidney_left"), canonical_structure_name("Vertebrae_L1")
    ('kidneys', 'red_marrow')
    >>> canonical_structure_name("Liver"), canonical_structure_name("mediastinal_mass")
    ('liver', 'mediastinal_mass')

    """
    normalised = _normalised(name)
    return _aliases().get(normalised, normalised)


# -- the label map ----------------------------------------------------------------------------
def _present_ids(array: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Sorted non-zero values of an integer array."""
    if array.dtype.kind == "u" and array.dtype.itemsize <= 2:
        counts = np.bincount(array.ravel())
        ids: npt.NDArray[np.int64] = np.flatnonzero(counts)
    else:
        ids = np.unique(array).astype(np.int64)
    nonzero: npt.NDArray[np.int64] = ids[ids != 0]
    return nonzero


def _label_dtype(max_id: int) -> np.dtype[Any]:
    """Smallest unsigned dtype holding ``max_id``."""
    return np.dtype(np.uint8) if max_id <= np.iinfo(np.uint8).max else np.dtype(np.uint16)


@dataclass(frozen=True)
class LabelMap:
    """An integer label volume with a name for each id.

    Parameters
    ----------
    volume : Volume
        Unsigned integer labels of shape (n_slices, n_rows, n_columns), 0 = background,
        Quantity ``UNITLESS``.
    names : mapping of int to str
        Name of each id, as the file gives it. May name ids that hold no voxel.
    notes : tuple of str
        What the reader noticed or did (overlaps resolved, empty structures skipped,
        resampling).

    Examples
    --------
    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> array = np.array([[[0, 1, 2, 3]]], dtype=np.uint8)
    >>> labels = LabelMap(Volume(array, np.eye(4), Quantity.UNITLESS),
    ...                   {1: "kidney_left", 2: "kidney_right", 3: "liver"})
    >>> labels.ids("kidneys"), labels.ids("kidney_left"), int(labels.mask("kidneys").array.sum())
    ((1, 2), (1,), 2)

    """

    volume: Volume
    names: Mapping[int, str]
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.volume.array.dtype.kind != "u":
            raise InputError(
                f"a label map holds unsigned integers, got dtype {self.volume.array.dtype}",
                path=self.volume.source,
            )
        unnamed = sorted(set(_present_ids(self.volume.array).tolist()) - set(self.names))
        if unnamed:
            raise InputError(
                f"label ids {unnamed[:10]} have no name", path=self.volume.source, field="names"
            )

    @property
    def canonical_names(self) -> dict[int, str]:
        """Canonical structure name of each id (see :func:`canonical_structure_name`)."""
        return {i: canonical_structure_name(name) for i, name in self.names.items()}

    def ids(self, name: str) -> tuple[int, ...]:
        """Ids of the structure ``name``.

        Ids whose own (normalised) name is ``name`` when there are any; otherwise every id
        whose canonical name is the canonical name of ``name`` (``"kidneys"`` gives both
        ``kidney_left`` and ``kidney_right``).
        """
        wanted = _normalised(name)
        exact = tuple(sorted(i for i, n in self.names.items() if _normalised(n) == wanted))
        if exact:
            return exact
        canonical = canonical_structure_name(name)
        return tuple(sorted(i for i, n in self.canonical_names.items() if n == canonical))

    def mask(self, name: str) -> Volume:
        """Boolean mask :class:`Volume` of the structure ``name`` (see :meth:`ids`)."""
        ids = self.ids(name)
        if not ids:
            raise InputError(
                f"no structure {name!r} in the label map",
                path=self.volume.source,
                hint=f"use one of {sorted(set(self.names.values()))}",
            )
        return self.volume.mask(np.isin(self.volume.array, ids))


# -- grids ------------------------------------------------------------------------------------
def _aligned_offset(volume: Volume, reference: Volume) -> npt.NDArray[np.int64] | None:
    """Index of ``volume``'s first voxel in ``reference`` when the grids are aligned, else ``None``.

    Aligned: same axes and spacing, and an offset of whole voxels
    (within :data:`ALIGNED_TOLERANCE_VOXELS`).
    """
    if not np.allclose(volume.direction, reference.direction, atol=_DIRECTION_TOLERANCE):
        return None
    spacing_ratio = volume.spacing_mm / reference.spacing_mm
    if np.any(np.abs(spacing_ratio - 1.0) * np.asarray(volume.shape) > ALIGNED_TOLERANCE_VOXELS):
        return None
    offset = reference.lps_to_index(volume.index_to_lps([0.0, 0.0, 0.0]))
    whole = np.rint(offset)
    if np.any(np.abs(offset - whole) > ALIGNED_TOLERANCE_VOXELS):
        return None
    return whole.astype(np.int64)


def _on_grid(volume: Volume, reference: Volume) -> tuple[Volume, list[str]]:
    """Put an integer label volume on ``reference``'s grid: pasted when aligned, else nearest.

    Returns the label volume on the reference grid and notes on what was done.
    """
    if volume.same_grid(reference):
        return volume, []
    notes: list[str] = []
    offset = _aligned_offset(volume, reference)
    if offset is not None:
        array = np.zeros(reference.shape, dtype=volume.array.dtype)
        start = np.maximum(offset, 0)
        stop = np.minimum(offset + np.asarray(volume.shape), np.asarray(reference.shape))
        if np.any(stop <= start):
            inside = 0
        else:
            window = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
            source = tuple(
                slice(int(a - o), int(b - o)) for a, b, o in zip(start, stop, offset, strict=True)
            )
            array[window] = volume.array[source]
            inside = int(np.count_nonzero(array[window]))
        outside = int(np.count_nonzero(volume.array)) - inside
        if outside:
            notes.append(f"{outside} labelled voxel(s) lie outside the reference grid: dropped")
    else:
        resampled = volume.with_array(volume.array.astype(np.float32)).resample_to(
            reference, order=0
        )
        array = np.rint(resampled.array).astype(volume.array.dtype)
        notes.append(
            "label map resampled onto the reference grid (nearest neighbour at voxel centres)"
        )
    return reference.with_array(
        array, Quantity.UNITLESS, timing=None, source=volume.source, metadata=volume.metadata
    ), notes


# -- NIfTI ------------------------------------------------------------------------------------
def _nifti_stem(path: Path) -> str | None:
    lowered = path.name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) > len(suffix):
            return path.name[: -len(suffix)]
    return None


def _integer_labels(volume: Volume, path: Path) -> Volume:
    values = volume.array
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values != np.rint(values)):
        raise InputError(
            "a label map holds non-negative whole numbers; this file holds other values",
            path=path,
            field="voxel values",
            hint="pass a label map (one integer per structure), not an image",
        )
    max_id = int(values.max()) if values.size else 0
    if max_id > _MAX_LABEL_ID:
        raise UnsupportedInputError(
            f"label id {max_id} is larger than {_MAX_LABEL_ID}", path=path, field="voxel values"
        )
    return volume.with_array(values.astype(_label_dtype(max_id)), Quantity.UNITLESS)


def _sidecar_names(sidecar: Path) -> dict[int, str]:
    """Id → name from a JSON sidecar: ``{"1": "liver"}`` or ``{"liver": 1}``, optionally under ``"labels"``."""
    try:
        content = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the label names ({exc})", path=sidecar) from exc
    table = content.get("labels", content) if isinstance(content, dict) else None
    if not isinstance(table, dict) or not table:
        raise InputError(
            "the sidecar holds no label table",
            path=sidecar,
            field="labels",
            hint='write {"labels": {"1": "liver", "2": "spleen"}}',
        )
    names: dict[int, str] = {}
    try:
        if all(str(key).strip().isdigit() for key in table):
            pairs = [(int(key), str(value)) for key, value in table.items()]
        else:
            pairs = [(int(value), str(key)) for key, value in table.items()]
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"label table entries must pair a whole-number id with a name ({exc})",
            path=sidecar,
            field="labels",
        ) from exc
    for label_id, name in pairs:
        if label_id == 0:
            if _normalised(name) not in {_normalised(n) for n in _BACKGROUND_NAMES}:
                raise InputError(
                    f"id 0 is the background and cannot be the structure {name!r}",
                    path=sidecar,
                    field="labels",
                )
            continue
        if label_id in names:
            raise InputError(f"id {label_id} is named twice", path=sidecar, field="labels")
        names[label_id] = name
    return names


def _read_nifti_label_map(
    path: Path, names: Mapping[int, str] | None
) -> tuple[Volume, dict[int, str], list[str]]:
    volume = _integer_labels(read_nifti(path, quantity=Quantity.UNITLESS), path)
    notes: list[str] = []
    if names is not None:
        table = dict(names)
    else:
        sidecar = path.with_name(f"{_nifti_stem(path)}.json")
        table = _sidecar_names(sidecar) if sidecar.is_file() else {}
    unnamed = [int(i) for i in _present_ids(volume.array) if int(i) not in table]
    if unnamed:
        table.update({i: f"label_{i}" for i in unnamed})
        notes.append(
            f"ids {unnamed[:10]} have no name (no sidecar {_nifti_stem(path)}.json entry): "
            "named label_<id>"
        )
    return volume, table, notes


def _read_mask_folder(folder: Path, files: list[Path]) -> tuple[Volume, dict[int, str], list[str]]:
    """One NIfTI mask per structure (TotalSegmentator): ids 1, 2, … in file-name order."""
    first: Volume | None = None
    array: npt.NDArray[Any] | None = None
    names: dict[int, str] = {}
    empty: list[str] = []
    overlap = 0
    for file in files:
        mask = read_nifti(file, quantity=Quantity.MASK)
        if first is None:
            first = mask
            array = np.zeros(mask.shape, dtype=_label_dtype(len(files)))
        elif not mask.same_grid(first):
            raise InputError(
                f"the mask is on another grid than {files[0].name} (shape {mask.shape} vs "
                f"{first.shape})",
                path=file,
                hint="all masks of a folder must share one grid",
            )
        assert array is not None
        if not mask.array.any():
            empty.append(str(_nifti_stem(file)))
            continue
        label_id = len(names) + 1
        overlap += int(np.count_nonzero(array[mask.array]))
        array[mask.array] = label_id
        names[label_id] = str(_nifti_stem(file))
    assert first is not None
    assert array is not None
    notes: list[str] = []
    if empty:
        notes.append(f"{len(empty)} empty mask(s) skipped: {', '.join(empty[:10])}")
    if overlap:
        notes.append(
            f"{overlap} voxel(s) lie in more than one mask: the later file in name order wins"
        )
    volume = first.with_array(array, Quantity.UNITLESS, source=str(folder))
    return volume, names, notes


# -- dispatch ---------------------------------------------------------------------------------
def _dicom_kind(path: Path) -> str:
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        header = dcmread(path, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"])
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise UnsupportedInputError(
            "neither NIfTI (.nii, .nii.gz) nor a DICOM file",
            path=path,
            hint="pass a DICOM SEG or RTSTRUCT file, a NIfTI label map or a folder of NIfTI masks",
        ) from exc
    return str(header.get("Modality", "")).strip().upper()


def _dicom_label_file(folder: Path) -> Path:
    from immunopet.io.dicom import find_dicom_files

    found, _ = find_dicom_files(folder)
    candidates = [Path(f) for f in found if _dicom_kind(Path(f)) in {"SEG", "RTSTRUCT"}]
    if len(candidates) != 1:
        raise InputError(
            f"the folder holds {len(candidates)} DICOM SEG/RTSTRUCT files and no NIfTI masks",
            path=folder,
            hint="pass the one SEG or RTSTRUCT file to use",
        )
    return candidates[0]


def load_label_map(
    path: str | os.PathLike[str],
    reference: Volume | None = None,
    *,
    names: Mapping[int, str] | None = None,
) -> LabelMap:
    """Read a label map from DICOM SEG, RTSTRUCT, NIfTI or a folder of NIfTI masks.

    Parameters
    ----------
    path : str or os.PathLike
        A SEG or RTSTRUCT file; a ``.nii``/``.nii.gz`` label map (names from the sidecar
        ``<name>.json`` beside it, ``{"labels": {"1": "liver", …}}`` or
        ``{"liver": 1, …}``); or a folder of one NIfTI mask per structure
        (TotalSegmentator), or a folder holding exactly one SEG or RTSTRUCT file.
    reference : Volume, optional
        The grid to return the labels on (e.g. the PET or CT they belong to). Required
        for RTSTRUCT. Label maps on an aligned grid (same axes and spacing, whole-voxel
        offset) are pasted; others are resampled by nearest neighbour at the reference's
        voxel centres. Without it, the labels stay on their own grid.
    names : mapping of int to str, optional
        Names of a NIfTI label map's ids (instead of a sidecar).

    Returns
    -------
    LabelMap
        ``uint8`` (``uint16`` above 255 ids) labels, Quantity ``UNITLESS``.

    Raises
    ------
    InputError
        Unreadable files, non-integer NIfTI values, masks on different grids, an
        RTSTRUCT without ``reference``, a SEG/RTSTRUCT in another frame of reference.
    UnsupportedInputError
        A file that is neither NIfTI nor DICOM SEG/RTSTRUCT.

    Examples
    --------
    >>> import json, tempfile, numpy as np
    >>> from pathlib import Path
    >>> from immunopet.image import Quantity, Volume
    >>> from immunopet.io import write_nifti
    >>> array = np.zeros((2, 3, 4), np.uint8)
    >>> array[0, 1, 1:3] = 1
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_nifti(Volume(array, np.eye(4), Quantity.UNITLESS), Path(folder) / "l.nii.gz")
    ...     _ = (Path(folder) / "l.json").write_text(json.dumps({"labels": {"1": "liver"}}))
    ...     labels = load_label_map(Path(folder) / "l.nii.gz")
    >>> labels.names, int(labels.mask("liver").array.sum())
    ({1: 'liver'}, 2)

    """
    target = Path(path)
    notes: list[str] = []
    if target.is_dir():
        masks = sorted(p for p in target.iterdir() if p.is_file() and _nifti_stem(p))
        if masks:
            volume, table, notes = _read_mask_folder(target, masks)
        else:
            return load_label_map(_dicom_label_file(target), reference, names=names)
    elif not target.is_file():
        raise InputError("no such file or folder", path=target)
    elif _nifti_stem(target) is not None:
        volume, table, notes = _read_nifti_label_map(target, names)
    else:
        kind = _dicom_kind(target)
        if kind == "SEG":
            from immunopet.io.dicom._seg import read_label_seg

            volume, table = read_label_seg(target, reference=reference)
        elif kind == "RTSTRUCT":
            from immunopet.io.dicom._rtstruct import read_rtstruct

            if reference is None:
                raise InputError(
                    "an RT Structure Set holds contours, not voxels: it needs a reference grid",
                    path=target,
                    hint="pass the CT or PET the contours were drawn on as the reference",
                )
            volume, table = read_rtstruct(target, reference)
        else:
            raise UnsupportedInputError(
                f"DICOM modality {kind or 'unknown'} is not a label map",
                path=target,
                field="Modality (0008,0060)",
                hint="pass a DICOM SEG or RTSTRUCT file",
            )
        notes = list(volume.metadata.get("notes", []))
        return LabelMap(volume, table, tuple(notes))
    if reference is not None:
        volume, grid_notes = _on_grid(volume, reference)
        notes.extend(grid_notes)
    return LabelMap(volume, table, tuple(notes))
