"""Reading DICOM PT, NM and CT images into :class:`~immunopet.io.Scan` objects.

One pass reads headers only (``stop_before_pixels``) and remembers where each
file's Pixel Data starts; series are grouped, split where they mix
orientations, sizes or time frames, sorted and validated; a second pass reads
native pixel data straight into one preallocated float32 array with per-slice
rescale. Compressed or unusual encodings go through pydicom's decoders.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

from immunopet.errors import GeometryError, InputError, UnsupportedInputError
from immunopet.image import AcquisitionTiming, DecayCorrection, Quantity, Volume
from immunopet.io._scan import Scan
from immunopet.io.dicom._geometry import stack_affine
from immunopet.io.dicom._pet import pet_facts, scan_start
from immunopet.io.dicom._values import fast_floats, field_name, get_float, get_str

__all__ = ["find_dicom_files", "read_dicom", "read_dicom_series"]

SUPPORTED_MODALITIES = ("PT", "NM", "CT")
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
_LONG_LENGTH_VRS = {b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN", b"UT", b"SQ", b"UC", b"UR"}
_UNDEFINED_LENGTH = 0xFFFFFFFF
_PREAMBLE_BYTES = 128
_MAGIC = b"DICM"
_NM_TOMO_TYPES = {"RECON TOMO", "RECON GATED TOMO"}


@dataclass(frozen=True)
class ReadOptions:
    """What the user tells the reader that the files do not (or do wrongly).

    ``decay_correction``: what PET/SPECT values are decay-corrected to.
    """

    decay_correction: DecayCorrection | None = None


@dataclass
class _Header:
    path: str
    ds: Dataset
    pixel_offset: int | None
    _geometry: tuple[list[float], list[float], list[float]] | None = None

    @property
    def geometry(self) -> tuple[list[float], list[float], list[float]]:
        """Position, orientation and pixel spacing, parsed once."""
        if self._geometry is None:
            self._geometry = _geometry_of(self.ds, self.path)
        return self._geometry


def _has_dicom_magic(path: str) -> bool:
    try:
        with open(path, "rb") as stream:
            stream.seek(_PREAMBLE_BYTES)
            return stream.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False


def _read_header(path: str) -> _Header:
    """Read everything before Pixel Data; remember the Pixel Data offset."""
    try:
        with open(path, "rb") as stream:
            ds = dcmread(stream, stop_before_pixels=True)
            offset = stream.tell()
    except InvalidDicomError as exc:
        raise InputError(
            "not a DICOM Part-10 file (no 'DICM' prefix after the 128-byte preamble)", path=path
        ) from exc
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", path=path) from exc
    except Exception as exc:  # pydicom's parser raises many types on broken files
        raise InputError(f"broken DICOM file ({type(exc).__name__}: {exc})", path=path) from exc
    return _Header(path, ds, offset)


def find_dicom_files(folder: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """DICOM files under ``folder`` (any depth, any names) and the other files skipped."""
    found: list[str] = []
    skipped: list[str] = []
    for root, directories, names in os.walk(folder):
        directories.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            (found if _has_dicom_magic(path) else skipped).append(path)
    return found, skipped


def _modality(ds: Dataset, path: str) -> str:
    modality = (get_str(ds, "Modality") or "").upper()
    if not modality:
        raise InputError("Modality is missing", path=path, field=field_name("Modality"))
    if modality not in SUPPORTED_MODALITIES:
        raise UnsupportedInputError(
            f"modality {modality} is not read by immunopet (it reads {', '.join(SUPPORTED_MODALITIES)})",
            path=path,
            field=field_name("Modality"),
        )
    return modality


def _frames(ds: Dataset, path: str) -> int:
    value = get_float(ds, "NumberOfFrames", path=path)
    return 1 if value is None else int(value)


def _native_pixels(header: _Header, rows: int, columns: int) -> npt.NDArray[Any] | None:
    """Pixel values of an uncompressed little-endian single-frame file, or ``None``."""
    ds = header.ds
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    bits = ds.get("BitsAllocated")
    stored = ds.get("BitsStored", bits)
    signed = ds.get("PixelRepresentation", 0) == 1
    if (
        header.pixel_offset is None
        or syntax not in (ImplicitVRLittleEndian, ExplicitVRLittleEndian)
        or ds.get("SamplesPerPixel", 1) != 1
        or bits not in (8, 16, 32)
        or (signed and stored != bits)
    ):
        return None
    with open(header.path, "rb") as stream:
        stream.seek(header.pixel_offset)
        head = stream.read(12)
        if head[:4] != _PIXEL_DATA_TAG:
            return None
        if syntax == ImplicitVRLittleEndian:
            length, start = int.from_bytes(head[4:8], "little"), 8
        elif head[4:6] in _LONG_LENGTH_VRS:
            length, start = int.from_bytes(head[8:12], "little"), 12
        else:
            length, start = int.from_bytes(head[6:8], "little"), 8
        if length == _UNDEFINED_LENGTH:
            return None
        dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
        count = rows * columns
        if length < count * dtype.itemsize:
            raise InputError(
                f"Pixel Data holds {length} bytes, Rows × Columns needs {count * dtype.itemsize}",
                path=header.path,
                field=field_name("PixelData"),
            )
        stream.seek(header.pixel_offset + start)
        data = stream.read(count * dtype.itemsize)
        if len(data) < count * dtype.itemsize:
            raise InputError(
                f"the file ends inside Pixel Data ({len(data)} of {count * dtype.itemsize} bytes): "
                "truncated file",
                path=header.path,
                field=field_name("PixelData"),
            )
        raw = np.frombuffer(data, dtype=dtype).reshape(rows, columns)
    if not signed and stored < bits:
        raw = raw & np.array((1 << stored) - 1, dtype=dtype)
    return raw


def _decoded_pixels(path: str) -> npt.NDArray[Any]:
    """All frames of a file through pydicom's decoders: shape (frames, rows, columns)."""
    try:
        ds = dcmread(path)
        pixels = ds.pixel_array
    except Exception as exc:  # decoders raise many types (NotImplementedError, RuntimeError, ...)
        syntax = ""
        try:
            syntax = f" (transfer syntax {dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID.name})"
        except Exception:
            syntax = ""
        raise InputError(
            f"cannot decode the pixel data{syntax}: {type(exc).__name__}: {exc}",
            path=path,
            field=field_name("PixelData"),
        ) from exc
    if ds.get("SamplesPerPixel", 1) != 1:
        raise UnsupportedInputError(
            f"{ds.SamplesPerPixel} samples per pixel (colour): not a PET, SPECT or CT image",
            path=path,
            field=field_name("SamplesPerPixel"),
        )
    array = np.asarray(pixels)
    return array.reshape((-1, *array.shape[-2:]))


