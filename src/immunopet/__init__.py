"""immunopet: quantitative, longitudinal immuno-PET/-SPECT for CAR T-cell therapy.

Importing the package does nothing visible and loads no data; nuclide tables are
read on first use.
"""

from importlib.metadata import PackageNotFoundError, version

from immunopet.errors import (
    GeometryError,
    ImmunopetError,
    InputError,
    NuclideError,
    TimingError,
    UnsupportedInputError,
)
from immunopet.image import AcquisitionTiming, Quantity, Volume

try:
    __version__ = version("immunopet")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "AcquisitionTiming",
    "GeometryError",
    "ImmunopetError",
    "InputError",
    "NuclideError",
    "Quantity",
    "TimingError",
    "UnsupportedInputError",
    "Volume",
    "__version__",
]
