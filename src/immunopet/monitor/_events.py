"""All guidance rules of ``monitor`` applied to one results document, in a fixed order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from immunopet.monitor._antigen import antigen_events
from immunopet.monitor._toxicity import trafficking_and_toxicity_events

__all__ = ["guidance_events"]


def guidance_events(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Events of every implemented rule (antigen escape, CRS/ICANS, expansion, homing).

    Parameters
    ----------
    document : mapping
        A ``results.json`` document (:meth:`immunopet.result.StudyResult.to_dict`).

    Returns
    -------
    list of dict
        Events sorted by day, then type (vocabulary of :class:`immunopet.simulate.EventType`).

    """
    events = antigen_events(document) + trafficking_and_toxicity_events(document)
    return sorted(
        events, key=lambda e: (e["day"], e["type"], e.get("voi_id") or "", e.get("site") or "")
    )
