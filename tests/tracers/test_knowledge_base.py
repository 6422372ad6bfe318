"""The tracer knowledge base checked against the seed review (Mulgaonkar et al. 2023).

The review's text lives beside the repository in ``shared/seed/`` (in CI too).
These tests parse its numbered reference list and check that every row of
``data/tracers.csv`` cites references that exist, quotes the review verbatim,
and that every agent the review's sections name is in the knowledge base.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import NamedTuple

import pytest

from immunopet.cli import main
from immunopet.errors import InputError, NuclideError
from immunopet.physics import nuclide
from immunopet.tracers import (
    Modality,
    Question,
    Stage,
    Tracer,
    VectorFormat,
    find_tracers,
    load_tracers,
)
from immunopet.tracers._knowledge import tracer_from_row

SEED_DIR = Path(__file__).resolve().parents[3] / "shared" / "seed"
REVIEW_DOI = "10.3389/fmed.2023.1199146"
N_REFERENCES = 269  # the last reference the text cites (Conclusion)


# ---------------------------------------------------------------------------- seed parsing


def normalise(text: str) -> str:
    """Fold what text extraction varies: Unicode forms (⁸⁹ -> 89), TeX/markdown marks, spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\\text\{([^}]*)\}", r"\1", text)
    text = re.sub(r"[$^{}*]", "", text)
    return re.sub(r"\s+", "", text).casefold()


_NUMBERED = re.compile(r"^(\d{1,3})\.\s+(\S.*)$")
_BULLET = re.compile(r"^-\s+(\S.*)$")
_YEAR = re.compile(r"\((?:19|20)\d\d\)")


def parse_references(text: str) -> dict[int, str]:
    """Number -> entry of the review's reference list.

    Extraction lost the number of some entries (they start with ``- ``) and broke
    some entries across pages (the remainder also starts with ``- ``). A ``- ``
    line continues the previous entry when it starts in lower case or the
    previous entry has no year yet; otherwise it is the next number. Explicit
    numbers must then follow without gaps, so a misread shows up at once.
    """
    lines = text.splitlines()
    headings = [i for i, line in enumerate(lines) if line.strip() == "References"]
    assert headings, "the seed has no 'References' heading"
    entries: list[list[str | int | None]] = []  # [number or None, text]
    for line in lines[headings[-1] + 1 :]:
        stripped = line.strip()
        if numbered := _NUMBERED.match(stripped):
            entries.append([int(numbered[1]), numbered[2]])
        elif bullet := _BULLET.match(stripped):
            body = bullet[1]
            previous = str(entries[-1][1]) if entries else ""
            if entries and (body[0].islower() or not _YEAR.search(previous)):
                entries[-1][1] = f"{previous} {body}"
            else:
                entries.append([None, body])
        # anything else (publisher's note, supplementary material) is not part of the list
    references: dict[int, str] = {}
    expected = 1
    for number, body in entries:
        if number is not None and number != expected:
            pytest.fail(
                f"reference list out of sequence: expected {expected}, read {number}: {body}"
            )
        references[expected] = str(body)
        expected += 1
    return references


