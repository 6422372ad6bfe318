"""A simulated patient as NIfTI + PET-BIDS, converted from its DICOM through the real readers.

Layout under the BIDS root (one subject per virtual patient, one session per visit)::

    dataset_description.json           BIDS 1.9, DatasetType "raw"
    participants.tsv                   participant_id, species, sex, weight, height
    sub-<id>/study.yaml                the manifest a site would write (immunopet, not BIDS)
    sub-<id>/ses-<visit>/pet/sub-<id>_ses-<visit>_trc-<tracer>_pet.nii.gz (+ .json)
    sub-<id>/ses-<visit>/ct/sub-<id>_ses-<visit>_ct.nii.gz   (HU; CT is not in BIDS 1.9:
                                                              BEP024 proposal, kept apart)
    derivatives/truth/sub-<id>/ses-<visit>/sub-<id>_ses-<visit>_dseg.nii.gz
    derivatives/truth/sub-<id>/truth.json

``<visit>`` is the day after infusion written with BIDS-safe characters: ``day007p00`` for
+7.00, ``daym007p00`` for −7.00. ``<tracer>`` is the scenario's tracer key without
non-alphanumeric characters. Each PET image is the DICOM series read back by
:func:`immunopet.io.load_scan` and written by :func:`immunopet.io.bids.write_pet_bids`, so a
PET-BIDS reader sees exactly what a DICOM reader sees (SUV to 1e-6, tested).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Final

from immunopet.io import load_scan
from immunopet.io._atomic import atomic_path
from immunopet.io.bids import write_pet_bids
from immunopet.io.nifti import write_nifti

__all__ = ["bids_label", "export_patient_bids", "visit_label", "write_dataset_description"]

_BIDS_VERSION: Final = "1.9.0"


def bids_label(text: str) -> str:
    """A BIDS entity label: only letters and digits (``"cd19_igg"`` → ``"cd19igg"``)."""
    label = re.sub(r"[^A-Za-z0-9]", "", text)
    if not label:
        raise ValueError(f"{text!r} has no letters or digits for a BIDS label")
    return label


def visit_label(day: float) -> str:
    """Session label of a visit ``day`` days after infusion: ``day007p00``, ``daym007p00``."""
    sign = "m" if day < 0 else ""
    whole, hundredths = divmod(round(abs(day) * 100), 100)
    return f"day{sign}{whole:03d}p{hundredths:02d}"


def write_dataset_description(root: Path, name: str) -> None:
    """``dataset_description.json`` and the header of ``participants.tsv`` (if absent)."""
    root.mkdir(parents=True, exist_ok=True)
    description = {
        "Name": name,
        "BIDSVersion": _BIDS_VERSION,
        "DatasetType": "raw",
        "GeneratedBy": [{"Name": "immunopet simulate"}],
    }
    with atomic_path(root / "dataset_description.json") as temporary:
        temporary.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    participants = root / "participants.tsv"
    if not participants.exists():
        with atomic_path(participants) as temporary:
            temporary.write_text("participant_id\tspecies\tsex\tweight\theight\n", encoding="utf-8")


def _append_participant(root: Path, subject: str, patient: dict[str, Any]) -> None:
    height = patient.get("height_cm")
    row = "\t".join(
        [
            f"sub-{subject}",
            str(patient["species"]),
            str(patient["sex"]),
            f"{patient['weight_kg']}",
            "n/a" if height is None else f"{height}",
        ]
    )
    participants = root / "participants.tsv"
    text = participants.read_text(encoding="utf-8") + row + "\n"
    with atomic_path(participants) as temporary:
        temporary.write_text(text, encoding="utf-8")


def export_patient_bids(dicom_dir: Path, truth: dict[str, Any], root: Path) -> dict[str, Any]:
    """Convert one simulated patient from DICOM (``dicom_dir``) into the BIDS tree at ``root``.

    The subject folder and the truth derivative are built in temporary folders
    and renamed when complete; ``participants.tsv`` gets the subject's row last.

    Parameters
    ----------
    dicom_dir : pathlib.Path
        Folder :func:`~immunopet.simulate._patient.simulate_patient` wrote.
    truth : dict
        Its ``truth.json`` content; the returned copy names the BIDS files instead
        (``pet_file``, ``ct_file`` per scan, ``labels_file`` per timepoint, relative
        to ``root``).
    root : pathlib.Path
        BIDS dataset root (see :func:`write_dataset_description`).

    Returns
    -------
    dict
        The truth with BIDS paths, also written to the truth derivative.

    """
    from immunopet.io._atomic import atomic_directory

    subject = bids_label(truth["patient"]["patient_id"])
    out: dict[str, Any] = json.loads(json.dumps(truth))
    subject_dir = root / f"sub-{subject}"
    truth_dir = root / "derivatives" / "truth" / f"sub-{subject}"
    with atomic_directory(subject_dir) as work, atomic_directory(truth_dir) as truth_work:
        sessions: dict[str, str] = {}
        for folder, timepoint in out["timepoints"].items():
            session = visit_label(float(timepoint["day"]))
            sessions[folder] = session
            stem = f"sub-{subject}_ses-{session}"
            ct = load_scan(dicom_dir / folder / "CT").volume
            (work / f"ses-{session}" / "ct").mkdir(parents=True)
            write_nifti(ct, work / f"ses-{session}" / "ct" / f"{stem}_ct.nii.gz")
            labels_dir = truth_work / f"ses-{session}"
            labels_dir.mkdir(parents=True)
            shutil.copyfile(
                dicom_dir / timepoint["labels_file"], labels_dir / f"{stem}_dseg.nii.gz"
            )
            seg = dicom_dir / timepoint["labels_seg_file"]
            if seg.exists():
                shutil.copyfile(seg, labels_dir / f"{stem}_dseg.dcm")
            timepoint["labels_file"] = (
                f"derivatives/truth/sub-{subject}/ses-{session}/{stem}_dseg.nii.gz"
            )
            timepoint["session"] = f"ses-{session}"
            timepoint["labels_seg_file"] = (
                f"derivatives/truth/sub-{subject}/ses-{session}/{stem}_dseg.dcm"
            )
        for scan in out["scans"]:
            folder = str(Path(scan["folder"]).parent)
            session = sessions[folder]
            stem = f"sub-{subject}_ses-{session}"
            pet_dir = work / f"ses-{session}" / "pet"
            pet_dir.mkdir(parents=True, exist_ok=True)
            name = f"{stem}_trc-{bids_label(scan['tracer'])}_pet.nii.gz"
            read = load_scan(dicom_dir / scan["folder"])
            assert read.acquisition is not None
            write_pet_bids(read.volume, read.acquisition, pet_dir / name)
            scan["pet_file"] = f"sub-{subject}/ses-{session}/pet/{name}"
            scan["ct_file"] = f"sub-{subject}/ses-{session}/ct/{stem}_ct.nii.gz"
            del scan["folder"], scan["ct_folder"]
        if (dicom_dir / "study.yaml").exists():  # the site's manifest travels with the subject
            shutil.copyfile(dicom_dir / "study.yaml", work / "study.yaml")
        out["format"] = "bids"
        with atomic_path(truth_work / "truth.json") as temporary:
            temporary.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    _append_participant(root, subject, out["patient"])
    return out
