"""Paths a flow names, confined to a component's root.

A flow's path is relative to the root (``reports/2026/may.csv``). Refused, with
``COMPONENT_REFUSED`` naming the path: an absolute path, a ``..`` part, a NUL byte, a
backslash (a Windows separator would mean something else on another provider), and any path
that resolves outside the root through a symlink. Object stores (S3, GCS) share the same
rules, so a flow moves between providers unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from .exceptions import ComponentConfigError, ComponentRefused

MAX_PATH = 1024


def clean_key(path: object, *, allow_root: bool = False) -> str:
    """A flow's path checked and normalized (``a//b/./c`` -> ``a/b/c``); ``""`` is the
    root itself, allowed only where ``allow_root`` (listing)."""
    if not isinstance(path, str):
        raise ComponentRefused("a path must be a string")
    if "\x00" in path:
        raise ComponentRefused("a path must not contain NUL bytes")
    if len(path) > MAX_PATH:
        raise ComponentRefused(f"a path must be at most {MAX_PATH} characters")
    if "\\" in path:
        raise ComponentRefused(f"path {path!r} contains a backslash: use '/' between parts")
    if path.startswith("/"):
        raise ComponentRefused(
            f"path {path!r} is absolute: paths are relative to the component's root"
        )
    parts = [p for p in PurePosixPath(path).parts if p != "."]
    if ".." in parts:
        raise ComponentRefused(f"path {path!r} contains '..': it must stay inside the root")
    key = "/".join(parts)
    if not key and not allow_root:
        raise ComponentRefused("a path must name a file under the component's root")
    return key


def root_directory(root_path: str, files_dir: Path, allowed_roots: tuple[Path, ...]) -> Path:
    """Where a local root lives: a relative one under the company's files directory
    (created on first use); an absolute one only inside a root the operator opened."""
    if "\x00" in root_path:
        raise ComponentConfigError("rootPath must not contain NUL bytes")
    given = Path(root_path)
    if not given.is_absolute():
        relative = clean_key(root_path, allow_root=True)
        root = files_dir / relative
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return Path(os.path.realpath(root))
    real = Path(os.path.realpath(given))
    for allowed in allowed_roots:
        base = Path(os.path.realpath(allowed))
        if real == base or base in real.parents:
            if not real.is_dir():
                raise ComponentConfigError(f"rootPath {root_path!r} is not a directory")
            return real
    raise ComponentConfigError(
        f"rootPath {root_path!r} is outside the directories this server opens to components "
        "(use a relative path, or ask the operator to add it to components.localRoots)"
    )


def inside(root: Path, key: str) -> Path:
    """The file ``key`` names under ``root``, refused when a symlink leads it out."""
    target = root / key if key else root
    real = Path(os.path.realpath(target))
    if real != root and root not in real.parents:
        raise ComponentRefused(f"path {key!r} leads outside the component's root")
    return target
