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
