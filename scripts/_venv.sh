# Sourced by scripts/serve and scripts/test: make sure .venv exists and holds the project as
# pyproject.toml currently declares it. Reinstalls only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "flow8: creating $VENV" >&2
  "$PYTHON_BIN" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
EXTRAS="${FLOW8_EXTRAS:-}"
STAMP="$VENV/.flow8-installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) extras=[$EXTRAS]"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "flow8: installing the project into $VENV" >&2
  if [ -n "$EXTRAS" ]; then SPEC="$ROOT[$EXTRAS]"; else SPEC="$ROOT"; fi
  "$VENV/bin/python" -m pip install --quiet -e "$SPEC"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
# The project's own bytecode, compiled ahead. With PYTHONDONTWRITEBYTECODE set (as it is in
# CI's environment) no process writes it, so every `flow8` process (each worker, each CLI
# call, each server a test starts) compiled ~300 modules from source: 1.1 s of imports
# instead of 0.5-0.6 (tests/test_cli.py: 58 s -> 44 s). Only changed files are compiled
# again (0.2 s when nothing changed).
python -m compileall -q -j 0 flow8 actors
