"""Kinetic models: CAR T-cell kinetics (Stein 2019), blood input, Patlak, compartment models."""

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

__all__ = [
    "CellularKineticsFit",
    "CompartmentFit",
    "CompartmentModel",
    "Estimate",
    "GoodnessOfFit",
    "InterpolationMethod",
    "Kety1951OneTissue",
    "KiUnit",
    "Patlak1983",
    "PatlakFit",
    "PatlakMaps",
    "Phelps1979TwoTissueReversible",
    "PlasmaInput",
    "Sokoloff1977TwoTissueIrreversible",
    "Stein2019CellularKinetics",
    "fit_expansion_biexponential",
    "fit_stein2019",
    "ki_from_unit",
    "ki_in_unit",
    "patlak_volumes",
    "write_ki_parametric_map",
    "write_patlak_nifti",
]