@pytest.fixture(scope="module")
def seed_text() -> str:
    if not SEED_DIR.is_dir():
        pytest.fail(
            f"seed folder {SEED_DIR} is missing: the knowledge base is checked against the review "
            "text in shared/seed/ beside the repository; put it there (CI has it)"
        )
    for path in sorted(SEED_DIR.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        if REVIEW_DOI in text:
            return text
    pytest.fail(f"no file in {SEED_DIR} holds the review (doi {REVIEW_DOI})")


@pytest.fixture(scope="module")
def references(seed_text: str) -> dict[int, str]:
    return parse_references(seed_text)


@pytest.fixture(scope="module")
def seed_normalised(seed_text: str) -> str:
    return normalise(seed_text)


def test_reference_list_is_parsed_whole(references: dict[int, str]) -> None:
    assert sorted(references) == list(range(1, N_REFERENCES + 1))
    assert references[1].startswith("Martínez-Lostao L")  # unnumbered: first "- " line
    assert references[16].startswith("FDA approves Tisagenlecleucel for adults")
    assert references[17].startswith("Neelapu SS, Locke FL")  # after "Supplementary material"
    assert references[29].startswith("Holstein SA")
    assert references[30].startswith("Teoh PJ")  # first numbered entry
    # entries broken across pages are joined, not counted twice
    assert "preventing rapid antigen loss" in references[76]
    assert references[77].startswith("Dance A")
    assert "tool for understanding immunotherapy response" in references[209]
    assert references[268].startswith("Andreyev A")
    assert references[269].startswith("Jin C, Luo X")


# ---------------------------------------------------------------------------- rows vs seed


def test_every_row_cites_references_that_exist(references: dict[int, str]) -> None:
    for tracer in load_tracers():
        missing = [ref for ref in tracer.review_refs if ref not in references]
        assert not missing, f"{tracer.agent}: review_refs {missing} are not in the seed's list"


def test_primary_doi_is_in_a_cited_reference(references: dict[int, str]) -> None:
    with_doi = [t for t in load_tracers() if t.primary_doi is not None]
    assert len(with_doi) >= 40
    for tracer in with_doi:
        doi = str(tracer.primary_doi).casefold()
        cited = [ref for ref in tracer.review_refs if doi in references[ref].casefold()]
        assert cited, f"{tracer.agent}: DOI {doi} is in none of its references {tracer.review_refs}"


def test_rows_without_doi_say_so() -> None:
    without = {t.agent for t in load_tracers() if t.primary_doi is None}
    assert without == {"[89Zr]Zr-panitumumab", "[99mTc]Tc-IL-1 antagonist peptide"}
    for tracer in load_tracers():
        if tracer.primary_doi is None:
            assert "no DOI in the review" in tracer.primary_reference


def test_every_seed_quote_is_in_the_seed(seed_normalised: str) -> None:
    for tracer in load_tracers():
        assert normalise(tracer.seed_quote) in seed_normalised, (
            f"{tracer.agent}: seed_quote {tracer.seed_quote!r} is not in the seed"
        )


class Named(NamedTuple):
    phrase: str  # as the seed prints it
    agent: str  # the row's agent
    radionuclide: str
    question: Question


Q = Question
#: Every agent the review's sections name, with the phrase that names it.
SECTION_AGENTS = (
    # -- Antigen loss
    # "an anti-CD20 mAb, [⁸⁹Zr]Zr-DFO-rituximab, was reported in five patients with DLBCL (81)"
    Named(
        "anti-CD20 mAb, [⁸⁹Zr]Zr-DFO-rituximab",
        "[89Zr]Zr-DFO-rituximab",
        "Zr-89",
        Q.ANTIGEN_LINEAGE,
    ),
    # Figure 2: "Immuno-PET imaging with ^{89}Zr -Rituximab in patients with DLBCL"
    Named("imaging with ^{89}Zr -Rituximab", "[89Zr]Zr-DFO-rituximab", "Zr-89", Q.ANTIGEN_LINEAGE),
    # "the same mAb but labeled with copper-64 (⁶⁴Cu), [⁶⁴Cu]Cu-DOTA-rituximab"
    Named("[⁶⁴Cu]Cu-DOTA-rituximab", "[64Cu]Cu-DOTA-rituximab", "Cu-64", Q.ANTIGEN_LINEAGE),
    # "a CD19-targeted immuno-PET method with [⁶⁴Cu]Cu-CD19-mAb, a murine anti-CD19"
    Named("[⁶⁴Cu]Cu-CD19-mAb, a murine anti-CD19", "[64Cu]Cu-CD19-mAb", "Cu-64", Q.ANTIGEN_LINEAGE),
    # "EGFR [[⁸⁹Zr]Zr-cetuximab (84), [⁸⁹Zr]Zr-panitumumab (85, 86)]"
    Named("EGFR [[⁸⁹Zr]Zr-cetuximab (84)", "[89Zr]Zr-cetuximab", "Zr-89", Q.ANTIGEN_LINEAGE),
    Named("[⁸⁹Zr]Zr-panitumumab (85, 86)", "[89Zr]Zr-panitumumab", "Zr-89", Q.ANTIGEN_LINEAGE),
    # "(HER2) [[⁸⁹Zr]Zr-trastuzumab (87–89), [¹¹¹In]In-pertuzumab (90)]"
    Named("[⁸⁹Zr]Zr-trastuzumab (87–89)", "[89Zr]Zr-trastuzumab", "Zr-89", Q.ANTIGEN_LINEAGE),
    Named("[¹¹¹In]In-pertuzumab (90)", "[111In]In-BzDTPA-pertuzumab", "In-111", Q.ANTIGEN_LINEAGE),
    # "(PSMA) [[⁸⁹Zr]Zr-J591 (91)], ... (VEGF) [[⁸⁹Zr]Zr-bevacizumab (92)]"
    Named("(PSMA) [[⁸⁹Zr]Zr-J591 (91)]", "[89Zr]Zr-J591", "Zr-89", Q.ANTIGEN_LINEAGE),
    Named("(VEGF) [[⁸⁹Zr]Zr-bevacizumab (92)]", "[89Zr]Zr-bevacizumab", "Zr-89", Q.ANTIGEN_LINEAGE),
    # Figure 3: "a study with [⁶⁷Cu]Cu-pertuzumab in murine HER-2-positive xenografts"
    Named("a study with [⁶⁷Cu]Cu-pertuzumab", "[67Cu]Cu-pertuzumab", "Cu-67", Q.ANTIGEN_LINEAGE),
    # -- T-cell exhaustion and senescence
    # "clinical studies with [⁸⁹Zr]-labeled atezolizumab have demonstrated ..." (130; Figure 4: 41)
    Named(
        "[⁸⁹Zr]-labeled atezolizumab",
        "[89Zr]Zr-DFO-atezolizumab",
        "Zr-89",
        Q.EXHAUSTION_CHECKPOINT,
    ),
    # "immuno-PET with radiotracers derived from small adnectin proteins ... (135–137)"
    Named(
        "radiotracers derived from small adnectin proteins",
        "[68Ga]Ga-BMS-986192",
        "Ga-68",
        Q.EXHAUSTION_CHECKPOINT,
    ),
    Named(
        "radiotracers derived from small adnectin proteins",
        "[18F]BMS-986192",
        "F-18",
        Q.EXHAUSTION_CHECKPOINT,
    ),
    # "Immuno-PET with TIGIT-specific [⁶⁴Cu]-Cu-TIGIT-mAb and [⁸⁹Zr]-Zr-TIGIT-mAb"
    Named(
        "TIGIT-specific [⁶⁴Cu]-Cu-TIGIT-mAb", "[64Cu]Cu-TIGIT-mAb", "Cu-64", Q.EXHAUSTION_CHECKPOINT
    ),
    Named("and [⁸⁹Zr]-Zr-TIGIT-mAb", "[89Zr]Zr-TIGIT-mAb", "Zr-89", Q.EXHAUSTION_CHECKPOINT),
    # "surrogate markers, such as TIM-3 (141), ... IL-2 (158), TNF-α (159)"; agents in the titles
    Named("IL-2 (158), TNF-α (159)", "[18F]FB-IL2", "F-18", Q.EXHAUSTION_CHECKPOINT),
    Named("IL-2 (158), TNF-α (159)", "[89Zr]Zr-DFO-infliximab", "Zr-89", Q.EXHAUSTION_CHECKPOINT),
    # -- CAR T-cell distribution
    # "immuno-PET with ⁸⁹Zr-labeled anti-CD8 cys-diabody has been found to be able to detect ..."
    Named(
        "⁸⁹Zr-labeled anti-CD8 cys-diabody",
        "[89Zr]Zr-anti-CD8 cys-diabody",
        "Zr-89",
        Q.T_CELL_DISTRIBUTION,
    ),
    # "CD8- and CD4-specific minibodies (72, 180, 181) and cys-diabodies (43, 182)"
    Named(
        "and cys-diabodies (43, 182)",
        "[64Cu]Cu-anti-CD8 cys-diabody",
        "Cu-64",
        Q.T_CELL_DISTRIBUTION,
    ),
    # "a ⁸⁹Zr-labeled anti-CD8 minibody (⁸⁹Zr-Df-IAB22M2C) has advanced to early-phase clinical trials"
    Named("(⁸⁹Zr-Df-IAB22M2C)", "[89Zr]Zr-Df-IAB22M2C", "Zr-89", Q.T_CELL_DISTRIBUTION),
    # "another report using ⁶⁴Cu labeled IAB22M2C has described similar applications in brain tumors"
    Named("⁶⁴Cu labeled IAB22M2C", "[64Cu]Cu-NOTA-IAB22M2C", "Cu-64", Q.T_CELL_DISTRIBUTION),
    # "a carcinoembryonic antigen (CEA)/CD3-targeting radiotracer, ⁸⁹Zr-AMG 211"
    Named(
        "CD3-targeting radiotracer, ⁸⁹Zr-AMG 211",
        "[89Zr]Zr-AMG 211",
        "Zr-89",
        Q.T_CELL_DISTRIBUTION,
    ),
    # "direct labeling with ¹¹¹In, ⁸⁹Zr, ^{99m}Tc, or ⁶⁸Ga (187–191)"
    Named("direct labeling with ¹¹¹In", "[111In]In-oxine", "In-111", Q.T_CELL_DISTRIBUTION),
    Named("direct labeling with ¹¹¹In, ⁸⁹Zr", "[89Zr]Zr-oxine", "Zr-89", Q.T_CELL_DISTRIBUTION),
    Named(
        "direct labeling with ¹¹¹In, ⁸⁹Zr",
        "[89Zr]Zr-DFO cell label",
        "Zr-89",
        Q.T_CELL_DISTRIBUTION,
    ),
    Named("⁸⁹Zr, ^{99m}Tc, or ⁶⁸Ga", "[99mTc]Tc-HMPAO", "Tc-99m", Q.T_CELL_DISTRIBUTION),
    Named(
        "⁸⁹Zr, ^{99m}Tc, or ⁶⁸Ga (187–191)",
        "[68Ga]Ga-labelled CAR T cells",
        "Ga-68",
        Q.T_CELL_DISTRIBUTION,
    ),
    # "PSMA can be paired with [¹⁸F]F-DCFPyL, a PSMA-specific PET agent (194)"
    Named("PSMA can be paired with [¹⁸F]F-DCFPyL", "[18F]DCFPyL", "F-18", Q.T_CELL_DISTRIBUTION),
    # "binds irreversibly to ... (AABD) (202) for imaging of DAbR1-positive T-cells when labeled with ⁸⁶Y"
    Named(
        "DAbR1-positive T-cells when labeled with ⁸⁶Y", "[86Y]Y-AABD", "Y-86", Q.T_CELL_DISTRIBUTION
    ),
    # "herpes simplex virus type 1 thymidine kinase (HSV1-tk) ... ([¹⁸F]F-FHBG) (203)"
    Named("([¹⁸F]F-FHBG)", "[18F]FHBG", "F-18", Q.T_CELL_DISTRIBUTION),
    # -- T-cell activation
    # "Using a ⁸⁹Zr-labeled anti-ICOS mAb, the activation, expansion, and tumor retention ..."
    Named("Using a ⁸⁹Zr-labeled anti-ICOS mAb", "[89Zr]Zr-anti-ICOS mAb", "Zr-89", Q.ACTIVATION),
    # "Recent reports on a PET agent that targets human granzyme B, ⁶⁸Ga-NOTA-GZP"
    Named("granzyme B, ⁶⁸Ga-NOTA-GZP", "[68Ga]Ga-NOTA-GZP", "Ga-68", Q.ACTIVATION),
    # "IL-2 (Figure 6) (158, 208)"; Figure 6: "Representative [^{18}F]FB-IL2 PET images"
    Named("Representative [^{18}F]FB-IL2 PET images", "[18F]FB-IL2", "F-18", Q.ACTIVATION),
    # -- Adverse toxic events
    # "immuno-SPECT with $^{99\text{m}}\text{Tc}$ -labeled tocilizumab ... (239–241)"
    Named(
        r"immuno-SPECT with $^{99\text{m}}\text{Tc}$ -labeled tocilizumab",
        "[99mTc]Tc-HYNIC-tocilizumab",
        "Tc-99m",
        Q.ADVERSE_EVENTS,
    ),
    # "While ^{18}F and $^{99\text{m}}\text{Tc}$ radiolabeling methods have been reported for
    #  peptides inhibiting IL-1 ... (243–246)"
    Named(
        r"^{18}F and $^{99\text{m}}\text{Tc}$ radiolabeling methods have been reported for peptides inhibiting IL-1",
        "[18F]IL-1RA",
        "F-18",
        Q.ADVERSE_EVENTS,
    ),
    Named(
        r"^{18}F and $^{99\text{m}}\text{Tc}$ radiolabeling methods have been reported for peptides inhibiting IL-1",
        "[99mTc]Tc-IL-1 antagonist peptide",
        "Tc-99m",
        Q.ADVERSE_EVENTS,
    ),
    # "immuno-PET imaging with [⁸⁹Zr]Zr- α -IL-1 β has been found to be able to detect colonic inflammation"
    Named("[⁸⁹Zr]Zr- α -IL-1 β", "[89Zr]Zr-anti-IL-1β mAb", "Zr-89", Q.ADVERSE_EVENTS),
    # "the validated methods for immuno-PET imaging of PD-L1 remain to be tested for imaging of these AEs"
    Named(
        "validated methods for immuno-PET imaging of PD-L1 remain to be tested",
        "[89Zr]Zr-DFO-atezolizumab",
        "Zr-89",
        Q.ADVERSE_EVENTS,
    ),
    # -- Tumour microenvironment
    # "immuno-PET with ¹²⁴I or ⁸⁹Zr-labeled girentuximab, an anti-CAIX mAb"
    Named(
        "with ¹²⁴I or ⁸⁹Zr-labeled girentuximab",
        "[124I]I-girentuximab",
        "I-124",
        Q.MICROENVIRONMENT,
    ),
    Named(
        "with ¹²⁴I or ⁸⁹Zr-labeled girentuximab",
        "[89Zr]Zr-DFO-girentuximab",
        "Zr-89",
        Q.MICROENVIRONMENT,
    ),
)

#: Named by the review's sections but not rows, and why (see the knowledge base's report).
NOT_ROWS = {
    "CD19, CD22, CD20, BCMA, and CD38": "targets considered for imaging; no agent named for CD22, BCMA, CD38",
    "CD19, CD20, CD3, and CD4, by specific mAbs": "lineage markers; no agent or nuclide named",
    "CD8- and CD4-specific minibodies": "no CD4 agent with a nuclide in the text or a cited title",
    "ImmunoPET imaging of TIM-3 in murine melanoma models": "ref 141's title names no nuclide",
    "CTLA-4 expression in mouse models of non-small cell lung cancer": "ref 133: no nuclide",
    "overexpression of SA-β-gal enzyme (155–157)": "refs 155-157 name no nuclide",
    "IFN γ PET imaging as a predictive tool": "ref 160's title names no nuclide",
    "CD134 or OX40": "ref 207's title names no agent or nuclide",
    "somatostatin receptor 2 (SSTR2)": "no SSTR2 radiotracer named; PEN-221 is a drug conjugate",
    "Cy7-tagged tocilizumab": "optical, not radioactive",
    "Siltuximab is another IL-6 inhibitor mAb": "proposed; no radiolabelled form",
    "Anakinra[®], a recombinant human IL-1 antagonist": "therapy; its radiolabelled class is [18F]IL-1RA",
    "radiolabeled pH-selective mAbs, which has not yet been reported": "not yet reported",
}


@pytest.mark.parametrize("named", SECTION_AGENTS, ids=lambda n: f"{n.agent}-{n.question.value}")
def test_every_agent_named_by_the_sections_is_a_row(named: Named, seed_normalised: str) -> None:
    assert normalise(named.phrase) in seed_normalised, f"phrase not in the seed: {named.phrase!r}"
    rows = [
        t
        for t in load_tracers()
        if (t.agent, t.radionuclide, t.question)
        == (named.agent, named.radionuclide, named.question)
    ]
    assert len(rows) == 1, f"{named.agent} ({named.radionuclide}, {named.question}) is not a row"


def test_every_row_is_accounted_for_by_the_sections() -> None:
    """Rows and the list above agree both ways, so the list stays complete."""
    named = {(n.agent, n.radionuclide, n.question) for n in SECTION_AGENTS}
    rows = {(t.agent, t.radionuclide, t.question) for t in load_tracers()}
    # these rows come from the title of a reference the text cites for the target
    from_titles = {
        ("[89Zr]Zr-pembrolizumab", "Zr-89", Q.EXHAUSTION_CHECKPOINT),  # PD-1 (128)
        ("[89Zr]Zr-durvalumab", "Zr-89", Q.EXHAUSTION_CHECKPOINT),  # PD-L1 (132)
        ("[64Cu]Cu-DOTA-anti-CTLA-4 mAb", "Cu-64", Q.EXHAUSTION_CHECKPOINT),  # CTLA-4 (134)
        ("[89Zr]Zr-BI 754111", "Zr-89", Q.EXHAUSTION_CHECKPOINT),  # LAG-3 (140)
    }
    assert rows == named | from_titles


@pytest.mark.parametrize("phrase", sorted(NOT_ROWS))
def test_left_out_names_are_in_the_seed(phrase: str, seed_normalised: str) -> None:
    assert normalise(phrase) in seed_normalised


# ---------------------------------------------------------------------------- the table itself


def test_rows_per_question() -> None:
    counts = {q: len(find_tracers(question=q)) for q in Question}
    assert counts == {
        Q.ANTIGEN_LINEAGE: 10,
        Q.EXHAUSTION_CHECKPOINT: 11,
        Q.T_CELL_DISTRIBUTION: 13,
        Q.ACTIVATION: 3,
        Q.ADVERSE_EVENTS: 5,
        Q.MICROENVIRONMENT: 2,
    }
    assert sum(counts.values()) == len(load_tracers())


def test_modality_matches_the_nuclide() -> None:
    """PET rows carry positron emitters; SPECT rows single-photon emitters (ICRP-107)."""
    for tracer in load_tracers():
        positron = nuclide(tracer.radionuclide).is_positron_emitter
        assert positron == (tracer.modality is Modality.PET), tracer.agent


def test_reporter_pairs() -> None:
    pairs = {t.agent: t.reporter_gene for t in load_tracers() if t.reporter_gene}
    assert pairs == {"[18F]DCFPyL": "PSMA", "[86Y]Y-AABD": "DAbR1", "[18F]FHBG": "HSV1-tk"}
    for tracer in load_tracers():
        assert (tracer.reporter_gene is not None) == (
            tracer.vector_format is VectorFormat.REPORTER_SUBSTRATE
        )


def test_as_dict_is_json_ready() -> None:
    (tracer,) = find_tracers(target="granzyme B")
    payload = json.loads(json.dumps(tracer.as_dict()))
    assert payload["agent"] == "[68Ga]Ga-NOTA-GZP"
    assert payload["question"] == "activation"
    assert payload["vector_format"] == "peptide"
    assert payload["stage"] == "preclinical"
    assert payload["review_refs"] == [209, 211, 212]
    assert payload["primary_doi"] == "10.1158/0008-5472.CAN-16-3346"


# ---------------------------------------------------------------------------- query API


def agents(tracers: tuple[Tracer, ...]) -> set[str]:
    return {t.agent for t in tracers}


def test_distribution_with_zr89() -> None:
    found = find_tracers(question=Q.T_CELL_DISTRIBUTION, nuclide="Zr-89")
    assert agents(found) == {
        "[89Zr]Zr-anti-CD8 cys-diabody",
        "[89Zr]Zr-Df-IAB22M2C",
        "[89Zr]Zr-AMG 211",
        "[89Zr]Zr-oxine",
        "[89Zr]Zr-DFO cell label",
    }
    assert find_tracers(question="t-cell distribution", nuclide="89Zr") == found
    assert find_tracers(question="T_CELL_DISTRIBUTION", nuclide="zirconium-89") == found


@pytest.mark.parametrize("name", ["PD-L1", "pdl1", "PD L1", "CD274", "b7-h1"])
def test_target_aliases(name: str) -> None:
    found = find_tracers(target=name)
    assert [(t.agent, t.question) for t in found] == [
        ("[89Zr]Zr-DFO-atezolizumab", Q.EXHAUSTION_CHECKPOINT),
        ("[89Zr]Zr-durvalumab", Q.EXHAUSTION_CHECKPOINT),
        ("[68Ga]Ga-BMS-986192", Q.EXHAUSTION_CHECKPOINT),
        ("[18F]BMS-986192", Q.EXHAUSTION_CHECKPOINT),
        ("[89Zr]Zr-DFO-atezolizumab", Q.ADVERSE_EVENTS),
    ]


def test_targets_of_a_bispecific_and_shared_aliases() -> None:
    assert agents(find_tracers(target="CD3")) == {"[89Zr]Zr-AMG 211"}
    assert agents(find_tracers(target="cea")) == {"[89Zr]Zr-AMG 211"}
    assert agents(find_tracers(target="IL-1")) == {
        "[18F]IL-1RA",
        "[99mTc]Tc-IL-1 antagonist peptide",
        "[89Zr]Zr-anti-IL-1β mAb",
    }
    assert agents(find_tracers(target="IL-1beta")) == {"[89Zr]Zr-anti-IL-1β mAb"}
    assert agents(find_tracers(target="tnf-alpha")) == {"[89Zr]Zr-DFO-infliximab"}
    assert agents(find_tracers(target="CA9")) == {
        "[124I]I-girentuximab",
        "[89Zr]Zr-DFO-girentuximab",
    }
    assert agents(find_tracers(target="PSMA")) == {"[89Zr]Zr-J591", "[18F]DCFPyL"}
    assert agents(find_tracers(target="CD8")) == {
        "[89Zr]Zr-anti-CD8 cys-diabody",
        "[64Cu]Cu-anti-CD8 cys-diabody",
        "[89Zr]Zr-Df-IAB22M2C",
        "[64Cu]Cu-NOTA-IAB22M2C",
    }
    assert find_tracers(target="no such target") == ()


def test_filters_by_format_and_nuclide() -> None:
    assert agents(find_tracers(vector_format="minibody")) == {
        "[89Zr]Zr-Df-IAB22M2C",
        "[64Cu]Cu-NOTA-IAB22M2C",
    }
    assert agents(find_tracers(vector_format=VectorFormat.CELL_LABEL, nuclide="tc99m")) == {
        "[99mTc]Tc-HMPAO"
    }
    assert agents(find_tracers(nuclide="99mTc")) == {
        "[99mTc]Tc-HMPAO",
        "[99mTc]Tc-HYNIC-tocilizumab",
        "[99mTc]Tc-IL-1 antagonist peptide",
    }
    assert agents(find_tracers(vector_format="fc-silenced IgG")) == {
        "[89Zr]Zr-DFO-atezolizumab",
        "[89Zr]Zr-durvalumab",
    }
    assert find_tracers(nuclide="Lu-177") == ()
    assert {t.stage for t in find_tracers(question=Q.MICROENVIRONMENT)} == {Stage.CLINICAL}


def test_unknown_values_are_errors_naming_the_option() -> None:
    with pytest.raises(InputError, match=r"question: 'toxicity' is not one of: antigen_lineage"):
        find_tracers(question="toxicity")
    with pytest.raises(InputError, match="vector_format"):
        find_tracers(vector_format="affibody")
    with pytest.raises(NuclideError, match="Xx-1"):
        find_tracers(nuclide="Xx-1")


# ---------------------------------------------------------------------------- row validation

GOOD_ROW = {
    "agent": "[89Zr]Zr-test",
    "target": "CD8",
    "question": "t_cell_distribution",
    "vector_format": "minibody",
    "radionuclide": "Zr-89",
    "modality": "PET",
    "stage": "clinical",
    "reporter_gene": "",
    "review_refs": "183;184",
    "primary_reference": "somebody",
    "seed_quote": "something",
    "notes": "",
}


def test_a_good_row_reads() -> None:
    tracer = tracer_from_row(GOOD_ROW, 1)
    assert tracer.vector_format is VectorFormat.MINIBODY
    assert tracer.review_refs == (183, 184)
    assert tracer.reporter_gene is None
    assert tracer.primary_doi is None


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        (
            "vector_format",
            "igx",
            r"row 7 \(\[89Zr\]Zr-test\), column 'vector_format': 'igx' is not",
        ),
        ("question", "toxicity", r"column 'question': 'toxicity' is not one of"),
        ("radionuclide", "Xx-1", r"column 'radionuclide': 'Xx-1': 'xx' is not a chemical element"),
        (
            "radionuclide",
            "zr89",
            r"column 'radionuclide': 'zr89' is not the canonical .*write Zr-89",
        ),
        ("modality", "MRI", r"column 'modality': 'MRI' is not one of: PET, SPECT"),
        ("stage", "phase II", r"column 'stage'"),
        ("review_refs", "183,184", r"column 'review_refs'.*write e.g. 41;130"),
        ("seed_quote", "", r"column 'seed_quote': empty"),
    ],
)
def test_bad_rows_name_file_row_and_column(column: str, value: str, expected: str) -> None:
    row = {**GOOD_ROW, column: value}
    with pytest.raises(InputError, match=expected) as caught:
        tracer_from_row(row, 7)
    assert str(caught.value).startswith("data/tracers.csv: row 7")


