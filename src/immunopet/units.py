"""Canonical units and the only place where unit conversions are written.

Inside immunopet every quantity has one canonical unit, written into its name:

========================  =============  ==========================
quantity                  canonical      name suffix
========================  =============  ==========================
length                    mm             ``_mm``
time                      s              ``_s``
activity                  Bq             ``_bq``
activity concentration    Bq/mL          ``_bq_per_ml``
mass                      g (body: kg)   ``_g`` / ``_kg``
volume                    mL             ``_ml``
energy                    keV            ``_kev``
========================  =============  ==========================

The UCUM codes are what DICOM and PET-BIDS output carry.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "BQ_PER_MBQ",
    "CM2_PER_M2",
    "CM_PER_M",
    "FWHM_PER_SIGMA",
    "G_PER_KG",
    "KEV_PER_MEV",
    "ML_PER_MM3",
    "MM_PER_CM",
    "MS_PER_S",
    "S_PER_DAY",
    "S_PER_HOUR",
    "S_PER_MINUTE",
    "UCUM",
]

MS_PER_S: Final = 1000.0
S_PER_MINUTE: Final = 60.0
S_PER_HOUR: Final = 3600.0
S_PER_DAY: Final = 86400.0
MM_PER_CM: Final = 10.0
CM_PER_M: Final = 100.0
CM2_PER_M2: Final = 1.0e4
ML_PER_MM3: Final = 1.0e-3
G_PER_KG: Final = 1000.0
KEV_PER_MEV: Final = 1000.0
BQ_PER_MBQ: Final = 1.0e6

#: Full width at half maximum of a Gaussian per standard deviation, 2·sqrt(2·ln 2) (resolution specs).
FWHM_PER_SIGMA: Final = 2.0 * math.sqrt(2.0 * math.log(2.0))

#: UCUM codes of the quantities immunopet writes.
UCUM: Final[dict[str, str]] = {
    "activity_concentration": "Bq/mL",
    "suv_bw": "g/mL",
    "suv_lbm": "g/mL",
    "suv_bsa": "cm2/mL",
    "percent_id_per_ml": "%/mL",
    "percent_id_per_g": "%/g",
    "hounsfield": "[hnsf'U]",
    "counts": "{counts}",
    "mask": "1",
    "unitless": "1",
}
