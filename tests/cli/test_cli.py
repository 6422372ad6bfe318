"""The command-line contract: JSON fields, overrides, exit codes and one-line errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from immunopet.cli import main
from phantoms import SUV_JSON_KEYS, PetWriter, remaining

REQUIRED_SUV_KEYS = SUV_JSON_KEYS


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    payload: dict[str, object] = json.loads(out)
    return payload


def example_path(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["example"]) == 0
    return capsys.readouterr().out.strip()


def test_suv_json_on_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_json(capsys, "suv", example_path(capsys), "--json")
    assert payload.keys() >= REQUIRED_SUV_KEYS
    decayed = 37.0e6 * remaining("Zr-89", 96 * 3600.0)
    assert payload["decayed_dose_bq"] == pytest.approx(decayed, rel=1e-9)
    assert payload["suv_bw_factor"] == pytest.approx(70.0e3 / decayed, rel=1e-9)
    assert payload["max_suv_bw"] == pytest.approx(5.0, abs=1e-3)  # scripts/make_example.py
    assert payload["nuclide"] == "Zr-89"
    assert payload["half_life_s"] == pytest.approx(78.41 * 3600)
    assert payload["units"] == "BQML"
    assert payload["decay_correction"] == "START"
    assert payload["injection_datetime"] == "2026-03-02T09:00:00"
    assert payload["reference_datetime"] == "2026-03-06T09:00:00"
    assert payload["warnings"] == []


def test_overrides_win_and_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    path = example_path(capsys)
    base = run_json(capsys, "suv", path, "--json")
    heavier = run_json(
        capsys, "suv", path, "--json", "--weight-kg", "84", "--height-cm", "180", "--sex", "M"
    )
    assert heavier["suv_bw_factor"] == pytest.approx(base["suv_bw_factor"] * 84 / 70, rel=1e-12)  # type: ignore[operator]
    lbm = 1.10 * 84 - 128 * (84 / 180) ** 2  # James, men
    assert heavier["suv_lbm_james_factor"] == pytest.approx(
        lbm * 1000 / heavier["decayed_dose_bq"], rel=1e-9
    )  # type: ignore[operator]
    warnings = " ".join(heavier["warnings"])  # type: ignore[arg-type]
    assert "84.0" in warnings
    assert "70.0" in warnings


def test_injection_datetime_option_moves_the_decay(capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_json(
        capsys, "suv", example_path(capsys), "--json", "--injection-datetime", "2026-03-03T09:00:00"
    )
    assert payload["decayed_dose_bq"] == pytest.approx(
        37.0e6 * remaining("Zr-89", 72 * 3600.0), rel=1e-9
    )


def _no_weight(ds: Dataset, _: int) -> None:
    del ds.PatientWeight


def _time_only(ds: Dataset, _: int) -> None:
    del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [(_no_weight, "--weight-kg"), (_time_only, "--injection-datetime")],
)
def test_missing_facts_exit_2_with_one_line(
    write_pet: PetWriter, capsys: pytest.CaptureFixture[str], mutate: object, needle: str
) -> None:
    folder = write_pet(values=100.0, mutate=mutate)
    assert main(["suv", str(folder), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert str(folder) in lines[0]
    assert needle in lines[0]


def test_missing_weight_given_as_option(
    write_pet: PetWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_pet(values=100.0, mutate=_no_weight)
    payload = run_json(capsys, "suv", str(folder), "--json", "--weight-kg", "70")
    assert payload["suv_bw_factor"] == pytest.approx(70.0e3 / payload["decayed_dose_bq"], rel=1e-12)  # type: ignore[operator]


def test_height_and_sex_missing_give_null_factors_and_warnings(
    write_pet: PetWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_pet(values=100.0, height_cm=None, sex=None)
    payload = run_json(capsys, "suv", str(folder), "--json")
    assert payload["suv_lbm_james_factor"] is None
    assert payload["suv_bsa_factor"] is None
    assert any("--height-cm" in w for w in payload["warnings"])  # type: ignore[union-attr]


def test_input_files_are_not_modified(
    write_pet: PetWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_pet(values=100.0)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    run_json(capsys, "suv", str(folder), "--json", "--weight-kg", "90")
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    assert before == after


@pytest.mark.parametrize("spelling", ["Zr-89", "zr89", "89Zr"])
def test_nuclide_json(capsys: pytest.CaptureFixture[str], spelling: str) -> None:
    payload = run_json(capsys, "nuclide", spelling, "--json")
    assert payload["nuclide"] == "Zr-89"
    assert payload["half_life_s"] == pytest.approx(282276.0)
    assert payload["beta_plus_yield_per_decay"] == pytest.approx(0.22741, abs=1e-5)
    lines = payload["gamma_lines"]
    assert {"energy_kev": pytest.approx(909.15), "yield_per_decay": pytest.approx(0.9904)} in lines  # type: ignore[operator]
    assert "ICRP Publication 107" in str(payload["source"])


def test_unknown_nuclide_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nuclide", "Qq-12"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_bad_datetime_option_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["suv", "x", "--injection-datetime", "yesterday"])
    assert exit_info.value.code == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_example_copy_does_not_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["example", "--out", str(tmp_path)]) == 0
    copied = Path(capsys.readouterr().out.strip())
    assert len(list(copied.iterdir())) == 16
    assert main(["example", "--out", str(tmp_path)]) == 2
    assert "does not overwrite" in capsys.readouterr().err


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    result = subprocess.run(
        [sys.executable, "-m", "immunopet", "suv", str(broken), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(broken) in result.stderr


def test_dicom_and_its_pet_bids_export_give_the_same_suv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from immunopet.io import load_scan, write_pet_bids

    example = example_path(capsys)
    scan = load_scan(example)
    assert scan.acquisition is not None
    nifti = tmp_path / "sub-01_ses-d4_pet.nii.gz"
    write_pet_bids(scan.volume, scan.acquisition, nifti)
    from_dicom = run_json(capsys, "suv", example, "--json")
    from_bids = run_json(capsys, "suv", str(nifti), "--json")
    for key in (
        "suv_bw_factor",
        "suv_lbm_james_factor",
        "suv_lbm_janmahasatian_factor",
        "suv_bsa_factor",
        "decayed_dose_bq",
        "max_suv_bw",
    ):
        assert from_bids[key] == pytest.approx(from_dicom[key], rel=1e-6), key
