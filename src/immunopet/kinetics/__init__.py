"""Kinetic models: CAR T-cell kinetics (Stein 2019), blood input, Patlak, compartment models.

Also the kinetic analysis of an analysed study: time–activity curves per VOI and injection from
``results.json`` (:func:`curves_from_results`) and the ``kinetics`` section of the results
(:func:`kinetics_from_results`).
"""

from immunopet.kinetics._cellular import Stein2019CellularKinetics
from immunopet.kinetics._cellular_fit import (
    CellularKineticsFit,
    Estimate,
    GoodnessOfFit,
    fit_expansion_biexponential,
    fit_stein2019,
)
from immunopet.kinetics._compartment import (
    CompartmentFit,
    CompartmentModel,
    Kety1951OneTissue,
    Phelps1979TwoTissueReversible,
    Sokoloff1977TwoTissueIrreversible,
)
from immunopet.kinetics._curves import (
    BloodInput,
    Injection,
    TimeActivityCurve,
    blood_input,
    curves_from_results,
    injections_from_results,
    load_results_document,
    point_sd,
)
from immunopet.kinetics._input import InterpolationMethod, PlasmaInput
from immunopet.kinetics._maps import patlak_volumes, write_ki_parametric_map, write_patlak_nifti
from immunopet.kinetics._patlak import (
    KiUnit,
    Patlak1983,
    PatlakFit,
    PatlakMaps,
    ki_from_unit,
    ki_in_unit,
)
from immunopet.kinetics._results import KineticModel, kinetics_from_results

__all__ = [
    "BloodInput",
    "CellularKineticsFit",
    "CompartmentFit",
    "CompartmentModel",
    "Estimate",
    "GoodnessOfFit",
    "Injection",
    "InterpolationMethod",
    "Kety1951OneTissue",
    "KiUnit",
    "KineticModel",
    "Patlak1983",
    "PatlakFit",
    "PatlakMaps",
    "Phelps1979TwoTissueReversible",
    "PlasmaInput",
    "Sokoloff1977TwoTissueIrreversible",
    "Stein2019CellularKinetics",
    "TimeActivityCurve",
    "blood_input",
    "curves_from_results",
    "fit_expansion_biexponential",
    "fit_stein2019",
    "injections_from_results",
    "ki_from_unit",
    "ki_in_unit",
    "kinetics_from_results",
    "load_results_document",
    "patlak_volumes",
    "point_sd",
    "write_ki_parametric_map",
    "write_patlak_nifti",
]
