"""Quantification: SUV engine, body size, VOI statistics, noise, partial volume, lesion spread."""

from immunopet.quant._body_size import bsa_dubois_m2, lbm_james_kg, lbm_janmahasatian_kg
from immunopet.quant._pvc import GtmResult, gtm_correct, gtm_regions
from immunopet.quant._scan import StandardizedScan, standardize_scan
from immunopet.quant._spread import lesion_spread
from immunopet.quant._suv import SuvFactors, SuvInputs, resolve_suv_inputs, standardize
from immunopet.quant._uncertainty import ImageNoise, estimate_image_noise
from immunopet.quant._voi import VoiStatistics, sphere_kernel, voi_statistics

__all__ = [
    "GtmResult",
    "ImageNoise",
    "StandardizedScan",
    "SuvFactors",
    "SuvInputs",
    "VoiStatistics",
    "bsa_dubois_m2",
    "estimate_image_noise",
    "gtm_correct",
    "gtm_regions",
    "lbm_james_kg",
    "lbm_janmahasatian_kg",
    "lesion_spread",
    "resolve_suv_inputs",
    "sphere_kernel",
    "standardize",
    "standardize_scan",
    "voi_statistics",
]