def _rescale(ds: Dataset, path: str) -> tuple[float, float]:
    slopes = fast_floats(ds, "RescaleSlope", 1, path=path)
    intercepts = fast_floats(ds, "RescaleIntercept", 1, path=path)
    slope = None if slopes is None else slopes[0]
    intercept = None if intercepts is None else intercepts[0]
    if slope == 0.0:
        raise InputError("Rescale Slope is 0", path=path, field=field_name("RescaleSlope"))
    return (1.0 if slope is None else slope), (0.0 if intercept is None else intercept)


def _geometry_of(
    ds: Dataset, path: str, *, holder: Dataset | None = None, context: str = "the image"
) -> tuple[list[float], list[float], list[float]]:
    """Position and orientation (from ``holder``, default ``ds``) and pixel spacing, all required."""
    plane = ds if holder is None else holder
    values = {
        "ImagePositionPatient": fast_floats(plane, "ImagePositionPatient", 3, path=path),
        "ImageOrientationPatient": fast_floats(plane, "ImageOrientationPatient", 6, path=path),
        "PixelSpacing": fast_floats(ds, "PixelSpacing", 2, path=path),
    }
    for keyword, value in values.items():
        if value is None:
            raise GeometryError(
                f"missing: {context} has no patient geometry", path=path, field=field_name(keyword)
            )
    position, orientation, spacing = values.values()
    assert position is not None
    assert orientation is not None
    assert spacing is not None
    return position, orientation, spacing


