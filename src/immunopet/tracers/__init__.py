"""Tracers: the review's immuno-PET/-SPECT agents, their vocabularies and vector pharmacokinetics."""

from immunopet.tracers._formats import Question, VectorFormat
from immunopet.tracers._knowledge import Modality, Stage, Tracer, find_tracers, load_tracers
from immunopet.tracers._pharmacokinetics import (
    TwoTissueVectorModel,
    VectorPharmacokinetics,
    apply_physical_decay,
    decays_per_bq,
    organ_decays_per_bq,
    pharmacokinetic_formats,
    residualising_label,
    vector_pharmacokinetics,
)

__all__ = [
    "Modality",
    "Question",
    "Stage",
    "Tracer",
    "TwoTissueVectorModel",
    "VectorFormat",
    "VectorPharmacokinetics",
    "apply_physical_decay",
    "decays_per_bq",
    "find_tracers",
    "load_tracers",
    "organ_decays_per_bq",
    "pharmacokinetic_formats",
    "residualising_label",
    "vector_pharmacokinetics",
]
