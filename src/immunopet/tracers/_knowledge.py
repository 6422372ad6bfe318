"""The tracer knowledge base: immuno-PET/-SPECT agents named by the review, one row each.

Every agent and reporter/probe pair that Mulgaonkar et al. name, grouped by the
review's questions, read from ``data/tracers.csv`` (one row per agent,
radionuclide and question; each row cites the review's reference numbers and,
where known, the primary paper).

Reference: Mulgaonkar A, Udayakumar D, Yang Y, Harris S, Öz OK, Ramakrishnan
Geethakumari P, Sun X. Current and potential roles of immuno-PET/-SPECT in CAR
T-cell therapy. Front Med (2023) 10:1199146. doi: 10.3389/fmed.2023.1199146
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar

from immunopet.data import read_csv
from immunopet.errors import InputError, NuclideError
from immunopet.physics import canonical_nuclide_name
from immunopet.tracers._formats import Question, VectorFormat

__all__ = ["Modality", "Stage", "Tracer", "find_tracers", "load_tracers"]

_TABLE = "tracers.csv"
_SOURCE = "data/tracers.csv"
_COLUMNS = (
    "agent",
    "target",
    "question",
    "vector_format",
    "radionuclide",
    "modality",
    "stage",
    "reporter_gene",
    "review_refs",
    "primary_reference",
    "seed_quote",
    "notes",
)
_Choice = TypeVar("_Choice", bound=StrEnum)
_DOI = re.compile(r"doi:\s*(10\.\d{4,9}/\S+?)\.?(?:\s|$)")

#: Other names of each target (gene symbols, CD numbers, spellings); matched like the target.
_TARGET_ALIASES: dict[str, tuple[str, ...]] = {
    "CD3": ("CD3E",),
    "CD8": ("CD8A", "CD8+"),
    "CD19": ("B4",),
    "CD20": ("MS4A1",),
    "EGFR": ("HER1", "ERBB1"),
    "HER2": ("ERBB2", "NEU"),
    "PSMA": ("FOLH1", "GCPII"),
    "VEGF": ("VEGFA", "VEGF-A"),
    "CEA": ("CEACAM5",),
    "PD-1": ("PDCD1", "CD279"),
    "PD-L1": ("CD274", "B7-H1"),
    "CTLA-4": ("CTLA4", "CD152"),
    "LAG-3": ("LAG3", "CD223"),
    "TIM-3": ("TIM3", "HAVCR2"),
    "TIGIT": ("VSIG9",),
    "TNF-α": ("TNF", "TNF-alpha", "TNFA"),
    "IL-2R": ("IL-2", "IL2", "IL2R", "IL-2 receptor", "CD25", "IL2RA"),
    "ICOS": ("CD278",),
    "OX40": ("CD134", "TNFRSF4"),
    "granzyme B": ("GZMB", "GrB"),
    "IL-6R": ("IL6R", "CD126", "IL-6 receptor"),
    "IL-1R": ("IL-1", "IL1", "IL1R1", "IL-1R1", "IL-1 receptor"),
    "IL-1β": ("IL-1", "IL1", "IL1B", "IL-1beta", "IL-1b"),
    "CAIX": ("CA9", "CA IX", "carbonic anhydrase IX", "G250"),
    "HSV1-tk": ("HSV-tk", "HSV1 thymidine kinase", "TK"),
    "DAbR1": ("anti-DOTA antibody reporter",),
    "ex vivo cell label": ("cell label", "direct label", "direct cell label"),
}


class Modality(StrEnum):
    """How the agent is imaged."""

    PET = "PET"
    SPECT = "SPECT"


class Stage(StrEnum):
    """How far the agent has been developed, as the review or its primary paper says."""

    PRECLINICAL = "preclinical"
    CLINICAL = "clinical"
    APPROVED = "approved"


@dataclass(frozen=True)
class Tracer:
    """One imaging agent of the knowledge base (one row of ``data/tracers.csv``).

    Parameters
    ----------
    agent : str
        Name in radiopharmaceutical nomenclature, e.g. ``"[89Zr]Zr-Df-IAB22M2C"``.
    target : str
        What the agent binds; several targets of a bispecific are joined by
        ``/`` (``"CEA/CD3"``); direct cell labels have ``"ex vivo cell label"``.
    question : Question
        The review's question the agent answers.
    vector_format : VectorFormat
        How the targeting agent is built.
    radionuclide : str
        Canonical nuclide name (``"Zr-89"``).
    modality : Modality
        PET or SPECT.
    stage : Stage
        Development stage, as the review or its primary paper says.
    reporter_gene : str or None
        The reporter expressed by the engineered cells, for reporter/probe pairs.
    review_refs : tuple of int
        The review's reference numbers.
    primary_reference : str
        The primary paper as the review's reference list prints it.
    seed_quote : str
        A phrase of the review naming the agent.
    notes : str
        Context: model, patients, caveats.

    Examples
    --------
    >>> (tracer,) = find_tracers(target="ICOS")
    >>> tracer.agent, tracer.radionuclide, tracer.question.value, tracer.review_refs
    ('[89Zr]Zr-anti-ICOS mAb', 'Zr-89', 'activation', (44, 206))

    """

    agent: str
    target: str
    question: Question
    vector_format: VectorFormat
    radionuclide: str
    modality: Modality
    stage: Stage
    reporter_gene: str | None
    review_refs: tuple[int, ...]
    primary_reference: str
    seed_quote: str
    notes: str

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets, a bispecific's split at ``/``."""
        return tuple(part.strip() for part in self.target.split("/"))

    @property
    def primary_doi(self) -> str | None:
        """The DOI in :attr:`primary_reference`, or None where the review prints none."""
        match = _DOI.search(self.primary_reference)
        return None if match is None else match[1]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (enums as their values, references as a list)."""
        return {
            "agent": self.agent,
            "target": self.target,
            "question": self.question.value,
            "vector_format": self.vector_format.value,
            "radionuclide": self.radionuclide,
            "modality": self.modality.value,
            "stage": self.stage.value,
            "reporter_gene": self.reporter_gene,
            "review_refs": list(self.review_refs),
            "primary_reference": self.primary_reference,
            "primary_doi": self.primary_doi,
            "seed_quote": self.seed_quote,
            "notes": self.notes,
        }


def _member(enum: type[_Choice], value: str, *, field: str, path: str | None = None) -> _Choice:
    """The member of a closed vocabulary spelt ``value``, or an error listing the vocabulary."""
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InputError(f"{value!r} is not one of: {allowed}", path=path, field=field) from None


def _nuclide(value: str, where: str) -> str:
    field = f"{where}, column 'radionuclide'"
    try:
        canonical = canonical_nuclide_name(value)
    except NuclideError as exc:
        raise InputError(exc.message, path=_SOURCE, field=field, hint=exc.hint) from None
    if canonical != value:
        raise InputError(
            f"{value!r} is not the canonical spelling",
            path=_SOURCE,
            field=field,
            hint=f"write {canonical}",
        )
    return canonical


def _refs(value: str, where: str) -> tuple[int, ...]:
    parts = [part.strip() for part in value.split(";")]
    if not all(re.fullmatch(r"[1-9][0-9]*", part) for part in parts):
        raise InputError(
            f"{value!r} is not a ';'-separated list of reference numbers",
            path=_SOURCE,
            field=f"{where}, column 'review_refs'",
            hint="write e.g. 41;130",
        )
    return tuple(int(part) for part in parts)


def tracer_from_row(row: Mapping[str, str | None], number: int) -> Tracer:
    """Validate one row of ``data/tracers.csv`` and return its :class:`Tracer`.

    Parameters
    ----------
    row : mapping of str to str
        The row as :class:`csv.DictReader` gives it.
    number : int
        The row's position among the data rows (1 = first), for messages.

    Returns
    -------
    Tracer

    Raises
    ------
    InputError
        Naming ``data/tracers.csv``, the row and the column, if a column is
        missing or empty or holds an unknown format, question, nuclide,
        modality, stage or reference list.

    """
    where = f"row {number} ({(row.get('agent') or '').strip() or '?'})"
    values: dict[str, str] = {}
    for column in _COLUMNS:
        value = row.get(column)
        if value is None:
            raise InputError("column missing", path=_SOURCE, field=f"{where}, column {column!r}")
        values[column] = value.strip()
        if not values[column] and column not in ("reporter_gene", "notes"):
            raise InputError("empty", path=_SOURCE, field=f"{where}, column {column!r}")
    return Tracer(
        agent=values["agent"],
        target=values["target"],
        question=_member(
            Question, values["question"], path=_SOURCE, field=f"{where}, column 'question'"
        ),
        vector_format=_member(
            VectorFormat,
            values["vector_format"],
            path=_SOURCE,
            field=f"{where}, column 'vector_format'",
        ),
        radionuclide=_nuclide(values["radionuclide"], where),
        modality=_member(
            Modality, values["modality"], path=_SOURCE, field=f"{where}, column 'modality'"
        ),
        stage=_member(Stage, values["stage"], path=_SOURCE, field=f"{where}, column 'stage'"),
        reporter_gene=values["reporter_gene"] or None,
        review_refs=_refs(values["review_refs"], where),
        primary_reference=values["primary_reference"],
        seed_quote=values["seed_quote"],
        notes=values["notes"],
    )


@cache
def load_tracers() -> tuple[Tracer, ...]:
    """Return every agent of the knowledge base, in file order (read once, validated).

    Returns
    -------
    tuple of Tracer

    Raises
    ------
    InputError
        If a row is invalid (see :func:`tracer_from_row`) or an agent appears
        twice with the same radionuclide and question.

    Examples
    --------
    >>> tracers = load_tracers()
    >>> all(t.review_refs for t in tracers)
    True

    """
    tracers = tuple(
        tracer_from_row(row, number) for number, row in enumerate(read_csv(_TABLE), start=1)
    )
    seen: set[tuple[str, str, Question]] = set()
    for number, tracer in enumerate(tracers, start=1):
        key = (tracer.agent, tracer.radionuclide, tracer.question)
        if key in seen:
            raise InputError(
                "agent, radionuclide and question repeat an earlier row",
                path=_SOURCE,
                field=f"row {number} ({tracer.agent})",
            )
        seen.add(key)
    return tracers


def _key(name: str) -> str:
    """Compare names without case, spaces, hyphens, dots or underscores."""
    return re.sub(r"[\s\-_.]", "", unicodedata.normalize("NFKC", name).casefold())


def _target_keys(target: str) -> frozenset[str]:
    names = [target, *_TARGET_ALIASES.get(target, ())]
    return frozenset(_key(name) for name in names)


def _user_spelling(value: StrEnum | str) -> str:
    """A vocabulary value as a user may type it: any case, hyphens or spaces for underscores."""
    return re.sub(r"[\s\-]+", "_", str(value).strip().casefold())


def find_tracers(
    *,
    target: str | None = None,
    question: Question | str | None = None,
    nuclide: str | None = None,
    vector_format: VectorFormat | str | None = None,
) -> tuple[Tracer, ...]:
    """Return the agents matching every criterion given, in file order.

    Parameters
    ----------
    target : str, optional
        Target name, gene symbol or CD number, any case (``"PD-L1"``, ``"pdl1"``,
        ``"CD274"``); matches either target of a bispecific (``"CD3"`` finds
        ``"CEA/CD3"``).
    question : Question or str, optional
        The review's question, e.g. ``"t_cell_distribution"``.
    nuclide : str, optional
        Any spelling :func:`~immunopet.physics.canonical_nuclide_name` accepts
        (``"89Zr"``, ``"zr89"``).
    vector_format : VectorFormat or str, optional
        E.g. ``"minibody"``.

    Returns
    -------
    tuple of Tracer
        Empty when nothing matches.

    Raises
    ------
    NuclideError
        If ``nuclide`` is not a radionuclide.
    InputError
        If ``question`` or ``vector_format`` is not in its vocabulary.

    Examples
    --------
    >>> [t.agent for t in find_tracers(target="cd8", nuclide="89Zr")]
    ['[89Zr]Zr-anti-CD8 cys-diabody', '[89Zr]Zr-Df-IAB22M2C']
    >>> [t.agent for t in find_tracers(question="microenvironment")]
    ['[124I]I-girentuximab', '[89Zr]Zr-DFO-girentuximab']

    """
    wanted_question = (
        None if question is None else _member(Question, _user_spelling(question), field="question")
    )
    wanted_format = (
        None
        if vector_format is None
        else _member(VectorFormat, _user_spelling(vector_format), field="vector_format")
    )
    wanted_nuclide = None if nuclide is None else canonical_nuclide_name(nuclide)
    wanted_target = None if target is None else _key(target)
    return tuple(
        tracer
        for tracer in load_tracers()
        if (wanted_question is None or tracer.question is wanted_question)
        and (wanted_format is None or tracer.vector_format is wanted_format)
        and (wanted_nuclide is None or tracer.radionuclide == wanted_nuclide)
        and (
            wanted_target is None
            or any(wanted_target in _target_keys(part) for part in tracer.targets)
        )
    )
