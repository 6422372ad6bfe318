"""The viewer's encoding of the analysis images, checked in Python (the browser side: test_browser).

Every volume is decoded here along an independent path (``base64.b85decode``, ``zlib``, NumPy
byte planes, then the project's NIfTI reader on the rebuilt file) and compared with the NIfTI
images the analysis wrote: SUVs within half the 2**-10 step (≤ 0.0005 SUV, the report's
images contract), the same voxels on the same LPS grid, the RAS affine NIfTI expects.
"""

from __future__ import annotations

import base64
import io
import json
import re
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.io.nifti import read_nifti
from immunopet.report import _viewer
from immunopet.report._charts import mip_window
from immunopet.report._context import ReportContext
from immunopet.report._viewer import (
    BUNDLE_ENV,
    SUV_STEP,
    EncodedVolume,
    ViewerSection,
    encode_volume,
    find_niivue_bundle,
    vendor_niivue,
    viewer_section,
)

#: The report's images contract: the viewer reproduces every SUV to 0.0005 SUV.
SUV_TOLERANCE = 5.0e-4


def decode(encoded: EncodedVolume | dict[str, Any], folder: Path, quantity: Quantity) -> Volume:
    """Rebuild the NIfTI file from the payload, as viewer.js does, and read it back."""
    payload = encoded.payload() if isinstance(encoded, EncodedVolume) else encoded
    header = base64.b85decode(payload["header"].replace(".", "<"))[:352]
    packed = base64.b85decode(payload["planes"].replace(".", "<"))[: payload["planesLength"]]
    planes = np.frombuffer(zlib.decompress(packed), dtype=np.uint8)
    width, count = payload["bytesPerVoxel"], payload["count"]
    voxels = planes.reshape(width, count).T.tobytes()
    path = folder / f"{payload['name']}.nii"
    path.write_bytes(header + voxels)
    return read_nifti(path, quantity=quantity)


