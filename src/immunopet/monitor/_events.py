"""All guidance rules of ``monitor`` applied to one results document, in a fixed order.

One module per question of the review (Mulgaonkar et al., Front Med 2023;10:1199146); every
rule reads only the ``results.json`` document (docs/events.md lists each rule, its evidence
and thresholds):

==========================  ==============================================================
rule module                 events
==========================  ==============================================================
``_antigen``                ``antigen_loss``, ``new_antigen_negative_lesion``
``_lineage``                ``lineage_switch``
``_checkpoint``             ``checkpoint_upregulation``
``_activation``             ``t_cell_activation``
``_toxicity``               ``crs_inflammation``, ``icans_inflammation``,
                            ``car_t_expansion``, ``car_t_homing``
``_homing``                 ``homing_failure``
``_off_tumor``              ``on_target_off_tumor``
``_hypoxia``                ``hypoxia``
==========================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from immunopet.monitor._activation import activation_events
from immunopet.monitor._antigen import antigen_events
from immunopet.monitor._checkpoint import checkpoint_events
from immunopet.monitor._homing import homing_failure_events
from immunopet.monitor._hypoxia import hypoxia_events
from immunopet.monitor._lineage import lineage_events
from immunopet.monitor._off_tumor import off_tumor_events
from immunopet.monitor._toxicity import trafficking_and_toxicity_events

__all__ = ["RULES", "guidance_events"]

#: The registered rules, in the order they run.
RULES: Final[tuple[Callable[[Mapping[str, Any]], list[dict[str, Any]]], ...]] = (
    antigen_events,
    lineage_events,
    checkpoint_events,
    activation_events,
    trafficking_and_toxicity_events,
    homing_failure_events,
    off_tumor_events,
    hypoxia_events,
)


def guidance_events(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Events of every rule (:data:`RULES`) on a results document.

    Parameters
    ----------
    document : mapping
        A ``results.json`` document (:meth:`immunopet.result.StudyResult.to_dict`).

    Returns
    -------
    list of dict
        Events sorted by day, then type (vocabulary of :class:`immunopet.simulate.EventType`),
        then lesion or site; the shape is described in :mod:`immunopet.monitor._document`.

    """
    events = [event for rule in RULES for event in rule(document)]
    return sorted(
        events, key=lambda e: (e["day"], e["type"], e.get("voi_id") or "", e.get("site") or "")
    )
