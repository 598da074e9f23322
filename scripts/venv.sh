# Sourced by ./demo and ./test: a project virtualenv with the given extras, made or refreshed once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "caretaker: error: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 2
fi
extras=$1
stamp=".venv/.installed-$extras"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing Caretaker and its dependencies into .venv (log: .venv/install.log) …" >&2
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[$extras]"; } \
      >.venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "caretaker: error: installing into .venv failed; the full log is .venv/install.log" >&2
    exit 2
  fi
  touch "$stamp"
fi