@pytest.fixture(scope="module")
def document(results_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((results_dir / "results.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def index(results_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((results_dir / "images" / "index.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def section(results_dir: Path, document: dict[str, Any]) -> ViewerSection:
    """The viewer section of the results folder (needs the NiiVue bundle: skipped without it)."""
    if find_niivue_bundle() is None:
        pytest.skip("NiiVue bundle not installed (scripts/setup.sh runs npm ci)")
    return viewer_section(results_dir, document)


@pytest.fixture(scope="module")
def payload(section: ViewerSection) -> dict[str, Any]:
    """The JSON block the viewer's script decodes."""
    html = section.html
    found = re.search(
        r'<script type="application/json" id="viewer-data">(.*?)</script>', html, re.S
    )
    assert found is not None
    loaded: dict[str, Any] = json.loads(found.group(1))
    return loaded


def test_suv_round_trip_within_half_a_step(
    results_dir: Path, index: dict[str, Any], payload: dict[str, Any], tmp_path: Path
) -> None:
    by_id = {t["id"]: t for t in payload["timepoints"]}
    checked = 0
    for timepoint_id, entry in index["timepoints"].items():
        for tracer, relative in entry["suv"].items():
            original = read_nifti(results_dir / relative, quantity=Quantity.SUV_BW)
            back = decode(by_id[timepoint_id]["pet"][tracer], tmp_path, Quantity.SUV_BW)
            # The crop is a sub-grid: same spacing and direction, origin on a voxel of the original.
            start = np.rint(original.lps_to_index(back.index_to_lps([0.0, 0.0, 0.0]))).astype(int)
            np.testing.assert_allclose(
                original.index_to_lps(start.astype(float)), back.affine[:3, 3], atol=1e-6
            )
            np.testing.assert_allclose(original.affine[:3, :3], back.affine[:3, :3], atol=1e-9)
            window = tuple(slice(a, a + n) for a, n in zip(start, back.shape, strict=True))
            error = np.abs(back.array.astype(np.float64) - original.array[window])
            assert error.max() <= SUV_STEP / 2 + 1e-7
            assert error.max() <= SUV_TOLERANCE
            assert error.max() > SUV_STEP / 8  # quantised, not stored as float
            # Only air is cropped away: outside the crop every voxel would be stored as 0 anyway.
            outside = np.ones(original.shape, dtype=bool)
            outside[window] = False
            assert np.abs(original.array[outside]).max(initial=0.0) < SUV_STEP / 2
            checked += 1
    assert checked == sum(len(e["suv"]) for e in index["timepoints"].values())


def test_ct_and_labels_exact(
    results_dir: Path, index: dict[str, Any], payload: dict[str, Any], tmp_path: Path
) -> None:
    by_id = {t["id"]: t for t in payload["timepoints"]}
    for timepoint_id, entry in index["timepoints"].items():
        for key, quantity, field in (
            ("ct", Quantity.HOUNSFIELD, "ct"),
            ("labels", Quantity.UNITLESS, "vois"),
        ):
            if not entry.get(field):
                assert by_id[timepoint_id][key] is None
                continue
            original = read_nifti(results_dir / entry[field], quantity=quantity)
            back = decode(by_id[timepoint_id][key], tmp_path, quantity)
            start = np.rint(original.lps_to_index(back.index_to_lps([0.0, 0.0, 0.0]))).astype(int)
            window = tuple(slice(a, a + n) for a, n in zip(start, back.shape, strict=True))
            np.testing.assert_array_equal(back.array, original.array[window])
        if entry.get("vois"):
            labels = read_nifti(results_dir / entry["vois"], quantity=Quantity.UNITLESS)
            back = decode(by_id[timepoint_id]["labels"], tmp_path, Quantity.UNITLESS)
            assert np.count_nonzero(back.array) == np.count_nonzero(labels.array)


def test_lps_to_ras_affine_in_the_header(tmp_path: Path) -> None:
    # Axial stack: slices to superior (+z) every 3 mm, rows to posterior (+y) every 2 mm,
    # columns to the patient's left (+x) every 1.5 mm; first voxel at LPS (10, -20, 30).
    lps = np.array([[0, 0, 1.5, 10.0], [0, 2.0, 0, -20.0], [3.0, 0, 0, 30.0], [0, 0, 0, 1]])
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) * 0.01
    encoded = encode_volume(Volume(array, lps, Quantity.SUV_BW), "axial", step=SUV_STEP)
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(encoded.header[:348]))
    # NIfTI (i, j, k) = (column, row, slice) to RAS: x and y negated, by hand.
    expected = np.array([[-1.5, 0, 0, -10.0], [0, -2.0, 0, 20.0], [0, 0, 3.0, 30.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(header.get_sform(), expected)
    np.testing.assert_allclose(header.get_qform(), expected, atol=1e-5)
    assert tuple(int(n) for n in header.get_data_shape()) == (6, 5, 4)
    assert header.get_slope_inter() == (SUV_STEP, 0.0)
    assert int(header["vox_offset"]) == 352
    back = decode(encoded, tmp_path, Quantity.SUV_BW)
    np.testing.assert_allclose(back.affine, lps)
    np.testing.assert_allclose(back.array, array, atol=SUV_STEP / 2)


def test_value_range_picks_the_integer_type() -> None:
    affine = np.eye(4)
    small = Volume(np.full((2, 2, 2), 60.0, np.float32), affine, Quantity.SUV_BW)
    large = Volume(np.full((2, 2, 2), 70.0, np.float32), affine, Quantity.SUV_BW)
    negative = Volume(np.full((2, 2, 2), -1000.0, np.float32), affine, Quantity.HOUNSFIELD)
    # 60 SUV = 61440 steps fits uint16; 70 SUV = 71680 steps does not.
    assert encode_volume(small, "a", step=SUV_STEP).dtype == np.uint16
    assert encode_volume(large, "b", step=SUV_STEP).dtype == np.int32
    assert encode_volume(negative, "c").dtype == np.int16


def test_label_map_has_the_label_intent() -> None:
    labels = Volume(np.zeros((2, 2, 2), np.float32), np.eye(4), Quantity.UNITLESS)
    encoded = encode_volume(labels, "vois", label_map=True)
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(encoded.header[:348]))
    assert int(header["intent_code"]) == 1002  # NIFTI_INTENT_LABEL: NiiVue draws outlines


def test_click_positions_fall_inside_their_label() -> None:
    array = np.zeros((9, 9, 9), np.float32)
    array[2:5, 2:5, 2:5] = 1.0  # a cube: its centre voxel
    array[1:8, 1:8, 6] = 2.0  # a ring in one plane: the centre is not in it
    array[3:6, 3:6, 6] = 0.0
    volume = Volume(array, np.diag([2.0, 2.0, 2.0, 1.0]), Quantity.UNITLESS)
    positions = _viewer._label_positions(volume, [1, 2, 3])
    assert positions[1] == [6.0, 6.0, 6.0]
    ring = np.rint(volume.lps_to_index(positions[2])).astype(int)
    assert array[tuple(ring)] == 2.0
    assert 3 not in positions


def test_voi_list_uses_the_results_centroids(
    results_dir: Path, index: dict[str, Any], payload: dict[str, Any], document: dict[str, Any]
) -> None:
    by_id = {t["id"]: t for t in payload["timepoints"]}
    seen = 0
    for lesion in document["lesions"]:
        for timepoint_id, at in lesion["timepoints"].items():
            if at.get("centroid_lps_mm") is None or timepoint_id not in by_id:
                continue
            entry = next(
                v for v in by_id[timepoint_id]["vois"] if v["name"] == lesion["tracking_id"]
            )
            assert entry["kind"] == "lesion"
            assert entry["lps"] == at["centroid_lps_mm"]
            seen += 1
    assert seen > 0
    for timepoint_id, entry in index["timepoints"].items():
        listed = {v["name"]: v for v in by_id[timepoint_id]["vois"]}
        if entry.get("voi_names"):
            names = json.loads((results_dir / entry["voi_names"]).read_text("utf-8"))
            for label, name in names.items():
                assert listed[name]["label"] == int(label)
                assert listed[name]["lps"] is not None


def test_size_budget(section: ViewerSection, payload: dict[str, Any]) -> None:
    assert section.size_bytes == len(section.html.encode("utf-8"))
    assert section.size_bytes < 30_000_000
    # Compactness: every PET voxel inside the crop costs at most 1.6 bytes (10-11 bits of count
    # noise per body voxel at 2**-10 SUV after zlib, and base 85 adds a quarter); a float32
    # encoding in base64 would cost 5.3.
    for timepoint in payload["timepoints"]:
        for volume in timepoint["pet"].values():
            assert len(volume["planes"]) / volume["count"] < 1.6


def test_licences_travel_with_the_bundle(section: ViewerSection) -> None:
    names = [name for name, _ in section.licences]
    assert names[0].startswith("@niivue/niivue ")
    assert "Copyright (c) 2021, Niivue" in section.licences[0][1]
    assert "BSD 2-Clause" in section.licences[0][1]
    assert any(name.startswith("fflate ") for name in names)  # bundled: its licence too
    assert all(text.strip() for _, text in section.licences)
    assert section.notes == []


def test_vendored_bundle_keeps_its_licences(
    results_dir: Path, document: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = find_niivue_bundle()
    if installed is None:
        pytest.skip("NiiVue bundle not installed (scripts/setup.sh runs npm ci)")
    copied = vendor_niivue(tmp_path / "_vendor")
    assert copied.read_bytes() == installed.read_bytes()
    monkeypatch.setenv(BUNDLE_ENV, str(copied))
    section = viewer_section(results_dir, document)
    assert section.notes == []
    assert section.licences == viewer_section_licences(installed)
    (tmp_path / "_vendor" / "niivue-licences.json").unlink()
    section = viewer_section(results_dir, document)
    assert [name for name, _ in section.licences] == ["NiiVue (BSD-2-Clause)"]
    assert "not found" in section.notes[0]


def viewer_section_licences(bundle: Path) -> list[tuple[str, str]]:
    licences, _ = _viewer._licences(bundle)
    return licences


def test_suv_window_is_that_of_the_report_mips(
    results_dir: Path, document: dict[str, Any], payload: dict[str, Any]
) -> None:
    context = ReportContext(document, results_dir)
    for tracer, shown in payload["tracers"].items():
        assert shown["suvMax"] == mip_window(context, tracer)[1]
    assert payload["tracers"]


def test_missing_bundle_says_so(
    results_dir: Path, document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_viewer, "find_niivue_bundle", lambda: None)
    section = viewer_section(results_dir, document)
    assert 'id="viewer"' in section.html
    assert "scripts/setup.sh" in section.html
    assert "<script" not in section.html
    assert section.licences == []
    assert section.notes
    assert "scripts/setup.sh" in section.notes[0]
    assert section.size_bytes < 2_000


def test_bundle_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "niivue.js"
    monkeypatch.setenv(BUNDLE_ENV, str(bundle))
    with pytest.raises(InputError, match=BUNDLE_ENV):
        find_niivue_bundle()
    bundle.write_text("var niivue = {};", encoding="utf-8")
    assert find_niivue_bundle() == bundle


def test_no_images_no_viewer(tmp_path: Path) -> None:
    section = viewer_section(tmp_path, {"timepoints": []})
    assert "images/index.json" in section.html
    assert section.notes


def test_script_alphabet_matches() -> None:
    script = (Path(_viewer.__file__).parent / "assets" / "viewer.js").read_text("utf-8")
    found = re.search(r"const BASE85 = '([^']+)';", script)
    assert found is not None
    assert found.group(1).encode("ascii") == bytes(_viewer._BASE85)
    assert len(set(found.group(1))) == 85
    assert not set("<\"\\'") & set(found.group(1))