def _stack_key(header: _Header) -> tuple[object, ...]:
    ds = header.ds
    _, orientation, spacing = header.geometry
    return (
        tuple(round(v, 4) for v in orientation),
        tuple(round(v, 4) for v in spacing),
        ds.get("Rows"),
        ds.get("Columns"),
    )


def _time_key(ds: Dataset) -> tuple[object, ...]:
    return (
        ds.get("TemporalPositionIndex"),
        get_str(ds, "FrameReferenceTime"),
        get_str(ds, "AcquisitionTime"),
    )


def _split(headers: list[_Header], notes: list[str]) -> list[list[_Header]]:
    """Split one series into stacks with one orientation and size and one image per position."""
    by_stack: dict[tuple[object, ...], list[_Header]] = defaultdict(list)
    for header in headers:
        by_stack[_stack_key(header)].append(header)
    if len(by_stack) > 1:
        notes.append(
            f"series split into {len(by_stack)} stacks by orientation, pixel spacing or size"
        )
    stacks: list[list[_Header]] = []
    for group in by_stack.values():
        positions = {tuple(round(v, 3) for v in h.geometry[0]) for h in group}
        if len(positions) == len(group):
            stacks.append(group)
            continue
        by_time: dict[tuple[object, ...], list[_Header]] = defaultdict(list)
        for header in group:
            by_time[_time_key(header.ds)].append(header)
        frames = list(by_time.values())
        if len(frames) > 1 and all(len(f) == len(positions) for f in frames):
            notes.append(f"series split into {len(frames)} time frames (images repeat positions)")
            stacks.extend(frames)
        else:
            stacks.append(group)  # duplicate positions: stack_affine explains
    return stacks


def _source_of(headers: Sequence[_Header]) -> str:
    if len(headers) == 1:
        return headers[0].path
    return os.path.commonpath([h.path for h in headers])


def _timing_for_ct(ds: Dataset) -> AcquisitionTiming | None:
    start = scan_start(ds)
    return None if start is None else AcquisitionTiming(start=start)


def _build_scan(
    modality: str,
    headers: Sequence[Dataset],
    array: npt.NDArray[np.float32],
    affine: npt.NDArray[np.float64],
    files: Sequence[str],
    source: str,
    notes: list[str],
    options: ReadOptions,
) -> Scan:
    first = headers[0]
    acquisition = None
    if modality == "CT":
        quantity, timing = Quantity.HOUNSFIELD, _timing_for_ct(first)
    else:
        facts = pet_facts(headers, modality, source, decay_correction=options.decay_correction)
        quantity, timing, acquisition = facts.quantity, facts.timing, facts.acquisition
        if facts.value_scale is not None:
            array *= facts.value_scale.astype(np.float32)[:, None, None]
        notes.extend(facts.warnings)
    uid = get_str(first, "SeriesInstanceUID")
    volume = Volume(
        array,
        affine,
        quantity,
        timing=timing,
        source=source,
        metadata={
            "modality": modality,
            "series_instance_uid": uid,
            "frame_of_reference_uid": get_str(first, "FrameOfReferenceUID"),
            "study_instance_uid": get_str(first, "StudyInstanceUID"),
            "series_description": get_str(first, "SeriesDescription"),
        },
    )
    return Scan(volume, modality, acquisition, uid, tuple(files), tuple(dict.fromkeys(notes)))


def _read_slice_into(header: _Header, out: npt.NDArray[np.float32]) -> None:
    """Read one single-frame file's pixels into ``out`` (shape (rows, columns)), rescaled."""
    rows, columns = out.shape
    slope, intercept = _rescale(header.ds, header.path)
    raw = _native_pixels(header, rows, columns)
    if raw is None:
        decoded = _decoded_pixels(header.path)
        if decoded.shape != (1, rows, columns):
            raise InputError(
                f"decoded pixel data has shape {decoded.shape[1:]}, Rows × Columns is {(rows, columns)}",
                path=header.path,
                field=field_name("PixelData"),
            )
        raw = decoded[0]
    np.multiply(raw, slope, out=out, casting="unsafe")
    if intercept:
        out += intercept


