"""The report's fused PET/CT viewer: NiiVue with the analysis images inlined.

:func:`viewer_section` turns a results folder (``images/index.json`` and the NIfTI files it
lists, written by ``immunopet analyze``) into one self-contained ``<section id="viewer">``:
the NiiVue browser bundle (WebGL 2 viewer, https://github.com/niivue/niivue, BSD-2-Clause;
installed by ``scripts/setup.sh`` from npm, never committed), the viewer's own script and styles
(``assets/viewer.js``, ``assets/viewer.css``) and every timepoint's CT, SUV volumes and VOI
label map, encoded as below. It needs no network and no server: the report opens from a file.

Encoding of a volume (decoded in the browser by ``viewer.js``):

* cropped to the box holding every non-zero PET voxel and VOI of its timepoint (the air
  around the patient, which is exactly 0 SUV, is dropped; nothing inside is);
* stored as integers: SUV in steps of ``2**-10`` SUV (0.000977; exact in float32, so the
  viewer reproduces every SUV to within half a step, 0.00049 SUV), CT in HU as int16, VOI
  labels as uint8/uint16;
* a NIfTI-1 header written by :func:`immunopet.io.nifti.write_nifti` (the one place where LPS
  meets RAS) with ``scl_slope``/``scl_inter`` carrying the step, followed by the voxels split
  into byte planes (all first bytes, then all second bytes: the noise-free high bytes then
  compress well) and deflated (zlib), inflated by the browser's ``DecompressionStream``;
* written as base-85 text (4 bytes in 5 characters: a quarter more than binary, where base64
  adds a third) in a JSON block (``<script type="application/json" id="viewer-data">``); the
  alphabet is that of :func:`base64.b85encode` with ``.`` for ``<``, so no ``</script`` or
  ``<!--`` can appear.

The viewer reads the displayed SUV through NiiVue's own voxel lookup, so what the reader sees
under the cursor is what the file holds.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

import nibabel as nib
import numpy as np
import numpy.typing as npt

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.io.nifti import read_nifti, write_nifti

__all__ = [
    "BUNDLE_ENV",
    "SUV_STEP",
    "EncodedVolume",
    "ViewerSection",
    "encode_volume",
    "find_niivue_bundle",
    "vendor_niivue",
    "viewer_section",
]

#: Environment variable naming the NiiVue browser bundle to inline (overrides the search).
BUNDLE_ENV: Final = "IMMUNOPET_NIIVUE_JS"
#: SUV quantisation step of the embedded PET volumes: 2**-10 SUV, exact in float32, so the
#: largest error, half a step (0.000488 SUV), stays within the report's 0.0005 SUV contract.
SUV_STEP: Final = 2.0**-10
#: The npm package and the file of it that is one self-contained browser script (UMD: no
#: imports, defines the global ``niivue``).
_NPM_PACKAGE: Final = "@niivue/niivue"
_BUNDLE_IN_PACKAGE: Final = "dist/niivue.umd.js"
#: The bundle inside an installed wheel (copied there by :func:`vendor_niivue` before a wheel
#: is built; ignored by git), and the licences of what it bundles, beside it.
_VENDORED_BUNDLE: Final = "_vendor/niivue.js"
_LICENCES_BESIDE: Final = "niivue-licences.json"
#: NIfTI-1: 348-byte header + 4-byte extension flag, then the voxels (vox_offset 352).
_NIFTI_HEADER_BYTES: Final = 348
_NIFTI_VOX_OFFSET: Final = 352
#: zlib level: on noisy PET 6 is within 2 % of level 9 in size at a fifth of the time.
_ZLIB_LEVEL: Final = 6
#: Base-85 digits (Python's b85 alphabet with "." instead of "<"); viewer.js holds the same.
_BASE85: Final = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;.=>?@^_`{|}~",
    dtype=np.uint8,
)
#: Threads encoding volumes at once (zlib and NumPy release the interpreter lock).
_MAX_THREADS: Final = 4
#: Integer types tried, smallest first, for quantised values (NIfTI supports each).
_INTEGER_TYPES: Final = (np.uint8, np.uint16, np.int16, np.int32)
_LICENCE_NAMES: Final = (
    "LICENSE",
    "LICENSE.md",
    "LICENSE.txt",
    "LICENCE",
    "license",
    "LICENSE-MIT",
)
_MISSING_BUNDLE_NOTE: Final = (
    "interactive viewer not included: its NiiVue bundle is not installed "
    "(run scripts/setup.sh, which needs npm, then render the report again); "
    "the static MIP images below show every scan"
)


@dataclass(frozen=True)
class ViewerSection:
    """The viewer as one HTML fragment, with what the report must print beside it.

    Attributes
    ----------
    html : str
        ``<section id="viewer" aria-label=...>`` with everything inlined (bundle, script,
        styles, volumes), or a short section saying why the viewer is missing.
    licences : list of (str, str)
        (name, licence text) of the third-party code inlined in ``html``.
    notes : list of str
        Messages for the reader or the command line (e.g. the bundle is missing).
    size_bytes : int
        UTF-8 size of ``html``, bytes.

    """

    html: str
    licences: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    size_bytes: int = 0


@dataclass(frozen=True)
class EncodedVolume:
    """A volume as the viewer's script receives it (see the module text).

    Attributes
    ----------
    name : str
        Identifier, e.g. ``"TP03_fdg_suv"``; NiiVue sees ``name + ".nii"``.
    header : bytes
        The 352-byte NIfTI-1 header (RAS affine in sform and qform, scl_slope/scl_inter).
    planes : bytes
        zlib-deflated byte planes of the little-endian voxels, NIfTI order (column fastest).
    dtype : numpy.dtype
        Stored integer type.
    shape : tuple of int
        (n_slices, n_rows, n_columns) of the cropped volume.
    affine_lps : numpy.ndarray of shape (4, 4)
        (slice, row, column) → LPS mm of the cropped volume.
    slope, intercept : float
        Value = slope × stored integer + intercept (SUV, HU or label).

    """

    name: str
    header: bytes
    planes: bytes
    dtype: np.dtype[Any]
    shape: tuple[int, int, int]
    affine_lps: npt.NDArray[np.float64]
    slope: float
    intercept: float

    @property
    def size_bytes(self) -> int:
        """Bytes the volume adds to the report (header and planes as base-85 text)."""
        return 5 * math.ceil(len(self.header) / 4) + 5 * math.ceil(len(self.planes) / 4)

    def payload(self) -> dict[str, Any]:
        """The JSON object ``viewer.js`` decodes."""
        return {
            "name": self.name,
            "header": base85(self.header),
            "planes": base85(self.planes),
            "planesLength": len(self.planes),
            "dtype": self.dtype.name,
            "bytesPerVoxel": self.dtype.itemsize,
            "count": int(np.prod(self.shape)),
            "shape": list(self.shape),
            "affineLps": [[float(x) for x in row] for row in self.affine_lps],
            "slope": self.slope,
            "intercept": self.intercept,
        }


def base85(data: bytes) -> str:
    r"""Base-85 text of ``data`` (zero-padded to whole 4-byte groups; the reader knows the length).

    Each big-endian 4-byte group becomes 5 digits, most significant first, in the alphabet of
    :func:`base64.b85encode` with ``.`` in place of ``<`` (safe inside ``<script>`` and JSON).

    Examples
    --------
    >>> base85(b"immunopet")
    'X>DzFZf|g9bN~PV'
    >>> import base64
    >>> base64.b85decode(base85(b"immunopet").replace(".", "<"))
    b'immunopet\x00\x00\x00'

    """
    padded = data + bytes(-len(data) % 4)
    words = np.frombuffer(padded, dtype=">u4").astype(np.int64)
    digits = np.empty((words.size, 5), dtype=np.intp)
    for place in range(4, -1, -1):
        words, digits[:, place] = np.divmod(words, 85)
    return bytes(_BASE85[digits].ravel()).decode("ascii")


def _settings() -> dict[str, Any]:
    return read_toml("viewer.toml")


def _asset(name: str) -> str:
    """Text of a file in ``immunopet/report/assets``."""
    return files("immunopet.report").joinpath("assets", name).read_text(encoding="utf-8")


# -- the NiiVue bundle and its licences ---------------------------------------------------------


def find_niivue_bundle() -> Path | None:
    """Return the NiiVue browser bundle to inline, or ``None`` when none is installed.

    Looked for, in order: the file named by the environment variable ``IMMUNOPET_NIIVUE_JS``;
    ``immunopet/report/_vendor/niivue.js`` (a built wheel's copy); the npm install of the
    source checkout, ``<repository>/node_modules/@niivue/niivue/dist/niivue.umd.js``
    (``scripts/setup.sh`` runs ``npm ci``).

    Raises
    ------
    InputError
        ``IMMUNOPET_NIIVUE_JS`` names a file that does not exist.

    """
    named = os.environ.get(BUNDLE_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise InputError(
                "the NiiVue bundle named by the environment does not exist",
                path=path,
                field=BUNDLE_ENV,
                hint=f"unset {BUNDLE_ENV} or point it at {_NPM_PACKAGE}/{_BUNDLE_IN_PACKAGE}",
            )
        return path
    vendored = Path(str(files("immunopet.report").joinpath(_VENDORED_BUNDLE)))
    if vendored.is_file():
        return vendored
    repository = Path(__file__).resolve().parents[3]
    installed = repository / "node_modules" / _NPM_PACKAGE / _BUNDLE_IN_PACKAGE
    return installed if installed.is_file() else None


def _package_root(bundle: Path) -> Path | None:
    """The npm package folder (holding package.json named @niivue/niivue) the bundle is in."""
    for folder in bundle.resolve().parents:
        manifest = folder / "package.json"
        if manifest.is_file():
            try:
                name = json.loads(manifest.read_text(encoding="utf-8")).get("name")
            except (OSError, ValueError):
                return None
            return folder if name == _NPM_PACKAGE else None
    return None


def _licence_text(package: Path) -> str | None:
    for name in _LICENCE_NAMES:
        candidate = package / name
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace").strip()
    return None


def _dependency_closure(root_package: Path) -> list[Path]:
    """The package and, recursively, its installed dependencies (what its bundle contains)."""
    node_modules = next((p for p in root_package.parents if p.name == "node_modules"), None)
    found: list[Path] = [root_package]
    if node_modules is None:
        return found
    queue = [root_package]
    while queue:
        manifest = json.loads((queue.pop(0) / "package.json").read_text(encoding="utf-8"))
        for dependency in sorted(manifest.get("dependencies", {})):
            folder = node_modules / dependency
            if folder not in found and (folder / "package.json").is_file():
                found.append(folder)
                queue.append(folder)
    return found


def _node_modules_licences(root: Path) -> list[tuple[str, str]]:
    """(name, text) of the npm package at ``root`` and of everything its bundle contains."""
    licences: list[tuple[str, str]] = []
    for package in _dependency_closure(root):
        manifest = json.loads((package / "package.json").read_text(encoding="utf-8"))
        name = f"{manifest.get('name')} {manifest.get('version')} ({manifest.get('license')})"
        text = _licence_text(package)
        if text is None:
            # NiiVue's npm package ships no licence file: its repository's LICENSE, kept here.
            text = (
                _asset("viewer-niivue-LICENSE.txt").strip()
                if package == root
                else f"licence: {manifest.get('license')}"
            )
        licences.append((name, text))
    return licences


def _licences(bundle: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, text) of NiiVue and of every dependency bundled into it, and notes."""
    root = _package_root(bundle)
    if root is not None:
        return _node_modules_licences(root), []
    beside = bundle.parent / _LICENCES_BESIDE
    if beside.is_file():
        pairs = json.loads(beside.read_text(encoding="utf-8"))
        return [(str(name), str(text)) for name, text in pairs], []
    note = (
        f"the licences of the libraries bundled into NiiVue were not found beside {bundle} "
        f"({_LICENCES_BESIDE}); only NiiVue's own licence is printed"
    )
    return [("NiiVue (BSD-2-Clause)", _asset("viewer-niivue-LICENSE.txt").strip())], [note]


def vendor_niivue(destination: Path | None = None) -> Path:
    """Copy the npm-installed NiiVue bundle and its licences into the package (for a wheel).

    Run it after ``scripts/setup.sh`` and before building a wheel, so that an installed
    immunopet carries the viewer: the bundle goes to ``immunopet/report/_vendor/niivue.js``
    (included in wheels, ignored by git) and the licences of NiiVue and of every library it
    bundles to ``niivue-licences.json`` beside it.

    Parameters
    ----------
    destination : pathlib.Path, optional
        Folder to write into (default: the package's ``_vendor`` folder).

    Returns
    -------
    pathlib.Path
        The copied bundle.

    Raises
    ------
    InputError
        NiiVue is not installed in the checkout's ``node_modules``.

    """
    repository = Path(__file__).resolve().parents[3]
    source = repository / "node_modules" / _NPM_PACKAGE / _BUNDLE_IN_PACKAGE
    root = _package_root(source) if source.is_file() else None
    if root is None:
        raise InputError(
            "NiiVue is not installed in this checkout",
            path=source,
            hint="run scripts/setup.sh (it needs npm) first",
        )
    folder = Path(__file__).resolve().parent / "_vendor" if destination is None else destination
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(_VENDORED_BUNDLE).name
    target.write_bytes(source.read_bytes())
    licences = _node_modules_licences(root)
    (folder / _LICENCES_BESIDE).write_text(json.dumps(licences, indent=1), encoding="utf-8")
    return target


# -- encoding ----------------------------------------------------------------------------------


def _smallest_integer_type(low: float, high: float) -> np.dtype[Any]:
    for candidate in _INTEGER_TYPES:
        limits = np.iinfo(candidate)
        if limits.min <= low and high <= limits.max:
            return np.dtype(candidate)
    raise InputError(
        f"values from {low} to {high} steps do not fit 32-bit integers",
        field="voxel values",
        hint="check the image for corrupt voxels",
    )


def encode_volume(
    volume: Volume,
    name: str,
    *,
    step: float = 1.0,
    label_map: bool = False,
    scratch: Path | None = None,
) -> EncodedVolume:
    """Encode a volume for the viewer: integers of ``step``, NIfTI header, byte planes, zlib.

    Parameters
    ----------
    volume : Volume
        Array of shape (n_slices, n_rows, n_columns), affine to LPS mm. Not modified.
        Non-finite voxels are stored as 0.
    name : str
        Identifier of the volume in the report.
    step : float, optional
        Value of one integer step: :data:`SUV_STEP` for SUV, 1 for HU and labels. Each voxel
        is stored as the nearest multiple of ``step`` (error at most ``step / 2``).
    label_map : bool, optional
        Mark the volume as a label map (NIfTI intent ``NIFTI_INTENT_LABEL``): NiiVue then
        draws its labels as outlines.
    scratch : pathlib.Path, optional
        Folder for the temporary NIfTI file (default: a new temporary folder).

    Returns
    -------
    EncodedVolume

    Examples
    --------
    >>> import numpy as np
    >>> from immunopet.image import Quantity, Volume
    >>> suv = Volume(np.full((2, 3, 4), 2.5004, np.float32), np.eye(4), Quantity.SUV_BW)
    >>> encoded = encode_volume(suv, "example", step=SUV_STEP)
    >>> encoded.dtype.name, encoded.slope * 2560, len(encoded.header)
    ('uint16', 2.5, 352)

    """
    values = np.nan_to_num(
        np.asarray(volume.array, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0
    )
    steps = np.rint(values / step)
    dtype = _smallest_integer_type(float(steps.min(initial=0.0)), float(steps.max(initial=0.0)))
    stored = Volume(steps.astype(dtype), volume.affine, volume.quantity)
    if scratch is None:
        with tempfile.TemporaryDirectory(prefix="immunopet-viewer-") as folder:
            raw = _nifti_bytes(stored, Path(folder))
    else:
        scratch.mkdir(parents=True, exist_ok=True)
        raw = _nifti_bytes(stored, scratch)
    header: Any = nib.Nifti1Header.from_fileobj(  # type: ignore[no-untyped-call]
        io.BytesIO(raw[:_NIFTI_HEADER_BYTES])
    )
    offset = int(header["vox_offset"])
    header.set_slope_inter(step, 0.0)
    if label_map:
        header.set_intent("label")
    header["vox_offset"] = _NIFTI_VOX_OFFSET
    header_bytes = bytes(header.binaryblock) + bytes(_NIFTI_VOX_OFFSET - _NIFTI_HEADER_BYTES)
    voxels = np.frombuffer(raw, dtype=np.uint8, offset=offset)
    planes = voxels.reshape(-1, dtype.itemsize).T.tobytes()
    return EncodedVolume(
        name=name,
        header=header_bytes,
        planes=zlib.compress(planes, _ZLIB_LEVEL),
        dtype=dtype,
        shape=volume.shape,
        affine_lps=np.array(volume.affine, dtype=np.float64),
        slope=step,
        intercept=0.0,
    )


def _nifti_bytes(volume: Volume, folder: Path) -> bytes:
    """The uncompressed NIfTI-1 file of ``volume`` as :func:`write_nifti` writes it."""
    path = folder / "volume.nii"
    write_nifti(volume, path)
    try:
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


# -- geometry helpers ----------------------------------------------------------------------------

_Box = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]


def _corners(low: npt.ArrayLike, high: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The 8 corners, shape (8, 3), of the box from ``low`` to ``high`` (3 coordinates each)."""
    pairs = zip(np.ravel(low), np.ravel(high), strict=True)
    return np.array(list(itertools.product(*pairs)), dtype=np.float64)


def _nonzero_box_lps(volume: Volume, nonzero: npt.NDArray[np.bool_]) -> _Box | None:
    """LPS bounding box (min, max corner, mm) of the voxel centres where ``nonzero`` holds."""
    if not nonzero.any():
        return None
    ranges = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(nonzero.any(axis=other))
        ranges.append((int(hit[0]), int(hit[-1])))
    lps = volume.index_to_lps(_corners(*zip(*ranges, strict=True)))
    return lps.min(axis=0), lps.max(axis=0)


def _union(boxes: Iterable[_Box | None]) -> _Box | None:
    present = [b for b in boxes if b is not None]
    if not present:
        return None
    return (
        np.min([b[0] for b in present], axis=0),
        np.max([b[1] for b in present], axis=0),
    )


def _crop(volume: Volume, box: _Box | None) -> Volume:
    """The sub-volume covering the LPS ``box`` with one voxel to spare (same voxels and grid)."""
    if box is None:
        return volume
    index = volume.lps_to_index(_corners(*box))
    start = np.maximum(np.floor(index.min(axis=0)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 2, volume.shape)
    if np.any(stop <= start):
        return volume
    slices = tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True))
    affine = np.array(volume.affine, dtype=np.float64)
    affine[:3, 3] = volume.index_to_lps(start.astype(np.float64))
    return Volume(
        np.ascontiguousarray(volume.array[slices]), affine, volume.quantity, source=volume.source
    )


def _label_positions(labels: Volume, values: Sequence[int]) -> dict[int, list[float]]:
    """A voxel of each label near its centre of mass, LPS mm (where a click should lead)."""
    array = np.rint(labels.array).astype(np.int64)
    where = np.nonzero(array)
    found = array[where]
    size = max([*values, int(found.max(initial=0))]) + 1
    counts = np.bincount(found, minlength=size)
    centres = np.stack([np.bincount(found, weights=w, minlength=size) for w in where], axis=1)
    positions: dict[int, list[float]] = {}
    for value in values:
        if value <= 0 or counts[value] == 0:
            continue
        centre = centres[value] / counts[value]
        voxel = np.rint(centre).astype(int)
        if array[tuple(voxel)] != value:  # a hollow or curved VOI: its voxel nearest the centre
            members = np.stack(where, axis=1)[found == value]
            voxel = members[np.argmin(((members - centre) ** 2).sum(axis=1))]
        positions[value] = [round(float(x), 2) for x in labels.index_to_lps(voxel.astype(float))]
    return positions


# -- the document --------------------------------------------------------------------------------


def _read_index(results_dir: Path) -> dict[str, Any] | None:
    path = results_dir / "images" / "index.json"
    if not path.is_file():
        return None
    try:
        index: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(
            f"not valid JSON ({exc})", path=path, hint="run immunopet analyze again"
        ) from exc
    return index


def _image(results_dir: Path, relative: str, quantity: Quantity) -> Volume:
    path = results_dir / relative
    if not path.is_file():
        raise InputError(
            "an image listed in images/index.json is missing",
            path=path,
            field="images/index.json",
            hint="run immunopet analyze again to rewrite the results folder",
        )
    return read_nifti(path, quantity=quantity)


def _tracer_labels(document: Mapping[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for timepoint in document.get("timepoints", []):
        for scan in timepoint.get("scans", []):
            key = str(scan.get("tracer"))
            agent = scan.get("agent")
            labels.setdefault(key, f"{agent} ({key})" if agent else key)
    return labels


def _voi_entries(
    timepoint_id: str,
    names: Mapping[str, str],
    positions: Mapping[int, list[float]],
    lesions: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The VOI list of a timepoint: lesions first (by tracking ID), then organs."""
    lesion_ids = {str(lesion.get("tracking_id")) for lesion in lesions}
    centroid = {
        str(lesion.get("tracking_id")): (lesion.get("timepoints", {}).get(timepoint_id) or {}).get(
            "centroid_lps_mm"
        )
        for lesion in lesions
    }
    entries: list[dict[str, Any]] = []
    listed: set[str] = set()
    for label_text, name in names.items():
        label = int(label_text)
        kind = "lesion" if name in lesion_ids else "organ"
        lps = centroid.get(name) if kind == "lesion" else None
        lps = lps if lps is not None else positions.get(label)
        entries.append(
            {
                "label": label,
                "name": name,
                "kind": kind,
                "text": name if kind == "lesion" else name.replace("_", " "),
                "lps": lps,
            }
        )
        listed.add(name)
    for tracking_id, lps in centroid.items():  # lesions found here that have no VOI in the map
        if tracking_id not in listed and lps is not None:
            entries.append(
                {
                    "label": None,
                    "name": tracking_id,
                    "kind": "lesion",
                    "text": tracking_id,
                    "lps": lps,
                }
            )
    return sorted(entries, key=lambda e: (e["kind"] != "lesion", e["name"]))


@dataclass
class _Timepoint:
    identifier: str
    day: float | None
    ct: EncodedVolume | None
    pet: dict[str, EncodedVolume]
    labels: EncodedVolume | None
    vois: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.identifier,
            "day": self.day,
            "ct": None if self.ct is None else self.ct.payload(),
            "pet": {tracer: volume.payload() for tracer, volume in self.pet.items()},
            "labels": None if self.labels is None else self.labels.payload(),
            "vois": self.vois,
        }


def _encode_timepoint(
    results_dir: Path,
    timepoint_id: str,
    entry: Mapping[str, Any],
    document: Mapping[str, Any],
    pool: ThreadPoolExecutor,
    scratch: Path,
) -> _Timepoint:
    """Encode one timepoint's volumes (cropped to its PET uptake and VOIs)."""
    pet = {
        str(tracer): _image(results_dir, path, Quantity.SUV_BW)
        for tracer, path in (entry.get("suv") or {}).items()
    }
    ct = _image(results_dir, entry["ct"], Quantity.HOUNSFIELD) if entry.get("ct") else None
    labels = _image(results_dir, entry["vois"], Quantity.UNITLESS) if entry.get("vois") else None
    names: dict[str, str] = {}
    if entry.get("voi_names"):
        text = (results_dir / entry["voi_names"]).read_text(encoding="utf-8")
        names = {str(k): str(v) for k, v in json.loads(text).items()}
    boxes = [_nonzero_box_lps(v, np.abs(v.array) >= SUV_STEP / 2) for v in pet.values()]
    if labels is not None:
        boxes.append(_nonzero_box_lps(labels, labels.array != 0))
    box = _union(boxes)
    # name: (cropped volume, value of one stored step, is a label map)
    jobs: dict[str, tuple[Volume, float, bool]] = {
        f"{timepoint_id}_{tracer}_suv": (_crop(volume, box), SUV_STEP, False)
        for tracer, volume in pet.items()
    }
    if ct is not None:
        jobs[f"{timepoint_id}_ct"] = (_crop(ct, box), 1.0, False)
    positions: dict[int, list[float]] = {}
    if labels is not None:
        cropped = _crop(labels, box)
        jobs[f"{timepoint_id}_vois"] = (cropped, 1.0, True)
        positions = _label_positions(cropped, [int(k) for k in names])
    futures = {
        name: pool.submit(
            encode_volume, volume, name, step=step, label_map=label_map, scratch=scratch / name
        )
        for name, (volume, step, label_map) in jobs.items()
    }
    encoded = {name: future.result() for name, future in futures.items()}
    days = {str(t.get("timepoint_id")): t.get("day") for t in document.get("timepoints", [])}
    return _Timepoint(
        identifier=timepoint_id,
        day=days.get(timepoint_id),
        ct=encoded.get(f"{timepoint_id}_ct"),
        pet={tracer: encoded[f"{timepoint_id}_{tracer}_suv"] for tracer in pet},
        labels=encoded.get(f"{timepoint_id}_vois"),
        vois=_voi_entries(timepoint_id, names, positions, list(document.get("lesions", []))),
    )


def _encode_timepoints(
    results_dir: Path, index: Mapping[str, Any], document: Mapping[str, Any]
) -> list[_Timepoint]:
    """Every timepoint of ``images/index.json``, encoded."""
    threads = max(1, min(_MAX_THREADS, os.cpu_count() or 1))
    with (
        tempfile.TemporaryDirectory(prefix="immunopet-viewer-") as folder,
        ThreadPoolExecutor(max_workers=threads) as pool,
    ):
        return [
            _encode_timepoint(results_dir, str(timepoint_id), entry, document, pool, Path(folder))
            for timepoint_id, entry in index.get("timepoints", {}).items()
        ]


def _suv_windows(
    results_dir: Path, document: Mapping[str, Any], tracers: Iterable[str]
) -> dict[str, float]:
    """Top of each tracer's SUV window: that of the report's MIPs, so both look alike."""
    from immunopet.report._charts import mip_window
    from immunopet.report._context import ReportContext

    context = ReportContext(document, results_dir)
    return {tracer: mip_window(context, tracer)[1] for tracer in sorted(tracers)}


# -- HTML ----------------------------------------------------------------------------------------


def _script_text(code: str) -> str:
    r"""Code that is safe inside ``<script>``: no ``</script`` can end the element early.

    ``<\/`` means ``</`` in JavaScript strings, regular expressions and comments, the only
    places where such text can occur in code.

    Examples
    --------
    >>> print(_script_text('s = "</SCRIPT>"'))
    s = "<\/SCRIPT>"

    """
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)


