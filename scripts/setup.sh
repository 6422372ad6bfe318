#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install immunopet into it; EXTRAS selects extras, e.g. "test".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"immunopet needs Python >= 3.11, found {sys.version.split()[0]}; set PYTHON=python3.11")
PY
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
spec="."
if [ -n "${EXTRAS:-}" ]; then spec=".[${EXTRAS}]"; fi
.venv/bin/python -m pip install --quiet --editable "$spec" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import immunopet" || { echo "installation failed" >&2; exit 1; }
