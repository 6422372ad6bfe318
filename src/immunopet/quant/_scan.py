"""SUV for a whole scan as read from disk: the checks and the one call every consumer needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from immunopet.errors import InputError
from immunopet.image import Volume
from immunopet.io import Scan
from immunopet.quant._suv import SuvFactors, resolve_suv_inputs, standardize

__all__ = ["StandardizedScan", "standardize_scan"]


@dataclass(frozen=True)
class StandardizedScan:
    """A scan in Bq/mL at one reference instant, with its SUV factors and every warning.

    ``warnings`` gathers, without repeats, what the reader, the input resolution and
    the engine noticed, in that order.
    """

    scan: Scan
    activity: Volume
    factors: SuvFactors
    warnings: tuple[str, ...]

    @property
    def max_activity_bq_per_ml(self) -> float:
        """Largest activity concentration of the image, Bq/mL at the reference instant."""
        return float(np.nanmax(self.activity.array))

    @property
    def max_suv_bw(self) -> float:
        """Largest SUVbw of the image, g/mL."""
        return self.max_activity_bq_per_ml * self.factors.suv_bw_factor


def standardize_scan(scan: Scan, **overrides: Any) -> StandardizedScan:
    """Resolve the SUV inputs of ``scan`` (file facts + ``overrides``) and standardise it.

    Parameters
    ----------
    scan : Scan
        From :func:`immunopet.io.load_scan`.
    **overrides
        Any keyword of :func:`resolve_suv_inputs` (``weight_kg=…``, ``nuclide_name=…``,
        ``injection_datetime=…``, …); ``None`` values mean "not given".

    Raises
    ------
    InputError
        For a scan without administration data (CT) or without any date and time.

    """
    source = scan.volume.source
    if scan.acquisition is None:
        raise InputError(
            f"a {scan.modality} image has no administration data: SUV needs a PET or SPECT scan",
            path=source,
            field="Modality",
        )
    if scan.volume.timing is None:
        raise InputError(
            "the scan has no date and time (Series and Acquisition Date/Time are missing)",
            path=source,
            field="SeriesDate/SeriesTime (0008,0021/0031)",
        )
    inputs, warnings = resolve_suv_inputs(
        scan.acquisition, scan.volume.timing.start, source=source, **overrides
    )
    activity, factors = standardize(scan.volume, scan.acquisition, inputs)
    notes = tuple(dict.fromkeys([*scan.warnings, *warnings, *factors.warnings]))
    return StandardizedScan(scan, activity, factors, notes)
