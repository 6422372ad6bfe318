"""The report page: one self-contained HTML file from a results folder.

Everything the page needs is inside it: styles, charts (SVG), images (PNG data URIs) and the
viewer's bundle (from :mod:`immunopet.report._viewer`, imported lazily; where it is missing a
placeholder says so and the static images still show). A Content-Security-Policy forbids any
network request, so the page opens the same offline, in a hospital browser or from an e-mail.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from immunopet.errors import ImmunopetError, InputError
from immunopet.io._atomic import atomic_path
from immunopet.report._charts import charts_section, kinetics_fits, mip_section
from immunopet.report._context import ReportContext
from immunopet.report._format import attr, text
from immunopet.report._methods import licences_section, methods_section, results_block_section
from immunopet.report._results import load_results
from immunopet.report._summary import summary_section

__all__ = ["REPORT_NAME", "render_report", "write_report"]

#: File name of the report inside a results folder.
REPORT_NAME = "report.html"

#: Everything local (inline, data: and blob: URLs); nothing from the network.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval' blob: data:; "
    "style-src 'unsafe-inline' blob: data:; img-src data: blob:; font-src data:; "
    "connect-src data: blob:; worker-src blob: data:; media-src data: blob:; "
    "base-uri 'none'; form-action 'none'"
)


class ViewerSection(Protocol):
    """What :func:`immunopet.report._viewer.viewer_section` returns (the viewer's contract)."""

    html: str
    licences: list[tuple[str, str]]
    notes: list[str]
    size_bytes: int


def _viewer(
    results_dir: Path, document: Mapping[str, Any]
) -> tuple[str, Sequence[tuple[str, str]], Sequence[str]]:
    """The viewer fragment, its licences and notes; a placeholder when the module is absent."""
    try:
        module = importlib.import_module("immunopet.report._viewer")
    except ImportError:
        return (
            _placeholder("is not available in this installation of immunopet"),
            [],
            ["interactive viewer not installed; static images only"],
        )
    try:
        section: ViewerSection = module.viewer_section(results_dir, document)
    except ImmunopetError as exc:  # e.g. an image of the folder is missing: the rest still shows
        return (
            _placeholder("could not be built for this folder (see Warnings)"),
            [],
            [f"interactive viewer left out: {exc.one_line()}"],
        )
    return section.html, list(section.licences), list(section.notes)


def _placeholder(why: str) -> str:
    return (
        '<section id="viewer" aria-labelledby="viewer-title"><h2 id="viewer-title">Viewer</h2>'
        f"<p>The interactive viewer {text(why)}; the maximum-intensity projections and charts "
        "below show every scan.</p></section>"
    )


def _style() -> str:
    return resources.files("immunopet.report").joinpath("report.css").read_text(encoding="utf-8")


def _navigation(has: Mapping[str, bool]) -> str:
    links = [
        ("summary", "Summary"),
        ("viewer", "Viewer"),
        ("mips", "MIPs"),
        ("charts", "Charts"),
        ("kinetics", "Kinetics"),
        ("dosimetry", "Dosimetry"),
        ("methods", "Methods"),
        ("licences", "Licences"),
    ]
    items = "".join(
        f'<li><a href="#{key}">{text(name)}</a></li>' for key, name in links if has.get(key, True)
    )
    return f'<nav aria-label="Sections"><ul>{items}</ul></nav>'


def render_report(results_dir: str | os.PathLike[str]) -> str:
    """Render the report of a results folder as one self-contained HTML document.

    Parameters
    ----------
    results_dir : str or os.PathLike
        An output folder of ``immunopet analyze``: ``results.json`` and ``images/``.

    Returns
    -------
    str
        The HTML document. Every number it shows from ``results.json`` is a ``<data>``
        element holding the exact JSON value (``docs/report.md``).

    Raises
    ------
    InputError
        ``results.json`` is missing or malformed (one line naming file and field).

    """
    import immunopet

    folder = Path(results_dir)
    document = load_results(folder)
    context = ReportContext(document, folder)
    viewer_html, licences, viewer_notes = _viewer(folder, document)
    summary = summary_section(context)
    mips = mip_section(context)
    charts = charts_section(context)
    drawn = {
        path: f"kinetics-{i}" for i, (path, _) in enumerate(kinetics_fits(document.get("kinetics")))
    }
    kinetics = results_block_section(context, "kinetics", "Kinetics results", drawn)
    dosimetry = results_block_section(context, "dosimetry", "Dosimetry")
    methods = methods_section(context, viewer_notes, immunopet.__version__)
    study = context.study
    title = f"immunopet report — {study['patient_id']}"
    product = study.get("car_t_product") or "CAR T-cell therapy"
    has = {"kinetics": bool(kinetics), "dosimetry": bool(dosimetry)}
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{attr(CONTENT_SECURITY_POLICY)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="immunopet {attr(immunopet.__version__)}">'
        f"<title>{text(title)}</title><style>{_style()}</style></head>"
        '<body><a class="skip" href="#main">Skip to the summary</a>'
        f'<header><h1>{text(title)}</h1><p class="subtitle">{text(product)}; infusion '
        f"{text(str(study['infusion_datetime']).replace('T', ' '))}</p>{_navigation(has)}</header>"
        f'<main id="main">{summary}{viewer_html}{mips}{charts}{kinetics}{dosimetry}{methods}'
        f"{licences_section(licences)}</main>"
        f"<footer><p>Generated by immunopet {text(immunopet.__version__)} from results.json. "
        "Research software: not a medical device; the numbers are those of the analysis.</p></footer>"
        "</body></html>\n"
    )


def write_report(
    results_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Render the report of a results folder and write it atomically.

    Parameters
    ----------
    results_dir : str or os.PathLike
        An output folder of ``immunopet analyze``.
    out : str or os.PathLike, optional
        The HTML file to write (default ``results_dir/report.html``); replaced if it exists,
        only once the whole page is rendered.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    InputError
        ``results.json`` is missing or malformed, or ``out`` is a folder or in a missing one.

    """
    folder = Path(results_dir)
    target = folder / REPORT_NAME if out is None else Path(out)
    html = render_report(folder)
    if target.is_dir():
        raise InputError(
            "the output is a folder, not a file",
            path=target,
            field="--out",
            hint="give a file name such as report.html",
        )
    if not target.parent.is_dir():
        raise InputError(
            f"the folder {target.parent} does not exist",
            path=target,
            field="--out",
            hint="create it first",
        )
    with atomic_path(target) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return target
