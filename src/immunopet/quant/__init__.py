"""Quantification: the one SUV engine, body-size formulas and VOI statistics."""

from immunopet.quant._body_size import bsa_dubois_m2, lbm_james_kg, lbm_janmahasatian_kg
from immunopet.quant._suv import SuvFactors, SuvInputs, resolve_suv_inputs, standardize

__all__ = [
    "SuvFactors",
    "SuvInputs",
    "bsa_dubois_m2",
    "lbm_james_kg",
    "lbm_janmahasatian_kg",
    "resolve_suv_inputs",
    "standardize",
]