def _classic_series(headers: list[_Header], notes: list[str], options: ReadOptions) -> Scan:
    source = _source_of(headers)
    first = headers[0].ds
    modality = _modality(first, headers[0].path)
    positions = [h.geometry[0] for h in headers]
    _, orientation, spacing = headers[0].geometry
    thickness = get_float(first, "SpacingBetweenSlices", path=headers[0].path) or get_float(
        first, "SliceThickness", path=headers[0].path
    )
    order, affine = stack_affine(
        positions, orientation, spacing, single_slice_spacing_mm=thickness, source=source
    )
    ordered = [headers[i] for i in order]
    rows, columns = int(first.Rows), int(first.Columns)
    array = np.empty((len(ordered), rows, columns), dtype=np.float32)
    for index, header in enumerate(ordered):
        _read_slice_into(header, array[index])
    return _build_scan(
        modality,
        [h.ds for h in ordered],
        array,
        affine,
        [h.path for h in ordered],
        source,
        notes,
        options,
    )


def _functional_group(ds: Dataset, frame: Dataset | None, sequence: str) -> Dataset | None:
    for holder in (frame, (ds.get("SharedFunctionalGroupsSequence") or [None])[0]):
        if holder is not None and sequence in holder and holder[sequence].value:
            item: Dataset = holder[sequence].value[0]
            return item
    return None


def _enhanced(
    path: str, ds: Dataset, modality: str, notes: list[str], options: ReadOptions
) -> Scan:
    """Enhanced multi-frame CT: geometry and rescale from the functional groups."""
    if modality != "CT":
        raise UnsupportedInputError(
            f"Enhanced {modality} (multi-frame functional groups) is not read yet: only Enhanced CT is",
            path=path,
            field="SOPClassUID",
            hint="export the series as classic PET Image Storage",
        )
    frames = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    positions, slopes, intercepts = [], [], []
    orientation = spacing = None
    for frame in frames:
        plane = _functional_group(ds, frame, "PlanePositionSequence")
        orient = _functional_group(ds, frame, "PlaneOrientationSequence")
        measures = _functional_group(ds, frame, "PixelMeasuresSequence")
        if plane is None or orient is None or measures is None:
            raise GeometryError(
                "a frame lacks Plane Position, Plane Orientation or Pixel Measures",
                path=path,
                field="PerFrameFunctionalGroupsSequence",
            )
        position, frame_orientation, frame_spacing = _geometry_of(
            _merge(plane, orient, measures), path
        )
        if orientation is not None and frame_orientation != orientation:
            raise GeometryError(
                "frames have different orientations",
                path=path,
                field=field_name("ImageOrientationPatient"),
            )
        orientation, spacing = frame_orientation, frame_spacing
        positions.append(position)
        transform = _functional_group(ds, frame, "PixelValueTransformationSequence")
        if modality == "CT":
            _require_hounsfield(transform if transform is not None else ds, path)
        slope, intercept = _rescale(transform if transform is not None else ds, path)
        slopes.append(slope)
        intercepts.append(intercept)
    if not frames or orientation is None or spacing is None:
        raise GeometryError(
            "no per-frame functional groups", path=path, field="PerFrameFunctionalGroupsSequence"
        )
    measures = _functional_group(ds, frames[0], "PixelMeasuresSequence")
    thickness = None if measures is None else get_float(measures, "SliceThickness", path=path)
    order, affine = stack_affine(
        positions, orientation, spacing, single_slice_spacing_mm=thickness, source=path
    )
    pixels = _decoded_pixels(path)
    if pixels.shape[0] != len(frames):
        raise InputError(
            f"{pixels.shape[0]} frames of pixel data for {len(frames)} functional groups",
            path=path,
            field=field_name("NumberOfFrames"),
        )
    array = pixels[order].astype(np.float32)
    array *= np.asarray(slopes, dtype=np.float32)[order][:, None, None]
    array += np.asarray(intercepts, dtype=np.float32)[order][:, None, None]
    return _build_scan(modality, [ds], array, affine, [path], path, notes, options)


