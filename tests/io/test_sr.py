"""DICOM SR TID 1500 measurement reports: conformance, round trip, tracking and references.

The study is written through immunopet's own writers: two visits of one patient, an FDG
PET at each (the SEG's source) and a ⁶⁴Cu antibody PET at the second, with organ and lesion
VOIs as a DICOM SEG on the FDG grid. The expected values are the document's own numbers
(the report must carry results.json exactly); the codes are checked against PS3.16 as
shipped in pydicom.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom import config
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from immunopet.data import read_toml
from immunopet.errors import InputError
from immunopet.image import Quantity, Volume
from immunopet.io.dicom import PetSeriesSpec, StudyIdentity, pet_series_datasets, write_label_seg
from immunopet.io.dicom._sr import read_measurement_report, tracking_uid, write_measurement_report
from phantoms import AFFINE

SHAPE = (6, 8, 8)
#: Voxel volume of phantoms.AFFINE: 3 mm x 4 mm x 4 mm = 0.048 mL.
VOXEL_ML = 0.048
STUDY_KEY = "0123456789abcdef0123456789abcdef"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
INFUSION = datetime(2026, 3, 9, 9, 0)
#: label id -> (name, voxel slices): liver 2x4x4 = 32 voxels, L001 2x2x2 = 8, L002 1x2x2 = 4.
LIVER = (slice(1, 3), slice(0, 4), slice(0, 4))
L001 = (slice(3, 5), slice(4, 6), slice(4, 6))
L002 = (slice(5, 6), slice(6, 8), slice(0, 2))


def _labels(with_l002: bool) -> tuple[npt.NDArray[np.uint8], dict[int, str]]:
    array = np.zeros(SHAPE, dtype=np.uint8)
    array[LIVER] = 1
    array[L001] = 2
    names = {1: "liver", 2: "L001"}
    if with_l002:
        array[L002] = 3
        names[3] = "L002"
    return array, names


def _pet(nuclide: str, activity_bq: float, scan: datetime, study: StudyIdentity) -> list[Dataset]:
    volume = Volume(np.full(SHAPE, 5000.0, np.float32), AFFINE, Quantity.ACTIVITY_CONCENTRATION)
    spec = PetSeriesSpec(
        nuclide=nuclide,
        injected_activity_bq=activity_bq,
        injection_datetime=scan.replace(hour=8),
        series_datetime=scan,
        frame_duration_s=300.0,
        weight_kg=71.5,
        patient_id="SR-TEST-01",
    )
    return pet_series_datasets(volume, spec, study=study)


def _measurement(
    voi_type: str, voi_id: str, timepoint: str, tracer: str, n_voxels: int, seed: int
) -> dict[str, Any]:
    """Values with full float64 mantissas (a DS string alone would not keep them)."""
    rng = np.random.default_rng(seed)
    mean = float(rng.uniform(1.0, 12.0))
    return {
        "voi_type": voi_type,
        "voi_id": voi_id,
        "timepoint_id": timepoint,
        "tracer": tracer,
        "n_voxels": n_voxels,
        "volume_ml": n_voxels * VOXEL_ML,
        "suv_max": mean * float(rng.uniform(1.05, 1.6)),
        "suv_mean": mean,
        "suv_peak": mean * float(rng.uniform(1.0, 1.3)) if voi_type == "lesion" else None,
        "suv_sd": mean * float(rng.uniform(0.05, 0.3)),
    }


class Study:
    """Files and the results document of the two-visit test study."""

    def __init__(self, root: Path) -> None:
        visits = {"TP01": datetime(2026, 3, 2, 9, 0), "TP02": datetime(2026, 4, 6, 9, 0)}
        self.pets: dict[tuple[str, str], list[Dataset]] = {}
        self.segs: dict[str, Path] = {}
        timepoints = []
        measurements: list[dict[str, Any]] = []
        seed = 0
        for timepoint, when in visits.items():
            study = StudyIdentity.new("SR-TEST-01", when)
            tracers = [("fdg", "[18F]FDG", "F-18", 350.0e6)]
            if timepoint == "TP02":
                tracers.append(("cd19_igg", "[64Cu]Cu-CD19-mAb", "Cu-64", 185.0e6))
            scans = []
            for tracer, agent, nuclide, activity in tracers:
                datasets = _pet(nuclide, activity, when, study)
                self.pets[timepoint, tracer] = datasets
                scans.append(
                    {
                        "scan_id": f"{timepoint}-{tracer}",
                        "tracer": tracer,
                        "agent": agent,
                        "nuclide": nuclide,
                        "series_uid": str(datasets[0].SeriesInstanceUID),
                    }
                )
            day = (when - INFUSION).total_seconds() / 86400.0
            timepoints.append({"timepoint_id": timepoint, "day": day, "scans": scans})
            labels, names = _labels(with_l002=timepoint == "TP01")
            for tracer, *_ in tracers:
                for label_id, name in names.items():
                    seed += 1
                    voi_type = "organ" if name == "liver" else "lesion"
                    n_voxels = int(np.count_nonzero(labels == label_id))
                    if tracer != "fdg":
                        n_voxels += 3  # the VOI resampled onto the antibody scan's grid
                    measurements.append(
                        _measurement(voi_type, name, timepoint, tracer, n_voxels, seed)
                    )
            fdg = self.pets[timepoint, "fdg"]
            label_volume = Volume(labels, AFFINE, Quantity.UNITLESS)
            self.segs[timepoint] = write_label_seg(
                label_volume,
                names,
                fdg,
                root / f"{timepoint}_vois_seg.dcm",
                lesions=[n for n in names.values() if n.startswith("L")],
            )
        self.document: dict[str, Any] = {
            "study": {"patient_id": "SR-TEST-01", "study_key": STUDY_KEY},
            "timepoints": timepoints,
            "measurements": measurements,
        }
        self.root = root

    def write(self, timepoint: str, **options: Any) -> Path:
        others = [ds for (tp, tracer), series in self.pets.items() for ds in series
                  if tp == timepoint and tracer != "fdg"]  # fmt: skip
        return write_measurement_report(
            self.document,
            timepoint,
            self.segs[timepoint],
            self.pets[timepoint, "fdg"],
            self.root / f"{timepoint}_sr.dcm",
            other_source_files=others,
            **options,
        )


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return Study(tmp_path_factory.mktemp("sr"))


@pytest.fixture(scope="module")
def reports(study: Study) -> dict[str, Path]:
    return {timepoint: study.write(timepoint) for timepoint in ("TP01", "TP02")}


def test_report_passes_pydicom_strict_reading(study: Study, reports: dict[str, Path]) -> None:
    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        ds = pydicom.dcmread(reports["TP02"])
        n_elements = sum(1 for element in ds.iterall() if element.value is not None)
    finally:
        config.settings.reading_validation_mode = previous
    assert n_elements > 500
    assert ds.SOPClassUID == COMPREHENSIVE_3D_SR
    assert ds.Modality == "SR"
    assert ds.CompletionFlag == "COMPLETE"
    assert ds.VerificationFlag == "UNVERIFIED"
    fdg = study.pets["TP02", "fdg"][0]
    assert ds.PatientID == fdg.PatientID == "SR-TEST-01"
    assert ds.StudyInstanceUID == fdg.StudyInstanceUID
    title = ds.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator) == ("126003", "DCM")
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert [item.CodingSchemeDesignator for item in ds.CodingSchemeIdentificationSequence] == [
        "99IMMUNOPET"
    ]


def _expected_rows(study: Study, timepoint: str) -> list[tuple[Any, ...]]:
    keys = ("suv_max", "suv_mean", "suv_peak", "suv_sd", "volume_ml")
    rows = []
    for m in study.document["measurements"]:
        if m["timepoint_id"] != timepoint:
            continue
        uid = tracking_uid(STUDY_KEY, m["voi_type"], m["voi_id"])
        for key in keys:
            if m[key] is not None:
                rows.append((m["voi_id"], uid, timepoint, m["tracer"], key, m[key]))
    return rows


@pytest.mark.parametrize("timepoint", ["TP01", "TP02"])
def test_round_trip_gives_the_document_values_exactly(
    study: Study, reports: dict[str, Path], timepoint: str
) -> None:
    rows = read_measurement_report(reports[timepoint])
    got = [
        (r["tracking_id"], r["tracking_uid"], r["timepoint_id"], r["tracer"], r["measurement"],
         r["value"])
        for r in rows
    ]  # fmt: skip
    assert sorted(got) == sorted(_expected_rows(study, timepoint))
    units = {r["measurement"]: r["unit"] for r in rows}
    assert units == {
        "suv_max": "g/ml{SUVbw}",
        "suv_mean": "g/ml{SUVbw}",
        "suv_peak": "g/ml{SUVbw}",
        "suv_sd": "g/ml{SUVbw}",
        "volume_ml": "ml",
    }


def test_groups_reference_the_seg_segments_and_the_pet_series(
    study: Study, reports: dict[str, Path]
) -> None:
    sr: Any = hd.sr.srread(reports["TP02"])
    groups = sr.content.get_volumetric_roi_measurement_groups()
    seg = pydicom.dcmread(study.segs["TP02"], stop_before_pixels=True)
    numbers = {str(s.SegmentLabel): int(s.SegmentNumber) for s in seg.SegmentSequence}
    fdg_series = study.pets["TP02", "fdg"][0].SeriesInstanceUID
    # Two VOIs (liver, L001) x two scans (FDG first, then the antibody).
    assert [(g.tracking_identifier, _session(g)) for g in groups] == [
        ("liver", "TP02-fdg"),
        ("liver", "TP02-cd19_igg"),
        ("L001", "TP02-fdg"),
        ("L001", "TP02-cd19_igg"),
    ]
    for group in groups:
        segment = group.referenced_segment
        assert segment is not None
        item = segment[0].ReferencedSOPSequence[0]
        assert item.ReferencedSOPClassUID == SEG_STORAGE
        assert item.ReferencedSOPInstanceUID == seg.SOPInstanceUID
        assert item.ReferencedSegmentNumber == numbers[group.tracking_identifier]
        assert fdg_series == segment[1].UID  # Source Series for Segmentation
    liver, _, lesion, _ = groups
    assert (liver.finding_type.value, liver.finding_type.meaning) == ("10200004", "Liver")
    assert (lesion.finding_type.value, lesion.finding_type.meaning) == ("108369006", "Neoplasm")
    assert lesion.finding_category.meaning == "Morphologically Abnormal Structure"


def _session(group: Any) -> str:
    for item in group[0].ContentSequence:
        if item.ConceptNameCodeSequence[0].CodeValue == "C67447":  # NCIt Activity Session
            return str(item.TextValue)
    raise AssertionError("no Activity Session")


def test_tracer_and_time_point_are_coded(study: Study, reports: dict[str, Path]) -> None:
    sr: Any = hd.sr.srread(reports["TP02"])
    fdg_group, antibody_group = sr.content.get_volumetric_roi_measurement_groups()[:2]

    def evaluations(group: Any) -> dict[str, tuple[str, str, str]]:
        return {
            e.name.meaning: (e.value.scheme_designator, e.value.value, e.value.meaning)
            for e in group.get_qualitative_evaluations()
            if e.name.meaning in ("Radiopharmaceutical agent", "Radionuclide")
        }

    # PS3.16 CID 4021 / 4020 codes (DICOM PS3.16 as shipped in pydicom 3.0.2).
    assert evaluations(fdg_group) == {
        "Radiopharmaceutical agent": ("SCT", "35321007", "Fluorodeoxyglucose F^18^"),
        "Radionuclide": ("SCT", "77004003", "^18^Fluorine"),
    }
    # No PS3.16 code for this agent: a local code carrying the tracer key and the agent name.
    assert evaluations(antibody_group) == {
        "Radiopharmaceutical agent": ("99IMMUNOPET", "cd19_igg", "[64Cu]Cu-CD19-mAb"),
        "Radionuclide": ("SCT", "3932008", "^64^Copper"),
    }
    items = {i.ConceptNameCodeSequence[0].CodeMeaning: i for i in fdg_group[0].ContentSequence}
    assert items["Time Point"].TextValue == "TP02"
    assert items["Time Point Order"].MeasuredValueSequence[0].NumericValue == 2
    offset = items["Longitudinal Temporal Offset from Event"]
    # 2026-04-06 09:00 is 28 days after the infusion on 2026-03-09 09:00.
    assert offset.MeasuredValueSequence[0].FloatingPointValue == 28.0
    assert offset.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "d"
    event = offset.ContentSequence[0].ConceptCodeSequence[0]
    assert (event.CodeValue, event.CodeMeaning) == ("CART_INFUSION", "CAR T-cell infusion")


def test_a_lesion_keeps_its_tracking_uid_across_timepoints(reports: dict[str, Path]) -> None:
    uids = {
        timepoint: {r["tracking_id"]: r["tracking_uid"] for r in read_measurement_report(path)}
        for timepoint, path in reports.items()
    }
    assert set(uids["TP01"]) == {"liver", "L001", "L002"}
    assert set(uids["TP02"]) == {"liver", "L001"}
    assert uids["TP01"]["L001"] == uids["TP02"]["L001"]
    assert uids["TP01"]["liver"] == uids["TP02"]["liver"]
    assert len(set(uids["TP01"].values())) == 3
    assert uids["TP01"]["L001"] == tracking_uid(STUDY_KEY, "lesion", "L001")


def test_evidence_lists_the_seg_and_every_pet_image(study: Study, reports: dict[str, Path]) -> None:
    sr: Any = hd.sr.srread(reports["TP02"])
    evidence = {(str(series), str(sop)) for _, series, sop, _ in sr.get_evidence()}
    seg = pydicom.dcmread(study.segs["TP02"], stop_before_pixels=True)
    expected = {(str(seg.SeriesInstanceUID), str(seg.SOPInstanceUID))}
    for tracer in ("fdg", "cd19_igg"):
        expected |= {
            (str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)) for ds in study.pets["TP02", tracer]
        }
    assert evidence == expected
    assert len(evidence) == 1 + 2 * SHAPE[0]


def test_a_voi_that_differs_from_its_segment_is_refused_or_left_out(study: Study) -> None:
    document = dict(study.document)
    document["measurements"] = [
        {**m, "n_voxels": 30} if (m["voi_id"], m["tracer"]) == ("liver", "fdg") else m
        for m in study.document["measurements"]
    ]
    tp = "TP01"
    args = (document, tp, study.segs[tp], study.pets[tp, "fdg"])
    with pytest.raises(InputError, match=r"liver: segment 32 voxels, VOI 30"):
        write_measurement_report(*args, study.root / "refused.dcm")
    assert not (study.root / "refused.dcm").exists()
    path = write_measurement_report(*args, study.root / "omitted.dcm", unmatched="omit")
    assert {r["tracking_id"] for r in read_measurement_report(path)} == {"L001", "L002"}


def test_inputs_that_do_not_belong_together_are_refused(study: Study) -> None:
    out = study.root / "bad.dcm"
    with pytest.raises(InputError, match="the SEG was drawn on"):
        write_measurement_report(
            study.document, "TP01", study.segs["TP01"], study.pets["TP02", "fdg"], out
        )
    with pytest.raises(InputError, match="timepoint 'TP09' is not in the document"):
        write_measurement_report(
            study.document, "TP09", study.segs["TP01"], study.pets["TP01", "fdg"], out
        )
    with pytest.raises(InputError, match="no scan of timepoint TP02"):
        write_measurement_report(
            study.document, "TP02", study.segs["TP01"], study.pets["TP01", "fdg"], out
        )
    with pytest.raises(InputError, match="not a DICOM Segmentation"):
        write_measurement_report(
            study.document, "TP01", _written_pet(study), study.pets["TP01", "fdg"], out
        )
    assert not out.exists()


def _written_pet(study: Study) -> Path:
    path = study.root / "pet_slice.dcm"
    study.pets["TP01", "fdg"][0].save_as(path, enforce_file_format=True)
    return path


def test_reader_refuses_a_file_that_is_not_a_measurement_report(study: Study) -> None:
    with pytest.raises(InputError, match="cannot read the file as a DICOM SR"):
        read_measurement_report(study.segs["TP01"])


def _in_context_group(entry: dict[str, Any]) -> bool:
    group = getattr(codes, f"cid{entry['cid']}")
    return any(
        (c.value, c.scheme_designator, c.meaning)
        == (entry["value"], entry["scheme"], entry["meaning"])
        for c in group.concepts.values()
    )


def test_coded_concepts_are_those_ps3_16_lists() -> None:
    table = read_toml("sr_codes.toml")
    entries = [
        *table["document"].values(),
        *(code for m in table["measurements"].values() for code in m.values()),
        *table["time"].values(),
        *table["radiopharmaceuticals"].values(),
        *table["radionuclides"].values(),
    ]
    listed = [e for e in entries if e["cid"]]
    assert len(listed) >= 30
    missing = [e for e in listed if not _in_context_group(e)]
    assert missing == []
    # Agent codes are mapped back to tracer keys: they must be distinct.
    agents = [(e["scheme"], e["value"]) for e in table["radiopharmaceuticals"].values()]
    assert len(set(agents)) == len(agents)
