"""DICOM Segmentation (SEG) objects: label maps written and read through highdicom.

Writing (:func:`write_label_seg`): one segment per label id present, BINARY
segmentation type (the most widely read), frames that hold no voxel of a segment
omitted, referencing the source CT or PET series it was drawn on. Segment codes come
from ``data/segment_codes.toml`` (DICOM PS3.16 CID 7150/7151/7159). Each segment's
Segment Description (0062,0006) records its label id (``"immunopet label id 12"``) so
that the ids survive the round trip even where they are not consecutive (segment
numbers must be 1, 2, 3 …).

Reading (:func:`read_label_seg`): any producer's BINARY, FRACTIONAL (voxel in the
segment when the fraction is ≥ 0.5) or LABELMAP segmentation. Ids are the label ids
recorded by immunopet when every segment has one, else the segment numbers. Names
are the Segment Labels. Overlapping segments: the higher segment number wins; the
number of such voxels is reported in the volume's ``metadata["notes"]``.

highdicom is imported on first use, so ``import immunopet.io`` stays light.
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from immunopet.data import read_toml
from immunopet.errors import GeometryError, InputError, UnsupportedInputError
from immunopet.image import Quantity, Volume
from immunopet.io._atomic import atomic_path
from immunopet.io.dicom._geometry import stack_affine
from immunopet.io.dicom._read import _functional_group, find_dicom_files
from immunopet.io.dicom._values import field_name, get_float, get_floats, get_str
from immunopet.io.labels import (
    ALIGNED_TOLERANCE_VOXELS,
    _label_dtype,
    _on_grid,
    _present_ids,
    canonical_structure_name,
)
from immunopet.io.nifti import _check_output_path

if TYPE_CHECKING:
    import highdicom as hd

__all__ = ["read_label_seg", "write_label_seg"]

#: Segment Description text that records a segment's label id.
_LABEL_ID_PREFIX: Final = "immunopet label id "
_LABEL_ID_PATTERN: Final = re.compile(r"^immunopet label id (\d+)$")
#: Segment Label is LO: at most 64 characters, no backslash or control characters.
_LO_MAX_CHARACTERS: Final = 64
#: Type 2 attributes highdicom copies from the first source image; written empty when absent.
_TYPE2_PATIENT_STUDY: Final = (
    "PatientName",
    "PatientBirthDate",
    "StudyDate",
    "StudyTime",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
)
#: What a SEG must reference and copy from its source images (Type 1 there).
_REQUIRED_SOURCE: Final = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "FrameOfReferenceUID",
    "PatientID",
)
#: Device Serial Number (Type 1 in the Enhanced General Equipment module): software has none.
_DEVICE_SERIAL_NUMBER: Final = "0"
#: highdicom warns when a Patient's Name has a single component; the name is the source's own.
_PERSON_NAME_WARNING: Final = r".*unlikely to represent the intended person name.*"
#: A FRACTIONAL segment holds a voxel when its fraction is at least this.
_FRACTION_INSIDE: Final = 0.5
_SEG_MODALITY: Final = "SEG"


# -- codes ------------------------------------------------------------------------------------
def _codes() -> dict[str, Any]:
    return read_toml("segment_codes.toml")


def _code(entry: Mapping[str, Any]) -> hd.sr.CodedConcept:
    import highdicom as hd

    return hd.sr.CodedConcept(
        value=str(entry["value"]), scheme_designator=str(entry["scheme"]), meaning=entry["meaning"]
    )


def segment_codes(
    name: str, *, lesion: bool = False
) -> tuple[hd.sr.CodedConcept, hd.sr.CodedConcept]:
    """Segmented Property Category and Type for a segment called ``name``.

    Parameters
    ----------
    name : str
        Segment name (a canonical structure name, or any alias of one).
    lesion : bool, optional
        Code the segment as a lesion whatever its name.

    Returns
    -------
    category, type : highdicom.sr.CodedConcept
        Lesions get ``[lesion]`` of ``data/segment_codes.toml`` ("Morphologically Abnormal
        Structure"/"Neoplasm"); other names the entry of the name or of its canonical
        structure name; unknown names the ``[fallback]`` entry ("Tissue"/"Tissue").

    Examples
    --------
    >>> category, kind = segment_codes("kidney_left")
    >>> kind.scheme_designator, kind.value, kind.meaning, category.meaning
    ('SCT', '64033007', 'Kidney', 'Anatomical Structure')
    >>> segment_codes("mediastinal_mass", lesion=True)[1].meaning
    'Neoplasm'

    """
    table = _codes()
    if lesion:
        entry = table["lesion"]
    else:
        structures = table["structures"]
        entry = structures.get(name) or structures.get(canonical_structure_name(name))
        if entry is None:
            entry = table["fallback"]
    return _code(table["categories"][entry["category"]]), _code(entry)


# -- source images ----------------------------------------------------------------------------
def _is_image(ds: Dataset) -> bool:
    modality = (get_str(ds, "Modality") or "").upper()
    return modality not in {_SEG_MODALITY, "RTSTRUCT", "SR", "RTPLAN", "RTDOSE"} and "Rows" in ds


def _read_source(source: Sequence[Dataset] | str | os.PathLike[str]) -> list[Dataset]:
    """Header datasets of the source images (a folder, a file, or datasets as they are)."""
    if isinstance(source, str | os.PathLike):
        target = Path(source)
        if target.is_dir():
            files, _ = find_dicom_files(target)
        elif target.is_file():
            files = [str(target)]
        else:
            raise InputError("no such file or folder", path=target, field="source images")
        datasets: list[Dataset] = []
        for file in files:
            try:
                ds = dcmread(file, stop_before_pixels=True)
            except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
                raise InputError(f"cannot read the source image ({exc})", path=file) from exc
            if _is_image(ds):
                datasets.append(ds)
        if not datasets:
            raise InputError("no DICOM images found", path=target, field="source images")
        return datasets
    datasets = [ds for ds in source if _is_image(ds)]
    if not datasets:
        raise InputError("no DICOM images among the source datasets", field="source images")
    return datasets


def _series(datasets: list[Dataset], shape: tuple[int, int, int]) -> list[Dataset]:
    """The one series of ``datasets``, or the one whose slice count and size match ``shape``."""
    by_series: dict[str, list[Dataset]] = {}
    for ds in datasets:
        by_series.setdefault(get_str(ds, "SeriesInstanceUID") or "", []).append(ds)
    if len(by_series) == 1:
        return datasets
    fitting = [
        group
        for group in by_series.values()
        if (len(group), group[0].get("Rows"), group[0].get("Columns")) == shape
    ]
    if len(fitting) == 1:
        return fitting[0]
    listing = "; ".join(f"{uid} ({len(group)} images)" for uid, group in by_series.items())
    raise InputError(
        f"the source holds {len(by_series)} series: {listing}",
        field="source images",
        hint="pass the folder or the datasets of the one series the labels were drawn on",
    )


def _source_grid(datasets: list[Dataset]) -> tuple[list[Dataset], Volume]:
    """Sort the source slices along their normal; a Volume (no pixels) carrying their grid."""
    first = datasets[0]
    where = getattr(first, "filename", None)
    if any(int(get_float(ds, "NumberOfFrames") or 1) > 1 for ds in datasets):
        raise UnsupportedInputError(
            "multi-frame source images (Enhanced CT/PET) are not supported as SEG sources yet",
            path=where,
            field=field_name("NumberOfFrames"),
            hint="reference the classic single-frame series",
        )
    positions = []
    for ds in datasets:
        position = get_floats(ds, "ImagePositionPatient", 3)
        if position is None:
            raise GeometryError(
                "a source image has no position",
                path=getattr(ds, "filename", None),
                field=field_name("ImagePositionPatient"),
            )
        positions.append(position)
    orientation = get_floats(first, "ImageOrientationPatient", 6)
    spacing = get_floats(first, "PixelSpacing", 2)
    if orientation is None or spacing is None:
        raise GeometryError(
            "the source images have no orientation or pixel spacing",
            path=where,
            field=f"{field_name('ImageOrientationPatient')}/{field_name('PixelSpacing')}",
        )
    thickness = get_float(first, "SpacingBetweenSlices") or get_float(first, "SliceThickness")
    order, affine = stack_affine(
        positions, orientation, spacing, single_slice_spacing_mm=thickness, source=where
    )
    ordered = [datasets[i] for i in order]
    shape = (len(ordered), int(first.Rows), int(first.Columns))
    grid = Volume(np.zeros(shape, dtype=np.bool_), affine, Quantity.MASK, source=where)
    return ordered, grid


def _flipped_slices(volume: Volume) -> Volume:
    """The same voxels indexed with the slice axis reversed."""
    affine = volume.affine.copy()
    affine[:3, 3] = volume.index_to_lps([volume.shape[0] - 1, 0, 0])
    affine[:3, 0] = -affine[:3, 0]
    return Volume(volume.array[::-1], affine, volume.quantity, source=volume.source)


def _labels_on_source(labels: Volume, grid: Volume) -> npt.NDArray[Any]:
    """The label array in the source's slice order; refuse any other grid."""
    tolerance_mm = ALIGNED_TOLERANCE_VOXELS * float(np.min(grid.spacing_mm))
    if labels.same_grid(grid, atol_mm=tolerance_mm):
        return labels.array
    flipped = _flipped_slices(labels)
    if flipped.same_grid(grid, atol_mm=tolerance_mm):
        return flipped.array
    spacing = ", ".join(f"{s:.4g}" for s in labels.spacing_mm)
    source_spacing = ", ".join(f"{s:.4g}" for s in grid.spacing_mm)
    origin = ", ".join(f"{v:.2f}" for v in labels.affine[:3, 3])
    source_origin = ", ".join(f"{v:.2f}" for v in grid.affine[:3, 3])
    raise InputError(
        f"the label map is not on the source series' grid: shape {labels.shape}, spacing "
        f"({spacing}) mm, first voxel ({origin}) mm vs the series' {grid.shape}, "
        f"({source_spacing}) mm, ({source_origin}) mm",
        path=labels.source,
        field="labels",
        hint="reference the series the labels were made on, or resample the labels onto it",
    )


def _checked_label(name: str, label_id: int) -> str:
    text = str(name)
    if not text.strip() or len(text) > _LO_MAX_CHARACTERS or "\\" in text:
        raise InputError(
            f"label {label_id}: {text!r} cannot be a Segment Label (1 to 64 characters, no "
            "backslash)",
            field="names",
        )
    if any(ord(c) < ord(" ") for c in text):
        raise InputError(f"label {label_id}: {text!r} holds control characters", field="names")
    return text


def _prepared_source(ordered: list[Dataset]) -> list[Dataset]:
    """The source datasets with empty Type 2 patient/study attributes added to a copy of the first."""
    first = ordered[0]
    missing = [k for k in _TYPE2_PATIENT_STUDY if k not in first]
    required = [k for k in _REQUIRED_SOURCE if k not in first]
    if required:
        raise InputError(
            f"the source images lack {', '.join(required)}",
            path=getattr(first, "filename", None),
            field=field_name(required[0]),
        )
    if not missing:
        return ordered
    patched = copy.deepcopy(first)
    for keyword in missing:
        setattr(patched, keyword, "")
    return [patched, *ordered[1:]]


def write_label_seg(
    labels: Volume,
    names: Mapping[int, str],
    source: Sequence[Dataset] | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    lesions: Collection[str] = (),
    series_description: str = "immunopet label map",
    algorithm: str = "immunopet",
    algorithm_family: str = "simulation",
    series_number: int = 300,
) -> Path:
    """Write a label map as a DICOM Segmentation referencing its source series.

    Parameters
    ----------
    labels : Volume
        Integer labels of shape (n_slices, n_rows, n_columns), 0 = background, on the
        grid of the source series (same slices, rows and columns; the slice order may be
        reversed). Every id present becomes one segment.
    names : mapping of int to str
        Segment Label of each id present (1–64 characters).
    source : sequence of pydicom.Dataset, or str or os.PathLike
        The CT or PET series the labels belong to: its datasets (headers suffice), or a
        folder (searched at any depth) or file to read them from. A folder with several
        series is narrowed to the one whose slice count and size match ``labels``.
    path : str or os.PathLike
        The SEG file to write (replaced atomically if it exists).
    lesions : collection of str, optional
        Names that are lesions: coded "Morphologically Abnormal Structure"/"Neoplasm".
        Other names get their organ or tissue code (``data/segment_codes.toml``), unknown
        names "Tissue"/"Tissue".
    series_description : str, optional
        Series Description of the SEG.
    algorithm : str, optional
        Algorithm Name of every segment (Segment Algorithm Type AUTOMATIC).
    algorithm_family : str, optional
        Key of ``[algorithm_families]`` in ``data/segment_codes.toml``: ``"simulation"``
        (ground truth of the phantom), ``"histogram_analysis"`` (thresholds),
        ``"artificial_intelligence"``, ``"manual_processing"``, ``"morphological_operations"``.
    series_number : int, optional
        Series Number of the SEG.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InputError
        Non-integer or negative labels, no labelled voxel, an id without a usable name,
        a grid that differs from the source series, several candidate series, source
        images without the UIDs a SEG must reference, or an unwritable target.
    UnsupportedInputError
        Multi-frame (Enhanced) source images.

    Notes
    -----
    Type 2 patient and study attributes missing from the source (Patient's Name, Birth
    Date and Sex, Study Date and Time, Accession Number, Study ID, Referring Physician's
    Name) are written empty; the source datasets are not modified.

    Examples
    --------
    >>> import tempfile
    >>> from datetime import datetime
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> from immunopet.io.dicom import ct_series_datasets, read_label_seg
    >>> ct = Volume(np.zeros((4, 6, 6), np.float32), np.diag([3.0, 2.0, 2.0, 1.0]),
    ...             Quantity.HOUNSFIELD)
    >>> series = ct_series_datasets(ct, when=datetime(2026, 3, 6, 9))
    >>> labels = np.zeros((4, 6, 6), np.uint8)
    >>> labels[1:3, 2:4, 2:5] = 7
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_label_seg(ct.with_array(labels, Quantity.UNITLESS), {7: "liver"},
    ...                            series, Path(folder) / "seg.dcm")
    ...     back, names = read_label_seg(path)
    >>> names, back.shape, int(np.count_nonzero(back.array == 7))
    ({7: 'liver'}, (2, 6, 6), 12)

    """
    import highdicom as hd
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    from immunopet import __version__

    if labels.array.dtype.kind not in "biu":
        raise InputError(
            f"labels must be integers, got dtype {labels.array.dtype}", path=labels.source
        )
    if labels.array.dtype.kind == "i" and labels.array.size and int(labels.array.min()) < 0:
        raise InputError("labels must not be negative", path=labels.source, field="labels")
    if labels.array.dtype.kind == "b":
        labels = labels.with_array(labels.array.astype(np.uint8), Quantity.UNITLESS)
    ids = [int(i) for i in _present_ids(labels.array)]
    if not ids:
        raise InputError(
            "the label map holds no labelled voxel: a SEG needs at least one segment",
            path=labels.source,
            field="labels",
        )
    missing = [i for i in ids if i not in names]
    if missing:
        raise InputError(f"label ids {missing[:10]} have no name", field="names")
    families = _codes()["algorithm_families"]
    if algorithm_family not in families:
        raise InputError(
            f"unknown algorithm family {algorithm_family!r}",
            field="algorithm_family",
            hint=f"use one of {sorted(families)}",
        )
    target = Path(path)
    _check_output_path(target)

    datasets = _read_source(source)
    ordered, grid = _source_grid(_series(datasets, labels.shape))
    array = _labels_on_source(labels, grid)
    lookup = np.zeros(max(ids) + 1, dtype=_label_dtype(len(ids)))
    lookup[ids] = np.arange(1, len(ids) + 1)
    pixels = lookup[array]

    family_entry = families[algorithm_family]
    identification = hd.AlgorithmIdentificationSequence(
        name=algorithm, family=_code(family_entry), version=__version__
    )
    lesion_names = set(lesions)
    descriptions = []
    for number, label_id in enumerate(ids, start=1):
        label = _checked_label(names[label_id], label_id)
        category, kind = segment_codes(label, lesion=label in lesion_names)
        description = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=category,
            segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=identification,
        )
        description.SegmentDescription = f"{_LABEL_ID_PREFIX}{label_id}"
        descriptions.append(description)
    schemes = [
        CodingSchemeIdentificationItem(
            designator=designator,
            name=entry["name"],
            responsible_organization=entry["responsible_organization"],
        )
        for designator, entry in _codes()["coding_schemes"].items()
        if designator == family_entry["scheme"]
    ]
    spacing = grid.spacing_mm
    measures = hd.PixelMeasuresSequence(
        pixel_spacing=(float(spacing[1]), float(spacing[2])),
        slice_thickness=float(spacing[0]),
        spacing_between_slices=float(spacing[0]),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PERSON_NAME_WARNING, category=UserWarning)
        try:
            segmentation = hd.seg.Segmentation(
                source_images=_prepared_source(ordered),
                pixel_array=pixels,
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=descriptions,
                series_instance_uid=hd.UID(),
                series_number=series_number,
                sop_instance_uid=hd.UID(),
                instance_number=1,
                manufacturer="immunopet",
                manufacturer_model_name="immunopet",
                software_versions=__version__,
                device_serial_number=_DEVICE_SERIAL_NUMBER,
                pixel_measures=measures,
                omit_empty_frames=True,
                content_label="LABELS",
                content_description=series_description[:_LO_MAX_CHARACTERS],
                series_description=series_description[:_LO_MAX_CHARACTERS],
                coding_schemes=schemes or None,
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise InputError(
                f"highdicom refused the segmentation: {exc}",
                path=target,
                hint="check the source images' patient and study attributes",
            ) from exc
    with atomic_path(target) as temporary:
        segmentation.save_as(temporary, enforce_file_format=True)
    return target


# -- reading ----------------------------------------------------------------------------------
def _segments(seg: Dataset, path: Path) -> dict[int, tuple[int, str]]:
    """Segment number → (label id, Segment Label)."""
    items = list(seg.get("SegmentSequence") or [])
    if not items:
        raise InputError("the SEG has no segments", path=path, field=field_name("SegmentSequence"))
    numbers = [int(item.SegmentNumber) for item in items]
    labels = [
        str(item.get("SegmentLabel", "") or f"segment_{n}")
        for item, n in zip(items, numbers, strict=True)
    ]
    recorded = [_LABEL_ID_PATTERN.match(str(item.get("SegmentDescription", ""))) for item in items]
    ids = numbers
    if all(recorded):
        candidate = [int(m.group(1)) for m in recorded if m]
        if len(set(candidate)) == len(candidate) and min(candidate) > 0:
            ids = candidate
    return {n: (i, label) for n, i, label in zip(numbers, ids, labels, strict=True)}


def _inside(frame: npt.NDArray[Any], kind: str, maximum: float) -> npt.NDArray[np.bool_]:
    if kind == "FRACTIONAL":
        return np.asarray(frame, dtype=np.float64) >= _FRACTION_INSIDE * maximum
    return np.asarray(frame != 0)


def _frame_layout(
    seg: Dataset, reference: Volume, path: Path
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None] | None:
    """Reference index of each frame's first pixel and each frame's segment number.

    ``None`` when any frame is not on the reference grid (other axes or spacing, or a
    fractional voxel offset).
    """
    frames = list(seg.get("PerFrameFunctionalGroupsSequence") or [])
    count = int(seg.get("NumberOfFrames", 1) or 1)
    if len(frames) != count:
        frames = [Dataset()] * count
    positions = np.empty((count, 3))
    numbers = np.empty(count, dtype=np.int64)
    orientation_seen: set[tuple[float, ...]] = set()
    spacing_seen: set[tuple[float, ...]] = set()
    for index, frame in enumerate(frames):
        plane = _functional_group(seg, frame, "PlanePositionSequence")
        orient = _functional_group(seg, frame, "PlaneOrientationSequence")
        measures = _functional_group(seg, frame, "PixelMeasuresSequence")
        if plane is None or orient is None or measures is None:
            raise GeometryError(
                f"frame {index + 1} lacks Plane Position, Plane Orientation or Pixel Measures",
                path=path,
                field="PerFrameFunctionalGroupsSequence",
            )
        position = get_floats(plane, "ImagePositionPatient", 3, path=str(path))
        orientation = get_floats(orient, "ImageOrientationPatient", 6, path=str(path))
        spacing = get_floats(measures, "PixelSpacing", 2, path=str(path))
        if position is None or orientation is None or spacing is None:
            raise GeometryError(
                f"frame {index + 1} has no position, orientation or pixel spacing",
                path=path,
                field=field_name("ImagePositionPatient"),
            )
        positions[index] = position
        orientation_seen.add(tuple(orientation))
        spacing_seen.add(tuple(spacing))
        identification = _functional_group(seg, frame, "SegmentIdentificationSequence")
        numbers[index] = (
            int(identification.ReferencedSegmentNumber) if identification is not None else 0
        )
    if len(orientation_seen) != 1 or len(spacing_seen) != 1:
        return None
    orientation_values = np.asarray(orientation_seen.pop())
    row_spacing, column_spacing = spacing_seen.pop()
    direction = reference.direction
    if not (
        np.allclose(orientation_values[:3], direction[:, 2], atol=1.0e-4)
        and np.allclose(orientation_values[3:], direction[:, 1], atol=1.0e-4)
    ):
        return None
    relative = np.abs(np.array([row_spacing, column_spacing]) / reference.spacing_mm[1:] - 1.0)
    if np.any(relative * np.asarray(reference.shape[1:]) > ALIGNED_TOLERANCE_VOXELS):
        return None
    fractional = reference.lps_to_index(positions)
    whole = np.rint(fractional)
    if np.any(np.abs(fractional - whole) > ALIGNED_TOLERANCE_VOXELS):
        return None
    return whole.astype(np.int64), (numbers if np.all(numbers > 0) else None)


def _paste_frames(
    seg: Any,
    kind: str,
    layout: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None],
    segments: dict[int, tuple[int, str]],
    reference: Volume,
    dtype: np.dtype[Any],
) -> tuple[npt.NDArray[Any], int, int]:
    """Paint each frame at its reference position; higher segment numbers last (they win)."""
    starts, numbers = layout
    array = np.zeros(reference.shape, dtype=dtype)
    maximum = float(seg.get("MaximumFractionalValue", 1) or 1)
    rows, columns = int(seg.Rows), int(seg.Columns)
    shape = np.asarray(reference.shape)
    lookup = np.zeros(max(segments) + 1, dtype=dtype)
    for number, (label_id, _) in segments.items():
        lookup[number] = label_id
    overlap = outside = 0
    frame_order = np.argsort(numbers, kind="stable") if numbers is not None else range(len(starts))
    for frame_index in frame_order:
        k, r0, c0 = (int(v) for v in starts[frame_index])
        frame = seg.get_stored_frame(int(frame_index) + 1)
        if kind == "LABELMAP":
            values = lookup[np.minimum(np.asarray(frame, dtype=np.int64), len(lookup) - 1)]
        else:
            assert numbers is not None
            values = np.where(
                _inside(frame, kind, maximum), lookup[int(numbers[frame_index])], 0
            ).astype(dtype)
        labelled = int(np.count_nonzero(values))
        if not 0 <= k < shape[0]:
            outside += labelled
            continue
        r_lo, r_hi = max(r0, 0), min(r0 + rows, int(shape[1]))
        c_lo, c_hi = max(c0, 0), min(c0 + columns, int(shape[2]))
        if r_hi <= r_lo or c_hi <= c_lo:
            outside += labelled
            continue
        window = values[r_lo - r0 : r_hi - r0, c_lo - c0 : c_hi - c0]
        outside += labelled - int(np.count_nonzero(window))
        target = array[k, r_lo:r_hi, c_lo:c_hi]
        hit = window != 0
        overlap += int(np.count_nonzero(target[hit]))
        target[hit] = window[hit]
    return array, overlap, outside


