"""Storage modules: read, write, move, copy, delete, test and list files of the step's
storage component (local directory, S3, GCS: the same arguments for each).

Paths are relative to the component's root; ``..``, absolute paths, NUL bytes and symlinks
leading out are refused (``flow8.components._paths``). Content is text (``encoding: utf8``,
the default) or base64 (``encoding: base64``) for binary files.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import attrs

from ._registry import ModuleContext, ModuleSpec
from .exceptions import ModuleFailure

_PATH = {"type": "string", "minLength": 1, "maxLength": 1024}
_ENCODING = {"enum": ["utf8", "base64"]}


def _bytes(args: Mapping[str, Any]) -> bytes:
    content = args.get("content", "")
    if not isinstance(content, str):
        raise ModuleFailure("content must be a string (text, or base64 with encoding: base64)")
    if args.get("encoding") == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise ModuleFailure("content is not valid base64") from None
    return content.encode("utf-8")


def _text(content: bytes, encoding: str | None) -> str:
    if encoding == "base64":
        return base64.b64encode(content).decode("ascii")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise ModuleFailure("the file is not UTF-8 text: read it with encoding: base64") from None


async def _read(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    got = await storage.call("read", {"path": args["path"]})
    return {
        "path": got["path"],
        "content": _text(got["content"], args.get("encoding")),
        "size": got["size"],
        "mimeType": got["mimeType"],
    }


async def _write(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    written = await storage.call("write", {"path": args["path"], "content": _bytes(args)})
    return {"path": written["path"], "size": written["size"]}


async def _move(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    return await storage.call(
        "move", {"source": args["source"], "destination": args["destination"]}
    )


async def _copy(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    return await storage.call(
        "copy", {"source": args["source"], "destination": args["destination"]}
    )


async def _delete(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    return await storage.call("delete", {"path": args["path"]})


async def _exists(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    return await storage.call("exists", {"path": args["path"]})


async def _list(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    return await storage.call(
        "list",
        {
            "path": args.get("path") or "",
            "pattern": args.get("pattern") or "*",
            "recursive": bool(args.get("recursive")),
        },
    )


def _tempdir_path(ctx: ModuleContext) -> str:
    return f"tmp/{ctx.play_id}"


async def _tempdir(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    path = _tempdir_path(ctx)
    if "makeDir" in storage.provider.operations:
        await storage.call("makeDir", {"path": path})
    return {"path": path}


async def _remove_tempdir(ctx: ModuleContext) -> None:
    storage = await ctx.component("storage")
    path = _tempdir_path(ctx)
    if "removeTree" in storage.provider.operations:
        await storage.call("removeTree", {"path": path})
        return
    listing = await storage.call("list", {"path": path, "pattern": "*", "recursive": True})
    for file in listing["files"]:
        await storage.call("delete", {"path": file["path"]})


def storage_spec(
    app_id: str,
    description: str,
    properties: Mapping[str, Any],
    required: list[str],
    output: Mapping[str, Any],
    run: Any,
    example: Mapping[str, Any],
    *,
    idempotent: bool = True,
) -> ModuleSpec:
    """A module on the step's storage component (the storage-* modules here, the s3-*
    modules of ``_s3``): its arguments, exactly those in ``properties``."""
    return ModuleSpec(
        app_id=app_id,
        category="storage",
        description=description,
        args_schema={
            "type": "object",
            "properties": dict(properties),
            "required": required,
            "additionalProperties": False,
        },
        output_schema={"type": "object", "properties": dict(output)},
        idempotent=idempotent,
        run=run,
        components=("storage",),
        example=example,
    )


_S = {"type": "string"}
_I = {"type": "integer"}
_B = {"type": "boolean"}


def storage_modules() -> list[ModuleSpec]:
    return [
        storage_spec(
            "storage-read",
            "Read a file: its content as text (utf8) or base64, size and MIME type.",
            {"path": _PATH, "encoding": _ENCODING},
            ["path"],
            {"path": _S, "content": _S, "size": _I, "mimeType": _S},
            _read,
            {"path": "reports/today.csv"},
        ),
        storage_spec(
            "storage-write",
            "Write a file (atomically: readers see the old or the new content, never half). "
            "`encoding: base64` for binary content.",
            {"path": _PATH, "content": {"type": "string"}, "encoding": _ENCODING},
            ["path", "content"],
            {"path": _S, "size": _I},
            _write,
            {"path": "out/{{ $playId }}.json", "content": "{{ $string($prev.q.rows) }}"},
        ),
        storage_spec(
            "storage-move",
            "Move (rename) a file.",
            {"source": _PATH, "destination": _PATH},
            ["source", "destination"],
            {"source": _S, "destination": _S},
            _move,
            {"source": "inbox/a.csv", "destination": "done/a.csv"},
            idempotent=False,  # after a crash the source may be gone already
        ),
        storage_spec(
            "storage-copy",
            "Copy a file.",
            {"source": _PATH, "destination": _PATH},
            ["source", "destination"],
            {"source": _S, "destination": _S, "size": _I},
            _copy,
            {"source": "templates/a.txt", "destination": "out/a.txt"},
        ),
        storage_spec(
            "storage-delete",
            "Delete a file (`deleted: false` when it did not exist).",
            {"path": _PATH},
            ["path"],
            {"path": _S, "deleted": _B},
            _delete,
            {"path": "tmp/old.csv"},
        ),
        storage_spec(
            "storage-exists",
            "Whether a file exists, and its size.",
            {"path": _PATH},
            ["path"],
            {"path": _S, "exists": _B, "size": _I},
            _exists,
            {"path": "reports/today.csv"},
        ),
        storage_spec(
            "storage-list",
            "List the files under `path` (the root by default) whose names match `pattern` "
            "(shell-style, e.g. `*.csv`); `recursive` descends into folders.",
            {"path": {"type": "string", "maxLength": 1024}, "pattern": _S, "recursive": _B},
            [],
            {"files": {"type": "array"}, "count": _I},
            _list,
            {"path": "reports", "pattern": "*.csv"},
        ),
        attrs.evolve(
            storage_spec(
                "storage-tempdir",
                "A directory for this play only (`tmp/<play id>` under the storage root): "
                "write and read files under its `path`; it is removed with everything in it "
                "when the play ends, however it ends.",
                {},
                [],
                {"path": _S},
                _tempdir,
                {},
            ),
            at_play_end=_remove_tempdir,
        ),
    ]