def test_a_missing_column_is_named() -> None:
    row = {k: v for k, v in GOOD_ROW.items() if k != "stage"}
    with pytest.raises(InputError, match=r"row 2 .*column 'stage': column missing"):
        tracer_from_row(row, 2)


# ---------------------------------------------------------------------------- command line


def test_cli_json_for_cd8(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tracers", "--target", "CD8", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert isinstance(payload, list)
    assert {row["agent"] for row in payload} == {
        "[89Zr]Zr-anti-CD8 cys-diabody",
        "[64Cu]Cu-anti-CD8 cys-diabody",
        "[89Zr]Zr-Df-IAB22M2C",
        "[64Cu]Cu-NOTA-IAB22M2C",
    }
    assert all(row["question"] == "t_cell_distribution" for row in payload)
    assert {"radionuclide", "modality", "stage", "review_refs", "primary_reference"} <= set(
        payload[0]
    )


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tracers", "--question", "activation", "--nuclide", "ga68"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "agent",
        "target",
        "question",
        "format",
        "nuclide",
        "modality",
        "stage",
        "refs",
    ]
    assert lines[1].split()[0] == "[68Ga]Ga-NOTA-GZP"
    assert "209,211,212" in lines[1]
    assert lines[2].startswith("1 agent(s)")


def test_cli_no_match(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tracers", "--target", "CD4"]) == 0
    assert capsys.readouterr().out.strip() == "no agent matches these filters"
    assert main(["tracers", "--target", "CD4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_bad_nuclide_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tracers", "--nuclide", "Xx-1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("immunopet tracers: error:")
    assert "Xx-1" in lines[0]


def test_cli_question_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["tracers", "--question", "toxicity"])
    assert caught.value.code == 2
    assert "adverse_events" in capsys.readouterr().err
