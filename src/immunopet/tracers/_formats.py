"""Vector formats and the biological questions of the review, as closed vocabularies.

Shared by the knowledge base (``data/tracers.csv``), the vector pharmacokinetics
and the planner, so that a format or question is spelt one way everywhere.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Question", "VectorFormat"]


class VectorFormat(StrEnum):
    """How the targeting agent is built (molecular weight falls from IgG to small molecule)."""

    IGG = "igg"
    FC_SILENCED_IGG = "fc_silenced_igg"
    F_AB_2 = "f_ab_2"  # F(ab')2
    MINIBODY = "minibody"
    CYS_DIABODY = "cys_diabody"
    FAB = "fab"
    SCFV = "scfv"
    ADNECTIN = "adnectin"
    NANOBODY = "nanobody"
    PEPTIDE = "peptide"
    SMALL_MOLECULE = "small_molecule"
    CELL_LABEL = "cell_label"
    REPORTER_SUBSTRATE = "reporter_substrate"


class Question(StrEnum):
    """The review's questions (Mulgaonkar et al., Front Med 2023;10:1199146, sections 3-6)."""

    ANTIGEN_LINEAGE = "antigen_lineage"
    EXHAUSTION_CHECKPOINT = "exhaustion_checkpoint"
    T_CELL_DISTRIBUTION = "t_cell_distribution"
    ACTIVATION = "activation"
    ADVERSE_EVENTS = "adverse_events"
    MICROENVIRONMENT = "microenvironment"
