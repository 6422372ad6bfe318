"""``immunopet kinetics`` and ``immunopet dose`` on a results folder with a known truth.

The folder is written by ``immunopet.result.write_result_files`` from the hand-built document of
``tests/kinetics/results_document.py`` (valid against data/results.schema.json; its values are
the simulator's ⁸⁹Zr-IgG vector model: lesion K_i 4.5 µL/g/h, scans on days 3, 5, 7).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from immunopet.cli import main
from immunopet.dosimetry import dose_from_results
from immunopet.kinetics import kinetics_from_results
from immunopet.result import write_result_files
from kinetics.results_document import build_document


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("results")
    write_result_files(build_document(), folder)
    return folder


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_patlak_table(results_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "kinetics", str(results_dir))
    assert code == 0
    assert err == ""
    assert "[89Zr]Zr-DFO-girentuximab (igg, Zr-89)" in out
    assert "loss of trapped label corrected: T½ 300 h" in out
    (lesion,) = [line for line in out.splitlines() if line.strip().startswith("L001")]
    # Model truth 4.5 µL/g/h; measured 4.58 (+1.7 %), shown in µL/g/h.
    assert lesion.split()[1] == "4.58"


def test_json_output_is_the_library_section(
    results_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "kinetics", str(results_dir), "--json")
    assert code == 0
    expected = kinetics_from_results(
        json.loads((results_dir / "results.json").read_text(encoding="utf-8")),
        models=("patlak",),
    )
    assert json.loads(out) == json.loads(json.dumps(expected))
    code, out, _ = _run(capsys, "dose", str(results_dir), "--json")
    assert code == 0
    expected_dose = dose_from_results(build_document())
    assert json.loads(out)["total_effective_dose_sv"] == pytest.approx(
        expected_dose["total_effective_dose_sv"],
        rel=1e-12,  # type: ignore[index]
    )


def test_other_models(results_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "kinetics", str(results_dir), "--model", "2tc")
    assert code == 0
    assert "NOT identifiable" in out
    assert "3 points for 3 free parameters" in out
    code, out, _ = _run(capsys, "kinetics", str(results_dir), "--model", "stein2019")
    assert code == 0
    # Stein 2019 typical curve in the manifest counts: Cmax 24 000 copies/µg at 9.3 d.
    assert "Cmax 2.4e+04" in out
    assert "Tmax 9.3 " in out
    assert "expansion:" in out


def test_dose_table(results_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "dose", str(results_dir / "measurements.csv"))
    assert code == 0
    assert err == ""
    assert "0.703 mSv/MBq" in out  # no excretion: the upper bound
    assert "whole body: no excretion assumed" in out
    assert "lesion L001: 12 mL" in out
    code, out, _ = _run(capsys, "dose", str(results_dir), "--whole-body-half-life-h", "370")
    assert code == 0
    assert "0.565 mSv/MBq" in out


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ("kinetics", str(tmp_path / "missing")),
        ("dose", str(tmp_path)),
        ("kinetics", str(tmp_path), "--model", "stein2019"),
    ):
        code, out, err = _run(capsys, *argv)
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1
        assert err.startswith(f"immunopet {argv[0]}: error:")
    single = tmp_path / "single"
    single.mkdir()
    write_result_files(build_document(scan_days=(4.0,), counts=False), single)
    code, _, err = _run(capsys, "kinetics", str(single))
    assert code == 2
    assert "nothing to analyse with --model patlak" in err
    code, _, err = _run(capsys, "dose", str(single))
    assert code == 2
    assert "no injection was imaged at >= 2 timepoints" in err
    code, _, err = _run(capsys, "kinetics", str(single), "--model", "stein2019")
    assert code == 2
    assert "CAR T-cell counts" in err
    with pytest.raises(SystemExit) as caught:
        main(["kinetics", str(single), "--model", "srtm"])
    assert caught.value.code == 2
    capsys.readouterr()