def _own_grid(
    seg: Any, kind: str, segments: dict[int, tuple[int, str]], dtype: np.dtype[Any], path: Path
) -> tuple[Volume, int]:
    """The labels on the SEG's own frame grid (highdicom's volume geometry).

    Slices are ordered along the normal row × column, as :func:`immunopet.io.load_scan`
    orders a series.
    """
    array: npt.NDArray[Any] | None = None
    affine: npt.NDArray[np.float64] | None = None
    overlap = 0
    for number in sorted(segments):
        try:
            volume = seg.get_volume(
                segment_numbers=[number], combine_segments=False, rescale_fractional=True
            )
        except (RuntimeError, ValueError) as exc:
            raise InputError(
                f"the SEG's frames do not form a regular volume ({exc})",
                path=path,
                hint="pass the image the SEG was drawn on as the reference",
            ) from exc
        values = np.asarray(volume.array)[..., 0]
        inside = values >= _FRACTION_INSIDE if kind == "FRACTIONAL" else values != 0
        if array is None:
            array = np.zeros(values.shape, dtype=dtype)
            affine = np.asarray(volume.affine, dtype=np.float64)
        overlap += int(np.count_nonzero(array[inside]))
        array[inside] = segments[number][0]
    assert array is not None
    assert affine is not None
    volume = Volume(array, affine, Quantity.UNITLESS, source=str(path))
    direction = volume.direction
    if float(direction[:, 0] @ np.cross(direction[:, 2], direction[:, 1])) < 0.0:
        # Slices in the order DICOM series are read (along row × column), as load_scan gives.
        volume = _flipped_slices(volume)
    return volume, overlap


