#!/usr/bin/env bash
# Set up and run the main job. Until `immunopet demo` exists (issue 7), the main job is:
# the SUV engine on the shipped Zr-89 example (expected SUVbw max 5.0), then a virtual CAR-T
# patient (CD19-negative relapse: FDG + Cu-64 anti-CD19 immuno-PET over six months) simulated
# as DICOM PET/CT and analysed end to end: lesions found, tracked and measured on both tracers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
example="$(.venv/bin/immunopet example)"
.venv/bin/immunopet nuclide Zr-89
.venv/bin/immunopet suv "$example"
work="${IMMUNOPET_DEMO_DIR:-demo-output}"
rm -rf "$work/patients"
.venv/bin/immunopet simulate --scenario cd19_negative_relapse --out "$work/patients" --seed 1
.venv/bin/immunopet analyze "$work/patients/P0001" --out "$work/analysis"
.venv/bin/python - "$work/analysis/results.json" <<'PY'
import json
import sys

results = json.load(open(sys.argv[1], encoding="utf-8"))
days = {tp["timepoint_id"]: tp["day"] for tp in results["timepoints"]}
print(f"\n{'lesion':7} {'day':>7} {'tracer':9} {'SUVmean':>8} {'± SE':>6}  VOI")
for m in results["measurements"]:
    if m["voi_type"] == "lesion":
        se = m["suv_mean_se"]
        print(
            f"{m['voi_id']:7} {days[m['timepoint_id']]:7.1f} {m['tracer']:9} "
            f"{m['suv_mean']:8.2f} {se if se is None else round(se, 2)!s:>6}  {m['voi_source']}"
        )
print(f"\n{'event':28} {'where':20} {'day':>6}  evidence")
for e in results["events"]:
    ev = e["evidence"]
    where = e.get("site") or e["voi_id"]
    print(
        f"{e['type']:28} {where!s:20} {e['day']:6.1f}  {ev['tracer']} SUVmean "
        f"{ev['baseline']:.2f} -> {ev['current']:.2f} ({ev['relative_change']:+.0%}; "
        f"threshold -{ev['threshold_relative_decrease']:.0%}/+{ev['threshold_relative_increase']:.0%})"
    )
print(f"\nresults: {sys.argv[1]}")
PY
