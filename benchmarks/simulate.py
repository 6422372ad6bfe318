"""Benchmark: simulating one adult patient, 4 timepoints × 2 tracers, with ``immunopet simulate``.

Writes a small scenario YAML derived from the built-in ``complete_response``
scenario (adult DLBCL, mediastinal and inguinal lymphoma lesions, default 4 mm
phantom voxels) with two tracers imaged at each of 4 visits (days −7, 7, 28 and
90): [¹⁸F]FDG 1 h after injection and the ``cd19_igg`` tracer (⁶⁴Cu-CD19 mAb of
the built-in ``cd19_negative_relapse`` scenario) injected the day before and
imaged 2 h after the FDG scan, so each visit has one CT, one DICOM SEG of the
ground truth and two PET series (4 CT + 4 SEG + 8 PET). The script checks
``truth.json`` that all 8 PET scans and both lesions were simulated.

Each run is ``python -m immunopet simulate --scenario FILE --out DIR --seed 0``
in a fresh subprocess with a fresh output folder. Time is the child's wall
time (start-up and imports included: what a user waits for). Peak memory is the
child's resident-set high-water mark (``ru_maxrss`` from ``os.wait4`` on that
child alone), in MiB.

This is a measurement, not a test: the exit status is 0 whether or not the
targets are met, and 1 only when a simulation fails or writes the wrong number
of series.

Usage::

    python benchmarks/simulate.py                 # 3 runs
    python benchmarks/simulate.py --repeats 5
    python benchmarks/simulate.py --out DIR       # keep the scenario and outputs in DIR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

BASE_SCENARIO = "complete_response"
#: Built-in scenario the second tracer is taken from.
OTHER_SCENARIO = "cd19_negative_relapse"
SEED = 0
MIB = 1024.0 * 1024.0

#: Targets from the issue.
TARGET_SECONDS = 20.0
TARGET_PEAK_MIB = 4096.0

#: Visit days after the infusion; at each: FDG (1 h p.i.) and the CD19 IgG (26 h p.i.).
VISIT_DAYS = (-7.0, 7.0, 28.0, 90.0)
#: Tracer key -> [(injection day, scan delay h)] for every visit.
SCANS: dict[str, list[tuple[float, float]]] = {
    "fdg": [(day, 1.0) for day in VISIT_DAYS],
    "cd19_igg": [(day - 1.0, 26.0) for day in VISIT_DAYS],
}
TIMEPOINTS_PER_TRACER = len(VISIT_DAYS)


def _builtin(name: str) -> dict[str, Any]:
    source = resources.files("immunopet.simulate") / "scenarios" / f"{name}.yaml"
    return yaml.safe_load(source.read_text(encoding="utf-8"))


def write_scenario(path: Path) -> dict[str, Any]:
    """Write the benchmark scenario to ``path`` and return it."""
    scenario = _builtin(BASE_SCENARIO)
    scenario["description"] = f"Benchmark: {BASE_SCENARIO} with 2 tracers x 4 timepoints"
    available = {
        tracer["key"]: tracer
        for name in (OTHER_SCENARIO, BASE_SCENARIO)
        for tracer in _builtin(name)["tracers"]
    }
    missing = sorted(set(SCANS) - set(available))
    if missing:
        raise SystemExit(f"the built-in scenarios no longer have the tracers {missing}")
    scenario["tracers"] = [available[key] for key in SCANS]
    scenario["scans"] = [
        {"tracer": key, "injection_day": day, "scan_delays_h": [delay]}
        for key, plan in SCANS.items()
        for day, delay in plan
    ]
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return scenario


def run_once(scenario_path: Path, out: Path) -> dict[str, Any]:
    """One simulation in a fresh process: wall seconds, peak MiB, series counts, its report."""
    command = [
        sys.executable,
        "-m",
        "immunopet",
        "simulate",
        "--scenario",
        str(scenario_path),
        "--out",
        str(out),
        "--seed",
        str(SEED),
    ]
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read().decode("utf-8", errors="replace")
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak_bytes = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    if child.returncode != 0:
        print(text, file=sys.stderr)
        raise SystemExit(f"simulation failed (exit status {child.returncode})")
    truth_files = list(out.glob("*/truth.json"))
    if len(truth_files) != 1:
        raise SystemExit(f"expected one patient folder in {out}, found {len(truth_files)}")
    truth = json.loads(truth_files[0].read_text(encoding="utf-8"))
    patient = truth_files[0].parent
    return {
        "seconds": seconds,
        "peak_mib": peak_bytes / MIB,
        "pet_series": sum(1 for path in patient.glob("day*/*_PT") if path.is_dir()),
        "ct_series": sum(1 for path in patient.glob("day*/CT") if path.is_dir()),
        "timepoints": len(truth["timepoints"]),
        "not_simulated": truth["not_simulated"],
        "report": text.strip(),
    }


def _versions() -> str:
    import numpy

    import immunopet

    version = getattr(immunopet, "__version__", "?")
    return (
        f"Python {platform.python_version()}, NumPy {numpy.__version__}, immunopet {version}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3, metavar="N", help="runs (default 3)")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="keep the scenario and the outputs here"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    keep = args.out is not None
    work = args.out if keep else Path(tempfile.mkdtemp(prefix="immunopet-bench-simulate-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        scenario_path = work / "benchmark_scenario.yaml"
        write_scenario(scenario_path)
        print(_versions())
        print(
            f"scenario: {BASE_SCENARIO} -> {len(SCANS)} tracers x {TIMEPOINTS_PER_TRACER} "
            f"timepoints ({', '.join(SCANS)}), adult, default voxel size, seed {SEED}"
        )
        runs = []
        for index in range(args.repeats):
            out = work / f"run{index + 1:02d}"
            if out.exists():
                shutil.rmtree(out)
            result = run_once(scenario_path, out)
            runs.append(result)
            print(
                f"run {index + 1}: {result['seconds']:.2f} s, peak {result['peak_mib']:.0f} MiB"
                f" | {result['report']}"
            )
            if not keep:
                shutil.rmtree(out)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)

    expected = len(SCANS) * TIMEPOINTS_PER_TRACER
    last = runs[-1]
    best = min(run["seconds"] for run in runs)
    median = statistics.median(run["seconds"] for run in runs)
    peak = max(run["peak_mib"] for run in runs)
    header = (
        "| runs | PET series | CT series | best s | median s | peak MiB "
        "| time ≤ 20 s | peak ≤ 4096 MiB |"
    )
    print()
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    print(
        f"| {len(runs)} | {last['pet_series']} | {last['ct_series']} | {best:.2f} | {median:.2f} "
        f"| {peak:.0f} | {'yes' if median <= TARGET_SECONDS else 'no'} "
        f"| {'yes' if peak <= TARGET_PEAK_MIB else 'no'} |"
    )
    print(
        f"\nTargets: time ≤ {TARGET_SECONDS:.0f} s (judged on the median), "
        f"peak ≤ {TARGET_PEAK_MIB:.0f} MiB (max over runs)."
    )
    if last["not_simulated"]:
        print("Not simulated:", json.dumps(last["not_simulated"]), file=sys.stderr)
    if last["pet_series"] != expected or last["not_simulated"]:
        print(
            f"expected {expected} PET series and nothing skipped, got {last['pet_series']}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
