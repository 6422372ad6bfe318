"""The report in a real browser: Debian's Chromium, headless, WebGL in software (SwiftShader).

The report of the results folder (``conftest.py``: the real simulator and analysis) is opened
from a file with every network request aborted and recorded, and driven through Playwright
(``window.immunopetViewer``, the page's own controls and links). Checked: no request leaves the
file; the NiiVue canvas shows an image and another one after a timepoint switch; every event of
results.json is on the page with its exact numbers; the SUV under the crosshair at a lesion
centre equals the voxel of ``images/<TP>_<tracer>_suv.nii.gz`` read here with the project's NIfTI
reader, to 0.001 SUV. Screenshots go to the test's folder and, when ``IMMUNOPET_TEST_ARTIFACTS``
is set (CI: ``test-artifacts/``), there too.

Without Chromium (``/usr/bin/chromium``), Playwright or the NiiVue bundle the module is skipped,
except under ``CI`` where that is a failure: ``.ci/run`` installs all three.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

from immunopet.image import Quantity
from immunopet.io.nifti import read_nifti
from immunopet.report import write_report
from immunopet.report._viewer import find_niivue_bundle

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
#: Headless Chromium with WebGL 2 in software and no background traffic of its own.
CHROMIUM_ARGS = [
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 768}
#: URL schemes that stay inside the file (inline images and the viewer's decoded blobs).
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
#: The acceptance tolerance of the SUV shown under the cursor.
SUV_TOLERANCE = 1.0e-3


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs what it needs)")
    pytest.skip(reason)


@dataclass
class Session:
    page: Any
    left: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def document(results_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((results_dir / "results.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def index(results_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((results_dir / "images" / "index.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def report(results_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if find_niivue_bundle() is None:
        unavailable("NiiVue bundle not installed (scripts/setup.sh runs npm ci)")
    return write_report(results_dir, tmp_path_factory.mktemp("browser") / "report.html")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.is_file():
        unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def session(browser: Any, report: Path) -> Iterator[Session]:
    context = browser.new_context(viewport=VIEWPORT)
    state = Session(page=None)

    def block(route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            state.left.append(url)
            route.abort()

    context.route("**/*", block)
    page = context.new_page()
    page.on(
        "request", lambda r: None if r.url.startswith(LOCAL_SCHEMES) else state.left.append(r.url)
    )
    page.on("pageerror", lambda e: state.errors.append(str(e)))
    page.on("console", lambda m: state.errors.append(m.text) if m.type == "error" else None)
    page.goto(report.as_uri())
    page.evaluate("() => window.immunopetViewer.ready.then(() => true)")
    state.page = page
    yield state
    context.close()


def show(page: Any, **where: Any) -> None:
    page.evaluate("(where) => window.immunopetViewer.show(where)", where)


def grey(page: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    pixels = page.evaluate("() => window.immunopetViewer.canvasPixels(4)")
    return np.asarray(pixels["grey"], dtype=np.float64)


def crosshair(page: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(
        page.evaluate("() => window.immunopetViewer.crosshairLPS()"), dtype=np.float64
    )


def test_no_request_leaves_the_file(session: Session) -> None:
    assert session.left == []
    assert session.errors == []
    status = session.page.inner_text("#viewer-status")
    assert status.startswith("Showing ")


def test_viewer_canvas_is_not_blank(session: Session) -> None:
    pixels = grey(session.page)
    assert pixels.std() > 20.0  # a blank (all black) canvas has 0
    assert np.mean(pixels > 40) > 0.05
    mip = session.page.evaluate(
        """() => {
            const c = document.getElementById('viewer-mip-canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const g = [];
            for (let i = 0; i < d.length; i += 16) g.push(d[i]);
            return g;
        }"""
    )
    assert np.std(mip) > 10.0


def test_switching_timepoint_changes_the_image(session: Session, document: dict[str, Any]) -> None:
    page = session.page
    first, *_, last = page.evaluate("() => window.immunopetViewer.timepoints")
    tracer = document["study"]["lesion_tracer"]
    show(page, timepoint=first, tracer=tracer)
    before = grey(page)
    page.select_option("#viewer-timepoint", last)
    page.wait_for_function(
        "(id) => document.getElementById('viewer-status').textContent.startsWith('Showing ' + id)",
        arg=last,
    )
    assert page.evaluate("() => window.immunopetViewer.timepoint") == last
    after = grey(page)
    assert after.std() > 20.0
    # Same place, same windows: what differs is the scan (uptake, noise, lesions); a viewer
    # that did not redraw would change no pixel.
    changed = np.abs(after - before) > 8
    assert changed.sum() >= 100


def test_every_event_is_shown_with_its_numbers(session: Session, document: dict[str, Any]) -> None:
    events = document["events"]
    assert events, "the fixture's study should raise guidance events"
    for i, event in enumerate(events):
        shown = session.page.evaluate(
            """(i) => {
                const a = document.getElementById(`event-${i}`);
                if (!a) return null;
                return {
                    type: a.dataset.type,
                    visible: a.getClientRects().length > 0,
                    numbers: [...a.querySelectorAll('data')].map((d) => ({
                        key: d.dataset.key ?? null, field: d.dataset.field ?? null,
                        value: d.getAttribute('value'), text: d.textContent.trim(),
                    })),
                };
            }""",
            i,
        )
        assert shown is not None, f"event {i} is missing from the page"
        assert shown["type"] == event["type"]
        assert shown["visible"]
        by_key = {n["key"]: n for n in shown["numbers"] if n["key"] is not None}
        by_field = {n["field"]: n for n in shown["numbers"] if n["field"] is not None}
        expected: dict[str, Any] = {}
        for key, value in event["evidence"].items():
            if isinstance(value, list):
                expected.update({f"{key}.{j}": v for j, v in enumerate(value)})
            elif not isinstance(value, str):
                expected[key] = value
        for key, value in expected.items():
            assert by_key[key]["value"] == json.dumps(value), (i, key)
            assert by_key[key]["text"], (i, key)
        assert by_field["day"]["value"] == json.dumps(event["day"])
        if "confidence" in event:
            assert by_field["confidence"]["value"] == json.dumps(event["confidence"])


def test_suv_at_a_lesion_centre(
    session: Session, results_dir: Path, document: dict[str, Any], index: dict[str, Any]
) -> None:
    page = session.page
    checked = 0
    for lesion in document["lesions"]:
        for timepoint_id, at in lesion["timepoints"].items():
            centroid = at.get("centroid_lps_mm")
            if centroid is None or timepoint_id not in index["timepoints"]:
                continue
            for tracer, relative in index["timepoints"][timepoint_id]["suv"].items():
                suv = read_nifti(results_dir / relative, quantity=Quantity.SUV_BW)
                # The voxel holding the centroid (rounding half up, as NiiVue does), at its centre.
                voxel = np.floor(suv.lps_to_index(centroid) + 0.5).astype(int)
                expected = float(suv.array[tuple(voxel)])
                centre = suv.index_to_lps(voxel.astype(float)).tolist()
                show(page, timepoint=timepoint_id, tracer=tracer, lps=centre)
                value = page.evaluate("() => window.immunopetViewer.suvAtCrosshair()")
                text = page.inner_text("#viewer-suv").replace("\u2212", "-")
                assert abs(value - expected) <= SUV_TOLERANCE, (lesion["tracking_id"], tracer)
                assert abs(float(text) - expected) <= SUV_TOLERANCE, (lesion["tracking_id"], tracer)
                checked += 1
    assert checked >= 2


def test_voi_list_moves_the_crosshair_by_keyboard(
    session: Session, document: dict[str, Any], index: dict[str, Any]
) -> None:
    page = session.page
    lesion, timepoint_id = next(
        (lesion, tp)
        for lesion in document["lesions"]
        for tp, at in lesion["timepoints"].items()
        if at.get("centroid_lps_mm") is not None and index["timepoints"].get(tp, {}).get("vois")
    )
    show(page, timepoint=timepoint_id)
    button = page.locator(f'#viewer-voi-list button[data-voi="{lesion["tracking_id"]}"]')
    button.focus()
    page.keyboard.press("Enter")
    centroid = lesion["timepoints"][timepoint_id]["centroid_lps_mm"]
    np.testing.assert_allclose(crosshair(page), centroid, atol=0.01)
    assert page.inner_text("#viewer-voi") == f"in {lesion['tracking_id']}"
    # One key press moves to the next voxel centre head-wards (NiiVue snaps to voxel centres).
    spacing = np.asarray(page.evaluate("() => window.immunopetViewer.niivue.back.pixDimsRAS"))[1:4]
    page.locator("#viewer-canvas").focus()
    page.keyboard.press("ArrowUp")
    moved = crosshair(page) - np.asarray(centroid)
    assert spacing[2] / 2 <= moved[2] <= 1.5 * spacing[2]
    assert np.all(np.abs(moved[:2]) <= spacing[:2] / 2)


def test_event_link_opens_the_viewer_there(session: Session, document: dict[str, Any]) -> None:
    page = session.page
    i, event = next(
        (i, e)
        for i, e in enumerate(document["events"])
        if e.get("timepoint_id") and e.get("centroid_lps_mm")
    )
    show(page, timepoint=page.evaluate("() => window.immunopetViewer.timepoints[0]"))
    page.locator(f"#event-{i} a.show-in-viewer").click()
    page.wait_for_function(
        "(id) => document.getElementById('viewer-status').textContent.startsWith('Showing ' + id)",
        arg=event["timepoint_id"],
    )
    np.testing.assert_allclose(crosshair(page), event["centroid_lps_mm"], atol=0.01)
    assert page.evaluate("() => window.immunopetViewer.tracer") == event["evidence"]["tracer"]


def test_screenshot_and_still_offline(session: Session, tmp_path: Path) -> None:
    page = session.page
    page.locator("#viewer").scroll_into_view_if_needed()
    page.evaluate("() => document.getElementById('viewer').scrollIntoView({block: 'start'})")
    shots = [tmp_path / "report-viewer.png", tmp_path / "report-page.png"]
    page.screenshot(path=shots[0])
    page.screenshot(path=shots[1], full_page=True)
    for shot in shots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artefacts = os.environ.get("IMMUNOPET_TEST_ARTIFACTS")
    if artefacts:
        folder = Path(artefacts)
        folder.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy2(shot, folder / shot.name)
    assert session.left == []
    assert session.errors == []
