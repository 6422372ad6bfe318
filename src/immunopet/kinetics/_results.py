"""Kinetic analyses of an analysed study: Patlak K_i per VOI and CAR T-cell kinetics.

:func:`kinetics_from_results` reads a ``results.json`` document (``docs/results.md``) and returns
the JSON-ready ``kinetics`` section that ``immunopet analyze`` adds to it and that
``immunopet kinetics`` prints (``docs/kinetics.md`` describes the keys):

* **Patlak** (:class:`~immunopet.kinetics.Patlak1983`, Jauw et al. 2019 as the reference
  application) for every injection of a residualising antibody tracer imaged at ≥ 2 timepoints:
  the tracer's vector format comes from the knowledge base (:func:`immunopet.tracers.load_tracers`,
  matched on the agent name) and must be one of ``data/kinetics_analysis.toml [patlak]``; the
  label must be residualising (:func:`immunopet.tracers.residualising_label`). Trapped label is
  lost at the rate of :class:`~immunopet.tracers.TwoTissueVectorModel` (residualising ⁸⁹Zr:
  T½ 300 h, CALIBRATED in ``data/vector_pk.toml``) and the generalised plot of Patlak & Blasberg
  1985 corrects for it (without it K_i is ~25 % low on days 3-7). The input is
  :func:`~immunopet.kinetics.blood_input` (blood samples, blood-pool VOI, injection anchor); each
  point is weighted by :func:`~immunopet.kinetics.point_sd`, so the standard errors are
  propagated (normal intervals) and χ² tests the line.
* **Two-tissue compartment model** (``models=("2tc",)``, the CLI's ``--model 2tc``):
  :class:`~immunopet.kinetics.Sokoloff1977TwoTissueIrreversible` with the vascular fraction held,
  fitted to the same curves; with 2-3 timepoints it is reported as not identifiable.
* **CAR T-cell kinetics** (:func:`~immunopet.kinetics.fit_stein2019`) for each blood count series
  of the manifest (``clinical.car_t_counts``; qPCR copies/µg with the full Stein 2019 prior, flow
  cells/µL with the unit-free shape prior), with the assay noise of
  ``data/kinetics_analysis.toml [cell_kinetics]``: Cmax, Tmax, doubling time, decline
  half-lives, AUC₀₋₂₈d with 95 % intervals and the non-expansion flag.

Injections or series that cannot be analysed are listed under ``skipped`` with the reason;
``None`` is returned when nothing could be analysed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Final, Literal, get_args

import numpy as np

from immunopet.data import read_toml
from immunopet.errors import ImmunopetError, InputError
from immunopet.kinetics._cellular_fit import fit_stein2019
from immunopet.kinetics._compartment import BLOOD_FRACTION, Sokoloff1977TwoTissueIrreversible
from immunopet.kinetics._curves import (
    BloodInput,
    Injection,
    TimeActivityCurve,
    blood_input,
    curves_from_results,
    injections_from_results,
    point_sd,
)
from immunopet.kinetics._patlak import Patlak1983
from immunopet.units import S_PER_HOUR

__all__ = ["KineticModel", "kinetics_from_results"]

_TABLE: Final = "kinetics_analysis.toml"
#: Models :func:`kinetics_from_results` can run.
KineticModel = Literal["patlak", "2tc", "stein2019"]
_UNIT_LABEL: Final = {"copies_per_ug": "copies/ug", "cells_per_ul": "cells/uL"}
_PRIOR_OF_UNIT: Final = {"copies_per_ug": "stein2019", "cells_per_ul": "stein2019_shape"}


@cache
def _settings() -> dict[str, Any]:
    return read_toml(_TABLE)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _vector_format(agent: str) -> str | None:
    """Vector format of ``agent`` in the knowledge base (exact name, else ignoring case)."""
    from immunopet.tracers import load_tracers

    tracers = load_tracers()
    rows = [t for t in tracers if t.agent == agent] or [
        t for t in tracers if t.agent.casefold() == agent.casefold()
    ]
    formats = {t.vector_format.value for t in rows}
    return formats.pop() if len(formats) == 1 else None


def _patlak_eligibility(injection: Injection) -> tuple[str | None, str | None, float]:
    """(vector format, reason it is skipped or None, label-loss rate 1/s)."""
    from immunopet.tracers import (
        TwoTissueVectorModel,
        residualising_label,
        vector_pharmacokinetics,
    )

    if injection.time_s.size < 2:
        return None, "imaged at one timepoint after this injection (Patlak needs >= 2)", 0.0
    first = float(_settings()["patlak"]["min_time_after_injection_h"]) * S_PER_HOUR
    if np.count_nonzero(injection.time_s >= first) < 2:
        return (
            None,
            f"fewer than 2 scans >= {first / S_PER_HOUR:g} h after the injection (the Patlak "
            "plot needs the reversible pool near equilibrium)",
            0.0,
        )
    fmt = _vector_format(injection.agent)
    if fmt is None:
        return (
            None,
            f"agent {injection.agent!r} is not in the tracer knowledge base (data/tracers.csv): "
            "its vector format is unknown",
            0.0,
        )
    if fmt not in _settings()["patlak"]["vector_formats"]:
        return fmt, f"vector format {fmt} does not circulate for days (not an antibody)", 0.0
    try:
        residualising = residualising_label(injection.nuclide)
    except ImmunopetError as error:
        return fmt, str(error), 0.0
    if not residualising:
        return fmt, f"{injection.nuclide} labels are not residualising", 0.0
    model = TwoTissueVectorModel(vector_pharmacokinetics(fmt), residualising=True)
    return fmt, None, model.label_loss_rate_per_s


def _tissue_curves(
    injection: Injection, curves: Sequence[TimeActivityCurve]
) -> list[TimeActivityCurve]:
    """The curves of ``injection`` except the blood VOIs (they are the input)."""
    blood_names = set(_settings()["blood_input"]["blood_vois"])
    return [
        curve
        for curve in curves
        if curve.injection.injection_id == injection.injection_id
        and not (curve.voi_type == "organ" and curve.voi_id in blood_names)
    ]


def _usable(curve: TimeActivityCurve, last_blood_s: float, first_s: float = 0.0) -> np.ndarray:
    return np.asarray(
        (curve.time_s <= last_blood_s)
        & (curve.time_s >= first_s)
        & (curve.concentration_bq_per_ml > 0.0),
        dtype=bool,
    )


def _patlak_section(
    injection: Injection,
    curves: Sequence[TimeActivityCurve],
    fmt: str,
    loss_rate_per_s: float,
    blood: BloodInput,
) -> dict[str, Any]:
    settings = _settings()
    level = float(settings["patlak"]["ci_level"])
    patlak = Patlak1983(blood.plasma, loss_rate_per_s=loss_rate_per_s)
    last = float(blood.plasma.times_s[-1])
    first = float(settings["patlak"]["min_time_after_injection_h"]) * S_PER_HOUR
    results = []
    for curve in _tissue_curves(injection, curves):
        keep = _usable(curve, last, first)
        entry: dict[str, Any] = {
            "voi_type": curve.voi_type,
            "voi_id": curve.voi_id,
            "timepoint_ids": [t for t, k in zip(curve.timepoint_ids, keep, strict=True) if k],
            "n_points": int(np.count_nonzero(keep)),
        }
        if entry["n_points"] < 2:
            entry["warnings"] = [
                f"fewer than 2 usable timepoints (>= {first / S_PER_HOUR:g} h after injection, "
                "with a blood value and uptake > 0)"
            ]
            results.append(entry)
            continue
        sd = point_sd(curve)[keep]
        fit = patlak.fit(curve.time_s[keep], curve.concentration_bq_per_ml[keep], sd)
        low, high = fit.ki_interval(level)
        entry.update(
            {
                "ki_ml_per_g_per_s": float(fit.ki_ml_per_g_per_s),
                "ki_se_ml_per_g_per_s": _finite(float(fit.ki_se_ml_per_g_per_s)),
                "ki_ci_ml_per_g_per_s": [_finite(float(low)), _finite(float(high))],
                "intercept_ml_per_g": float(fit.intercept_ml_per_g),
                "intercept_se_ml_per_g": _finite(float(fit.intercept_se_ml_per_g)),
                "pearson_r": _finite(float(fit.pearson_r)),
                "chi_square": _finite(float(fit.chi_square)),
                "dof": fit.dof,
                "se_method": fit.se_method,
                "warnings": list(fit.warnings),
            }
        )
        results.append(entry)
    notes = [*injection.warnings, *blood.warnings]
    early = int(np.count_nonzero(injection.time_s < first))
    if early:
        notes.append(
            f"{early} scan(s) earlier than {first / S_PER_HOUR:g} h after injection left out "
            "of the Patlak plot (reversible pool not in equilibrium)"
        )
    return {
        **injection.to_dict(),
        "vector_format": fmt,
        "method": (
            "Patlak plot (Patlak, Blasberg & Fenstermacher 1983) generalised for loss of trapped "
            "label (Patlak & Blasberg 1985); weighted least squares with propagated SDs"
        ),
        "loss_rate_per_s": loss_rate_per_s,
        "loss_source": "data/vector_pk.toml [labels.residualising] (CALIBRATED)",
        "ci_level": level,
        "input": blood.to_dict(),
        "min_time_after_injection_s": first,
        "results": results,
        "warnings": notes,
    }


def _compartment_section(
    injection: Injection,
    curves: Sequence[TimeActivityCurve],
    blood: BloodInput,
) -> dict[str, Any]:
    from immunopet.tracers import TwoTissueVectorModel, vector_pharmacokinetics

    content = TwoTissueVectorModel(vector_pharmacokinetics("igg")).body.blood_content_ml_per_g
    default = float(_settings()["compartment"]["default_blood_fraction"])
    model = Sokoloff1977TwoTissueIrreversible()
    last = float(blood.plasma.times_s[-1])
    results = []
    for curve in _tissue_curves(injection, curves):
        keep = _usable(curve, last)
        fraction = (
            float(content.get(curve.voi_id, default)) if curve.voi_type == "organ" else default
        )
        entry: dict[str, Any] = {
            "voi_type": curve.voi_type,
            "voi_id": curve.voi_id,
            "n_points": int(np.count_nonzero(keep)),
            "blood_fraction": fraction,
        }
        if entry["n_points"] < 1:
            entry["identifiable"] = False
            entry["identifiability"] = ["no usable timepoint"]
            results.append(entry)
            continue
        try:
            fit = model.fit(
                blood.plasma,
                curve.time_s[keep],
                curve.concentration_bq_per_ml[keep],
                point_sd(curve)[keep],
                blood_fraction=fraction,
            )
        except ImmunopetError as error:
            entry["identifiable"] = False
            entry["identifiability"] = [str(error)]
            results.append(entry)
            continue
        entry.update(
            {
                "values": {k: v for k, v in fit.values.items() if k != BLOOD_FRACTION},
                "standard_errors": {k: _finite(v) for k, v in fit.standard_errors.items()},
                "ki_ml_per_g_per_s": fit.macro["ki_ml_per_g_per_s"],
                "ki_se_ml_per_g_per_s": _finite(fit.macro_standard_errors["ki_ml_per_g_per_s"]),
                "chi_square": _finite(fit.chi_square),
                "dof": fit.dof,
                "identifiable": fit.identifiable,
                "identifiability": list(fit.identifiability),
            }
        )
        results.append(entry)
    return {
        **injection.to_dict(),
        "method": (
            "two-tissue irreversible compartment model (Sokoloff et al. 1977), vascular fraction "
            "held; loss of trapped label not modelled"
        ),
        "input": blood.to_dict(),
        "results": results,
        "warnings": [*injection.warnings, *blood.warnings],
    }


def _cell_sections(
    document: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    clinical = document.get("clinical")
    counts = clinical.get("car_t_counts") if isinstance(clinical, Mapping) else None
    settings = _settings()["cell_kinetics"]
    fitted: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for i, row in enumerate(counts or []):
        where = f"clinical.car_t_counts[{i}]"
        if not isinstance(row, Mapping) or any(k not in row for k in ("day", "value", "unit")):
            raise InputError(f"results document: {where} needs day, value and unit", field=where)
        unit = str(row["unit"])
        if unit not in _UNIT_LABEL:
            raise InputError(
                f"results document: {where}.unit must be copies_per_ug or cells_per_ul, got "
                f"{unit!r}",
                field=f"{where}.unit",
            )
        source = str(row.get("source") or ("qpcr" if unit == "copies_per_ug" else "flow"))
        if source not in ("qpcr", "flow"):
            raise InputError(
                f"results document: {where}.source must be qpcr or flow, got {source!r}",
                field=f"{where}.source",
            )
        series.setdefault((source, unit), []).append((float(row["day"]), float(row["value"])))
    for (source, unit), points in series.items():
        usable = sorted((d, v) for d, v in points if d >= 0.0 and v > 0.0 and math.isfinite(v))
        left_out = len(points) - len(usable)
        label = {"source": source, "unit": unit}
        if len(usable) < 3 or len({d for d, _ in usable}) < 3:
            skipped.append(
                {
                    **label,
                    "reason": f"{len(usable)} positive samples after the infusion (the Stein "
                    "2019 fit needs >= 3 at 3 different days)",
                }
            )
            continue
        relative_sd = float(settings[f"{source}_relative_sd"])
        fit = fit_stein2019(
            [d for d, _ in usable],
            [v for _, v in usable],
            relative_sd=relative_sd,
            prior=_PRIOR_OF_UNIT[unit],  # type: ignore[arg-type]
            value_unit=_UNIT_LABEL[unit],
            n_bootstrap=int(settings["n_bootstrap"]),
            seed=int(settings["seed"]),
        )
        notes = list(fit.warnings)
        if left_out:
            notes.append(
                f"{left_out} sample(s) before the infusion or below the limit of quantification "
                "(<= 0) left out"
            )
        fitted.append(
            {
                **label,
                "relative_sd": relative_sd,
                **fit.to_dict(),
                "warnings": notes,
            }
        )
    return fitted, skipped


def kinetics_from_results(
    document: Mapping[str, Any],
    *,
    models: Sequence[KineticModel] = ("patlak", "stein2019"),
    keep_empty: bool = False,
) -> dict[str, Any] | None:
    """The ``kinetics`` section of a results document (module docstring), or None.

    Parameters
    ----------
    document : Mapping
        ``results.json`` as a mapping (``immunopet.kinetics.load_results_document``).
    models : sequence of {"patlak", "2tc", "stein2019"}, optional
        What to run. Default Patlak and the CAR T-cell kinetics (what ``analyze`` reports).
    keep_empty : bool, optional
        Return the section (with its ``skipped`` reasons) even when nothing was analysed.

    Returns
    -------
    dict or None
        ``{"patlak": [...], "compartment": [...], "cell_kinetics": [...], "skipped": [...]}``
        (only the keys of the models run), JSON-ready in canonical units (K_i mL/g/s, times s or
        days as named); None when no injection or count series could be analysed (unless
        ``keep_empty``).

    Raises
    ------
    InputError
        For a malformed document or an unknown model.

    """
    unknown = [m for m in models if m not in get_args(KineticModel)]
    if unknown:
        raise InputError(
            f"unknown kinetic model(s) {unknown}",
            field="model",
            hint=f"choose from {', '.join(get_args(KineticModel))}",
        )
    section: dict[str, Any] = {}
    skipped: list[dict[str, Any]] = []
    if "patlak" in models or "2tc" in models:
        curves = curves_from_results(document, decay_corrected=True)
        patlak: list[dict[str, Any]] = []
        compartment: list[dict[str, Any]] = []
        for injection in injections_from_results(document):
            fmt, reason, loss = _patlak_eligibility(injection)
            if reason is None and fmt is not None:
                try:
                    blood = blood_input(document, injection, curves)
                except InputError as error:
                    reason = f"no input function: {error}"
            if reason is not None or fmt is None:
                if injection.time_s.size >= 2:
                    skipped.append(
                        {
                            "injection_id": injection.injection_id,
                            "analysis": "patlak",
                            "reason": reason,
                        }
                    )
                continue
            if "patlak" in models:
                patlak.append(_patlak_section(injection, curves, fmt, loss, blood))
            if "2tc" in models:
                compartment.append(_compartment_section(injection, curves, blood))
        if "patlak" in models:
            section["patlak"] = patlak
        if "2tc" in models:
            section["compartment"] = compartment
    if "stein2019" in models:
        cells, cell_skips = _cell_sections(document)
        section["cell_kinetics"] = cells
        skipped += [{**s, "analysis": "stein2019"} for s in cell_skips]
    section["skipped"] = skipped
    analysed = any(section.get(k) for k in ("patlak", "compartment", "cell_kinetics"))
    return section if analysed or keep_empty else None
