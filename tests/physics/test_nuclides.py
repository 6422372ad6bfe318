"""Nuclide data against ICRP-107 values (shared/reference/DOMAIN_NUMBERS.md §1.1)."""

from __future__ import annotations

import pytest

from immunopet.errors import NuclideError
from immunopet.physics import canonical_nuclide_name, known_nuclides, nuclide

# name, half-life (s), β+ yield per decay, main γ (keV, yield) or None
ICRP107 = [
    ("F-18", 109.77 * 60, 0.9673, None),
    ("Ga-68", 67.71 * 60, 0.8891, (1077.34, 0.0322)),
    ("Cu-64", 12.700 * 3600, 0.17408, None),
    ("Cu-67", 61.83 * 3600, 0.0, (184.577, 0.487)),
    ("Zr-89", 78.41 * 3600, 0.22741, (909.15, 0.9904)),
    ("Y-86", 14.74 * 3600, 0.3189, (1076.63, 0.825)),
    ("Y-90", 64.10 * 3600, 0.0, None),
    ("I-123", 13.27 * 3600, 0.0, (158.97, 0.833)),
    ("I-124", 4.1760 * 86400, 0.22862, (602.72, 0.629)),
    ("I-131", 8.02070 * 86400, 0.0, (364.489, 0.817)),
    ("In-111", 2.8047 * 86400, 0.0, (245.35, 0.9409)),
    ("Tc-99m", 6.015 * 3600, 0.0, (140.511, 0.8906)),
    ("Lu-177", 6.647 * 86400, 0.0, (208.366, 0.110)),
]


@pytest.mark.parametrize(("name", "half_life_s", "beta_plus", "gamma"), ICRP107)
def test_icrp107_values(
    name: str, half_life_s: float, beta_plus: float, gamma: tuple[float, float] | None
) -> None:
    data = nuclide(name)
    assert data.half_life_s == pytest.approx(half_life_s, rel=2e-4)
    assert data.beta_plus_yield_per_decay == pytest.approx(beta_plus, abs=2e-4)
    assert data.annihilation_photons_per_decay == pytest.approx(2 * beta_plus, abs=5e-4)
    if gamma is not None:
        matches = [
            line for line in data.main_gamma_lines() if abs(line.energy_kev - gamma[0]) < 0.05
        ]
        assert len(matches) == 1
        assert matches[0].yield_per_decay == pytest.approx(gamma[1], abs=5e-4)


def test_all_issue_nuclides_are_known() -> None:
    required = {
        "F-18",
        "Ga-68",
        "Cu-64",
        "Cu-67",
        "Zr-89",
        "Y-86",
        "Y-90",
        "I-123",
        "I-124",
        "I-131",
        "In-111",
        "Tc-99m",
        "Lu-177",
    }
    assert required <= set(known_nuclides())


def test_zr89_909_kev_counted_once() -> None:
    # The 909 keV γ is emitted by Y-89m (T½ 15.7 s); ICRP-107 lists it in the Zr-89 record.
    # radioactivedecay gives Zr-89 -> Y-89 directly, so the isomer's line is not added again.
    zr = nuclide("Zr-89")
    near_909 = [line for line in zr.gamma_lines if abs(line.energy_kev - 909.0) < 1.0]
    assert len(near_909) == 1
    assert sum(line.yield_per_decay for line in near_909) == pytest.approx(0.9904, abs=1e-4)
    assert "Y-89m" not in zr.progeny
    assert nuclide("Y-89m").half_life_s == pytest.approx(15.663, rel=1e-3)


def test_mean_beta_plus_energy() -> None:
    assert nuclide("Zr-89").beta_plus_mean_energy_kev == pytest.approx(395.5, abs=0.1)
    assert nuclide("F-18").beta_plus_mean_energy_kev == pytest.approx(249.8, abs=0.1)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("Zr-89", "Zr-89"),
        ("zr89", "Zr-89"),
        ("89Zr", "Zr-89"),
        ("89-Zr", "Zr-89"),
        ("^89^Zirconium", "Zr-89"),
        ("Zirconium-89", "Zr-89"),
        ("^18^Fluorine", "F-18"),
        ("Tc99m", "Tc-99m"),
        ("99mTc", "Tc-99m"),
        ("In111", "In-111"),
        ("Lu 177", "Lu-177"),
    ],
)
def test_name_spellings(spelling: str, canonical: str) -> None:
    assert canonical_nuclide_name(spelling) == canonical


@pytest.mark.parametrize("bad", ["", "FDG", "Xx-12", "Zr-1", "zirconium"])
def test_bad_names_raise(bad: str) -> None:
    with pytest.raises(NuclideError):
        canonical_nuclide_name(bad)


def test_provenance_names_packages_and_dataset() -> None:
    source = nuclide("Zr-89").source
    assert "ICRP Publication 107" in source
    assert "icrp107_ame2020_nubase2020" in source
    assert "icrp107-database" in source


def test_element_table_matches_radioactivedecay() -> None:
    from radioactivedecay.utils import Z_DICT

    from immunopet.data import read_csv

    assert {int(row["z"]): row["symbol"] for row in read_csv("elements.csv")} == Z_DICT


@pytest.mark.parametrize("name", known_nuclides())
def test_both_icrp107_packages_agree_on_half_life(name: str) -> None:
    # radioactivedecay (half-lives) and icrp107-database (emissions) transcribe the same
    # ICRP-107 tables; a disagreement means one of them changed under us.
    from immunopet.physics._nuclides import _icrp107_record

    record = _icrp107_record(name)
    unit_s = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "y": 365.2422 * 86400.0}[
        record["time_unit"]
    ]
    assert nuclide(name).half_life_s == pytest.approx(float(record["half_life"]) * unit_s, rel=1e-6)


@pytest.mark.parametrize("name", known_nuclides())
def test_dicom_code_meaning_round_trips(name: str) -> None:
    # The writer labels a series "^<mass>^<Element>" (DICOM CID 4020 style); the reader must
    # resolve that back to the same nuclide for every nuclide the project lists.
    from immunopet.physics import element_name

    mass = name.split("-")[1]
    assert element_name(name) != name.split("-")[0]  # a real English name from nuclides.csv
    assert canonical_nuclide_name(f"^{mass}^{element_name(name)}") == name
