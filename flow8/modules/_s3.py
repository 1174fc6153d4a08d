"""Object-storage modules in S3's words: s3-upload, s3-download, s3-delete, s3-list and
s3-presign, on the step's storage component (an S3 bucket, or GCS: keys and prefixes mean
the same there; the storage-* modules answer the rest).

Keys follow the storage path rules (``flow8.components._paths``: no ``..``, no absolute
keys, no NUL bytes). Content is text (``encoding: utf8``, the default) or base64 for binary
objects. A presigned URL lets whoever holds it GET or PUT one object until ``expiresAt``,
without the component's keys: treat it as a secret of that long.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flow8.components import clean_key

from ._registry import ModuleContext, ModuleSpec
from ._storage import _bytes, _text, storage_spec

MAX_PRESIGN_SECONDS = 7 * 24 * 3600

_KEY = {"type": "string", "minLength": 1, "maxLength": 1024}
_ENCODING = {"enum": ["utf8", "base64"]}
_S = {"type": "string"}
_I = {"type": "integer"}
_B = {"type": "boolean"}


async def _upload(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    request: dict[str, Any] = {"path": args["key"], "content": _bytes(args)}
    if args.get("contentType"):
        request["contentType"] = args["contentType"]
    written = await storage.call("write", request)
    out = {"key": written["path"], "size": written["size"]}
    if written.get("bucket"):
        out["bucket"] = written["bucket"]
    return out


async def _download(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    got = await storage.call("read", {"path": args["key"]})
    return {
        "key": got["path"],
        "content": _text(got["content"], args.get("encoding")),
        "size": got["size"],
        "mimeType": got["mimeType"],
    }


async def _delete(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    deleted = await storage.call("delete", {"path": args["key"]})
    return {"key": deleted["path"], "deleted": deleted["deleted"]}


async def _list(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    """Every object whose key starts with ``prefix`` (S3's meaning: ``reports/20`` takes
    ``reports/2026/a.csv`` and ``reports/20.csv``), and whose name matches ``pattern``."""
    prefix = args.get("prefix") or ""
    wanted = clean_key(prefix, allow_root=True)
    if wanted and prefix.endswith("/"):
        wanted += "/"
    storage = await ctx.component("storage")
    folder = wanted.rpartition("/")[0]
    listed = await storage.call(
        "list", {"path": folder, "pattern": args.get("pattern") or "*", "recursive": True}
    )
    files = [f for f in listed["files"] if f["path"].startswith(wanted)]
    return {"files": files, "count": len(files)}


async def _presign(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    storage = await ctx.component("storage")
    signed = await storage.call(
        "presign",
        {
            "path": args["key"],
            "expiresSeconds": args.get("expiresSeconds", 3600),
            "method": args.get("method", "GET"),
        },
    )
    return {"url": signed["url"], "expiresAt": signed["expiresAt"]}


def s3_modules() -> list[ModuleSpec]:
    return [
        storage_spec(
            "s3-upload",
            "Upload an object (`encoding: base64` for binary content); `contentType` is "
            "stored with it (else the type its name suggests).",
            {
                "key": _KEY,
                "content": {"type": "string"},
                "encoding": _ENCODING,
                "contentType": {"type": "string", "minLength": 1, "maxLength": 255},
            },
            ["key", "content"],
            {"key": _S, "size": _I, "bucket": _S},
            _upload,
            {"key": "exports/{{ $playId }}.json", "content": "{{ $string($prev.q.rows) }}"},
        ),
        storage_spec(
            "s3-download",
            "Download an object: its content as text (utf8) or base64, size and MIME type.",
            {"key": _KEY, "encoding": _ENCODING},
            ["key"],
            {"key": _S, "content": _S, "size": _I, "mimeType": _S},
            _download,
            {"key": "imports/today.csv"},
        ),
        storage_spec(
            "s3-delete",
            "Delete an object (`deleted: false` when there was none).",
            {"key": _KEY},
            ["key"],
            {"key": _S, "deleted": _B},
            _delete,
            {"key": "tmp/old.csv"},
        ),
        storage_spec(
            "s3-list",
            "List the objects whose keys start with `prefix` (all of them by default) and "
            "whose names match `pattern` (shell-style, e.g. `*.csv`).",
            {"prefix": {"type": "string", "maxLength": 1024}, "pattern": _S},
            [],
            {"files": {"type": "array"}, "count": _I},
            _list,
            {"prefix": "reports/2026/", "pattern": "*.csv"},
        ),
        storage_spec(
            "s3-presign",
            "A URL that lets whoever holds it GET (download) or PUT (upload) one object, "
            "without the bucket's keys, until `expiresAt` (at most 7 days).",
            {
                "key": _KEY,
                "expiresSeconds": {"type": "integer", "minimum": 1, "maximum": MAX_PRESIGN_SECONDS},
                "method": {"enum": ["GET", "PUT"]},
            },
            ["key"],
            {"url": _S, "expiresAt": _S},
            _presign,
            {"key": "reports/today.csv", "expiresSeconds": 900},
        ),
    ]