def read_label_seg(
    path: str | os.PathLike[str], *, reference: Volume | None = None
) -> tuple[Volume, dict[int, str]]:
    """Read a DICOM Segmentation (any producer) into an integer label volume.

    Parameters
    ----------
    path : str or os.PathLike
        The SEG file (BINARY, FRACTIONAL or LABELMAP segmentation type).
    reference : Volume, optional
        The grid to return the labels on. Frames on that grid (same axes and spacing,
        whole-voxel positions) are pasted exactly; otherwise the SEG's own volume is
        resampled onto it by nearest neighbour. Without it, the labels come back on the
        SEG's own frame grid (from its first to its last frame).

    Returns
    -------
    volume : Volume
        ``uint8`` labels (``uint16`` above 255), Quantity ``UNITLESS``; ``metadata`` holds
        the SEG's UIDs and ``"notes"`` (overlaps, resampling, voxels outside the grid).
    names : dict of int to str
        Segment Label of each id. Ids are the label ids immunopet recorded in the Segment
        Descriptions when every segment has one, else the segment numbers.

    Raises
    ------
    InputError
        Not a readable SEG, a SEG in another frame of reference than ``reference``,
        or frames that do not form a volume and no reference.

    Notes
    -----
    Overlaps: a voxel in several segments gets the id of the highest segment number.
    FRACTIONAL segments hold a voxel when the fraction is at least 0.5.

    """
    import highdicom as hd

    file = Path(path)
    if not file.is_file():
        raise InputError("file not found", path=file)
    try:
        seg: Any = hd.seg.segread(file)
    except (InvalidDicomError, ValueError, AttributeError, KeyError, TypeError, EOFError) as exc:
        raise InputError(
            f"cannot read the file as a DICOM Segmentation ({type(exc).__name__}: {exc})",
            path=file,
        ) from exc
    segments = _segments(seg, file)
    names = dict(segments.values())
    dtype = _label_dtype(max(names))
    kind = str(seg.SegmentationType).upper()
    notes: list[str] = []
    frame_of_reference = get_str(seg, "FrameOfReferenceUID")
    if reference is not None:
        expected = reference.metadata.get("frame_of_reference_uid")
        if expected and frame_of_reference and expected != frame_of_reference:
            raise InputError(
                f"the SEG is in frame of reference {frame_of_reference}, the reference image "
                f"in {expected}: they are not in one patient space",
                path=file,
                field=field_name("FrameOfReferenceUID"),
                hint="pass the image the segmentation was drawn on (or one registered to it)",
            )
    layout = _frame_layout(seg, reference, file) if reference is not None else None
    if (
        reference is not None
        and layout is not None
        and (layout[1] is not None or kind == "LABELMAP")
    ):
        array, overlap, outside = _paste_frames(seg, kind, layout, segments, reference, dtype)
        volume = reference.with_array(array, Quantity.UNITLESS, timing=None, source=str(file))
        if outside:
            notes.append(f"{outside} labelled voxel(s) lie outside the reference grid: dropped")
    else:
        volume, overlap = _own_grid(seg, kind, segments, dtype, file)
        if reference is not None:
            volume, grid_notes = _on_grid(volume, reference)
            notes.extend(grid_notes)
    if overlap:
        notes.append(
            f"{overlap} voxel(s) lie in more than one segment: the higher segment number wins"
        )
    volume.metadata = {
        "modality": _SEG_MODALITY,
        "series_instance_uid": get_str(seg, "SeriesInstanceUID"),
        "sop_instance_uid": get_str(seg, "SOPInstanceUID"),
        "frame_of_reference_uid": frame_of_reference,
        "segment_numbers": {label_id: number for number, (label_id, _) in segments.items()},
        "notes": notes,
    }
    return volume, names
