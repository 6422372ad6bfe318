"""Planning before any scan: scanners, imaging windows, nuclide choice, cell detectability, dose."""

from immunopet.planning._scanner import ScannerModel, known_scanners, scanner

__all__ = ["ScannerModel", "known_scanners", "scanner"]
