r"""When is a change between two scans real? Count statistics plus published repeatability.

A change of a VOI measurement from ``baseline`` to ``current`` is judged on the log ratio
d = ln(current / baseline), whose standard deviation under *no biological change* is

    σ_d² = (SE_b / b)² + (SE_c / c)² + 2 · wCV²,

with SE the count-statistics standard error of each measurement (measured per scan,
:mod:`immunopet.quant._uncertainty`) and wCV the within-subject coefficient of variation of
repeated measurements beyond counting noise for the tracer class (``data/repeatability.toml``,
cited). The change is *significant* when |d| > z · σ_d with z of the two-sided confidence
(``[decision]``, 95 %: z = 1.96; for wCV alone this is the repeatability coefficient of Bland
and Altman). Every result carries the change, its uncertainty and the threshold used, so a
physician can see how far the change is from the noise.

References
----------
Bland JM, Altman DG. Statistical methods for assessing agreement between two methods of
clinical measurement. Lancet 1986;1:307-310.
Lodge MA. Repeatability of SUV in oncologic 18F-FDG PET. J Nucl Med 2017;58:523-532.

"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist
from typing import Any

from immunopet.data import read_toml
from immunopet.errors import InputError

__all__ = ["Change", "assess_change", "assess_ratio", "repeatability_wcv"]

_TABLE = "repeatability.toml"


def repeatability_wcv(tracer_class: str) -> float:
    """Within-subject CV beyond counting noise of ``tracer_class`` (``fdg``, ``immuno_pet``, ``organ``)."""
    table = read_toml(_TABLE)
    if tracer_class not in table or tracer_class == "decision":
        raise InputError(
            f"no repeatability for tracer class {tracer_class!r}",
            field="tracer_class",
            hint=f"use one of {sorted(k for k in table if k != 'decision')}",
        )
    return float(table[tracer_class]["wcv"])


@dataclass(frozen=True)
class Change:
    """A measured change and whether it exceeds what repeatability allows.

    Attributes
    ----------
    metric : str
        What was compared (e.g. ``"suv_mean"``).
    baseline, current : float
        The two values.
    relative_change : float
        current / baseline − 1.
    log_ratio, log_ratio_sd : float
        d = ln(current / baseline) and its SD without biological change.
    threshold_relative_decrease, threshold_relative_increase : float
        Smallest relative decrease (e.g. 0.33 for −33 %) and increase that count as real.
    z : float
        d / σ_d.
    significant : bool
        |z| above the two-sided critical value.
    confidence : float
        Two-sided confidence of the decision.
    wcv : float
        The repeatability used.

    """

    metric: str
    baseline: float
    current: float
    relative_change: float
    log_ratio: float
    log_ratio_sd: float
    threshold_relative_decrease: float
    threshold_relative_increase: float
    z: float
    significant: bool
    confidence: float
    wcv: float

    @property
    def change(self) -> float:
        """Current minus baseline, in the metric's unit."""
        return self.current - self.baseline

    @property
    def uncertainty(self) -> float:
        """SD of ``change`` without biological change (delta method: current × σ_d)."""
        return abs(self.current) * self.log_ratio_sd

    @property
    def threshold(self) -> float:
        """The signed relative change the result had to pass, in its own direction.

        −``threshold_relative_decrease`` for a decrease, +``threshold_relative_increase``
        otherwise.
        """
        if self.log_ratio < 0.0:
            return -self.threshold_relative_decrease
        return self.threshold_relative_increase

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready evidence: the fields plus ``change``, ``uncertainty`` and ``threshold``."""
        return {
            **asdict(self),
            "change": self.change,
            "uncertainty": self.uncertainty,
            "threshold": self.threshold,
        }


def assess_change(
    metric: str,
    baseline: float,
    current: float,
    *,
    baseline_se: float | None,
    current_se: float | None,
    wcv: float,
    confidence: float | None = None,
) -> Change:
    """Compare two positive measurements of one VOI (see the module text).

    Parameters
    ----------
    metric : str
        Name of the measurement, for the record.
    baseline, current : float
        The values (baseline > 0; a current value below its own standard error, e.g. a
        complete loss, is raised to it, so a loss reads as a large, finite decrease).
    baseline_se, current_se : float or None
        Count-statistics standard errors (``None``: counting noise unknown, only ``wcv``).
    wcv : float
        Repeatability beyond counting noise (:func:`repeatability_wcv`).
    confidence : float, optional
        Two-sided confidence (default ``[decision].confidence`` of the data file).

    Returns
    -------
    Change

    Examples
    --------
    >>> change = assess_change("suv_mean", 6.0, 2.0, baseline_se=0.2, current_se=0.2, wcv=0.10)
    >>> round(change.relative_change, 3), change.significant
    (-0.667, True)
    >>> assess_change("suv_mean", 6.0, 5.5, baseline_se=0.2, current_se=0.2, wcv=0.10).significant
    False

    """
    if not (math.isfinite(baseline) and math.isfinite(current)) or baseline <= 0.0:
        raise InputError(f"cannot test a change from {baseline!r} to {current!r}", field=metric)
    level = float(read_toml(_TABLE)["decision"]["confidence"]) if confidence is None else confidence
    # A value at or below its own noise (e.g. complete loss) is raised to that noise (or a
    # tiny fraction of the baseline), so its relative uncertainty stays at most 100 %.
    floor = max(baseline * 1e-6, current_se or 0.0)
    now = max(current, floor)
    variance = 2.0 * wcv * wcv
    for value, se in ((baseline, baseline_se), (now, current_se)):
        if se is not None and se > 0.0:
            variance += (se / value) ** 2
    sd = math.sqrt(variance)
    d = math.log(now / baseline)
    critical = NormalDist().inv_cdf(0.5 + level / 2.0)
    z = d / sd if sd > 0 else math.copysign(math.inf, d)
    return Change(
        metric=metric,
        baseline=baseline,
        current=current,
        relative_change=current / baseline - 1.0,
        log_ratio=d,
        log_ratio_sd=sd,
        threshold_relative_decrease=1.0 - math.exp(-critical * sd),
        threshold_relative_increase=math.exp(critical * sd) - 1.0,
        z=z,
        significant=abs(z) > critical,
        confidence=level,
        wcv=wcv,
    )


def assess_ratio(
    metric: str,
    ratio: float,
    threshold: float,
    *,
    relative_se: float | None,
    wcv: float,
    confidence: float | None = None,
) -> Change:
    r"""Test whether a ratio of two VOIs of one scan (e.g. lesion to blood) passes a threshold.

    The ratio R is compared with the threshold T on d = ln(R / T), whose standard deviation
    under R = T is σ_d² = (relative SE of R)² + wCV² — one measurement, so one wCV (where
    :func:`assess_change` compares two measurements and counts it twice). The result reads like
    a change from ``baseline`` = T to ``current`` = R.

    Parameters
    ----------
    metric : str
        Name of the ratio (``"lesion_to_blood"``).
    ratio : float
        The measured ratio (≥ 0; a ratio at or below its own SE is raised to it).
    threshold : float
        The ratio it is compared with (> 0), e.g. 1.2 for FMISO tumour-to-blood.
    relative_se : float or None
        Count-statistics relative SE of the ratio, √((SE_a/a)² + (SE_b/b)²) (``None``: unknown).
    wcv : float
        Repeatability of the ratio beyond counting noise (:func:`repeatability_wcv`).
    confidence : float, optional
        Two-sided confidence (default ``[decision].confidence``).

    Returns
    -------
    Change
        ``significant`` with ``log_ratio > 0``: the ratio is above the threshold beyond the
        noise; with ``log_ratio < 0``: below it.

    Examples
    --------
    >>> above = assess_ratio("lesion_to_blood", 1.6, 1.2, relative_se=0.05, wcv=0.10)
    >>> above.significant, round(above.threshold, 3)
    (True, 0.245)
    >>> assess_ratio("lesion_to_blood", 1.3, 1.2, relative_se=0.05, wcv=0.10).significant
    False

    """
    se = None if relative_se is None else relative_se * ratio
    # assess_change counts the wCV twice (two measurements); here there is one.
    one = assess_change(
        metric,
        threshold,
        ratio,
        baseline_se=None,
        current_se=se,
        wcv=wcv / math.sqrt(2.0),
        confidence=confidence,
    )
    return replace(one, wcv=wcv)
