"""Hypoxia in a lesion: a hypoxic tumour microenvironment that impairs CAR T cells.

The review (Mulgaonkar et al., Front Med 2023;10:1199146, tumour-microenvironment section)
notes that hypoxia impairs CAR T-cell expansion and immune activation and names CAIX, a HIF-1
target upregulated in hypoxia, imaged with ⁸⁹Zr/¹²⁴I-girentuximab. Rule ``hypoxia`` (per
lesion, the first scan that shows it):

* on a 2-nitroimidazole or Cu-ATSM tracer (``[tracer_classes].hypoxia_targets`` /
  ``hypoxia_agent_names``, e.g. [¹⁸F]FMISO): the lesion's SUVmean ratio to the blood pool is at
  least ``[hypoxia].nitroimidazole_lesion_to_blood`` = 1.2 beyond the noise (Muzi et al.,
  J Nucl Med 2015;56:1223: "a threshold of TB ≥ 1.2 is useful in discriminating the hypoxic
  volume", with image-derived blood regions of the heart; here applied to the lesion mean);
* on a CAIX tracer (``hypoxia_surrogate_targets``), when CAIX is not the CAR's own target:
  the ratio is above ``[hypoxia].surrogate_lesion_to_blood`` beyond the noise (CAIX-positive).

The test is :func:`~immunopet.monitor._change.assess_ratio` (count noise of lesion and blood
VOI plus one repeatability); the evidence names ``basis`` (``"nitroimidazole"`` or
``"CAIX surrogate"``).
"""

from __future__ import annotations

from typing import Any

from immunopet.monitor._document import Row, blood_ratio, guidance, lesion_event, scan_classes

__all__ = ["hypoxia_events"]


def hypoxia_events(document: Row) -> list[dict[str, Any]]:
    """``hypoxia`` events of a results document (module text)."""
    table = guidance()["hypoxia"]
    classes = scan_classes(document)
    rules = [
        (classes["hypoxia"], float(table["nitroimidazole_lesion_to_blood"]), "nitroimidazole"),
        (
            classes["hypoxia_surrogate"] - classes["car_target"] - classes["hypoxia"],
            float(table["surrogate_lesion_to_blood"]),
            "CAIX surrogate",
        ),
    ]
    events: list[dict[str, Any]] = []
    seen: set[str] = set()
    rows = sorted(
        (m for m in document["measurements"] if m["voi_type"] == "lesion"), key=lambda m: m["day"]
    )
    for row in rows:
        if row["voi_id"] in seen:
            continue
        for tracers, threshold, basis in rules:
            if row["tracer"] not in tracers:
                continue
            tested = blood_ratio(document, row, threshold)
            if tested is None or not (tested[0].significant and tested[0].log_ratio > 0):
                continue
            change, reference = tested
            extra = {
                "basis": basis,
                "reference_voi": reference["voi_id"],
                "reference_suv_mean": reference["suv_mean"],
            }
            events.append(
                lesion_event("hypoxia", document, row, change, baseline_day=None, extra=extra)
            )
            seen.add(row["voi_id"])
            break
    return events
