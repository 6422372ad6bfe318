#!/usr/bin/env bash
# Set up and run the main job. Until `immunopet demo` exists, the main job is the SUV engine on
# the shipped Zr-89 example (a phantom 4 days after injection; expected SUVbw max 5.0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
example="$(.venv/bin/immunopet example)"
.venv/bin/immunopet nuclide Zr-89
.venv/bin/immunopet suv "$example"