def _unavailable(reason: str, note: str) -> ViewerSection:
    html = (
        '<section id="viewer" class="viewer viewer-unavailable" '
        'aria-label="Fused PET/CT viewer (not available)">\n'
        "<h2>Fused PET/CT viewer</h2>\n"
        f'<p class="viewer-missing" role="note">{escape(reason)}</p>\n'
        "</section>\n"
    )
    return ViewerSection(html=html, notes=[note], size_bytes=len(html.encode("utf-8")))


def _controls(timepoints: Sequence[_Timepoint], tracer_labels: Mapping[str, str]) -> str:
    settings = _settings()
    timepoint_options = "".join(
        f'<option value="{escape(t.identifier)}">{escape(t.identifier)}'
        + ("" if t.day is None else f" · day {t.day:.1f}".replace("-", "\u2212"))
        + "</option>"
        for t in timepoints
    )
    tracers = sorted({tracer for t in timepoints for tracer in t.pet})
    tracer_options = "".join(
        f'<option value="{escape(k)}">{escape(tracer_labels.get(k, k))}</option>' for k in tracers
    )
    ct_windows = settings["ct_windows"]
    ct_options = "".join(
        f'<option value="{escape(key)}">{escape(preset["label"])}</option>'
        for key, preset in ct_windows.items()
        if isinstance(preset, dict)
    )
    return f"""<div class="viewer-controls" role="group" aria-label="Viewer controls">
<label>Timepoint <select id="viewer-timepoint">{timepoint_options}</select></label>
<label>Tracer <select id="viewer-tracer">{tracer_options}</select></label>
<label>View <select id="viewer-layout">
<option value="multiplanar">Axial + coronal + sagittal</option>
<option value="axial">Axial</option><option value="coronal">Coronal</option>
<option value="sagittal">Sagittal</option><option value="render">3-D rendering</option>
</select></label>
<label>SUV max <input id="viewer-suv-max" type="number" min="0.5" step="0.5" inputmode="decimal"></label>
<label>CT window <select id="viewer-ct-window">{ct_options}</select></label>
<label class="viewer-check"><input id="viewer-outlines" type="checkbox" checked> VOI outlines</label>
<button id="viewer-mip" type="button" aria-pressed="true">MIP</button>
</div>"""


