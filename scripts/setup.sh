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
# The report's interactive viewer: NiiVue from npm (package.json, package-lock.json), into
# node_modules/ (never committed). Installed again only when the lock file changed, so an offline
# re-run keeps a working install. Without npm the reports still work, without the viewer.
if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: the report's interactive viewer will be unavailable (install Node.js with npm, then run scripts/setup.sh again)"
elif [ ! -f node_modules/@niivue/niivue/dist/niivue.umd.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --omit=optional --loglevel=error >/dev/null \
        || echo "npm ci failed: the report's interactive viewer will be unavailable until scripts/setup.sh runs with network access" >&2
fi
