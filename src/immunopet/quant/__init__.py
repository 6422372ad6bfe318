"""Quantification: the one SUV engine, body-size formulas, VOI statistics and their noise."""

from immunopet.quant._body_size import bsa_dubois_m2, lbm_james_kg, lbm_janmahasatian_kg
from immunopet.quant._scan import StandardizedScan, standardize_scan
from immunopet.quant._suv import SuvFactors, SuvInputs, resolve_suv_inputs, standardize
from immunopet.quant._uncertainty import ImageNoise, estimate_image_noise
from immunopet.quant._voi import VoiStatistics, sphere_kernel, voi_statistics

__all__ = [
    "ImageNoise",
    "StandardizedScan",
    "SuvFactors",
    "SuvInputs",
    "VoiStatistics",
    "bsa_dubois_m2",
    "estimate_image_noise",
    "lbm_james_kg",
    "lbm_janmahasatian_kg",
    "resolve_suv_inputs",
    "sphere_kernel",
    "standardize",
    "standardize_scan",
    "voi_statistics",
]
