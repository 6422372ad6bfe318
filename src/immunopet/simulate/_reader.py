"""A reader's VOIs for a simulated study, drawn from the ground truth (a best-case reader).

Preclinical studies are read with VOIs drawn by hand (PMOD, 3D Slicer): the organs on every
visit, the tumour on the CT where the cell scan cannot show it. :func:`write_reader_vois`
writes such VOIs into a simulated study, from the simulator's label map of each visit
(``truth.json`` ``timepoints[].labels_file``), as a NIfTI label map with its names in a sidecar
in the visit's ``masks`` folder, where :mod:`immunopet.io.discovery` finds a site's masks. The
analysis then takes the organs as the reader's organ VOIs and lesion-named structures as the
reader's lesion VOIs (``AnalysisOptions.lesion_vois``). The VOIs follow the true labels
(reference tissues such as muscle drawn away from every other structure, as readers do:
:data:`READER_MARGINS_MM`): a real reader's are not as exact (a lower bound on the VOI error
of a study).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = ["READER_MARGINS_MM", "READER_ORGANS", "write_reader_vois"]

#: Organs a preclinical reader draws on every visit (those with a label in the phantom).
READER_ORGANS: Final = (
    "muscle",
    "liver",
    "spleen",
    "lungs",
    "heart",
    "kidneys",
    "brain",
    "urinary_bladder",
    "red_marrow",
)
#: Reference tissues a reader draws away from every other structure, mm: a muscle VOI is
#: placed in the thigh or back, not against hot organs or the skin, so that spill-in (and
#: spill-out to air) stay out of it. 3 mm is about twice the small-animal PET FWHM (Inveon
#: 1.62 mm, data/scanners.toml); the whole muscle label of the simulated mouse read 1.7 times
#: its true concentration on 89Zr-oxine cell scans (spleen and liver 25-60 times muscle).
READER_MARGINS_MM: Final = {"muscle": 3.0}
#: File name (without suffix) of the label map in each visit's ``masks`` folder.
READER_FILE: Final = "reader_dseg"


def write_reader_vois(
    study: str | Path,
    truth: Mapping[str, Any],
    *,
    organs: Iterable[str] = READER_ORGANS,
    lesions: bool = False,
) -> list[Path]:
    """Write a reader's organ (and lesion) VOIs into each visit of a simulated study.

    Parameters
    ----------
    study : str or pathlib.Path
        The study folder ``simulate_patient`` wrote (the visits' folders are in it).
    truth : mapping
        Its ``truth.json`` document.
    organs : iterable of str
        Phantom labels drawn as organs (default :data:`READER_ORGANS`).
    lesions : bool
        Draw the lesions too (their truth names, which the analysis takes as lesion VOIs).

    Returns
    -------
    list of pathlib.Path
        The label maps written, one per visit.

    """
    from immunopet.image import Quantity
    from immunopet.io.nifti import read_nifti, write_nifti

    root = Path(study)
    wanted_organs = set(organs)
    written = []
    for state in truth["timepoints"].values():
        labels_file = root / state["labels_file"]
        labels = read_nifti(labels_file, quantity=Quantity.UNITLESS)
        tumours = set(state["lesion_centroids_lps_mm"])
        wanted = [
            name
            for name in state["labels"]
            if name in wanted_organs or (lesions and name in tumours)
        ]
        source = np.asarray(labels.array)
        drawn = np.zeros(source.shape, dtype=np.uint8)
        names = {}
        for index, structure in enumerate(wanted, start=1):
            region = source == int(state["labels"][structure])
            margin_mm = READER_MARGINS_MM.get(structure)
            if margin_mm is not None:
                region &= _far_from_others(source, state["labels"], structure, labels, margin_mm)
            drawn[region] = index
            names[str(index)] = structure
        folder = root / labels_file.parent.name / "masks"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{READER_FILE}.nii.gz"
        write_nifti(labels.with_array(drawn, Quantity.UNITLESS), path)
        (folder / f"{READER_FILE}.json").write_text(
            json.dumps({"labels": names}, indent=2) + "\n", encoding="utf-8"
        )
        written.append(path)
    return written


def _far_from_others(
    source: Any, ids: Mapping[str, int], structure: str, grid: Any, margin_mm: float
) -> Any:
    """Voxels at least ``margin_mm`` from every label but ``structure`` and fat.

    Fat is left in: the phantom gives it muscle's uptake (truth.json
    ``conventions.tissue_of_label``); air (the skin) and every organ count as others.
    """
    from scipy import ndimage

    same = [int(ids[structure])] + [int(ids[n]) for n in ("fat",) if n in ids]
    others = ~np.isin(source, same)
    distance = ndimage.distance_transform_edt(~others, sampling=tuple(grid.spacing_mm))
    return np.asarray(distance >= margin_mm)