def _fragment(
    timepoints: Sequence[_Timepoint],
    windows: Mapping[str, float],
    document: Mapping[str, Any],
    bundle_code: str,
) -> str:
    settings = _settings()
    tracer_labels = _tracer_labels(document)
    payload = {
        "version": 1,
        "lesionTracer": document.get("study", {}).get("lesion_tracer"),
        "tracers": {
            key: {"label": tracer_labels.get(key, key), "suvMax": top}
            for key, top in windows.items()
        },
        "pet": settings["pet"],
        "ctWindows": {k: v for k, v in settings["ct_windows"].items() if isinstance(v, dict)},
        "ctWindowDefault": settings["ct_windows"]["default"],
        "mip": settings["mip"],
        "timepoints": [t.payload() for t in timepoints],
    }
    data_json = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    keys = (
        "Keys on the image: ←/→ right–left, ↑/↓ head–foot, Page Up/Down front–back; "
        "on the MIP: ←/→ rotate."
    )
    return f"""<section id="viewer" class="viewer" aria-label="Fused PET/CT viewer">
<h2>Fused PET/CT viewer</h2>
<style>{_asset("viewer.css")}</style>
{_controls(timepoints, tracer_labels)}
<div class="viewer-body">
<div class="viewer-stage">
<canvas id="viewer-canvas" tabindex="0" role="img" aria-label="PET over CT: axial, coronal and sagittal slices through the crosshair"></canvas>
</div>
<figure class="viewer-mip-panel" id="viewer-mip-panel">
<canvas id="viewer-mip-canvas" tabindex="0" role="img" aria-label="Maximum-intensity projection of the PET; click a hot spot to move the crosshair there"></canvas>
<figcaption id="viewer-mip-caption">MIP</figcaption>
</figure>
<nav class="viewer-vois" aria-label="VOIs of this timepoint">
<h3>VOIs</h3>
<p class="viewer-hint">Select one to move the crosshair to it.</p>
<ul id="viewer-voi-list"></ul>
</nav>
</div>
<p class="viewer-readout" aria-live="polite"><span>SUVbw at the crosshair: <output id="viewer-suv" for="viewer-canvas">–</output></span>
<span id="viewer-position"></span> <span id="viewer-voi"></span></p>
<p class="viewer-hint">{escape(keys)}</p>
<p id="viewer-status" class="viewer-status" role="status">Loading the viewer…</p>
<noscript><p class="viewer-missing">The interactive viewer needs JavaScript; the static MIP images below show every scan.</p></noscript>
<script type="application/json" id="viewer-data">{data_json}</script>
<script>{_script_text(bundle_code)}</script>
<script>{_script_text(_asset("viewer.js"))}</script>
</section>
"""


