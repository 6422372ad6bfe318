"""Time–activity curves and the blood input of an analysed study (``results.json``).

``immunopet analyze`` measures every VOI (lesions by tracking ID, organs by canonical name) with
every tracer at every timepoint. This module regroups those measurements by *injection*: each
PET scan names its own administration (``injection_datetime``), so the scans of one tracer that
share an injection date-time are one time–activity curve (e.g. a ⁸⁹Zr-antibody imaged on days
3, 5 and 7 after one injection), while a tracer given again later (FDG at every visit) starts a
new one. Times are seconds after *that* injection.

Values and their timing
-----------------------
A measurement's ``mean_bq_per_ml`` and ``total_uptake_bq`` are decay-corrected to the scan's
``scan_datetime`` (its decay reference; DICOM START is the acquisition start). The value is
placed at that instant. For a scan decay-corrected to the administration (DICOM ADMIN) the
reference is the injection itself; the acquisition is then placed at the visit's ``datetime``.
On request (``decay_corrected=True``, the default) values are decay-corrected to the injection,
A·2^((t_ref − t_inj)/T½), the form kinetic models need (tissue and blood in one frame, no
physical loss); otherwise they are the activity present at the acquisition,
A·2^(−(t_acq − t_ref)/T½), the form the time-integrated activity needs. Physical decay is
:func:`immunopet.physics.decay_factor` with the ICRP-107 half-life of the scan's nuclide.

Per-point uncertainty
---------------------
``concentration_se_bq_per_ml`` is the analysis' count-statistics standard error of the VOI mean
(``mean_bq_per_ml_se``; NaN where the analysis gave none). Partial-volume and calibration errors
are not in it; :func:`point_sd` adds the published test–retest variability beyond counting noise
(``data/repeatability.toml``: ⁸⁹Zr-immuno-PET lesions, normal organs) in quadrature, which is what
the fits use as the SD of a point.

Blood input
-----------
:func:`blood_input` builds the plasma input of one injection for
:class:`~immunopet.kinetics.Patlak1983` from, in this order of preference:

1. blood or plasma samples of that tracer in ``clinical.blood_samples`` (manifest; whole blood
   becomes plasma with the haematocrit), decay-corrected to the injection;
2. the blood-pool VOI of each scan (the first of ``blood_vois`` in
   ``data/kinetics_analysis.toml`` that was measured: the blood-pool reference sphere, the aorta,
   the heart), whole blood → plasma by ``Cp = Cb/(1 − Hct)`` (antibodies stay in plasma);
3. an injection anchor ``Cp(0) = A_inj/V_plasma`` with the plasma volume scaled from the ICRP
   Publication 89 reference adult by body weight, when the weight is known and no sample
   precedes the first scan. Without it the first image segment would be extended back to the
   injection, missing the fast early plasma phase: for the ⁸⁹Zr-IgG of
   :class:`~immunopet.tracers.TwoTissueVectorModel` scanned on days 3, 5 and 7 the Patlak K_i
   (label loss known) is +5.2 % off without the anchor and +1.3 % with it; with the plasma
   volume 10 % too large, +2.9 %.

Between samples the input is interpolated piecewise log-linearly (exponential between
consecutive samples, exact for a mono-exponential stretch; :class:`PlasmaInput`). The
haematocrit is the manifest's (``clinical.hematocrit``), else the reference adult male's
(0.47, ICRP 89) with a warning.

The documents read are ``results.json`` (schema 1.x, ``docs/results.md``) or a tidy
``measurements.csv`` (:func:`load_results_document`, ``docs/kinetics.md``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.kinetics._input import PlasmaInput
from immunopet.physics import canonical_nuclide_name, decay_factor, nuclide, seconds_between
from immunopet.result import MEASUREMENT_COLUMNS
from immunopet.units import G_PER_KG

__all__ = [
    "BloodInput",
    "Injection",
    "TimeActivityCurve",
    "blood_input",
    "curves_from_results",
    "injections_from_results",
    "load_results_document",
    "point_sd",
]

_TABLE: Final = "kinetics_analysis.toml"
_REPEATABILITY: Final = "repeatability.toml"
_RESULTS_JSON: Final = "results.json"
#: Columns a tidy measurements table needs (the rest of measurements.csv is optional).
_REQUIRED_COLUMNS: Final = ("voi_type", "voi_id", "timepoint_id", "tracer", "mean_bq_per_ml")
#: Scan facts a table without a results.json beside it must carry per row.
_SCAN_COLUMNS: Final = ("nuclide", "injected_activity_bq", "injection_datetime", "scan_datetime")
#: Columns of a table of CAR T-cell counts (``clinical.car_t_counts``).
_COUNT_COLUMNS: Final = ("day", "value", "unit", "source")
#: Text columns of a measurements table; every other column of measurements.csv is a number.
_TEXT_COLUMNS: Final = ("voi_type", "voi_id", "timepoint_id", "tracer", "target", "voi_source")
#: True/False columns of a measurements table (written as ``True``/``False``, empty: None).
_BOOL_COLUMNS: Final = ("lesion_found",)
_NUMBER_COLUMNS: Final = frozenset(
    [c for c in MEASUREMENT_COLUMNS if c not in (*_TEXT_COLUMNS, *_BOOL_COLUMNS)]
    + ["injected_activity_bq", "weight_kg", "value", "time_after_injection_s", "bq_per_ml"]
)

FloatArray = NDArray[np.float64]


@cache
def _settings() -> dict[str, Any]:
    return read_toml(_TABLE)


# --------------------------------------------------------------------------------------------
# Reading a document
# --------------------------------------------------------------------------------------------


def _field(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise InputError(
            f"results document: {where}.{key} is missing",
            field=f"{where}.{key}",
            hint="pass the results.json written by `immunopet analyze` (docs/results.md)",
        )
    return mapping[key]


def _number(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"results document: {where} must be a finite number, got {value!r}")
    if positive and value <= 0.0:
        raise InputError(f"results document: {where} must be > 0, got {value!r}")
    return float(value)


def _datetime(value: Any, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise InputError(
            f"results document: {where} is not an ISO 8601 date-time: {value!r}", field=where
        ) from None
    return parsed


@dataclass(frozen=True, eq=False)
class Injection:
    """One administration of a tracer and the scans that image it.

    Parameters
    ----------
    injection_id : str
        ``"<tracer>@<injection date-time>"``.
    tracer, agent : str
        Tracer key and radiopharmaceutical name as the analysis recorded them.
    target : str or None
        What the tracer binds.
    nuclide : str
        Canonical nuclide name.
    half_life_s : float
        ICRP-107 physical half-life, s.
    injection_datetime : datetime.datetime
        Site-local date-time of the injection.
    injected_activity_bq : float
        Activity administered, Bq.
    weight_kg : float or None
        Body weight at the first scan, kg.
    scan_ids, timepoint_ids : tuple of str
        The scans of this injection and their visits, in time order.
    day : ndarray of shape (n_scans,)
        Visit days since the CAR T-cell infusion.
    time_s : ndarray of shape (n_scans,)
        Time of each measurement after the injection, s (strictly increasing).
    reference_time_s : ndarray of shape (n_scans,)
        Time of each scan's decay reference after the injection, s (0 for ADMIN).

    """

    injection_id: str
    tracer: str
    agent: str
    target: str | None
    nuclide: str
    half_life_s: float
    injection_datetime: datetime
    injected_activity_bq: float
    weight_kg: float | None
    scan_ids: tuple[str, ...]
    timepoint_ids: tuple[str, ...]
    day: FloatArray
    time_s: FloatArray
    reference_time_s: FloatArray
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (times in s)."""
        return {
            "injection_id": self.injection_id,
            "tracer": self.tracer,
            "agent": self.agent,
            "target": self.target,
            "nuclide": self.nuclide,
            "injection_datetime": self.injection_datetime.isoformat(),
            "injected_activity_bq": self.injected_activity_bq,
            "scan_ids": list(self.scan_ids),
            "timepoint_ids": list(self.timepoint_ids),
            "time_s": self.time_s.tolist(),
        }