def _merge(*items: Dataset) -> Dataset:
    merged = Dataset()
    for item in items:
        for element in item:
            merged.add(element)
    return merged


def _nm_tomo(path: str, ds: Dataset, notes: list[str], options: ReadOptions) -> Scan:
    """Reconstructed SPECT (NM RECON TOMO): frames are slices along row × column."""
    image_type = {str(v).upper() for v in (ds.get("ImageType") or [])}
    if not image_type & _NM_TOMO_TYPES and "TOMO" not in " ".join(image_type):
        raise UnsupportedInputError(
            f"NM image type {'/'.join(sorted(image_type)) or 'unknown'} is planar; immunopet reads "
            "reconstructed tomograms (RECON TOMO)",
            path=path,
            field=field_name("ImageType"),
        )
    detector = (ds.get("DetectorInformationSequence") or [None])[0]
    holder = detector if detector is not None and "ImagePositionPatient" in detector else ds
    position, orientation, spacing = _geometry_of(
        ds, path, holder=holder, context="the SPECT tomogram"
    )
    step = get_float(ds, "SpacingBetweenSlices", path=path) or get_float(
        ds, "SliceThickness", path=path
    )
    if step is None:
        raise GeometryError(
            "missing in the SPECT tomogram", path=path, field=field_name("SpacingBetweenSlices")
        )
    pixels = _decoded_pixels(path)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = [np.asarray(position) + k * step * normal for k in range(pixels.shape[0])]
    order, affine = stack_affine(
        positions, orientation, spacing, single_slice_spacing_mm=step, source=path
    )
    slope, intercept = _rescale(ds, path)
    array = (pixels[order] * slope + intercept).astype(np.float32)
    return _build_scan("NM", [ds], array, affine, [path], path, notes, options)


def _multi_frame(header: _Header, notes: list[str], options: ReadOptions) -> Scan:
    ds = dcmread(header.path, stop_before_pixels=True)
    modality = _modality(ds, header.path)
    if "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced(header.path, ds, modality, notes, options)
    if modality == "NM":
        return _nm_tomo(header.path, ds, notes, options)
    raise UnsupportedInputError(
        f"multi-frame {modality} without functional groups",
        path=header.path,
        field=field_name("NumberOfFrames"),
    )


def _require_hounsfield(ds: Dataset, path: str) -> None:
    """CT values are HU unless Rescale Type (Type 1C in CT, 1 in Enhanced CT) says otherwise."""
    rescale_type = get_str(ds, "RescaleType")
    if rescale_type is not None and rescale_type.upper() != "HU":
        raise UnsupportedInputError(
            f"Rescale Type is {rescale_type!r}: the CT values are not Hounsfield units",
            path=path,
            field=field_name("RescaleType"),
        )


def _require_image(header: _Header) -> None:
    """Refuse a DICOMDIR, an unsupported modality or a file without an image before grouping."""
    ds, path = header.ds, header.path
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
        raise UnsupportedInputError(
            "a DICOMDIR lists the files of a medium and holds no image",
            path=path,
            field=field_name("MediaStorageSOPClassUID"),
            hint="pass the folder that holds the DICOMDIR",
        )
    if _modality(ds, path) == "CT":
        _require_hounsfield(ds, path)
    for keyword in ("Rows", "Columns"):
        size = get_float(ds, keyword, path=path)
        if size is None or size < 1:
            raise InputError(
                f"{'missing' if size is None else f'{size:g}'}: the file holds no image",
                path=path,
                field=field_name(keyword),
            )


def _scans_from_headers(
    headers: list[_Header], notes: list[str], options: ReadOptions
) -> list[Scan]:
    by_series: dict[str, list[_Header]] = defaultdict(list)
    scans: list[Scan] = []
    for header in headers:
        _require_image(header)
        if _frames(header.ds, header.path) > 1 or "PerFrameFunctionalGroupsSequence" in header.ds:
            scans.append(_multi_frame(header, list(notes), options))
            continue
        by_series[get_str(header.ds, "SeriesInstanceUID") or header.path].append(header)
    for group in by_series.values():
        stack_notes = list(notes)
        for stack in _split(group, stack_notes):
            scans.append(_classic_series(stack, stack_notes, options))
    return scans