def viewer_section(results_dir: Path, document: Mapping[str, Any]) -> ViewerSection:
    """Build the report's interactive PET/CT viewer from a results folder.

    Parameters
    ----------
    results_dir : pathlib.Path
        Folder written by ``immunopet analyze`` (``images/index.json`` and its NIfTI files:
        float32 SUVbw per scan, int16 CT in HU on the grid of the timepoint's first PET,
        uint16 VOI label maps with ``TPxx_vois.json`` naming each label).
    document : Mapping
        The parsed ``results.json`` of that folder (timepoints, scans, lesions).

    Returns
    -------
    ViewerSection
        The fragment (see :class:`ViewerSection`); without a NiiVue bundle or without
        images, a short section saying so and a note.

    Raises
    ------
    InputError
        ``images/index.json`` is not JSON, a file it lists is missing or unreadable, or
        ``IMMUNOPET_NIIVUE_JS`` names a missing file.

    """
    folder = Path(results_dir)
    index = _read_index(folder)
    if index is None or not index.get("timepoints"):
        return _unavailable(
            "This results folder holds no images (images/index.json), so there is nothing to "
            "view; run immunopet analyze again to write them.",
            "no images/index.json in the results folder: viewer left out",
        )
    bundle = find_niivue_bundle()
    if bundle is None:
        return _unavailable(
            "The interactive viewer is not included because its NiiVue bundle is not installed: "
            "run scripts/setup.sh (it needs npm) and render the report again. The static MIP "
            "images below show every scan.",
            _MISSING_BUNDLE_NOTE,
        )
    timepoints = _encode_timepoints(folder, index, document)
    windows = _suv_windows(folder, document, {tracer for t in timepoints for tracer in t.pet})
    licences, notes = _licences(bundle)
    html = _fragment(timepoints, windows, document, bundle.read_text(encoding="utf-8"))
    return ViewerSection(
        html=html, licences=licences, notes=notes, size_bytes=len(html.encode("utf-8"))
    )
