"""Kinetic models: CAR T-cell cellular kinetics (Stein 2019); later curves, Patlak, compartments."""

from immunopet.kinetics._cellular import Stein2019CellularKinetics

__all__ = ["Stein2019CellularKinetics"]
