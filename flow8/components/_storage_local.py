"""``storage/local``: files in a directory on the server (see ``_paths`` for confinement).

Writes are atomic (a temporary file in the same directory, renamed over the target), so a
reader never sees half a file and a failed write leaves the old one. Every file operation
runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import fnmatch
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._paths import clean_key, inside, root_directory
from ._provider import Operation, ProviderEnv
from .exceptions import ComponentFailed, ComponentRefused

MAX_READ_BYTES = 64 * 1024 * 1024
MAX_LISTED = 10_000


def mime_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class LocalStorage:
    def __init__(self, root: Path, env: ProviderEnv) -> None:
        self.root = root
        self._env = env
        self.operations: Mapping[str, Operation] = {
            "read": self._read,
            "write": self._write,
            "move": self._move,
            "copy": self._copy,
            "delete": self._delete,
            "exists": self._exists,
            "list": self._list,
            "removeTree": self._remove_tree,
            "makeDir": self._make_dir,
        }

    def _file(self, path: object, *, allow_root: bool = False) -> tuple[str, Path]:
        key = clean_key(path, allow_root=allow_root)
        return key, inside(self.root, key)

    async def _run(self, fn: Any) -> Any:
        try:
            return await self._env.in_thread(fn)
        except FileNotFoundError as e:
            raise ComponentFailed(f"no such file: {self._key_of(e.filename)!r}") from None
        except IsADirectoryError as e:
            raise ComponentRefused(f"{self._key_of(e.filename)!r} is a directory") from None
        except NotADirectoryError as e:
            raise ComponentRefused(f"{self._key_of(e.filename)!r} is not a directory") from None
        except OSError as e:
            raise ComponentFailed(f"{e.strerror or e} ({self._key_of(e.filename)!r})") from None

    def _key_of(self, filename: object) -> str:
        """A file name as the flow knows it: relative to the root, never the server's path."""
        try:
            return Path(str(filename)).relative_to(self.root).as_posix()
        except ValueError:
            return "?"

    async def _read(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, file = self._file(input.get("path"))

        def read() -> bytes:
            with open(file, "rb") as f:
                data = f.read(MAX_READ_BYTES + 1)
            if len(data) > MAX_READ_BYTES:
                raise ComponentRefused(f"{key!r} is larger than {MAX_READ_BYTES} bytes")
            return data

        content: bytes = await self._run(read)
        return {"path": key, "content": content, "size": len(content), "mimeType": mime_type(key)}

    async def _write(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, file = self._file(input.get("path"))
        content = bytes(input.get("content") or b"")

        def write() -> None:
            file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            inside(self.root, key)  # again, now that the parents exist
            fd, temp = tempfile.mkstemp(dir=file.parent, prefix=".flow8-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(content)
                os.replace(temp, file)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise

        await self._run(write)
        return {"path": key, "size": len(content)}

    async def _move(self, input: Mapping[str, Any]) -> dict[str, Any]:
        source, src = self._file(input.get("source"))
        destination, dst = self._file(input.get("destination"))

        def move() -> None:
            if not src.exists():
                raise FileNotFoundError(2, "no such file", str(src))
            dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.replace(src, dst)

        await self._run(move)
        return {"source": source, "destination": destination}

    async def _copy(self, input: Mapping[str, Any]) -> dict[str, Any]:
        source, src = self._file(input.get("source"))
        destination, dst = self._file(input.get("destination"))

        def copy() -> int:
            dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(src, dst, follow_symlinks=True)
            return dst.stat().st_size

        size = await self._run(copy)
        return {"source": source, "destination": destination, "size": size}

    async def _delete(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, file = self._file(input.get("path"))

        def delete() -> bool:
            try:
                os.unlink(file)
            except FileNotFoundError:
                return False
            return True

        return {"path": key, "deleted": await self._run(delete)}

    async def _exists(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, file = self._file(input.get("path"))

        def stat() -> dict[str, Any]:
            try:
                st = file.stat()
            except FileNotFoundError:
                return {"path": key, "exists": False}
            return {"path": key, "exists": True, "size": st.st_size, "isDirectory": file.is_dir()}

        result: dict[str, Any] = await self._run(stat)
        return result

    async def _list(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, folder = self._file(input.get("path") or "", allow_root=True)
        pattern = input.get("pattern") or "*"
        recursive = bool(input.get("recursive"))

        def listing() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            walker = (
                os.walk(folder) if recursive else [next(os.walk(folder), (str(folder), [], []))]
            )
            for directory, dirs, names in walker:
                dirs.sort()  # a stable order, whatever the file system's
                for name in sorted(names):
                    full = Path(directory) / name
                    rel = full.relative_to(self.root).as_posix()
                    if name.startswith(".flow8-") or not fnmatch.fnmatch(name, pattern):
                        continue
                    st = full.stat()
                    found.append(
                        {"path": rel, "size": st.st_size, "modifiedAt": round(st.st_mtime, 3)}
                    )
                    if len(found) >= MAX_LISTED:
                        return found
            return found

        if not folder.exists():
            return {"path": key, "files": [], "count": 0}
        files = sorted(await self._run(listing), key=lambda f: f["path"])
        return {"path": key, "files": files, "count": len(files)}

    async def _remove_tree(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, folder = self._file(input.get("path"))
        await self._run(lambda: shutil.rmtree(folder, ignore_errors=True))
        return {"path": key, "removed": True}

    async def _make_dir(self, input: Mapping[str, Any]) -> dict[str, Any]:
        key, folder = self._file(input.get("path"))
        await self._run(lambda: folder.mkdir(mode=0o700, parents=True, exist_ok=True))
        return {"path": key}

    async def check(self) -> str:
        def probe() -> str:
            if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
                raise ComponentFailed("the root directory is not readable and writable")
            return "connected: the root directory is readable and writable"

        result: str = await self._run(probe)
        return result

    async def aclose(self) -> None:
        return None


def open_local(config: Mapping[str, Any], env: ProviderEnv) -> LocalStorage:
    root = root_directory(str(config["rootPath"]), env.files_dir, env.allowed_roots)
    return LocalStorage(root, env)
