"""`flow8 ...` run inside the test's own process, as a shell would run it: its own environment
and working directory, stdout and stderr captured, the exit status returned.

A real `flow8` process spends ~0.7 s importing before it does anything, and the CLI tests
start dozens. What a command needs from a process it gets here too: ``main(argv)`` is the
whole command (``python -m flow8.cli`` only adds ``sys.exit``), argparse's usage errors come
back as exit status 2, and an exception no command catches propagates, so the test fails the
way a traceback would have failed it. What a command changes for its process (the
environment, including what a ``.env`` file loads; the working directory; the logging set-up)
is put back afterwards. Tests that need a process of its own (signals, the console script,
two commands at once) start one; `tests/test_cli.py` keeps one such test for the entry point.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import structlog


def run_cli(env: Mapping[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``flow8 *args`` with exactly ``env`` as its environment, in ``cwd``."""
    from flow8.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _process_state_restored():
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse: --help, usage errors
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return subprocess.CompletedProcess(["flow8", *args], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _process_state_restored() -> Iterator[None]:
    environ, cwd = dict(os.environ), os.getcwd()
    root, httpx = logging.getLogger(), logging.getLogger("httpx")
    handlers, level, httpx_level = root.handlers[:], root.level, httpx.level
    config = structlog.get_config()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        root.handlers[:] = handlers
        root.setLevel(level)
        httpx.setLevel(httpx_level)
        structlog.configure(**config)
