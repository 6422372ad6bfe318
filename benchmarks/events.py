"""Benchmark: guidance events (issue 6) against the simulator's truth, and antigen-drop limits.

Two parts, both with fixed seeds.

**1. Virtual cohorts.** ``--patients N`` patients per built-in scenario (``--scenarios``; all
by default), drawn with ``draw_cohort(scenario, N, seed=COHORT_SEED + scenario index)``,
simulated with the scenario's own tracers and scan schedule (clinical activities, counting
noise; adult voxels ``--voxel-mm``, default 6 mm as in ``tests/pipeline``; mice at the
simulator's default; mice with a reader's organ VOIs, and in ``READER_TUMOUR_SCENARIOS`` the
tumour VOI too, from the truth: :func:`_reader_vois`); a drawn body the phantom does not model
(the tails of the weight and height distributions) is replaced by the cohort's next patient and analysed in process with :func:`immunopet.pipeline.analyze_study`
(lesions found on FDG, else on the CAR-target tracer, else on the first tracer). The events
are those of :func:`immunopet.monitor.guidance_events` on the results document; the truth is
the simulator's ``truth.json`` (never read by the analysis). Scoring:

* *Lesion identity*: a result track is the truth lesion whose centroid (same visit, same scan
  coordinates) lies within max(radius, 10 mm) of the track's centroid at most of its detected
  timepoints.
* *Event found*: a truth event is found when an event of the same type at the same lesion (or
  site, vocabulary names) has a day in [truth day − 7, truth day + 30] (the first scan that can
  show it may come weeks later); for ``crs_inflammation`` and ``icans_inflammation`` the day
  must also lie inside the scenario's inflammation window of that organ and kind ("right days
  and organs"). Sensitivity per event type and per scenario is over the *observable* truth
  events: those the scenario's scans can show at all (e.g. ``car_t_homing`` needs a T-cell or
  reporter tracer before and after the infusion; an organ event needs that organ among the
  analysis's VOIs; a lesion event in an adult needs the lesion >= 15 mm at some visit, the size
  the detection is specified for); the others are counted apart, with the reason.
* *Unexpected events*: events matching no truth event of their type and place. Those the
  scenario itself implies although its ``events`` list leaves them out (expansion in every
  ``expansion_sites`` organ, antigen loss where the true antigen density falls ≥ 50 %, homing
  and activation in lesions that hold CAR T cells, hypoxia in lesions with a hypoxic fraction,
  inflammation in the scenario's inflamed organs) are counted apart from the rest, the *false
  events*.
* *Antigen loss per lesion*: truth lesions ≥ 15 mm at baseline with scans of the CAR-target
  tracer; the true loss is 1 − the lowest later antigen density / the first (``truth.json``
  ``lesion_antigen_density``, scans at the same delay after injection). Positive: loss ≥ 50 %;
  negative: loss < 20 % (lesions in between are counted apart). Flagged: an ``antigen_loss``
  event on the lesion's track. The true *signal* loss (``lesion_bq_per_ml``) is printed too:
  the tracer's non-specific uptake stays when the antigen goes.
* *New antigen-negative lesions*: sensitivity of ``new_antigen_negative_lesion``.
* *Complete response*: the fraction of ``complete_response`` patients with no false event.

**2. Smallest antigen drop detected with 80 % sensitivity**, by lesion diameter and injected
activity, without whole patients: a phantom of one sphere in a uniform soft-tissue background
(4 mm voxels) is imaged by the simulator's scanner model (:class:`immunopet.simulate.PetSystem`,
Biograph mCT, 300 s frame, counting noise) as the ⁶⁴Cu-CD19 IgG of the scenarios 24 h after
injection, twice: baseline and after a known antigen drop. Concentrations come from the
vector pharmacokinetics of the simulator (:class:`immunopet.tracers.TwoTissueVectorModel`, IgG:
tumour at the scenarios' CD19 density of 5000 per cell, i.e. relative density 1, and muscle as
background; the simulator's body-mass scaling to 78 kg), so the drop in signal is smaller than
the drop in antigen (non-specific uptake stays). The lesion VOI comes from
:func:`immunopet.lesions.detect_lesions` (background-corrected 50 %) on a matching FDG image
(sphere SUV 10 in SUV 1), as the pipeline carries FDG VOIs onto the antibody scans; the VOI mean
is :func:`immunopet.quant.voi_statistics`, its count-statistics SE from
:func:`immunopet.quant._uncertainty.estimate_image_noise` in a 3 cm background sphere, and the
decision :func:`immunopet.monitor.assess_change` with the immuno-PET repeatability — the
measurement and change statistics of the pipeline. The baseline realisation of each trial is
shared by the drops tested in it. The smallest drop flagged in ≥ 80 % of ``--trials`` trials
is interpolated between the drops tested.

Usage::

    python benchmarks/events.py                       # all scenarios, 2 patients, 2 processes
    python benchmarks/events.py --patients 1 --scenarios crs,icans --jobs 2
    python benchmarks/events.py --quick               # 2 scenarios x 1 patient, small phantom run
    python benchmarks/events.py --phantom-only        # part 2 only
    python benchmarks/events.py --work DIR            # keep patients and results in DIR; a
                                                      # later run with the same DIR skips the
                                                      # patients already done (run in parts)
    python benchmarks/events.py --rescore DIR         # score the results kept in DIR again

This is a measurement, not a test: the exit status is 1 only when a simulation or an analysis
fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

COHORT_SEED = 20260601
PHANTOM_SEED = 20260602
#: Event days may precede the truth day by this much (the scan showing it may come earlier) ...
BEFORE_DAYS = 7.0
#: ... or follow it by this much (the next scan of the right tracer).
AFTER_DAYS = 30.0
LOSS_POSITIVE = 0.5
LOSS_NEGATIVE = 0.2
MIN_DIAMETER_MM = 15.0


# --------------------------------------------------------------------------- cohorts


def scenario_names() -> list[str]:
    """Built-in scenario names, sorted."""
    folder = resources.files("immunopet.simulate").joinpath("scenarios")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _lesion_tracer(scenario: Any) -> str | None:
    from immunopet.io.discovery import is_fdg

    keys = [t.key for t in scenario.tracers]
    fdg = [t.key for t in scenario.tracers if is_fdg(t.agent)]
    if fdg:
        return None  # the pipeline's default
    target = (scenario.car_t.target or "").casefold()
    for tracer in scenario.tracers:
        if (tracer.target or "").casefold() == target:
            return str(tracer.key)
    return keys[0] if keys else None


#: Mouse scenarios whose tumour VOI the reader draws too (on the CT: a subcutaneous mass),
#: analysed with the reader's lesion VOIs only: the cell scan cannot show a tumour the cells
#: did not reach.
READER_TUMOUR_SCENARIOS = frozenset({"poor_homing"})


def _reader_vois(name: str, species: str, truth: Mapping[str, Any], study: Path) -> str:
    """A reader's VOIs for a mouse study; returns ``AnalysisOptions.lesion_vois``.

    Mice get no built-in organ segmentation (it is for patients' CT), so the reader's organ
    VOIs are written into every visit (:func:`immunopet.simulate.write_reader_vois`: exact
    VOIs from the truth, a best-case reader); with ``READER_TUMOUR_SCENARIOS`` the tumours
    too, and only those are lesions. Patients: nothing written, ``"detect"``.
    """
    if species != "mouse":
        return "detect"
    from immunopet.simulate import write_reader_vois

    with_tumour = name in READER_TUMOUR_SCENARIOS
    write_reader_vois(study, truth, lesions=with_tumour)
    return "masks" if with_tumour else "detect"


def run_patient(job: tuple[str, int, int, str, float | None]) -> dict[str, Any]:
    """Simulate and analyse one patient; returns where its files are and how long it took."""
    name, scenario_index, patient_index, work, voxel_mm = job
    from immunopet.errors import InputError
    from immunopet.pipeline import AnalysisOptions, analyze_study
    from immunopet.simulate import draw_cohort, load_scenario
    from immunopet.simulate._patient import simulate_patient

    folder = Path(work) / name / f"P{patient_index + 1:04d}"
    if (folder / "results.json").is_file() and (folder / "truth.json").is_file():
        # Done by an earlier run with the same --work: a long cohort can be run in parts.
        return {"scenario": name, "patient": folder.name, "folder": str(folder), "resumed": True}
    # A patient left half done by a stopped run is done again from the start.
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    try:
        scenario = load_scenario(name)
        patient = draw_cohort(scenario, patient_index + 1, seed=COHORT_SEED + scenario_index)[
            patient_index
        ]
        voxel = voxel_mm if patient.species == "adult" else None
        seed = COHORT_SEED + 1000 * scenario_index + patient_index
        try:
            truth = simulate_patient(
                patient, folder / "study", rng=np.random.default_rng(seed), voxel_mm=voxel
            )
        except InputError as exc:
            if "outside the modelled" not in str(exc):
                raise
            # A drawn body the phantom does not model (the cohort's tails): replaced.
            shutil.rmtree(folder, ignore_errors=True)
            return {"scenario": name, "patient": folder.name, "unsimulable": str(exc)}
        simulated = time.perf_counter()
        lesion_vois = _reader_vois(name, patient.species, truth, folder / "study")
        result = analyze_study(
            folder / "study",
            AnalysisOptions(lesion_tracer=_lesion_tracer(scenario), lesion_vois=lesion_vois),
        )
        # truth.json last: a patient counts as done only when both documents are complete.
        (folder / "results.json").write_text(json.dumps(result.to_dict(), default=list))
        (folder / "truth.json").write_text(json.dumps(truth, default=list))
        shutil.rmtree(folder / "study", ignore_errors=True)  # keep only the documents
        return {
            "scenario": name,
            "patient": folder.name,
            "folder": str(folder),
            "simulate_s": simulated - started,
            "analyze_s": time.perf_counter() - simulated,
        }
    except Exception:  # a benchmark reports failures and goes on
        return {"scenario": name, "patient": folder.name, "error": traceback.format_exc()}


def _day_key(day: float) -> float:
    return round(float(day), 2)


def track_names(results: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, str]:
    """Tracking ID -> truth lesion name (module text: majority of its detected timepoints)."""
    truth_tp = {_day_key(tp["day"]): tp for tp in truth["timepoints"].values()}
    days = {tp["timepoint_id"]: _day_key(tp["day"]) for tp in results["timepoints"]}
    names: dict[str, str] = {}
    for lesion in results["lesions"]:
        votes: dict[str, int] = {}
        for tp_id, state in lesion["timepoints"].items():
            centre = state.get("centroid_lps_mm")
            reference = truth_tp.get(days[tp_id])
            if not (state.get("detected") and centre and reference):
                continue
            for name, truth_centre in reference["lesion_centroids_lps_mm"].items():
                radius = reference["lesion_diameters_mm"][name] / 2.0
                if np.linalg.norm(np.subtract(centre, truth_centre)) <= max(radius, 10.0):
                    votes[name] = votes.get(name, 0) + 1
        if votes:
            names[lesion["tracking_id"]] = max(votes, key=lambda n: votes[n])
    return names


def _windows(scenario: Any) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Inflammation windows by (event type, organ site)."""
    kinds = {"crs": "crs_inflammation", "icans": "icans_inflammation"}
    found: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for item in scenario.inflammation:
        if item.kind in kinds:
            found.setdefault((kinds[item.kind], item.organ), []).append(
                (item.start_day, item.end_day)
            )
    return found


_NEEDS: dict[str, tuple[str, ...]] = {
    # event type -> tracer classes (scan_classes) one of which must be imaged before ("pre:")
    # and/or after ("post:") the infusion, or at all ("any:"), for the event to be visible.
    "antigen_loss": ("twice:car_target",),
    "new_antigen_negative_lesion": ("post:car_target",),
    "lineage_switch": ("twice:lymphoid", "any:myeloid"),
    "checkpoint_upregulation": ("pre:checkpoint", "post:checkpoint"),
    "t_cell_activation": ("post:activation",),
    "car_t_expansion": ("pre:tracking", "post:tracking"),
    "car_t_homing": ("pre:tracking", "post:tracking"),
    "crs_inflammation": ("pre:fdg", "post:fdg"),
    "icans_inflammation": ("pre:fdg|tracking", "post:fdg|tracking"),
    "on_target_off_tumor": ("pre:tracking|car_target", "post:tracking|car_target"),
    "hypoxia": ("any:hypoxia|surrogate",),
    "homing_failure": ("any:cell_label|reporter",),
}


#: Lesion events whose tracer signal exists only where the truth puts antigen (or CAR T cells
#: carrying the marker) in the lesion: the class of tracer that must see it.
_SIGNAL: dict[str, str] = {
    "car_t_homing": "tracking",
    "t_cell_activation": "activation",
    "checkpoint_upregulation": "checkpoint",
}


#: Lesion events read as a rise of a tracer's signal from a pre-infusion scan: a truth event is
#: observable only in a lesion of >= MIN_DIAMETER_MM whose *true* rise (truth.json
#: lesion_bq_per_ml per injected Bq, pre- and post-infusion scans at the same delay) would be
#: significant without any counting noise, against the published repeatability of the tracer
#: class (monitor.assess_change); otherwise no measurement could show it.
_RISE_GATED = frozenset({"car_t_homing", "t_cell_activation"})


def _true_rise(
    key: str, place: str, tracers: set[str], results: Mapping[str, Any], truth: Mapping[str, Any]
) -> tuple[bool, tuple[float, float] | None]:
    """Whether a true same-delay rise of ``truth.scans[][key][place]`` is significant without
    counting noise, and the best (rise, detectable rise) found (None: no pre-infusion pair)."""
    from immunopet.monitor._change import assess_change
    from immunopet.monitor._document import wcv_of

    voi_type = "lesion" if key == "lesion_bq_per_ml" else "organ"
    best: tuple[float, float] | None = None
    for post in truth["scans"]:
        if post["tracer"] not in tracers or post["day"] < 0 or place not in post[key]:
            continue
        for pre in truth["scans"]:
            if (
                pre["tracer"] != post["tracer"]
                or pre["day"] >= 0
                or abs(_delay_h(pre) - _delay_h(post)) > 1.0
                or not pre[key].get(place)
            ):
                continue
            rise = (post[key][place] / post["injected_activity_bq"]) / (
                pre[key][place] / pre["injected_activity_bq"]
            ) - 1.0
            change = assess_change(
                "suv_mean",
                1.0,
                1.0 + rise,
                baseline_se=0.0,
                current_se=0.0,
                wcv=wcv_of(results, post["tracer"], voi_type),
            )
            if best is None or rise > best[0]:
                best = (rise, change.threshold_relative_increase)
            if change.significant and rise > 0:
                return True, best
    return False, best


def _organ_below_detectable_rise(
    site: str, tracers: set[str], results: Mapping[str, Any], truth: Mapping[str, Any]
) -> str | None:
    """Expansion in an organ whose true same-delay signal rise no measurement could show."""
    from immunopet.monitor._document import guidance

    # The truth's label of the site: the site itself (liver) or a results name that maps to it
    # and is a phantom label too (red_marrow -> bone_marrow); liver_reference, the results name
    # of the liver, is no phantom label (this lookup once took it, and the liver's rise was
    # never checked).
    labels = [site, *(label for label, name in guidance()["site_names"].items() if name == site)]
    present = {name for scan in truth["scans"] for name in scan["organ_bq_per_ml"]}
    label = next((name for name in labels if name in present), site)
    significant, best = _true_rise("organ_bq_per_ml", label, tracers, results, truth)
    if significant or best is None:
        return None
    return (
        f"true signal rise {100 * best[0]:+.1f} % (best same-delay pair) is below the "
        f"detectable rise +{100 * best[1]:.0f} % at the organ repeatability"
    )


def _below_detectable_rise(
    place: str, tracers: set[str], results: Mapping[str, Any], truth: Mapping[str, Any]
) -> str | None:
    significant, best = _true_rise("lesion_bq_per_ml", place, tracers, results, truth)
    if significant:
        return None
    if best is None:
        # No pre-infusion pair: the rules read the lesion-to-blood ratio instead (activation).
        from immunopet.monitor._document import guidance

        cut = float(guidance()["activation"]["positive_lesion_to_blood"])
        ratios = [
            scan["lesion_bq_per_ml"][place] / scan["organ_bq_per_ml"]["heart"]
            for scan in truth["scans"]
            if scan["tracer"] in tracers
            and scan["day"] >= 0
            and place in scan["lesion_bq_per_ml"]
            and scan["organ_bq_per_ml"].get("heart")
        ]
        if not ratios:
            return None
        from immunopet.monitor._change import assess_ratio
        from immunopet.monitor._document import wcv_of

        tracer = next(iter(sorted(tracers)))
        test = assess_ratio(
            "lesion_to_blood",
            max(ratios),
            cut,
            relative_se=0.0,
            wcv=wcv_of(results, tracer, "lesion"),
        )
        if not (test.significant and test.log_ratio > 0):
            return (
                f"true lesion-to-blood ratio {max(ratios):.2f} is not above {cut:g} beyond the "
                f"repeatability (needs > {cut * (1 + test.threshold_relative_increase):.2f}; "
                "no pre-infusion scan to compare with)"
            )
        return None
    return (
        f"true signal rise {100 * best[0]:+.1f} % (best same-delay pair) is below the "
        f"detectable rise +{100 * best[1]:.0f} % at the tracer's repeatability"
    )


def _below_size_floor(place: str | None, truth: Mapping[str, Any]) -> str | None:
    """A patient's lesion never as large as the detection is specified for (module text).

    Adults only: detection sensitivity is specified for lesions >= MIN_DIAMETER_MM (issue 5)
    and antigen loss is scored there too; a lesion smaller at every visit is counted apart
    with its size, whatever the event. Mouse tumours of a few mm are well resolved by
    small-animal scanners (~1-2 mm FWHM).
    """
    if place is None or truth["patient"].get("species", "adult") != "adult":
        return None
    sizes = [
        tp["lesion_diameters_mm"][place]
        for tp in truth["timepoints"].values()
        if place in tp["lesion_diameters_mm"]
    ]
    if sizes and max(sizes) < MIN_DIAMETER_MM:
        return f"lesion < {MIN_DIAMETER_MM:g} mm at every visit ({max(sizes):.1f} mm)"
    return None


def observable(
    kind: str, place: str | None, results: Mapping[str, Any], truth: Mapping[str, Any]
) -> str | None:
    """Why the scans cannot show a truth event (None: they can); see ``_NEEDS``.

    Lesion events of ``_SIGNAL`` are also unobservable when the truth gives the lesion no
    antigen density on every scan of that tracer class (e.g. no CAR T cells reached it in this
    patient), and those of ``_RISE_GATED`` when the lesion or its true rise is too small for
    any measurement (``_below_detectable_rise``).
    """
    from immunopet.monitor._document import scan_classes, site_name

    classes = scan_classes(results)
    classes["tracking"] = classes["t_cell_marker"] | classes["reporter"]
    classes["surrogate"] = classes["hypoxia_surrogate"] - classes["car_target"]
    days = [(scan["tracer"], tp["day"]) for tp in results["timepoints"] for scan in tp["scans"]]
    for need in _NEEDS.get(kind, ()):
        when, names = need.split(":")
        tracers = set().union(*(classes[name] for name in names.split("|")))
        seen = [day for tracer, day in days if tracer in tracers]
        ok = {
            "pre": any(d < 0 for d in seen),
            "post": any(d >= 0 for d in seen),
            "any": bool(seen),
            "twice": len(seen) >= 2,
        }[when]
        if not ok:
            return f"no {names} scan {when}"
    too_small = _below_size_floor(place, truth)
    if too_small is not None:
        return too_small
    if kind in _SIGNAL:
        tracers = classes[_SIGNAL[kind]]
        # Reporter and cell-label scans carry no antigen density (their signal is the cells').
        densities = [
            scan["lesion_antigen_density"].get(place, 0.0)
            for scan in truth["scans"]
            if scan["tracer"] in tracers and scan["lesion_antigen_density"]
        ]
        if densities and not any(d > 0 for d in densities):
            return "the simulated lesion has no specific signal on that tracer (truth density 0)"
        if kind in _RISE_GATED and place is not None:
            reason = _below_detectable_rise(place, tracers, results, truth)
            if reason is not None:
                return reason
    organ_tracers = {
        "car_t_expansion": classes["tracking"],
        "crs_inflammation": classes["fdg"],
        "icans_inflammation": classes["fdg"] | classes["tracking"],
    }
    if kind in organ_tracers and place is not None:
        reason = _organ_below_detectable_rise(place, organ_tracers[kind], results, truth)
        if reason is not None:
            return reason
    organ_events = {"car_t_expansion", "crs_inflammation", "icans_inflammation"}
    if kind in organ_events | {"on_target_off_tumor"}:
        organs = {
            site_name(m["voi_id"]) for m in results["measurements"] if m["voi_type"] == "organ"
        }
        if place not in organs:
            return f"{place} is not an organ VOI of the analysis"
    return None


def implied(
    scenario: Any, truth: Mapping[str, Any], lesions: Sequence[Mapping[str, Any]]
) -> set[tuple[str, str]]:
    """(type, place) the scenario implies beyond its ``events`` list (module text)."""
    from immunopet.monitor._document import guidance, site_name
    from immunopet.simulate._scenario import Fixed

    found = {("car_t_expansion", site) for site in scenario.car_t.expansion_sites}
    # The simulator spreads expansion like the cells (simulate._cells: expansion_sites are not
    # used), so every expansion organ that holds CAR T cells after the infusion expands.
    organs = set(guidance()["expansion"]["organs"])
    for tp in truth["timepoints"].values():
        for name, cells in (tp.get("live_car_t_cells") or {}).items():
            if tp["day"] >= 0 and cells > 0 and name in organs:
                found.add(("car_t_expansion", site_name(name)))
    found |= {
        ("antigen_loss", row["lesion"]) for row in lesions if row["antigen_loss"] >= LOSS_POSITIVE
    }
    for tp in truth["timepoints"].values():
        for name, cells in (tp.get("live_car_t_cells_in_lesions") or {}).items():
            if tp["day"] >= 0 and cells > 0:
                found |= {("car_t_homing", name), ("t_cell_activation", name)}
    for lesion in scenario.lesions:
        fraction = lesion.hypoxic_fraction
        if not (isinstance(fraction, Fixed) and fraction.value == 0.0):
            found.add(("hypoxia", lesion.name))
    kinds = {
        "crs": "crs_inflammation",
        "icans": "icans_inflammation",
        "other": "on_target_off_tumor",
    }
    found |= {(kinds[item.kind], item.organ) for item in scenario.inflammation}
    found |= {("on_target_off_tumor", tissue.site) for tissue in scenario.normal_tissues}
    return found


def score_patient(
    results: Mapping[str, Any], truth: Mapping[str, Any], scenario: Any
) -> dict[str, Any]:
    """Found and missed truth events, unexpected events, antigen-loss lesions of one patient."""
    from immunopet.monitor import guidance_events

    events = guidance_events(results)
    names = track_names(results, truth)
    windows = _windows(scenario)

    def place(event: Mapping[str, Any]) -> str | None:
        if event.get("site"):
            return str(event["site"])
        return names.get(str(event.get("voi_id")))

    found = [(e["type"], place(e), float(e["day"])) for e in events]
    truth_events = [
        (e["type"], e.get("lesion") or e.get("site"), float(e["day"])) for e in truth["events"]
    ]
    rows = []
    for kind, where, day in truth_events:
        hits = [
            d
            for k, p, d in found
            if k == kind and p == where and day - BEFORE_DAYS <= d <= day + AFTER_DAYS
        ]
        if (kind, where) in windows:
            hits = [d for d in hits if any(a <= d <= b for a, b in windows[(kind, where)])]
        rows.append(
            {
                "type": kind,
                "place": where,
                "day": day,
                "found_day": min(hits, default=None),
                "not_observable": observable(kind, where, results, truth),
            }
        )
    expected = {(kind, where) for kind, where, _ in truth_events}
    flagged = {names.get(str(e.get("voi_id"))) for e in events if e["type"] == "antigen_loss"}
    lesions = antigen_lesions(truth, results, flagged)
    allowed = implied(scenario, truth, lesions)
    unexpected = [
        {"type": k, "place": p, "day": d, "implied": (k, p) in allowed}
        for k, p, d in found
        if (k, p) not in expected
    ]
    return {
        "truth_events": rows,
        "unexpected": unexpected,
        "antigen_lesions": lesions,
        "n_events": len(events),
    }


def antigen_lesions(
    truth: Mapping[str, Any], results: Mapping[str, Any], flagged: set[str | None]
) -> list[dict[str, Any]]:
    """True antigen and signal loss of each truth lesion on the CAR-target tracer."""
    target = (results["study"].get("car_t_target") or "").casefold()
    scans = [s for s in truth["scans"] if (s.get("target") or "").casefold() == target]
    if not target or not scans:
        return []
    first_tp = min(truth["timepoints"].values(), key=lambda tp: tp["day"])
    rows = []
    for name, diameter in first_tp["lesion_diameters_mm"].items():
        series = [s for s in scans if name in s.get("lesion_antigen_density", {})]
        series.sort(key=lambda s: s["day"])
        if len(series) < 2:
            continue
        loss, signal = 0.0, 0.0
        for first in series:
            delay = _delay_h(first)
            for later in series:
                if later["day"] <= first["day"] or abs(_delay_h(later) - delay) > 0.2 * delay:
                    continue
                a0, a1 = (
                    first["lesion_antigen_density"][name],
                    later["lesion_antigen_density"][name],
                )
                s0, s1 = first["lesion_bq_per_ml"][name], later["lesion_bq_per_ml"][name]
                if a0 > 0 and s0 > 0:
                    loss = max(loss, 1.0 - a1 / a0)
                    signal = max(signal, 1.0 - s1 / s0)
            break  # from the first scan only
        rows.append(
            {
                "lesion": name,
                "diameter_mm": diameter,
                "antigen_loss": loss,
                "signal_loss": signal,
                "flagged": name in flagged,
            }
        )
    return rows


def _delay_h(scan: Mapping[str, Any]) -> float:
    from datetime import datetime

    start = datetime.fromisoformat(scan["injection_datetime"])
    end = datetime.fromisoformat(scan["scan_datetime"])
    return (end - start).total_seconds() / 3600.0


def _fraction(hits: int, total: int) -> str:
    return f"{hits}/{total} = {hits / total:.2f}" if total else "n/a"


def report_cohorts(scored: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Print the cohort tables; return the figures."""
    figures: dict[str, Any] = {}
    print("\n== Event sensitivity per scenario and type (found / truth events) ==")
    by_type: dict[str, list[int]] = {}
    for scenario, patients in sorted(scored.items()):
        counts: dict[str, list[int]] = {}
        hidden: dict[str, str] = {}
        unlisted: dict[str, int] = {}
        false: dict[str, int] = {}
        for patient in patients:
            for row in patient["truth_events"]:
                if row["not_observable"]:
                    hidden[f"{row['type']} {row['place']}"] = row["not_observable"]
                    continue
                pair = counts.setdefault(row["type"], [0, 0])
                pair[0] += row["found_day"] is not None
                pair[1] += 1
            for row in patient["unexpected"]:
                table = unlisted if row["implied"] else false
                key = f"{row['type']} {row['place']}"
                table[key] = table.get(key, 0) + 1
        cells = ", ".join(f"{k} {_fraction(*v)}" for k, v in sorted(counts.items()))
        print(f"{scenario:24s} n={len(patients)}: {cells or 'no observable truth event'}")
        for label, items in (
            ("not observable", hidden),
            ("implied by the scenario, not listed", unlisted),
            ("FALSE events", false),
        ):
            if items:
                text = "; ".join(f"{k}: {v}" for k, v in sorted(items.items()))
                print(f"{'':24s} {label}: {text}")
        for kind, (hit, total) in counts.items():
            pair = by_type.setdefault(kind, [0, 0])
            pair[0] += hit
            pair[1] += total
        figures.setdefault("per_scenario", {})[scenario] = {
            "sensitivity": counts,
            "not_observable": hidden,
            "implied_unlisted": unlisted,
            "false": false,
        }
    print("\n== Sensitivity per event type, all scenarios ==")
    for kind, (hit, total) in sorted(by_type.items()):
        print(f"{kind:28s} {_fraction(hit, total)}")
    figures["per_type"] = by_type
    lesions = [
        row for patients in scored.values() for p in patients for row in p["antigen_lesions"]
    ]
    big = [row for row in lesions if row["diameter_mm"] >= MIN_DIAMETER_MM]
    positive = [row for row in big if row["antigen_loss"] >= LOSS_POSITIVE]
    negative = [row for row in big if row["antigen_loss"] < LOSS_NEGATIVE]
    middle = [row for row in big if LOSS_NEGATIVE <= row["antigen_loss"] < LOSS_POSITIVE]
    tp = sum(row["flagged"] for row in positive)
    tn = sum(not row["flagged"] for row in negative)
    print("\n== Antigen loss per lesion (>= 15 mm, CAR-target tracer) ==")
    print(f"sensitivity (true antigen loss >= 50 %): {_fraction(tp, len(positive))}")
    print(f"specificity (true antigen loss < 20 %):  {_fraction(tn, len(negative))}")
    print(
        f"flagged with 20-50 % loss:               {_fraction(sum(r['flagged'] for r in middle), len(middle))}"
    )
    for row in sorted(positive, key=lambda r: r["signal_loss"]):
        print(
            f"  {row['lesion']:24s} {row['diameter_mm']:5.1f} mm antigen -{row['antigen_loss']:.0%}"
            f" signal -{row['signal_loss']:.0%} flagged={row['flagged']}"
        )
    figures["antigen_loss"] = {
        "sensitivity": [tp, len(positive)],
        "specificity": [tn, len(negative)],
        "intermediate_flagged": [sum(r["flagged"] for r in middle), len(middle)],
    }
    cr = scored.get("complete_response", [])
    clean = sum(not [u for u in p["unexpected"] if not u["implied"]] for p in cr)
    print(f"\ncomplete-response patients with no false event: {_fraction(clean, len(cr))}")
    figures["complete_response_clean"] = [clean, len(cr)]
    return figures


# --------------------------------------------------------------------------- phantom


def _phantom_concentrations(activity_mbq: float, density: float) -> tuple[float, float]:
    """Sphere and background Bq/mL of the CD19 IgG 24 h after ``activity_mbq`` (module text)."""
    from immunopet.physics import decay_factor, nuclide
    from immunopet.tracers._pharmacokinetics import TwoTissueVectorModel, vector_pharmacokinetics

    t = np.array([24.0 * 3600.0])
    parameters = vector_pharmacokinetics("igg")
    model = TwoTissueVectorModel(parameters, antigen_density=density)
    body_scale = model.body.body_mass_g / 78000.0
    per_percent = activity_mbq * 1e6 / 100.0 * decay_factor(nuclide("Cu-64").half_life_s, t[0])
    tumour = float(model.tissue_percent_id_per_g("tumour", t)[0]) * per_percent * body_scale
    muscle = float(model.time_activity_curves(t)["muscle"][0]) * per_percent * body_scale
    return tumour, muscle


def _sphere_grid(diameter_mm: float, voxel_mm: float = 4.0) -> tuple[Any, Any, Any]:
    """Sphere mask, 3 cm background reference sphere mask and affine of a small phantom."""
    n = math.ceil((diameter_mm + 120.0) / voxel_mm)
    n += n % 2
    axis = (np.arange(n) - n / 2 + 0.5) * voxel_mm
    z, y, x = np.meshgrid(axis, axis, axis, indexing="ij")
    sphere = x**2 + y**2 + z**2 <= (diameter_mm / 2.0) ** 2
    far = (x - (n / 2 - 6) * voxel_mm) ** 2 + y**2 + z**2 <= 15.0**2
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    return sphere, far, affine


def _detection_voi(sphere: Any, affine: Any, rng: np.random.Generator) -> Any:
    """VOI of the sphere from detect_lesions on a noisy FDG image (SUV 10 in SUV 1)."""
    from immunopet.image import Quantity, Volume
    from immunopet.lesions import detect_lesions
    from immunopet.planning import scanner
    from immunopet.simulate import PetSystem

    pet = PetSystem(scanner("biograph_mct"))
    suv_to_bq = 5000.0  # SUV 1 = 5 kBq/mL (3.5 MBq/kg, 60 min of F-18 decay), for counts
    truth = Volume(np.where(sphere, 10.0, 1.0) * suv_to_bq, affine, Quantity.ACTIVITY_CONCENTRATION)
    image = pet.acquire(truth, nuclide="F-18", frame_duration_s=120.0, rng=rng)
    suv = Volume(np.asarray(image.array, dtype=np.float64) / suv_to_bq, affine, Quantity.SUV_BW)
    found = detect_lesions(suv)
    if not found:
        return sphere  # too small to be found: the true sphere (optimistic)
    centre = np.argwhere(sphere).mean(axis=0)
    best = min(
        found,
        key=lambda lesion: float(
            np.linalg.norm(np.argwhere(np.asarray(lesion.mask)).mean(axis=0) - centre)
        ),
    )
    return np.asarray(best.mask, dtype=bool)


def _measure(
    pet: Any, scene: tuple[Any, float, Any, Any, Any, int], level: float, rng: Any
) -> tuple[float, float]:
    """VOI mean (Bq/mL) and its count-statistics SE of one noisy scan of the sphere phantom."""
    from immunopet.image import Quantity, Volume
    from immunopet.quant import voi_statistics
    from immunopet.quant._uncertainty import estimate_image_noise

    sphere, background, affine, mask, far, n_voi = scene
    truth = Volume(np.where(sphere, level, background), affine, Quantity.ACTIVITY_CONCENTRATION)
    image = pet.acquire(truth, nuclide="Cu-64", frame_duration_s=300.0, rng=rng)
    mean = float(voi_statistics(image, mask).mean)
    noise = estimate_image_noise(
        np.asarray(image.array, dtype=np.float64), far, region="background sphere"
    )
    return mean, noise.mean_standard_error(mean, n_voi)


def phantom_drop_table(
    diameters_mm: Sequence[float],
    activities_mbq: Sequence[float],
    drops: Sequence[float],
    trials: int,
    density: float = 1.0,
) -> list[dict[str, Any]]:
    """Detection fraction of each antigen drop, per diameter and activity (module text)."""
    from immunopet.image import Quantity, Volume
    from immunopet.monitor import assess_change, repeatability_wcv
    from immunopet.planning import scanner
    from immunopet.simulate import PetSystem

    pet = PetSystem(scanner("biograph_mct"))
    wcv = repeatability_wcv("immuno_pet")
    rows = []
    for diameter in diameters_mm:
        rng = np.random.default_rng(PHANTOM_SEED + round(diameter * 10))
        sphere, far, affine = _sphere_grid(diameter)
        voi = _detection_voi(sphere, affine, rng)
        mask = Volume(voi, affine, Quantity.MASK)
        for activity in activities_mbq:
            tumour0, background = _phantom_concentrations(activity, density)
            scene = (sphere, background, affine, mask, far, int(voi.sum()))
            levels = [_phantom_concentrations(activity, density * (1 - d))[0] for d in drops]
            flagged = np.zeros(len(drops), dtype=int)

            for _ in range(trials):
                b, b_se = _measure(pet, scene, tumour0, rng)
                for index, level in enumerate(levels):
                    c, c_se = _measure(pet, scene, level, rng)
                    change = assess_change(
                        "mean_bq_per_ml", b, c, baseline_se=b_se, current_se=c_se, wcv=wcv
                    )
                    flagged[index] += change.significant and change.log_ratio < 0
            rows.append(
                {
                    "diameter_mm": diameter,
                    "activity_mbq": activity,
                    "voi_ml": float(voi.sum()) * 0.064,
                    "sphere_bq_per_ml": tumour0,
                    "background_bq_per_ml": background,
                    "drops": list(drops),
                    "signal_drops": [1.0 - level / tumour0 for level in levels],
                    "detected": [int(f) / trials for f in flagged],
                    "drop80": _crossing(drops, [int(f) / trials for f in flagged], 0.8),
                }
            )
    return rows


def _crossing(x: Sequence[float], y: Sequence[float], level: float) -> float | None:
    """Smallest x where y reaches ``level`` (linear between the points; None if never)."""
    for i, value in enumerate(y):
        if value >= level:
            if i == 0:
                return float(x[0])
            x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], value
            return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))
    return None


def report_phantom(rows: Iterable[Mapping[str, Any]]) -> None:
    """Print the antigen-drop table."""
    rows = list(rows)
    activities = sorted({r["activity_mbq"] for r in rows})
    print("\n== Smallest antigen drop flagged with 80 % sensitivity ==")
    print("(64Cu-CD19 IgG, 24 h, Biograph mCT 300 s, 4 mm voxels; relative CD19 density 1)")
    print("diameter  " + "  ".join(f"{a:>8.0f} MBq" for a in activities))
    for diameter in sorted({r["diameter_mm"] for r in rows}):
        cells = []
        for activity in activities:
            row = next(
                r for r in rows if r["diameter_mm"] == diameter and r["activity_mbq"] == activity
            )
            drop = row["drop80"]
            cells.append(f"{'> max' if drop is None else f'{drop:.0%}':>12s}")
        print(f"{diameter:5.0f} mm " + "  ".join(cells))
    first = rows[0]
    pairs = ", ".join(
        f"{d:.0%}->{s:.0%}" for d, s in zip(first["drops"], first["signal_drops"], strict=True)
    )
    print(f"antigen drop -> signal drop: {pairs}")
    for row in rows:
        detected = " ".join(f"{v:.2f}" for v in row["detected"])
        print(
            f"  {row['diameter_mm']:4.0f} mm {row['activity_mbq']:5.0f} MBq VOI "
            f"{row['voi_ml']:6.2f} mL: detected {detected}"
        )


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (module text)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2, help="patients per scenario")
    parser.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="processes")
    parser.add_argument("--voxel-mm", type=float, default=6.0, help="adult phantom voxel size")
    parser.add_argument("--work", type=Path, help="keep patients' documents here")
    parser.add_argument("--rescore", type=Path, help="score the documents kept in this folder")
    parser.add_argument("--trials", type=int, default=200, help="phantom trials per cell")
    parser.add_argument("--phantom-only", action="store_true")
    parser.add_argument("--cohorts-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a small run that checks the script")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    from immunopet.simulate import load_scenario

    names = [n for n in args.scenarios.split(",") if n] or scenario_names()
    diameters: list[float] = [10.0, 15.0, 20.0, 30.0, 40.0]
    activities: list[float] = [74.0, 185.0, 370.0]
    drops: list[float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    trials = args.trials
    if args.quick:
        names = [n for n in names if n in ("crs", "lineage_switch")] or names[:2]
        args.patients = 1
        diameters, activities, trials = [15.0, 30.0], [185.0], 10
    print(f"immunopet events benchmark; python {sys.version.split()[0]}")
    status = 0
    figures: dict[str, Any] = {}
    if not args.phantom_only:
        if args.rescore:
            work = args.rescore
        else:
            work = args.work or Path(tempfile.mkdtemp(prefix="immunopet-events-"))
            all_names = scenario_names()
            # Patient by patient across the scenarios, so a run stopped early (or done in
            # parts with --work) has about as many patients in each.
            jobs = [
                (name, all_names.index(name), i, str(work), args.voxel_mm)
                for i in range(args.patients)
                for name in names
            ]
            started = time.perf_counter()
            if args.jobs > 1:
                # One ITK thread per process: processes that each use every core for the
                # registration slow one another down two- to four-fold.
                os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                done = list(pool.map(run_patient, jobs))
                # Patients whose drawn body the phantom does not model are replaced by the
                # next ones of the same cohort (indices --patients, --patients + 1, ...), so
                # every scenario has --patients simulated patients.
                short = {
                    n: sum("unsimulable" in d for d in done if d["scenario"] == n) for n in names
                }
                extra = args.patients
                while any(short.values()) and extra < 2 * args.patients:
                    more = [
                        (name, all_names.index(name), extra, str(work), args.voxel_mm)
                        for name in names
                        if short[name]
                    ]
                    added = list(pool.map(run_patient, more))
                    done += added
                    for item in added:
                        if "unsimulable" not in item:
                            short[item["scenario"]] -= 1
                    extra += 1
            for item in done:
                if "unsimulable" in item:
                    print(
                        f"{item['scenario']:24s} {item['patient']} replaced: {item['unsimulable']}"
                    )
                    continue
                if "error" in item:
                    status = 1
                    print(f"FAILED {item['scenario']} {item['patient']}:\n{item['error']}")
                elif item.get("resumed"):
                    print(f"{item['scenario']:24s} {item['patient']} done by an earlier run")
                else:
                    print(
                        f"{item['scenario']:24s} {item['patient']} simulate "
                        f"{item['simulate_s']:5.0f} s, analyse {item['analyze_s']:5.0f} s"
                    )
            print(f"cohorts: {time.perf_counter() - started:.0f} s wall, {args.jobs} processes")
        scored: dict[str, list[dict[str, Any]]] = {}
        for name in names:
            scenario = load_scenario(name)
            for folder in sorted((work / name).glob("P*")) if (work / name).exists() else []:
                if not (folder / "results.json").exists():
                    continue
                results = json.loads((folder / "results.json").read_text())
                truth = json.loads((folder / "truth.json").read_text())
                scored.setdefault(name, []).append(score_patient(results, truth, scenario))
        figures["cohorts"] = report_cohorts(scored)
        figures["cohort_rows"] = scored
        if not (args.work or args.rescore):
            shutil.rmtree(work, ignore_errors=True)
    if not args.cohorts_only:
        started = time.perf_counter()
        rows = phantom_drop_table(diameters, activities, drops, trials)
        report_phantom(rows)
        print(f"phantom: {time.perf_counter() - started:.0f} s, {trials} trials per cell")
        figures["phantom"] = rows
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
