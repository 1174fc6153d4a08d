"""actors/ is a standalone package: it must never import flow8."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import actors

PACKAGE = Path(actors.__file__).parent


def test_no_module_of_actors_imports_flow8() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for item in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(item, ast.Import):
                names = [alias.name for alias in item.names]
            elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
                names = [item.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "flow8"]
    assert offenders == []


def test_importing_actors_loads_no_flow8_module() -> None:
    code = "import sys, actors; print(sorted(m for m in sys.modules if m.startswith('flow8')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
