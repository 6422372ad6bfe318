"""The report page: numbers only from results.json, self-contained, accessible, printable.

The results folder comes from the real simulator and analysis (``conftest.py``). The checks parse
the HTML with the standard library and compare with ``results.json`` exactly (the numbers
contract of ``docs/report.md``), decode the inline PNGs and compare them with MIPs computed here
independently from the NIfTI images with nibabel.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import sys
import types
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from immunopet.cli import main
from immunopet.errors import InputError
from immunopet.report import render_report, write_report
from immunopet.report._mip import inverse_grey
from immunopet.report._png import encode_png
from immunopet.report._svg import PALETTE

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag)
            and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _Tree(HTMLParser):
    """A DOM of the page; records tags closed out of order (malformed markup)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.mismatched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.stack[-1].tag != tag:
            self.mismatched.append(f"</{tag}> closes <{self.stack[-1].tag}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> _Tree:
    tree = _Tree()
    tree.feed(html)
    tree.close()
    return tree


@pytest.fixture(scope="module")
def document(results_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((results_dir / "results.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def page(results_dir: Path) -> str:
    return render_report(results_dir)


@pytest.fixture(scope="module")
def tree(page: str) -> _Tree:
    return parse(page)


@pytest.fixture
def copied(results_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "analysis"
    shutil.copytree(results_dir, target)
    return target


def _edit(folder: Path, change: Any) -> dict[str, Any]:
    path = folder / "results.json"
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
    change(loaded)
    path.write_text(json.dumps(loaded), encoding="utf-8")
    return loaded


# ------------------------------------------------------------------------ numbers contract


def _flat(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(data-key path, value) of every scalar of an evidence value (``a.0.b`` for nesting)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flat(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flat(item, f"{path}.{index}")
    else:
        yield path, value


def _check_events(events: list[dict[str, Any]], tree: _Tree) -> int:
    """Every event is its article with every evidence number exact; returns numbers compared."""
    articles = tree.root.find_all("article")
    assert [a.attrs["id"] for a in articles if "event" in (a.attrs.get("class") or "")] == [
        f"event-{i}" for i in range(len(events))
    ]
    compared = 0
    for index, event in enumerate(events):
        (article,) = tree.root.find_all("article", id=f"event-{index}")
        assert article.attrs["data-type"] == event["type"]
        assert article.attrs.get("data-timepoint") == event.get("timepoint_id")
        shown = {n.attrs["data-key"]: n for n in article.iter() if "data-key" in n.attrs}
        for key, value in _flat(event["evidence"], ""):
            element = shown[key]
            if isinstance(value, str):
                assert element.text() != ""
                continue
            assert element.tag == "data"
            # Exact: the JSON text of the value, parsed back, equals the value of results.json.
            assert json.loads(element.attrs["value"] or "") == value, key
            compared += 1
        (day,) = [n for n in article.iter() if n.attrs.get("data-field") == "day"][:1]
        assert json.loads(day.attrs["value"] or "") == event["day"]
        if event.get("centroid_lps_mm"):
            assert json.loads(article.attrs["data-lps"] or "") == event["centroid_lps_mm"]
    return compared


def test_every_event_appears_with_the_numbers_of_results_json(
    document: dict[str, Any], tree: _Tree
) -> None:
    events = document["events"]
    assert events, "the fixture patient must have guidance events (antigen loss)"
    assert _check_events(events, tree) >= 8 * len(events)


def test_nested_evidence_keeps_its_numbers(copied: Path) -> None:
    """Rule-specific evidence (lists of objects, e.g. draining nodes) is shown number by number."""
    nodes = [
        {"voi_id": "node_a", "suv_mean": 3.25, "to_blood": None, "active": True},
        {"voi_id": "node_b", "suv_mean": 1.0625, "to_blood": 0.8125, "active": False},
    ]

    def change(loaded: dict[str, Any]) -> None:
        loaded["events"][0]["evidence"]["draining_nodes"] = nodes
        loaded["events"][0]["evidence"]["signature"] = "tumour_and_node"

    loaded = _edit(copied, change)
    tree = parse(render_report(copied))
    assert _check_events(loaded["events"], tree) > 0
    (article,) = tree.root.find_all("article", id="event-0")
    (value,) = [n for n in article.iter() if n.attrs.get("data-key") == "draining_nodes.1.to_blood"]
    assert value.attrs["value"] == "0.8125"


def test_events_come_first_in_the_summary(tree: _Tree) -> None:
    (summary,) = tree.root.find_all("section", id="summary")
    ids = [n.attrs.get("id") for n in summary.iter() if n.attrs.get("id")]
    assert ids.index("events-title") < ids.index("study-title")
    sections = [n.attrs.get("id") for n in tree.root.find_all("section")]
    assert sections[:3] == ["summary", "viewer", "mips"]


def test_changed_values_in_results_json_show_in_the_report(copied: Path) -> None:
    def change(loaded: dict[str, Any]) -> None:
        loaded["events"][0]["evidence"]["baseline"] = 7.654321
        row = next(m for m in loaded["measurements"] if m["voi_type"] == "lesion")
        row["suv_mean"] = 12.3456789

    changed = _edit(copied, change)
    tree = parse(render_report(copied))
    (article,) = tree.root.find_all("article", id="event-0")
    (baseline,) = [n for n in article.iter() if n.attrs.get("data-key") == "baseline"]
    assert baseline.attrs["value"] == "7.654321"
    assert baseline.text().startswith("7.65")
    row = next(m for m in changed["measurements"] if m["voi_type"] == "lesion")
    cells = [
        n
        for n in tree.root.find_all("data", data_field="suv_mean")
        if n.attrs["value"] == "12.3456789"
    ]
    assert cells
    assert cells[0].text() == "12.35"
    # The trajectory chart of that lesion carries the new value in a point's tooltip.
    (series,) = tree.root.find_all("g", id=f"trajectory-{row['tracer']}-{row['voi_id']}")
    assert any("12.35" in n.text() for n in series.find_all("title"))


def test_every_data_element_holds_a_json_number(tree: _Tree) -> None:
    elements = tree.root.find_all("data")
    assert len(elements) > 200
    for element in elements:
        value = json.loads(element.attrs["value"] or "")
        assert value is None or isinstance(value, int | float)


def test_measurement_tables_hold_every_measurement(document: dict[str, Any], tree: _Tree) -> None:
    shown = {
        float(json.loads(n.attrs["value"] or ""))
        for n in tree.root.find_all("data", data_field="suv_mean")
    }
    assert {m["suv_mean"] for m in document["measurements"]} <= shown


# --------------------------------------------------------------------- self-contained page


def test_no_network_reference_in_any_url(page: str, tree: _Tree) -> None:
    urls = [
        value
        for node in tree.root.iter()
        for name, value in node.attrs.items()
        if name in ("src", "href", "xlink:href", "action", "poster", "data", "srcset") and value
    ]
    assert urls
    for url in urls:
        assert url.startswith(("#", "data:")), url[:80]
    assert not re.search(r"url\(\s*['\"]?(?!data:|#)", page)
    assert "@import" not in page
    assert not tree.root.find_all("link")
    (policy,) = tree.root.find_all("meta", http_equiv="Content-Security-Policy")
    assert "default-src 'none'" in (policy.attrs["content"] or "")


def test_internal_links_lead_somewhere(tree: _Tree) -> None:
    """Every ``#`` link has its target, and ids are unique (a link has one place to go)."""
    all_ids = [n.attrs["id"] for n in tree.root.iter() if n.attrs.get("id")]
    assert len(all_ids) == len(set(all_ids)), sorted({i for i in all_ids if all_ids.count(i) > 1})
    ids = set(all_ids)
    targets = {(n.attrs.get("href") or "")[1:] for n in tree.root.find_all("a")}
    targets.discard("")
    assert targets <= ids, targets - ids


def test_markup_is_balanced(page: str, tree: _Tree) -> None:
    assert tree.mismatched == []
    assert [n.tag for n in tree.stack] == ["#document"]
    assert page.startswith("<!DOCTYPE html>")


# ------------------------------------------------------------------------------- pictures


def _decode_png(data: bytes) -> np.ndarray[Any, Any]:
    """Decode an 8-bit, non-interlaced PNG written with filter type 0, checking every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        position += 12 + length
    assert next(k for k, _ in chunks) == b"IHDR"
    assert chunks[-1][0] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, interlace) == (8, 0)
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[colour]
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    rows = np.frombuffer(raw, np.uint8).reshape(height, 1 + width * channels)
    assert not rows[:, 0].any()  # filter type 0 on every row
    return rows[:, 1:].reshape(height, width, channels).squeeze()


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (5, 4, 3), (3, 2, 4), (6, 9, 2)])
def test_png_round_trip(shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(pixels)
    np.testing.assert_array_equal(_decode_png(data), pixels.squeeze())
    import io

    from PIL import Image  # a second, independent decoder (installed with highdicom)

    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels.squeeze())


def test_png_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(InputError, match="uint8"):
        encode_png(np.zeros((2, 2), np.float32))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="shape"):
        encode_png(np.zeros((2, 2, 5), np.uint8))


def test_mips_show_the_suv_of_the_images(results_dir: Path, tree: _Tree) -> None:
    """Each MIP equals the maximum along the anterior–posterior axis computed here with nibabel.

    Head at the top, the patient's right on the image's left (RAS: +x is the patient's left).
    """
    index = json.loads((results_dir / "images" / "index.json").read_text("utf-8"))
    timepoint = next(iter(index["timepoints"]))
    tracer, relative = next(iter(index["timepoints"][timepoint]["suv"].items()))
    (figure,) = tree.root.find_all("figure", id=f"mip-{timepoint}-{tracer}")
    (image,) = figure.find_all("img")
    source = image.attrs["src"] or ""
    pixels = _decode_png(base64.b64decode(source.split(",", 1)[1]))
    loaded = nib.load(results_dir / relative)
    axes = nib.aff2axcodes(loaded.affine)
    volume = np.asarray(loaded.dataobj, dtype=np.float32)
    # Put the array in RAS index order (i: right→left is +x R? make i run toward +R).
    for axis, code in enumerate(axes):
        if code in ("L", "P", "I"):
            volume = np.flip(volume, axis)
    order = [next(a for a, c in enumerate(axes) if c in pair) for pair in ("LR", "PA", "IS")]
    volume = volume.transpose(order)  # (R..., A..., S...)
    mip = volume.max(axis=1)  # (x toward R, z toward S)
    expected_image = mip.T[::-1, ::-1]  # rows: superior first; columns: patient's right first
    low, high = (0.0, 8.0) if tracer == "fdg" else (0.0, 12.0)
    np.testing.assert_array_equal(pixels, inverse_grey(expected_image, low, high))
    assert "window 0–8 g/mL" in (image.attrs["alt"] or "") or tracer != "fdg"


def test_lesion_rings_sit_on_the_lesions(document: dict[str, Any], tree: _Tree) -> None:
    """The ring of each lesion is on the hottest part of its MIP column (±2 pixels)."""
    lesion_tracer = document["study"]["lesion_tracer"]
    checked = 0
    for tp in document["timepoints"]:
        figures = tree.root.find_all("figure", id=f"mip-{tp['timepoint_id']}-{lesion_tracer}")
        if not figures:
            continue
        (image,) = figures[0].find_all("img")
        pixels = _decode_png(base64.b64decode((image.attrs["src"] or "").split(",", 1)[1]))
        for circle in figures[0].find_all("circle"):
            x, y = float(circle.attrs["cx"] or 0), float(circle.attrs["cy"] or 0)
            row, column = int(y), int(x)
            window = pixels[max(row - 2, 0) : row + 3, max(column - 2, 0) : column + 3]
            # Dark (high SUV) near the ring's centre: the lesion is there.
            assert window.min() < 128, (tp["timepoint_id"], x, y)
            checked += 1
    assert checked >= 3


def test_mip_orientation_on_a_flipped_grid() -> None:
    """Storage order does not change the picture: an axial stack stored feet-first and mirrored."""
    from immunopet.image import Quantity, Volume
    from immunopet.report._mip import coronal_mip

    array = np.zeros((6, 4, 5), np.float32)  # (slice z, row y, column x)
    array[5, 2, 4] = 9.0  # most superior slice, column at largest x: the patient's left
    axial = np.array([[0, 0, 2, 0], [0, 3, 0, 0], [2, 0, 0, 0], [0, 0, 0, 1]], float)
    flipped_affine = axial.copy()
    flipped_affine[:3, 0] *= -1  # slices run inferior
    flipped_affine[:3, 2] *= -1  # columns run to the right
    flipped_affine[2, 3], flipped_affine[0, 3] = 10.0, 8.0  # same physical extent
    flipped = array[::-1, :, ::-1].copy()
    for volume in (
        Volume(array, axial, Quantity.SUV_BW),
        Volume(flipped, flipped_affine, Quantity.SUV_BW),
    ):
        mip = coronal_mip(volume)
        assert mip.values.shape == (6, 5)
        # Top row (superior), rightmost column (patient's left seen from the front).
        assert mip.values[0, 4] == 9.0
        assert mip.values.sum() == 9.0
        assert mip.fraction([8.0, 6.0, 10.0]) == pytest.approx((0.9, 1.0 / 12.0))


def test_anisotropic_pixels_keep_the_body_proportions() -> None:
    from immunopet.image import Quantity, Volume
    from immunopet.report._mip import coronal_mip

    array = np.ones((10, 3, 8), np.float32)  # 10 slices of 5 mm, 8 columns of 2.5 mm
    affine = [[0, 0, 2.5, 0], [0, 2.5, 0, 0], [5.0, 0, 0, 0], [0, 0, 0, 1]]
    mip = coronal_mip(Volume(array, affine, Quantity.SUV_BW))
    assert mip.pixel_mm == 2.5
    assert mip.values.shape == (20, 8)  # 50 mm tall, 20 mm wide in 2.5 mm pixels


# --------------------------------------------------------------------------------- charts


def test_every_chart_has_title_description_and_a_data_table(tree: _Tree) -> None:
    charts = tree.root.find_all("svg")
    charts = [c for c in charts if "chart" in (c.attrs.get("class") or "")]
    assert len(charts) >= 7  # timeline, 2 trajectories, 2 waterfalls, 2 organ curves
    for chart in charts:
        elements = [c for c in chart.children if isinstance(c, Node)]
        assert [e.tag for e in elements[:2]] == ["title", "desc"]
        assert chart.attrs["role"] == "img"
        labelled = (chart.attrs.get("aria-labelledby") or "").split()
        assert labelled == [elements[0].attrs["id"], elements[1].attrs["id"]]
    figures = [
        f for f in tree.root.find_all("figure") if "chart-figure" in (f.attrs.get("class") or "")
    ]
    assert figures
    assert all(f.find_all("details") and f.find_all("table") for f in figures)


def test_waterfall_uses_the_same_uptake_time(document: dict[str, Any], tree: _Tree) -> None:
    """The change shown for each lesion on the antibody tracer is current/baseline − 1."""
    tracer = next(
        s["tracer"] for tp in document["timepoints"] for s in tp["scans"] if s["tracer"] != "fdg"
    )
    (figure,) = [
        f for f in tree.root.find_all("figure") if f.find_all("svg", id=f"waterfall-{tracer}")
    ]
    rows = figure.find_all("tr")[1:]
    assert rows
    for row in rows:
        values = [json.loads(n.attrs["value"] or "") for n in row.find_all("data")]
        base_day, base, current_day, current, change = values
        assert base_day < 0.0 < current_day
        assert change == pytest.approx(current / base - 1.0, rel=1e-12)


def test_contrast_of_text_and_series_colours() -> None:
    """WCAG 2.1 contrast ratio ≥ 4.5:1 for every series colour and the page's text colours."""

    def luminance(colour: str) -> float:
        rgb = [int(colour[i : i + 2], 16) / 255.0 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def contrast(a: str, b: str) -> float:
        high, low = sorted((luminance(a), luminance(b)), reverse=True)
        return (high + 0.05) / (low + 0.05)

    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    css = (Path(__file__).parents[2] / "src/immunopet/report/report.css").read_text("utf-8")
    variables = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-f]{6})", css))
    for colour in PALETTE:
        assert contrast(colour, "#ffffff") >= 4.5, colour
    for text in ("ink", "muted", "link"):
        for background in ("#ffffff", variables["panel"], variables["event"]):
            assert contrast(variables[text], background) >= 4.5, (text, background)


# ----------------------------------------------------------- clinical grades and kinetics


def test_grades_and_kinetics_show_when_present(copied: Path) -> None:
    from immunopet.kinetics import fit_stein2019
    from immunopet.monitor import ClinicalObservation, astct_grades

    calm = {
        "hypotension": "none",
        "oxygen": "none",
        "ice_score": 10,
        "consciousness": "alert",
        "seizure": "none",
        "motor": "none",
        "intracranial": "none",
    }
    grades = astct_grades(
        {
            2: ClinicalObservation(age_years=60, temperature_c=39.0, **calm),
            4: ClinicalObservation(
                age_years=60, temperature_c=39.2, **{**calm, "oxygen": "low_flow_nasal_cannula"}
            ),
        }
    )
    fit = fit_stein2019(
        [1.0, 4.0, 7.0, 10.0, 14.0, 21.0, 28.0],
        [300.0, 4000.0, 20000.0, 26000.0, 12000.0, 3000.0, 900.0],
        relative_sd=0.3,
        n_bootstrap=20,
    ).to_dict()

    def change(loaded: dict[str, Any]) -> None:
        loaded["clinical"]["grades"] = grades
        loaded["kinetics"] = {"car_t_blood": fit, "note": "Patlak not run"}
        loaded["events"].append(
            {
                "event_id": "crs_inflammation:spleen:TP01:fdg",
                "type": "crs_inflammation",
                "voi_id": None,
                "site": "spleen",
                "centroid_lps_mm": None,
                "day": 4.3,
                "timepoint_id": loaded["timepoints"][0]["timepoint_id"],
                "evidence": {
                    "tracer": "fdg",
                    "metric": "suv_mean",
                    "baseline": 1.5,
                    "current": 2.9,
                },
                "confidence": 0.99,
            }
        )

    loaded = _edit(copied, change)
    tree = parse(render_report(copied))
    index = len(loaded["events"]) - 1
    (article,) = tree.root.find_all("article", id=f"event-{index}")
    (astct,) = [p for p in article.find_all("p") if "astct" in (p.attrs.get("class") or "")]
    values = {
        n.attrs["data-field"]: json.loads(n.attrs["value"] or "") for n in astct.find_all("data")
    }
    # Day 4 is the recorded day nearest day 4.3: CRS grade 2 (hypoxia on low-flow oxygen).
    assert values == {"day": 4, "crs_grade": 2, "icans_grade": 0}
    # The organ event links to that organ's time–activity curve, which exists.
    links = [a.attrs["href"] for a in article.find_all("a")]
    assert "#tac-fdg-spleen" in links
    assert tree.root.find_all("g", id="tac-fdg-spleen")
    # Kinetics: the chart with the fitted model and its parameters, exact.
    assert tree.root.find_all("svg", id="kinetics-0")
    assert tree.root.find_all("polyline", **{"class": "model"})
    (cmax,) = tree.root.find_all("data", data_field="cmax.value")
    assert json.loads(cmax.attrs["value"] or "") == fit["cmax"]["value"]
    (timeline,) = tree.root.find_all("svg", id="timeline-clinical")
    lanes = [g.attrs["data-lane"] for g in timeline.find_all("g") if "data-lane" in g.attrs]
    assert "ASTCT CRS grade" in lanes
    assert "ASTCT ICANS grade" in lanes
    assert tree.mismatched == []
    test_internal_links_lead_somewhere(tree)


# ------------------------------------------------------------------------- viewer contract


def test_placeholder_when_the_viewer_is_missing(
    results_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "immunopet.report._viewer", None)  # import → ImportError
    tree = parse(render_report(results_dir))
    (section,) = tree.root.find_all("section", id="viewer")
    assert "not available" in section.text()
    assert tree.root.find_all("section", id="mips")


def test_viewer_fragment_and_licences_are_included(
    results_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    @dataclass
    class Section:
        html: str
        licences: list[tuple[str, str]]
        notes: list[str]
        size_bytes: int

    fake = types.ModuleType("immunopet.report._viewer")
    seen: list[Any] = []

    def viewer_section(folder: Path, document: Any) -> Section:
        seen.append((folder, document["study"]["patient_id"]))
        return Section(
            '<section id="viewer" aria-label="Viewer"><p>fake viewer</p></section>',
            [("niivue 0.0.0", "BSD 2-Clause License text, see https://example.org")],
            ["a note from the viewer"],
            70,
        )

    fake.viewer_section = viewer_section  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "immunopet.report._viewer", fake)
    tree = parse(render_report(results_dir))
    assert seen
    assert seen[0][0] == results_dir
    (section,) = tree.root.find_all("section", id="viewer")
    assert section.text() == "fake viewer"
    (licences,) = tree.root.find_all("section", id="licences")
    assert "niivue 0.0.0" in licences.text()
    assert "BSD 2-Clause" in licences.text()
    assert "a note from the viewer" in tree.root.find_all("section", id="methods")[0].text()


# ------------------------------------------------------------------ writing and the CLI


def test_cli_writes_the_report(
    results_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "page.html"
    assert main(["report", str(results_dir), "--out", str(out)]) == 0
    assert out.read_text("utf-8").startswith("<!DOCTYPE html>")
    assert str(out) in capsys.readouterr().out
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no results.json"),
        ("{not json", "not valid JSON: Expecting property name"),
        ('{"schema_version": "2.0"}', "schema_version: version 2.0 is not supported"),
        (
            '{"schema_version": "1.0", "study": {"patient_id": "P", "infusion_datetime": "x"}}',
            "study.lesion_tracer: missing",
        ),
    ],
)
def test_cli_unusable_results_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    if content is not None:
        (tmp_path / "results.json").write_text(content, encoding="utf-8")
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert expected in error
    assert not (tmp_path / "report.html").exists()


def test_a_failed_render_leaves_the_old_report(copied: Path) -> None:
    old = copied / "report.html"
    old.write_text("old", encoding="utf-8")
    (copied / "results.json").write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON object"):
        write_report(copied)
    assert old.read_text("utf-8") == "old"


def test_write_report_default_path_and_bad_targets(copied: Path, tmp_path: Path) -> None:
    written = write_report(copied)
    assert written == copied / "report.html"
    assert written.stat().st_size > 10_000
    with pytest.raises(InputError, match="is a folder"):
        write_report(copied, tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        write_report(copied, tmp_path / "missing" / "r.html")


def test_report_without_images_still_renders(copied: Path) -> None:
    shutil.rmtree(copied / "images")
    tree = parse(render_report(copied))
    (section,) = tree.root.find_all("section", id="mips")
    assert "holds no images" in section.text()
    assert not tree.root.find_all("img")
    test_internal_links_lead_somewhere(tree)


def test_a_missing_image_is_said_and_its_links_still_lead_somewhere(copied: Path) -> None:
    index = json.loads((copied / "images" / "index.json").read_text("utf-8"))
    timepoint, entry = next(iter(index["timepoints"].items()))
    tracer, relative = next(iter(entry["suv"].items()))
    (copied / relative).unlink()
    tree = parse(render_report(copied))
    (cell,) = tree.root.find_all("td", id=f"mip-{timepoint}-{tracer}")
    assert cell.text() == "image missing"
    methods = tree.root.find_all("section", id="methods")[0].text()
    assert relative in methods
    # The viewer, which needs every image, is left out with a reason; the page still renders.
    assert "interactive viewer left out" in methods
    assert "could not be built" in tree.root.find_all("section", id="viewer")[0].text()
    test_internal_links_lead_somewhere(tree)
