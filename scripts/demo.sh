#!/usr/bin/env bash
# Set up and run the main job: `immunopet demo` simulates a virtual CAR-T patient (large B-cell
# lymphoma, CD19 CAR T cells; FDG and 89Zr-anti-CD19 PET at baseline, day 6 and day 60; CRS in
# the first week; a CD19-negative relapse), analyses it as `immunopet analyze` does and writes
# the report. Before it, the SUV engine on the shipped Zr-89 example (expected SUVbw max 5.0).
# The last line printed is the report's path. Output folder: $IMMUNOPET_DEMO_DIR or demo-output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
example="$(.venv/bin/immunopet example)"
.venv/bin/immunopet suv "$example"
echo
work="${IMMUNOPET_DEMO_DIR:-demo-output}"
# Output of this script before `immunopet demo` existed (no demo marker): replace it.
if [ -d "$work" ] && [ ! -e "$work/.immunopet-demo" ] && [ -e "$work/analysis/.immunopet-output" ] \
    && [ -e "$work/patients/P0001/truth.json" ]; then
    rm -rf "$work"
fi
.venv/bin/immunopet demo --out "$work"
