"""discover_study: simulator output (DICOM and PET-BIDS) → patient → timepoints → scans.

Ground truth is the simulator's truth.json: every scan's day after infusion, tracer and folder.
The tests on the simulated patient share one simulation (a few seconds): marked slow.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from immunopet.errors import InputError
from immunopet.image import DecayCorrection, Quantity, Volume
from immunopet.io import load_scan, read_nifti, write_nifti
from immunopet.io.dicom import PetSeriesSpec, pet_series_datasets, write_datasets
from immunopet.io.discovery import Study, discover_study, is_fdg
from immunopet.io.manifest import load_manifest, write_manifest
from immunopet.simulate import draw_cohort, load_scenario
from immunopet.simulate._bids import export_patient_bids, write_dataset_description
from immunopet.simulate._manifest import manifest_for_simulated_patient
from immunopet.simulate._patient import simulate_patient
from immunopet.simulate._scenario import Scan

VOXEL_MM = 16.0
#: Days of discovery and truth.json agree to this (the scanner writes whole seconds).
DAY_TOLERANCE = 1e-3
#: FDG on day 28 and the CD19 antibody on the same day (same visit), and a baseline FDG
#: and a day-87 antibody scan: three timepoints, one with two PET series.
SCANS = (
    Scan("fdg", -7.0, (1.0,), "biograph_mct"),
    Scan("fdg", 28.0, (1.0,), "biograph_mct"),
    Scan("cd19_igg", 27.0, (25.0,), "biograph_mct"),
    Scan("cd19_igg", 86.0, (24.0,), "biograph_mct"),
)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """One simulated patient as DICOM and as PET-BIDS, with its truth.json."""
    scenario = load_scenario("cd19_negative_relapse")
    patient = dataclasses.replace(draw_cohort(scenario, 1, seed=1)[0], scans=SCANS)
    base = tmp_path_factory.mktemp("discovery")
    dicom = base / "dicom" / patient.patient_id
    truth = simulate_patient(
        patient, dicom, noiseless=True, rng=np.random.default_rng(0), voxel_mm=VOXEL_MM
    )
    bids = base / "bids"
    write_dataset_description(bids, "discovery test")
    export_patient_bids(dicom, truth, bids)
    # The simulator writes the site's study.yaml beside the images; the tests here start
    # without it (tracers from the knowledge base) and add it where they test the manifest.
    shutil.move(dicom / "study.yaml", base / "study.yaml")
    (bids / f"sub-{patient.patient_id}" / "study.yaml").unlink()
    return dicom, bids, truth


def _infusion(truth: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(truth["patient"]["infusion_datetime"])


def _truth_visits(truth: dict[str, Any]) -> list[tuple[float, list[dict[str, Any]]]]:
    """(day, scans) of each truth timepoint, in time order."""
    visits = []
    for folder, timepoint in truth["timepoints"].items():
        scans = [s for s in truth["scans"] if Path(s["folder"]).parent == Path(folder)]
        visits.append((float(timepoint["day"]), scans))
    return sorted(visits, key=lambda item: item[0])


def _check_against_truth(study: Study, truth: dict[str, Any]) -> None:
    visits = _truth_visits(truth)
    assert truth["not_simulated"] == []
    assert len(visits) == 3
    assert study.patient_id == truth["patient"]["patient_id"]
    assert [tp.timepoint_id for tp in study.timepoints] == ["TP01", "TP02", "TP03"]
    for timepoint, (day, scans) in zip(study.timepoints, visits, strict=True):
        assert timepoint.day == pytest.approx(day, abs=DAY_TOLERANCE)
        assert timepoint.ct is not None
        got = sorted(
            (pet.tracer.target, pet.tracer.nuclide, pet.tracer.agent) for pet in timepoint.pets
        )
        assert got == sorted((s["target"], s["nuclide"], s["agent"]) for s in scans)


@pytest.mark.slow
def test_dicom_tree_gives_truth_timepoints_days_and_tracers(
    simulated: tuple[Path, Path, dict[str, Any]],
) -> None:
    dicom, _, truth = simulated
    study = discover_study(dicom, infusion_datetime=_infusion(truth))
    _check_against_truth(study, truth)
    assert [len(tp.pets) for tp in study.timepoints] == [1, 2, 1]
    # Without a manifest the tracers come from the knowledge base (CD19 antibody) and FDG.
    assert {pet.tracer.key: pet.tracer.source for tp in study.timepoints for pet in tp.pets} == {
        "fdg": "knowledge base",
        "64cu_cu_cd19_mab": "knowledge base",
    }
    by_folder = {s["folder"]: s for s in truth["scans"]}
    for timepoint in study.timepoints:
        assert timepoint.ct is not None
        for pet in timepoint.pets:
            scan = by_folder[str(pet.series.path.relative_to(dicom))]
            assert timepoint.ct.path == dicom / scan["ct_folder"]
            assert pet.series.acquisition_datetime == datetime.fromisoformat(scan["scan_datetime"])
            assert pet.series.injection_datetime == datetime.fromisoformat(
                scan["injection_datetime"]
            )
            assert pet.series.frame_of_reference_uid == timepoint.ct.frame_of_reference_uid
    # The simulator's ground truth (derivatives/truth: SEG and label maps) is never read.
    assert all(timepoint.masks == () for timepoint in study.timepoints)
    assert not any("labels" in warning for warning in study.warnings)


@pytest.mark.slow
def test_series_ref_reads_back_with_load_scan(
    simulated: tuple[Path, Path, dict[str, Any]],
) -> None:
    dicom, _, truth = simulated
    study = discover_study(dicom, infusion_datetime=_infusion(truth))
    pet = study.timepoints[0].pets[0]
    scan = load_scan(pet.series.path, series_uid=pet.series.series_uid)
    assert scan.acquisition is not None
    assert scan.acquisition.nuclide == pet.series.nuclide == "F-18"
    assert scan.volume.timing is not None
    assert scan.volume.timing.start == pet.series.acquisition_datetime
    assert len(scan.files) == len(pet.series.files)


def test_bids_tree_gives_the_same_study(simulated: tuple[Path, Path, dict[str, Any]]) -> None:
    dicom, bids, truth = simulated
    study = discover_study(bids, infusion_datetime=_infusion(truth))
    _check_against_truth(study, truth)
    from_dicom = discover_study(dicom, infusion_datetime=_infusion(truth))
    for a, b in zip(study.timepoints, from_dicom.timepoints, strict=True):
        assert a.day == pytest.approx(b.day, abs=1e-9)
        assert a.ct is not None
        assert a.ct.path.name.endswith("_ct.nii.gz")
        # (the simulator starts both PETs of a visit at the same second: order by key)
        assert sorted(p.tracer.key for p in a.pets) == sorted(p.tracer.key for p in b.pets)
        assert {p.tracer for p in a.pets} == {p.tracer for p in b.pets}
    # derivatives/truth holds the ground-truth label maps: never read.
    assert all(tp.masks == () for tp in study.timepoints)
    # The subject's folder alone gives the same study.
    subject = discover_study(bids / "sub-P0001", infusion_datetime=_infusion(truth))
    assert [tp.day for tp in subject.timepoints] == [tp.day for tp in study.timepoints]
    assert subject.patient_id == "P0001"
    pet = study.timepoints[1].pets[0].series
    read = load_scan(pet.path)
    assert read.volume.timing is not None
    assert read.volume.timing.start == pet.acquisition_datetime


@pytest.mark.slow
def test_flat_folder_with_random_names_gives_the_same_study(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    dicom, _, truth = simulated
    files = sorted(dicom.rglob("*.dcm"))
    rng = np.random.default_rng(7)
    flat = tmp_path / "flat"
    flat.mkdir()
    for index, number in enumerate(rng.permutation(len(files))):
        shutil.copyfile(files[number], flat / f"x{rng.integers(1 << 40):011x}_{index}")
    study = discover_study(flat, infusion_datetime=_infusion(truth))
    reference = discover_study(dicom, infusion_datetime=_infusion(truth))
    _check_against_truth(study, truth)
    for a, b in zip(study.timepoints, reference.timepoints, strict=True):
        assert a.day == b.day
        assert a.ct is not None
        assert b.ct is not None
        assert a.ct.series_uid == b.ct.series_uid
        assert [p.series.series_uid for p in a.pets] == [p.series.series_uid for p in b.pets]
        assert [len(p.series.files) for p in a.pets] == [len(p.series.files) for p in b.pets]
        assert all(p.series.path == flat for p in a.pets)


@pytest.mark.slow
def test_manifest_round_trip_names_tracers_by_their_keys(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    dicom, _, truth = simulated
    content = manifest_for_simulated_patient(truth)
    tree = tmp_path / "with_manifest"
    shutil.copytree(dicom, tree)
    write_manifest(content, tree / "study.yaml")
    manifest = load_manifest(tree / "study.yaml")
    assert manifest.patient_id == truth["patient"]["patient_id"]
    assert manifest.infusion_datetime == _infusion(truth)
    assert manifest.car_t is not None
    assert manifest.car_t.target == truth["patient"]["car_t_target"] == "CD19"
    assert manifest.lesion_tracer == "fdg"
    assert {t.key: (t.agent, t.target, t.vector_format, t.nuclide) for t in manifest.tracers} == {
        s["tracer"]: (s["agent"], s["target"], s["vector_format"], s["nuclide"])
        for s in truth["scans"]
    }
    scan_dates = {datetime.fromisoformat(s["scan_datetime"]).date() for s in truth["scans"]}
    assert {w.date for w in manifest.body_weight_kg} == scan_dates
    assert {w.weight_kg for w in manifest.body_weight_kg} == {truth["patient"]["weight_kg"]}
    # No ground truth (activities, cells, lesions) in the manifest.
    assert "truth" not in str(content)
    assert "bq" not in str(content).lower()
    # study.yaml is found in the tree; it gives the infusion and the tracer keys.
    study = discover_study(tree)
    assert study.manifest == manifest
    _check_against_truth(study, truth)
    for timepoint, (_, scans) in zip(study.timepoints, _truth_visits(truth), strict=True):
        assert sorted(p.tracer.key for p in timepoint.pets) == sorted(s["tracer"] for s in scans)
        assert {p.tracer.source for p in timepoint.pets} == {"manifest"}


@pytest.mark.slow
def test_infusion_must_be_given_and_agree(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    dicom, _, truth = simulated
    with pytest.raises(InputError, match="pass --infusion-datetime or a manifest") as missing:
        discover_study(dicom)
    assert "\n" not in str(missing.value)
    write_manifest(manifest_for_simulated_patient(truth), tmp_path / "study.yaml")
    other = _infusion(truth).replace(hour=8)
    with pytest.raises(InputError, match=r"car_t\.infusion_datetime"):
        discover_study(dicom, manifest=tmp_path / "study.yaml", infusion_datetime=other)


@pytest.mark.slow
def test_days_count_from_the_given_infusion(
    simulated: tuple[Path, Path, dict[str, Any]],
) -> None:
    dicom, _, truth = simulated
    infusion = datetime(2024, 5, 1, 21, 30)  # 4.5 days before the scenario's infusion
    study = discover_study(dicom, infusion_datetime=infusion)
    shift_d = (_infusion(truth) - infusion).total_seconds() / 86400.0
    assert shift_d == 4.5
    for timepoint, (day, _) in zip(study.timepoints, _truth_visits(truth), strict=True):
        assert timepoint.day == pytest.approx(day + shift_d, abs=DAY_TOLERANCE)
    assert study.timepoints[0].day < 0.0  # baseline FDG before the infusion


def _rewrite(files: list[Path], *, new_instances: bool = False, **values: str) -> None:
    """Set attributes of DICOM files in place (and give each a new SOP Instance UID)."""
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        if new_instances:
            ds.SOPInstanceUID = generate_uid()
        ds.save_as(path)


@pytest.mark.slow
def test_two_patients_are_refused_in_one_line(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    dicom, _, truth = simulated
    tree = tmp_path / "two"
    shutil.copytree(dicom, tree)
    folder = next(iter(truth["timepoints"]))
    _rewrite(sorted((tree / folder).rglob("*.dcm")), PatientID="P0002")
    with pytest.raises(InputError, match=r"2 patients found: P0001 in .*P0002 in") as error:
        discover_study(tree, infusion_datetime=_infusion(truth))
    assert "\n" not in str(error.value)
    assert "one patient's folder" in str(error.value)


@pytest.mark.slow
def test_manifest_for_another_patient_is_refused(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    dicom, _, truth = simulated
    content = manifest_for_simulated_patient(truth) | {"patient_id": "P0099"}
    write_manifest(content, tmp_path / "study.yaml")
    with pytest.raises(InputError, match="manifest is for patient 'P0099'"):
        discover_study(dicom, manifest=tmp_path / "study.yaml")


@pytest.mark.slow
def test_pet_of_another_study_joins_the_ct_of_its_frame_of_reference(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    dicom, _, truth = simulated
    tree = tmp_path / "split"
    shutil.copytree(dicom, tree)
    pet_folder = tree / truth["scans"][-1]["folder"]
    # A PET/CT exported as two studies: same day, same frame of reference.
    _rewrite(sorted(pet_folder.glob("*.dcm")), StudyInstanceUID=generate_uid())
    study = discover_study(tree, infusion_datetime=_infusion(truth))
    _check_against_truth(study, truth)
    # A PET of another study and another frame of reference has no CT: its own timepoint.
    _rewrite(sorted(pet_folder.glob("*.dcm")), FrameOfReferenceUID=generate_uid())
    study = discover_study(tree, infusion_datetime=_infusion(truth))
    assert len(study.timepoints) == 3
    alone = study.timepoints[-1]
    assert alone.ct is None
    assert alone.pets[0].series.path == pet_folder
    assert alone.day == pytest.approx(truth["scans"][-1]["day"], abs=DAY_TOLERANCE)
    assert any("has no CT" in warning for warning in study.warnings)
    assert any("has no PET" in warning for warning in study.warnings)


@pytest.mark.slow
def test_two_cts_of_one_frame_of_reference_are_refused(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    dicom, _, truth = simulated
    tree = tmp_path / "two_ct"
    shutil.copytree(dicom, tree)
    ct_folder = tree / truth["scans"][0]["ct_folder"]
    copy = ct_folder.with_name("CT_copy")
    shutil.copytree(ct_folder, copy)
    _rewrite(sorted(copy.glob("*.dcm")), new_instances=True, SeriesInstanceUID=generate_uid())
    with pytest.raises(InputError, match="which CT belongs to it is unclear"):
        discover_study(tree, infusion_datetime=_infusion(truth))


def _write_rtstruct(path: Path, ct: pydicom.Dataset) -> None:
    """A structure set header (no contours needed for discovery) on ``ct``'s frame of reference."""
    storage = "1.2.840.10008.5.1.4.1.1.481.3"  # RT Structure Set Storage
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = storage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID = storage
    ds.Modality = "RTSTRUCT"
    ds.PatientID = ct.PatientID
    ds.StudyInstanceUID = ct.StudyInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    item = pydicom.Dataset()
    item.FrameOfReferenceUID = ct.FrameOfReferenceUID
    ds.ReferencedFrameOfReferenceSequence = [item]
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.slow
def test_masks_are_assigned_by_frame_of_reference_and_folder(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    dicom, _, truth = simulated
    tree = tmp_path / "masks"
    shutil.copytree(dicom, tree)
    folders = sorted(truth["timepoints"], key=lambda k: truth["timepoints"][k]["day"])
    # The visit's SEG moved anywhere in the tree is still found by its frame of reference.
    (tree / "exports").mkdir()
    truth_dir = tree / "derivatives" / "truth"
    for folder in (folders[0], folders[2]):  # a user's SEG in the visit folder
        shutil.copy(truth_dir / folder / "labels_seg.dcm", tree / folder / "labels_seg.dcm")
    shutil.copy(truth_dir / folders[1] / "labels_seg.dcm", tree / "exports" / "seg.dcm")
    labels = read_nifti(truth_dir / folders[1] / "labels.nii.gz", quantity=Quantity.UNITLESS)
    (tree / folders[1] / "masks").mkdir()
    write_nifti(labels, tree / folders[1] / "masks" / "liver.nii.gz")
    # An RTSTRUCT names its frame of reference in Referenced Frame of Reference Sequence.
    ct_header = pydicom.dcmread(next((tree / folders[2] / "CT").glob("*.dcm")))
    _write_rtstruct(tree / "exports" / "rt.dcm", ct_header)
    # A masks/ folder above several visits belongs to none of them.
    (tree / "masks").mkdir()
    write_nifti(labels, tree / "masks" / "unclear.nii.gz")
    study = discover_study(tree, infusion_datetime=_infusion(truth))
    assert [{m.relative_to(tree) for m in tp.masks} for tp in study.timepoints] == [
        {Path(folders[0]) / "labels_seg.dcm"},
        {Path("exports/seg.dcm"), Path(folders[1]) / "masks/liver.nii.gz"},
        {Path(folders[2]) / "labels_seg.dcm", Path("exports/rt.dcm")},
    ]
    assert any("unclear.nii.gz" in w and "no single timepoint" in w for w in study.warnings)


@pytest.mark.slow
def test_bids_masks_come_from_derivatives_by_session(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, bids, truth = simulated
    tree = tmp_path / "bids"
    shutil.copytree(bids, tree)
    study = discover_study(tree, infusion_datetime=_infusion(truth))
    ct = study.timepoints[2].ct
    assert ct is not None
    session = ct.path.parent.parent.name
    organs = tree / "derivatives" / "organs" / "sub-P0001" / session / "anat"
    organs.mkdir(parents=True)
    label_map = organs / f"sub-P0001_{session}_dseg.nii.gz"
    shutil.copyfile(
        tree / "derivatives" / "truth" / "sub-P0001" / session / f"sub-P0001_{session}_dseg.nii.gz",
        label_map,
    )
    study = discover_study(tree, infusion_datetime=_infusion(truth))
    assert [tp.masks for tp in study.timepoints] == [(), (), (label_map,)]


@pytest.mark.slow
def test_undated_bids_sidecar_is_refused_unless_scans_tsv_dates_it(
    simulated: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    import json

    _, bids, truth = simulated
    tree = tmp_path / "bids"
    shutil.copytree(bids, tree)
    sidecar = next(tree.glob("sub-*/ses-*/pet/*_pet.json"))
    fields = json.loads(sidecar.read_text())
    start = datetime.fromisoformat(fields.pop("ImmunopetScanStartDateTime"))
    del fields["ImmunopetInjectionDateTime"]
    sidecar.write_text(json.dumps(fields))
    with pytest.raises(InputError, match="scan date is unknown"):
        discover_study(tree, infusion_datetime=_infusion(truth))
    session = sidecar.parent.parent
    name = sidecar.name.replace(".json", ".nii.gz")
    table = session / f"sub-P0001_{session.name}_scans.tsv"
    table.write_text(f"filename\tacq_time\npet/{name}\t{start.isoformat()}\n")
    study = discover_study(tree, infusion_datetime=_infusion(truth))
    _check_against_truth(study, truth)


# -- tracers ---------------------------------------------------------------------------------


def _write_pet(folder: Path, radiopharmaceutical: str, nuclide: str = "Zr-89") -> None:
    volume = Volume(
        np.ones((2, 3, 3), np.float32),
        np.diag([4.0, 4.0, 4.0, 1.0]),
        Quantity.ACTIVITY_CONCENTRATION,
    )
    spec = PetSeriesSpec(
        nuclide=nuclide,
        injected_activity_bq=37e6,
        injection_datetime=datetime(2026, 3, 2, 9, 0),
        series_datetime=datetime(2026, 3, 6, 9, 0),
        frame_duration_s=600.0,
        weight_kg=70.0,
        decay_correction=DecayCorrection.START,
        radiopharmaceutical=radiopharmaceutical,
        patient_id="P1",
    )
    write_datasets(pet_series_datasets(volume, spec), folder)


@pytest.mark.parametrize(
    ("text", "key", "target", "vector_format", "source"),
    [
        ("[89Zr]Zr-Df-IAB22M2C", "89zr_zr_df_iab22m2c", "CD8", "minibody", "knowledge base"),
        ("89Zr-Zr-Df-IAB22M2C", "89zr_zr_df_iab22m2c", "CD8", "minibody", "knowledge base"),
        ("[89Zr]Zr-unknown-mAb", "89zr_zr_unknown_mab", None, None, "header"),
    ],
)
def test_tracer_from_knowledge_base_or_header(
    tmp_path: Path,
    text: str,
    key: str,
    target: str | None,
    vector_format: str | None,
    source: str,
) -> None:
    _write_pet(tmp_path / "pet", text)
    study = discover_study(tmp_path, infusion_datetime=datetime(2026, 3, 1, 12, 0))
    (timepoint,) = study.timepoints
    assert timepoint.ct is None
    assert timepoint.day == 4.875  # 2026-03-06 09:00 is 4 d 21 h after the infusion
    tracer = timepoint.pets[0].tracer
    assert (tracer.key, tracer.target, tracer.vector_format, tracer.nuclide, tracer.source) == (
        key,
        target,
        vector_format,
        "Zr-89",
        source,
    )
    assert any("no CT" in w for w in study.warnings)
    assert (source == "header") == any("neither the manifest" in w for w in study.warnings)


def test_manifest_tracer_matches_ignoring_case_and_checks_the_nuclide(tmp_path: Path) -> None:
    _write_pet(tmp_path / "pet", "[89zr]ZR-DF-iab22m2c")
    manifest = {
        "car_t": {"target": "CD19", "infusion_datetime": "2026-03-01T12:00:00"},
        "tracers": [
            {"key": "cd8", "agent": "[89Zr]Zr-Df-IAB22M2C", "target": "CD8", "nuclide": "89Zr"}
        ],
    }
    (tmp_path / "m").mkdir()
    write_manifest(manifest, tmp_path / "m" / "other.yaml")
    study = discover_study(tmp_path, manifest=tmp_path / "m" / "other.yaml")
    tracer = study.timepoints[0].pets[0].tracer
    assert (tracer.key, tracer.target, tracer.source) == ("cd8", "CD8", "manifest")
    manifest["tracers"][0]["nuclide"] = "Cu-64"
    write_manifest(manifest, tmp_path / "m" / "other.yaml")
    with pytest.raises(InputError, match="is Cu-64, the file says Zr-89"):
        discover_study(tmp_path, manifest=tmp_path / "m" / "other.yaml")


def test_fdg_by_its_names_and_not_with_another_nuclide(tmp_path: Path) -> None:
    assert is_fdg("[18F]FDG")
    assert is_fdg("FDG")
    assert is_fdg("Fludeoxyglucose")
    assert not is_fdg("[18F]FLT")
    assert not is_fdg("[89Zr]Zr-Df-IAB22M2C")
    _write_pet(tmp_path / "pet", "Fludeoxyglucose F^18^", nuclide="F-18")
    _write_pet(tmp_path / "odd", "FDG", nuclide="Zr-89")
    study = discover_study(tmp_path, infusion_datetime=datetime(2026, 3, 1, 12, 0))
    tracers = sorted(
        (p.tracer.key, p.tracer.target, p.tracer.source) for tp in study.timepoints for p in tp.pets
    )
    assert tracers == [
        ("fdg", "glucose metabolism", "knowledge base"),
        ("fdg_zr_89", None, "header"),
    ]
    assert any("named like FDG but the file says Zr-89" in w for w in study.warnings)


def test_missing_folder_and_empty_tree_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        discover_study(tmp_path / "absent", infusion_datetime=datetime(2026, 3, 1))
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(InputError, match="no PET or SPECT series found"):
        discover_study(tmp_path, infusion_datetime=datetime(2026, 3, 1))
