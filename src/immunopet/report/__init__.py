"""The report a physician opens: one self-contained HTML page from a results folder.

:func:`write_report` renders ``results.json`` (and the images the analysis wrote under
``images/``) into ``report.html``: the flagged events first with their evidence, the
interactive viewer, MIPs per timepoint and tracer, charts as inline SVG (lesion trajectories,
change from baseline, organ time–activity curves, CAR T-cell kinetics, the event timeline with
ASTCT grades), methods and provenance, and the licences of bundled code. No network request
is made; numbers come only from ``results.json`` (``docs/report.md``).
"""

from immunopet.report._page import REPORT_NAME, render_report, write_report

__all__ = ["REPORT_NAME", "render_report", "write_report"]
