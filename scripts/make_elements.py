"""Rebuild src/immunopet/data/elements.csv from radioactivedecay's element table."""

from __future__ import annotations

from pathlib import Path

from radioactivedecay.utils import Z_DICT

TARGET = Path(__file__).resolve().parents[1] / "src" / "immunopet" / "data" / "elements.csv"
HEADER = [
    "# Chemical element symbols by atomic number (IUPAC). Used to read nuclide names without",
    "# importing radioactivedecay; extracted from radioactivedecay.utils.Z_DICT (0.6.1) by",
    "# scripts/make_elements.py and checked against it by tests/physics/test_nuclides.py.",
    "z,symbol",
]

if __name__ == "__main__":
    rows = [f"{z},{symbol}" for z, symbol in sorted(Z_DICT.items())]
    TARGET.write_text("\n".join(HEADER + rows) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} elements to {TARGET}")
