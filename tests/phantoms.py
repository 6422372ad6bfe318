"""Test support: ICRP-107 half-lives and hand-computed decay for expected values.

Expected values in tests are computed by hand from ICRP-107 half-lives written
here as literals (ICRP Publication 107; see shared/reference/DOMAIN_NUMBERS.md
§1.1), never from the engine under test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

#: ICRP-107 half-lives, seconds.
HALF_LIFE_S = {
    "F-18": 109.77 * 60.0,
    "Zr-89": 78.41 * 3600.0,
    "Ga-68": 67.71 * 60.0,
    "Cu-64": 12.700 * 3600.0,
    "I-124": 4.1760 * 86400.0,
    "In-111": 2.8047 * 86400.0,
    "Lu-177": 6.647 * 86400.0,
    "Tc-99m": 6.015 * 3600.0,
}

#: A right-handed LPS affine: slices along +z (feet to head), rows along +y, columns along +x.
AFFINE = np.array(
    [[0.0, 0.0, 4.0, -14.0], [0.0, 4.0, 0.0, -14.0], [3.0, 0.0, 0.0, -300.0], [0.0, 0.0, 0.0, 1.0]]
)


def remaining(nuclide: str, seconds: float) -> float:
    """Fraction remaining, 2^(−t/T½), with the ICRP-107 half-life above."""
    return float(2.0 ** (-seconds / HALF_LIFE_S[nuclide]))


PetWriter = Callable[..., Path]


#: Fields `immunopet suv --json` must print (the issue's CLI contract).
SUV_JSON_KEYS = frozenset(
    {
        "suv_bw_factor",
        "suv_lbm_james_factor",
        "suv_lbm_janmahasatian_factor",
        "suv_bsa_factor",
        "decayed_dose_bq",
        "injected_activity_bq",
        "injection_datetime",
        "reference_datetime",
        "nuclide",
        "half_life_s",
        "units",
        "decay_correction",
        "max_suv_bw",
        "warnings",
    }
)


def path_to_sphere_surface(rng: np.random.Generator, n: int, radius: float = 1.0) -> np.ndarray:
    """Monte Carlo photon paths: uniform starts in the unit sphere, isotropic directions.

    Returns the distance from each start to the sphere of ``radius`` (≥ 1) about the centre,
    shape (n,): the first-flight path lengths of the sphere (radius 1) or of a shell's outer
    surface. The same seed gives the same paths for any radius.
    """
    points = rng.normal(size=(n, 3))
    points *= (rng.random(n) ** (1.0 / 3.0) / np.linalg.norm(points, axis=1))[:, None]
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    along = np.sum(points * directions, axis=1)
    squared = np.sum(points**2, axis=1)
    return np.asarray(-along + np.sqrt(along**2 - squared + radius**2), dtype=np.float64)
