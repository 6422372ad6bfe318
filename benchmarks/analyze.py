"""Benchmark: ``immunopet analyze`` on one adult patient, 4 timepoints × 2 tracers with CT.

The patient is simulated first (not timed) with the scenario of ``benchmarks/simulate.py``:
the built-in ``complete_response`` adult with, at each of 4 visits (days −7, 7, 28, 90),
[¹⁸F]FDG 1 h after injection and the ⁶⁴Cu-CD19 antibody injected the day before, one CT per
visit, default 4 mm voxels, clinical activities and counting noise. Then
``python -m immunopet analyze PATIENT --out DIR`` runs in a fresh subprocess; its wall time
(start-up and imports included), its peak resident memory (``ru_maxrss`` of that child alone)
and the time of each stage (from the progress lines it prints: load = discovery, reading,
SUV, organ segmentation and lesion detection; register; measure; write = tables, SEG and the
database) are printed against the issue's targets (≤ 60 s, ≤ 6 GB on 2 cores). There is no
peer tool that does this job; the figures stand against the targets.

This is a measurement, not a test: the exit status is 0 whether or not the targets are met.

Usage::

    python benchmarks/analyze.py                 # 3 runs
    python benchmarks/analyze.py --repeats 1
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import simulate as simulate_benchmark  # the scenario of the simulate benchmark

MIB = 1024.0 * 1024.0
TARGET_SECONDS = 60.0
TARGET_PEAK_MIB = 6144.0
_STAGE = re.compile(r"^(\w+)\s+\[[#.]+\]\s+\d+/\d+\s+([0-9.]+) s")


def _run(command: list[str]) -> tuple[float, float, str]:
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        log.seek(0)
        text = log.read().decode("utf-8", errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        print(text, file=sys.stderr)
        raise SystemExit(f"{command[3]} failed")
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024) / MIB
    return seconds, peak, text


def _stages(text: str) -> dict[str, float]:
    """Seconds per stage from the cumulative times of the progress lines."""
    ends = [(m.group(1), float(m.group(2))) for m in map(_STAGE.match, text.splitlines()) if m]
    stages, previous = {}, 0.0
    for name, end in ends:
        stages[name] = end - previous
        previous = end
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3, metavar="N")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="immunopet-bench-analyze-"))
    try:
        scenario = work / "scenario.yaml"
        simulate_benchmark.write_scenario(scenario)
        python = sys.executable
        _run(
            [
                python,
                "-m",
                "immunopet",
                "simulate",
                "--scenario",
                str(scenario),
                "--out",
                str(work / "sim"),
                "--seed",
                "0",
            ]
        )
        patient = next((work / "sim").iterdir())
        runs = []
        for index in range(args.repeats):
            out = work / f"out{index}"
            seconds, peak, text = _run(
                [python, "-m", "immunopet", "analyze", str(patient), "--out", str(out)]
            )
            stages = _stages(text)
            runs.append((seconds, peak, stages))
            listing = ", ".join(f"{name} {value:.1f} s" for name, value in stages.items())
            summary = text.strip().splitlines()[-1]
            print(f"run {index + 1}: {seconds:.2f} s, peak {peak:.0f} MiB | {listing} | {summary}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = statistics.median(run[0] for run in runs)
    peak = max(run[1] for run in runs)
    header = "| runs | best s | median s | peak MiB | time ≤ 60 s | peak ≤ 6144 MiB |"
    print()
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    print(
        f"| {len(runs)} | {min(run[0] for run in runs):.2f} | {median:.2f} | {peak:.0f} "
        f"| {'yes' if median <= TARGET_SECONDS else 'no'} "
        f"| {'yes' if peak <= TARGET_PEAK_MIB else 'no'} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