@dataclass(frozen=True, eq=False)
class TimeActivityCurve:
    """One VOI measured on the scans of one injection.

    Parameters
    ----------
    voi_type : {"lesion", "organ"}
        Lesion (tracking ID) or organ (canonical name).
    voi_id : str
        ``L001`` … or an organ name.
    injection : Injection
        The administration the curve follows.
    timepoint_ids : tuple of str
        Visits with a measurement of this VOI (a subset of the injection's).
    time_s : ndarray of shape (n,)
        Seconds after the injection.
    day : ndarray of shape (n,)
        Days since the CAR T-cell infusion.
    concentration_bq_per_ml, concentration_se_bq_per_ml : ndarray of shape (n,)
        VOI mean activity concentration and its count-statistics SE (NaN when unknown), Bq/mL.
    activity_bq, activity_se_bq : ndarray of shape (n,)
        Activity in the VOI (mean × VOI volume) and its SE, Bq.
    volume_ml : ndarray of shape (n,)
        VOI volume, mL.
    decay_corrected : bool
        True: values decay-corrected to the injection; False: activity at the acquisition.

    """

    voi_type: str
    voi_id: str
    injection: Injection
    timepoint_ids: tuple[str, ...]
    time_s: FloatArray
    day: FloatArray
    concentration_bq_per_ml: FloatArray
    concentration_se_bq_per_ml: FloatArray
    activity_bq: FloatArray
    activity_se_bq: FloatArray
    volume_ml: FloatArray
    decay_corrected: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (NaN becomes ``None``)."""

        def listed(values: FloatArray) -> list[float | None]:
            return [float(v) if math.isfinite(v) else None for v in values]

        return {
            "voi_type": self.voi_type,
            "voi_id": self.voi_id,
            "injection_id": self.injection.injection_id,
            "tracer": self.injection.tracer,
            "timepoint_ids": list(self.timepoint_ids),
            "time_s": listed(self.time_s),
            "day": listed(self.day),
            "concentration_bq_per_ml": listed(self.concentration_bq_per_ml),
            "concentration_se_bq_per_ml": listed(self.concentration_se_bq_per_ml),
            "activity_bq": listed(self.activity_bq),
            "activity_se_bq": listed(self.activity_se_bq),
            "volume_ml": listed(self.volume_ml),
            "decay_corrected": self.decay_corrected,
        }


@dataclass(frozen=True)
class _Scan:
    scan_id: str
    timepoint_id: str
    day: float
    tracer: str
    agent: str
    target: str | None
    nuclide: str
    injected_activity_bq: float
    injection: datetime
    reference: datetime
    acquisition: datetime
    weight_kg: float | None


def _scans(document: Mapping[str, Any]) -> list[_Scan]:
    timepoints = _field(document, "timepoints", "results")
    if not isinstance(timepoints, Sequence) or isinstance(timepoints, str):
        raise InputError("results document: timepoints must be a list", field="timepoints")
    scans: list[_Scan] = []
    for i, timepoint in enumerate(timepoints):
        where = f"timepoints[{i}]"
        timepoint_id = str(_field(timepoint, "timepoint_id", where))
        day = _number(_field(timepoint, "day", where), f"{where}.day")
        visit = timepoint.get("datetime")
        for j, scan in enumerate(_field(timepoint, "scans", where)):
            at = f"{where}.scans[{j}]"
            nuclide_name = canonical_nuclide_name(str(_field(scan, "nuclide", at)))
            injection = _datetime(
                _field(scan, "injection_datetime", at), f"{at}.injection_datetime"
            )
            reference = _datetime(_field(scan, "scan_datetime", at), f"{at}.scan_datetime")
            correction = str(scan.get("decay_correction", "START"))
            acquisition = reference
            if correction == "ADMIN":
                if visit is None:
                    raise InputError(
                        f"results document: {at} is decay-corrected to the administration and "
                        f"{where}.datetime (the acquisition) is missing",
                        field=f"{where}.datetime",
                    )
                acquisition = _datetime(visit, f"{where}.datetime")
            weight = scan.get("weight_kg")
            scans.append(
                _Scan(
                    scan_id=str(scan.get("scan_id", f"{timepoint_id}-{scan.get('tracer')}")),
                    timepoint_id=timepoint_id,
                    day=day,
                    tracer=str(_field(scan, "tracer", at)),
                    agent=str(scan.get("agent", "")),
                    target=None if scan.get("target") is None else str(scan["target"]),
                    nuclide=nuclide_name,
                    injected_activity_bq=_number(
                        _field(scan, "injected_activity_bq", at),
                        f"{at}.injected_activity_bq",
                        positive=True,
                    ),
                    injection=injection,
                    reference=reference,
                    acquisition=acquisition,
                    weight_kg=None if weight is None else _number(weight, f"{at}.weight_kg"),
                )
            )
    return scans


def _injection_groups(document: Mapping[str, Any]) -> list[tuple[Injection, list[_Scan]]]:
    groups: dict[tuple[str, str], list[_Scan]] = {}
    for scan in _scans(document):
        groups.setdefault((scan.tracer, scan.injection.isoformat()), []).append(scan)
    out: list[tuple[Injection, list[_Scan]]] = []
    for (tracer, when), members in groups.items():
        members.sort(key=lambda s: seconds_between(s.injection, s.acquisition))
        first = members[0]
        notes: list[str] = []
        if len({s.timepoint_id for s in members}) != len(members):
            raise InputError(
                f"results document: tracer {tracer!r} injected at {when} has two scans at one "
                "timepoint",
                field="timepoints",
            )
        if len({s.nuclide for s in members}) != 1:
            raise InputError(
                f"results document: the scans of {tracer!r} injected at {when} name different "
                f"nuclides {sorted({s.nuclide for s in members})}",
                field="timepoints",
            )
        activities = np.array([s.injected_activity_bq for s in members])
        if np.ptp(activities) > 1e-6 * activities.max():
            notes.append(
                f"the scans of {tracer} injected at {when} state different injected activities "
                f"({activities.min():.4g}-{activities.max():.4g} Bq); the first scan's is used"
            )
        times = np.array([seconds_between(s.injection, s.acquisition) for s in members])
        if np.any(times <= 0.0) or np.any(np.diff(times) <= 0.0):
            raise InputError(
                f"results document: the scans of {tracer!r} injected at {when} must follow the "
                f"injection at distinct times, got {times.tolist()} s",
                field="timepoints",
                hint="check injection_datetime and scan_datetime of these scans",
            )
        references = np.array([seconds_between(s.injection, s.reference) for s in members])
        weights = [s.weight_kg for s in members if s.weight_kg is not None]
        injection = Injection(
            injection_id=f"{tracer}@{when}",
            tracer=tracer,
            agent=first.agent,
            target=first.target,
            nuclide=first.nuclide,
            half_life_s=float(nuclide(first.nuclide).half_life_s),
            injection_datetime=first.injection,
            injected_activity_bq=first.injected_activity_bq,
            weight_kg=weights[0] if weights else None,
            scan_ids=tuple(s.scan_id for s in members),
            timepoint_ids=tuple(s.timepoint_id for s in members),
            day=np.array([s.day for s in members]),
            time_s=times,
            reference_time_s=references,
            warnings=tuple(notes),
        )
        out.append((injection, members))
    out.sort(key=lambda item: (item[0].injection_datetime, item[0].tracer))
    return out


def injections_from_results(document: Mapping[str, Any]) -> tuple[Injection, ...]:
    """The injections of a results document with their scans, in time order.

    Scans of the same tracer with the same ``injection_datetime`` form one injection.

    Examples
    --------
    >>> doc = {"timepoints": [
    ...     {"timepoint_id": f"TP0{i}", "day": d, "datetime": None, "scans": [{
    ...         "scan_id": f"TP0{i}-zr", "tracer": "zr", "nuclide": "Zr-89",
    ...         "injected_activity_bq": 37e6, "injection_datetime": "2025-01-06T10:00:00",
    ...         "scan_datetime": f"2025-01-{6 + d:02d}T10:00:00", "decay_correction": "START"}]}
    ...     for i, d in ((1, 3), (2, 7))]}
    >>> (injection,) = injections_from_results(doc)
    >>> injection.injection_id, (injection.time_s / 86400).tolist()
    ('zr@2025-01-06T10:00:00', [3.0, 7.0])

    """
    return tuple(injection for injection, _ in _injection_groups(document))


def _measurement_rows(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rows = _field(document, "measurements", "results")
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        raise InputError("results document: measurements must be a list", field="measurements")
    return list(rows)


def curves_from_results(
    document: Mapping[str, Any],
    *,
    decay_corrected: bool = True,
    voi_type: str | None = None,
) -> tuple[TimeActivityCurve, ...]:
    """Time–activity curves per VOI × injection from a results document.

    Parameters
    ----------
    document : Mapping
        ``results.json`` as a mapping (:func:`load_results_document`).
    decay_corrected : bool, optional
        True (default): concentrations and activities decay-corrected to the injection;
        False: the activity present at each acquisition (module docstring).
    voi_type : {"lesion", "organ"}, optional
        Keep only one kind of VOI.

    Returns
    -------
    tuple of TimeActivityCurve
        One per VOI and injection with at least one measurement, ordered by injection, then
        lesions before organs, then VOI ID.

    Raises
    ------
    InputError
        For a malformed document (missing key, non-numeric value, scans before the injection).

    """
    groups = _injection_groups(document)
    by_scan: dict[tuple[str, str], tuple[Injection, int, _Scan]] = {}
    for injection, members in groups:
        for position, scan in enumerate(members):
            by_scan[(scan.timepoint_id, scan.tracer)] = (injection, position, scan)
    points: dict[tuple[str, str, str], list[tuple[int, Mapping[str, Any]]]] = {}
    for i, row in enumerate(_measurement_rows(document)):
        where = f"measurements[{i}]"
        kind = str(_field(row, "voi_type", where))
        if voi_type is not None and kind != voi_type:
            continue
        key = (str(_field(row, "timepoint_id", where)), str(_field(row, "tracer", where)))
        if key not in by_scan:
            raise InputError(
                f"results document: {where} refers to timepoint {key[0]} and tracer {key[1]!r}, "
                "which no scan of the document has",
                field=f"{where}.timepoint_id",
            )
        injection, position, _ = by_scan[key]
        voi = str(_field(row, "voi_id", where))
        points.setdefault((injection.injection_id, kind, voi), []).append((position, row))
    injections = {injection.injection_id: (injection, members) for injection, members in groups}
    curves = []
    for (injection_id, kind, voi), rows in points.items():
        injection, members = injections[injection_id]
        rows.sort(key=lambda item: item[0])
        if len({index for index, _ in rows}) != len(rows):
            raise InputError(
                f"results document: VOI {voi!r} is measured twice on one scan of {injection_id}",
                field="measurements",
            )
        index = np.array([item[0] for item in rows], dtype=np.intp)
        mean = np.array([_number(r["mean_bq_per_ml"], f"{voi}.mean_bq_per_ml") for _, r in rows])
        se = np.array([_optional(r.get("mean_bq_per_ml_se")) for _, r in rows])
        volume = np.array([_optional(r.get("volume_ml")) for _, r in rows])
        total = np.array([_optional(r.get("total_uptake_bq")) for _, r in rows])
        total = np.where(np.isfinite(total), total, mean * volume)
        factor = _decay_factors(injection, members, index, decay_corrected)
        curves.append(
            TimeActivityCurve(
                voi_type=kind,
                voi_id=voi,
                injection=injection,
                timepoint_ids=tuple(members[i].timepoint_id for i in index),
                time_s=injection.time_s[index],
                day=injection.day[index],
                concentration_bq_per_ml=mean * factor,
                concentration_se_bq_per_ml=se * factor,
                activity_bq=total * factor,
                activity_se_bq=se * volume * factor,
                volume_ml=volume,
                decay_corrected=decay_corrected,
            )
        )
    order = {injection.injection_id: n for n, (injection, _) in enumerate(groups)}
    curves.sort(key=lambda c: (order[c.injection.injection_id], c.voi_type != "lesion", c.voi_id))
    return tuple(curves)


def _optional(value: Any) -> float:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _decay_factors(
    injection: Injection, members: list[_Scan], index: NDArray[np.intp], decay_corrected: bool
) -> FloatArray:
    """Factor turning a value at each scan's reference into the requested frame."""
    factors = []
    for i in index:
        scan = members[int(i)]
        if decay_corrected:
            elapsed = -seconds_between(scan.injection, scan.reference)  # back to the injection
        else:
            elapsed = seconds_between(scan.reference, scan.acquisition)  # on to the acquisition
        factors.append(decay_factor(injection.half_life_s, elapsed))
    return np.array(factors, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Point SDs and blood input
# --------------------------------------------------------------------------------------------


def point_sd(curve: TimeActivityCurve) -> FloatArray:
    """SD of each concentration of ``curve``: count statistics ⊕ test–retest variability, Bq/mL.

    The within-subject CV beyond counting noise is that of ``data/repeatability.toml``
    (``immuno_pet`` for lesions, ``organ`` for organs; both 10 %); a missing count-statistics SE
    counts as 0.

    Examples
    --------
    >>> import numpy as np
    >>> injection = Injection("t@x", "t", "", None, "Zr-89", 1.0, datetime(2025, 1, 1), 1.0,
    ...     None, (), (), np.zeros(1), np.ones(1), np.ones(1))
    >>> curve = TimeActivityCurve("organ", "liver", injection, ("TP01",), np.ones(1),
    ...     np.zeros(1), np.array([100.0]), np.array([3.0]), np.ones(1), np.ones(1),
    ...     np.ones(1), True)
    >>> round(float(point_sd(curve)[0]), 6)  # sqrt(3² + 10²)
    10.440307

    """
    settings = _settings()["point_sd"]
    key = settings["lesion"] if curve.voi_type == "lesion" else settings["organ"]
    wcv = float(read_toml(_REPEATABILITY)[key]["wcv"])
    se = np.nan_to_num(curve.concentration_se_bq_per_ml, nan=0.0)
    result: FloatArray = np.hypot(se, wcv * curve.concentration_bq_per_ml)
    return result


@dataclass(frozen=True, eq=False)
class BloodInput:
    """Plasma input of one injection and how it was built.

    Parameters
    ----------
    plasma : PlasmaInput
        Decay-corrected to the injection, Bq/mL, with SDs.
    blood_voi : str or None
        The blood-pool VOI used (None: samples only).
    haematocrit : float
        Haematocrit used for whole blood → plasma.
    haematocrit_source : str
        ``"manifest"`` or the reference it was taken from.
    n_image_points, n_samples : int
        Blood-pool values and blood samples used.
    anchor_plasma_bq_per_ml : float or None
        Cp(0) = A_inj/V_plasma when the injection anchor was used.
    warnings : tuple of str
        Assumptions a reader must know.

    """

    plasma: PlasmaInput
    blood_voi: str | None
    haematocrit: float
    haematocrit_source: str
    n_image_points: int
    n_samples: int
    anchor_plasma_bq_per_ml: float | None
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (sample times in s, plasma in Bq/mL)."""
        return {
            "method": "piecewise log-linear between samples (exponential segments)",
            "blood_voi": self.blood_voi,
            "haematocrit": self.haematocrit,
            "haematocrit_source": self.haematocrit_source,
            "n_image_points": self.n_image_points,
            "n_samples": self.n_samples,
            "anchor_plasma_bq_per_ml": self.anchor_plasma_bq_per_ml,
            "times_s": self.plasma.times_s.tolist(),
            "plasma_bq_per_ml": self.plasma.plasma_bq_per_ml.tolist(),
            "warnings": list(self.warnings),
        }


def _clinical(document: Mapping[str, Any]) -> Mapping[str, Any]:
    clinical = document.get("clinical")
    return clinical if isinstance(clinical, Mapping) else {}


def haematocrit_of(document: Mapping[str, Any]) -> tuple[float, str]:
    """(haematocrit, source): the manifest's, else the ICRP 89 reference adult male's."""
    value = _clinical(document).get("hematocrit")
    if value is not None:
        number = _number(value, "clinical.hematocrit")
        if not 0.0 < number < 1.0:
            raise InputError(
                f"results document: clinical.hematocrit must be a fraction in (0, 1), got "
                f"{value!r}",
                field="clinical.hematocrit",
            )
        return number, "manifest"
    from immunopet.tracers import TwoTissueVectorModel, vector_pharmacokinetics

    body = TwoTissueVectorModel(vector_pharmacokinetics("igg")).body
    return float(body.haematocrit), "reference adult male (ICRP Publication 89; not measured)"


def _samples_of(
    document: Mapping[str, Any], injection: Injection, haematocrit: float
) -> tuple[list[float], list[float], list[str]]:
    """Plasma samples of ``injection`` (times s, Bq/mL decay-corrected to the injection)."""
    times: list[float] = []
    values: list[float] = []
    notes: list[str] = []
    for i, sample in enumerate(_clinical(document).get("blood_samples") or []):
        where = f"clinical.blood_samples[{i}]"
        if str(_field(sample, "tracer", where)) != injection.tracer:
            continue
        if sample.get("datetime") is not None:
            when = _datetime(sample["datetime"], f"{where}.datetime")
            elapsed = seconds_between(injection.injection_datetime, when)
            later = [
                other
                for other in _same_tracer_injections(document, injection.tracer)
                if injection.injection_datetime < other <= when
            ]
            if elapsed < 0.0 or later:
                continue  # belongs to another injection of the tracer
        elif sample.get("time_after_injection_s") is not None:
            if len(_same_tracer_injections(document, injection.tracer)) > 1:
                notes.append(
                    f"{where} gives only a time after injection and {injection.tracer} was "
                    "injected more than once: not used (give its date-time)"
                )
                continue
            elapsed = _number(sample["time_after_injection_s"], f"{where}.time_after_injection_s")
        else:
            raise InputError(
                f"results document: {where} needs datetime or time_after_injection_s",
                field=where,
            )
        measured = _number(_field(sample, "bq_per_ml", where), f"{where}.bq_per_ml")
        if measured <= 0.0 or elapsed < 0.0:
            notes.append(f"{where}: not a positive activity after the injection; not used")
            continue
        plasma = measured / (1.0 - haematocrit) if sample.get("kind") == "whole_blood" else measured
        times.append(elapsed)
        values.append(plasma / decay_factor(injection.half_life_s, elapsed))
    return times, values, notes


def _same_tracer_injections(document: Mapping[str, Any], tracer: str) -> list[datetime]:
    return sorted({s.injection for s in _scans(document) if s.tracer == tracer})


def blood_input(
    document: Mapping[str, Any],
    injection: Injection,
    curves: Sequence[TimeActivityCurve] | None = None,
) -> BloodInput:
    """Plasma input of one injection: samples, blood-pool VOI and injection anchor.

    Parameters
    ----------
    document : Mapping
        The results document (for ``clinical`` samples and haematocrit).
    injection : Injection
        The administration.
    curves : sequence of TimeActivityCurve, optional
        Decay-corrected curves of the document (computed when not given).

    Returns
    -------
    BloodInput

    Raises
    ------
    InputError
        When fewer than 2 blood values (VOI, samples and anchor together) exist.

    """
    settings = _settings()["blood_input"]
    haematocrit, hct_source = haematocrit_of(document)
    notes: list[str] = []
    if hct_source != "manifest":
        notes.append(f"haematocrit {haematocrit} assumed: {hct_source}")
    if curves is None:
        curves = curves_from_results(document, decay_corrected=True)
    blood_curve = None
    for name in settings["blood_vois"]:
        for curve in curves:
            if (
                curve.injection.injection_id == injection.injection_id
                and curve.voi_type == "organ"
                and curve.voi_id == name
            ):
                blood_curve = curve
                break
        if blood_curve is not None:
            break
    if blood_curve is not None and not blood_curve.decay_corrected:
        raise InputError("blood input needs decay-corrected curves", field="curves")
    sample_t, sample_p, sample_notes = _samples_of(document, injection, haematocrit)
    notes += sample_notes
    sample_rel = float(settings["sample_relative_sd"])
    sample_sd = [sample_rel * v for v in sample_p]
    anchor = None
    first_image = float(blood_curve.time_s[0]) if blood_curve is not None else math.inf
    if injection.weight_kg is not None and not any(t < first_image for t in sample_t):
        from immunopet.tracers import TwoTissueVectorModel, vector_pharmacokinetics

        body = TwoTissueVectorModel(vector_pharmacokinetics("igg")).body
        blood_ml_per_kg = body.blood_volume_ml / (body.body_mass_g / G_PER_KG)
        plasma_ml = blood_ml_per_kg * injection.weight_kg * (1.0 - haematocrit)
        anchor = injection.injected_activity_bq / plasma_ml
        sample_t.append(0.0)
        sample_p.append(anchor)
        sample_sd.append(float(settings["anchor_relative_sd"]) * anchor)
        notes.append(
            f"plasma at injection from the injected activity and a plasma volume of "
            f"{plasma_ml:.0f} mL ({blood_ml_per_kg:.1f} mL blood/kg of the ICRP 89 reference adult "
            f"× {injection.weight_kg:g} kg × (1 − Hct))"
        )
    elif injection.weight_kg is None and not sample_t:
        notes.append(
            "no body weight and no early blood sample: the first blood segment is extended back "
            "to the injection (misses the fast early plasma phase; K_i biased high)"
        )
    n_image = 0
    if blood_curve is not None:
        sd = point_sd(blood_curve)
        image_t = blood_curve.time_s
        image_b = blood_curve.concentration_bq_per_ml
        if np.any(image_b <= 0.0):
            raise InputError(
                f"blood-pool VOI {blood_curve.voi_id} of {injection.injection_id} has a "
                "non-positive mean",
                field="measurements",
            )
        n_image = int(image_t.size - np.count_nonzero(np.isin(image_t, sample_t)))
        plasma = PlasmaInput.from_image_and_samples(
            image_t,
            image_b,
            haematocrit,
            sd,
            sample_times_s=sample_t,
            sample_plasma_bq_per_ml=sample_p,
            sample_sd_bq_per_ml=sample_sd if sample_t else None,
        )
    else:
        if len(sample_t) < 2:
            raise InputError(
                f"{injection.injection_id}: no blood-pool VOI ({', '.join(settings['blood_vois'])})"
                " and fewer than 2 blood samples: no input function",
                field="measurements",
                hint="add blood samples to the study manifest (blood_samples)",
            )
        plasma = PlasmaInput.from_plasma(
            sample_t, sample_p, sample_sd, haematocrit=haematocrit, source="blood samples"
        )
    if plasma.times_s.size < 2:
        raise InputError(
            f"{injection.injection_id}: fewer than 2 blood values: no input function",
            field="measurements",
        )
    return BloodInput(
        plasma=plasma,
        blood_voi=None if blood_curve is None else blood_curve.voi_id,
        haematocrit=haematocrit,
        haematocrit_source=hct_source,
        n_image_points=n_image,
        n_samples=len(sample_t) - (anchor is not None),
        anchor_plasma_bq_per_ml=anchor,
        warnings=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _cell(value: str, column: str, where: str) -> Any:
    text = value.strip()
    if column in _BOOL_COLUMNS and text:
        if text.casefold() not in ("true", "false"):
            raise InputError(f"{where}: {column} is not True or False: {value!r}", field=column)
        return text.casefold() == "true"
    if column not in _NUMBER_COLUMNS:
        return text if text else None
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"{where}: {column} is not a number: {value!r}", field=column) from None
    return int(number) if column == "n_voxels" and number.is_integer() else number


def _read_table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            rows = [
                {
                    key.strip(): _cell(value or "", key.strip(), f"{path.name} row {n + 2}")
                    for key, value in raw.items()
                    if key is not None
                }
                for n, raw in enumerate(reader)
            ]
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text table", field="path") from None
    except csv.Error as error:
        raise InputError(f"{path}: not a CSV table ({error})", field="path") from None
    return header, rows


def _document_from_table(path: Path) -> dict[str, Any]:
    header, rows = _read_table(path)
    if all(column in header for column in _COUNT_COLUMNS) and "voi_id" not in header:
        return {"timepoints": [], "measurements": [], "clinical": {"car_t_counts": rows}}
    missing = [column for column in _REQUIRED_COLUMNS if column not in header]
    if missing:
        raise InputError(
            f"{path}: columns {missing} are missing",
            field="path",
            hint="give a measurements.csv of `immunopet analyze` (with its results.json beside "
            "it) or a table of car T-cell counts with columns day, value, unit, source",
        )
    beside = path.parent / _RESULTS_JSON
    if beside.is_file():
        document = _read_json(beside)
        document["measurements"] = rows
        return document
    missing = [column for column in _SCAN_COLUMNS if column not in header]
    if missing:
        raise InputError(
            f"{path}: no {_RESULTS_JSON} beside it and columns {missing} are missing, so the "
            "injection of each scan is unknown",
            field="path",
            hint=f"keep the {_RESULTS_JSON} of `immunopet analyze` beside the table or add the "
            f"columns {', '.join(_SCAN_COLUMNS)} (docs/kinetics.md)",
        )
    timepoints: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(rows):
        tp = str(row["timepoint_id"])
        entry = timepoints.setdefault(
            tp, {"timepoint_id": tp, "day": row.get("day"), "datetime": None, "scans": []}
        )
        if entry["day"] is None:
            raise InputError(f"{path} row {n + 2}: day is empty", field="day")
        if any(scan["tracer"] == row["tracer"] for scan in entry["scans"]):
            continue
        entry["scans"].append(
            {
                "scan_id": f"{tp}-{row['tracer']}",
                "tracer": row["tracer"],
                "agent": row.get("agent") or "",
                "target": row.get("target"),
                "nuclide": row["nuclide"],
                "injected_activity_bq": row["injected_activity_bq"],
                "injection_datetime": row["injection_datetime"],
                "scan_datetime": row["scan_datetime"],
                "weight_kg": row.get("weight_kg"),
                "decay_correction": row.get("decay_correction") or "START",
            }
        )
    return {
        "timepoints": list(timepoints.values()),
        "measurements": rows,
        "clinical": {},
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error})", field="path") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file", field="path") from None
    if not isinstance(document, dict):
        raise InputError(f"{path}: expected a JSON object", field="path")
    return document


def load_results_document(path: str | Path) -> dict[str, Any]:
    """Read what ``immunopet kinetics`` / ``immunopet dose`` accept.

    Parameters
    ----------
    path : str or pathlib.Path
        An analysis output folder (its ``results.json``), a ``results.json`` file, a
        ``measurements.csv`` (with the ``results.json`` beside it, or with the columns
        ``nuclide``, ``injected_activity_bq``, ``injection_datetime``, ``scan_datetime``), or a
        table of CAR T-cell counts (columns ``day``, ``value``, ``unit``, ``source``).

    Returns
    -------
    dict
        A results document (at least ``timepoints``, ``measurements`` and ``clinical``).

    Raises
    ------
    InputError
        When the path does not exist or is none of the above.

    """
    location = Path(path)
    if location.is_dir():
        candidate = location / _RESULTS_JSON
        if not candidate.is_file():
            raise InputError(
                f"{location}: no {_RESULTS_JSON} in this folder",
                field="path",
                hint="give the --out folder of `immunopet analyze`, or a measurements CSV",
            )
        return _read_json(candidate)
    if not location.is_file():
        raise InputError(f"{location}: no such file or folder", field="path")
    if location.suffix.lower() == ".json":
        return _read_json(location)
    if location.suffix.lower() in (".csv", ".tsv", ".txt"):
        return _document_from_table(location)
    raise InputError(
        f"{location}: expected a results folder, results.json or a .csv table",
        field="path",
    )
