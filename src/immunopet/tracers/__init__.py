"""Tracers: the review's immuno-PET/-SPECT agents and the vocabularies that describe them."""

from immunopet.tracers._formats import Question, VectorFormat
from immunopet.tracers._knowledge import Modality, Stage, Tracer, find_tracers, load_tracers

__all__ = [
    "Modality",
    "Question",
    "Stage",
    "Tracer",
    "VectorFormat",
    "find_tracers",
    "load_tracers",
]