def _read_headers(paths: Iterable[str]) -> tuple[list[_Header], list[str]]:
    headers, problems = [], []
    for path in paths:
        try:
            headers.append(_read_header(path))
        except InputError as exc:
            problems.append(exc.one_line())
    return headers, problems


def read_dicom(
    path: str | os.PathLike[str], *, decay_correction: DecayCorrection | None = None
) -> list[Scan]:
    """Read every PT, NM and CT series in a DICOM file or folder tree.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM file (its whole series is *not* gathered) or a folder searched
        at any depth with any file names.
    decay_correction : DecayCorrection, optional
        What PET/SPECT values are decay-corrected to, where the files do not say.

    Returns
    -------
    list of Scan
        One per series (or per stack, where a series had to be split).

    Raises
    ------
    ImmunopetError
        A one-line message naming the file and field, for any unusable input.

    """
    target = Path(path)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if target.is_dir():
            files, skipped = find_dicom_files(target)
            if skipped:
                notes.append(f"{len(skipped)} non-DICOM file(s) skipped")
            if not files:
                raise InputError("no DICOM files found", path=target)
            headers, problems = _read_headers(files)
            if problems:
                notes.append(f"{len(problems)} unreadable file(s) skipped: {problems[0]}")
            if not headers:
                raise InputError(f"no readable DICOM files ({problems[0]})", path=target)
            headers = _unique_instances([h for h in headers if _is_image(h)], notes)
            if not headers:
                raise UnsupportedInputError("no PT, NM or CT images found", path=target)
        elif target.is_file():
            headers = [_read_header(str(target))]
        else:
            raise InputError("no such file or folder", path=target)
        scans = _scans_from_headers(headers, notes, ReadOptions(decay_correction))
    extra = tuple(f"pydicom: {w.message}" for w in caught)
    if extra:
        scans = [
            Scan(s.volume, s.modality, s.acquisition, s.series_uid, s.files, s.warnings + extra)
            for s in scans
        ]
    return scans


def _unique_instances(headers: list[_Header], notes: list[str]) -> list[_Header]:
    """Keep the first file of each SOP Instance UID (exports often hold copies of an image)."""
    seen: dict[str, str] = {}
    unique = []
    for header in headers:
        uid = get_str(header.ds, "SOPInstanceUID")
        if uid is not None and uid in seen:
            continue
        if uid is not None:
            seen[uid] = header.path
        unique.append(header)
    if len(unique) < len(headers):
        notes.append(
            f"{len(headers) - len(unique)} file(s) repeat an image already read (same SOP Instance UID): ignored"
        )
    return unique


def _is_image(header: _Header) -> bool:
    modality = (get_str(header.ds, "Modality") or "").upper()
    return modality in SUPPORTED_MODALITIES and "Rows" in header.ds


def read_dicom_series(
    path: str | os.PathLike[str],
    *,
    series_uid: str | None = None,
    decay_correction: DecayCorrection | None = None,
) -> Scan:
    """Read exactly one series from a file or folder; refuse when the choice is ambiguous.

    Parameters
    ----------
    path : str or os.PathLike
        DICOM file or folder.
    series_uid : str, optional
        Which series to take when the folder holds several.
    decay_correction : DecayCorrection, optional
        What PET/SPECT values are decay-corrected to, where the files do not say.

    """
    scans = read_dicom(path, decay_correction=decay_correction)
    if series_uid is not None:
        scans = [s for s in scans if s.series_uid == series_uid]
        if not scans:
            raise InputError(
                f"no series with UID {series_uid}", path=path, field="SeriesInstanceUID"
            )
    if len(scans) > 1:
        listing = "; ".join(
            f"{s.modality} {s.series_uid} ({s.volume.shape[0]} slices)" for s in scans
        )
        raise InputError(
            f"{len(scans)} series found: {listing}",
            path=path,
            hint="pass --series UID or a folder holding one series",
        )
    return scans[0]
