"""Planned effective dose of a ⁸⁹Zr-IgG (vector pharmacokinetics → dosimetry) vs published values.

Published effective doses of ⁸⁹Zr-labelled intact antibodies (data/published_doses.toml, READ):
0.48 mSv/MBq (O'Donoghue 2018, trastuzumab, range 0.38–0.57), 0.47 (Laforest 2016,
trastuzumab), 0.57 (Merkx 2021, girentuximab). The planner's model gives 0.59 mSv/MBq:
+4 % against Merkx, +23 % and +26 % against the trastuzumab studies — above the published mean
and just above O'Donoghue's patient range, because the planning-grade dosimetry treats the
body as a sphere (photon self-absorption too high; the dosimetry validation measured +27 % on
total-body dose) while the pharmacokinetic model keeps IgG in blood and remainder spread over
the body. Agreement stated and asserted: within +35 % / −10 % of each published value.
"""

from __future__ import annotations

import pytest

from immunopet.dosimetry import published_doses
from immunopet.planning import plan_dose

SV_PER_BQ_TO_MSV_PER_MBQ = 1.0e9


def test_zr89_igg_effective_dose_against_publications() -> None:
    model = plan_dose("igg", "Zr-89", [("scan", 1.0e6)]).budget.per_bq.effective_dose_sv
    intact_antibodies = [p for p in published_doses("Zr-89") if p.vector.lower().startswith("igg")]
    assert intact_antibodies, "no published Zr-89 IgG effective dose in data/published_doses.toml"
    for published in intact_antibodies:
        ratio = model / published.effective_dose_sv_per_bq
        assert 0.9 <= ratio <= 1.35, (published.citation, ratio)
    assert model * SV_PER_BQ_TO_MSV_PER_MBQ == pytest.approx(0.59, abs=0.02)
