"""Mail modules: ``send-mail`` through the step's ``email`` component (``email/smtp``).

Attachments are paths in the step's ``storage`` component, read when the step runs. A
module's ``components`` are static, so ``send-mail`` declares ``email`` only: a flow is
checked for an email component when it is saved, and the storage component is resolved
only when a step has attachments (a company without one gets a clear failure then).

Sending is not idempotent: after a crash the engine does not run the step again silently
(the mail may have gone out already).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from ._registry import ModuleContext, ModuleSpec

_ADDRESSES = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 4096},
        {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 1024},
            "maxItems": 500,
        },
    ],
    "description": "an address, several separated by commas, or a list of them",
}
_PATH = {"type": "string", "minLength": 1, "maxLength": 1024}
_ATTACHMENT = {
    "anyOf": [
        _PATH,
        {
            "type": "object",
            "properties": {
                "path": _PATH,
                "filename": {"type": "string", "minLength": 1, "maxLength": 255},
                "mimeType": {"type": "string", "minLength": 3, "maxLength": 255},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
    ],
    "description": "a storage path, or {path, filename, mimeType} to name the file otherwise",
}


async def _attachments(ctx: ModuleContext, items: list[Any]) -> list[dict[str, Any]]:
    if not items:
        return []
    storage = await ctx.component("storage")
    files: list[dict[str, Any]] = []
    for item in items:
        wanted = {"path": item} if isinstance(item, str) else dict(item)
        got = await storage.call("read", {"path": wanted["path"]})
        files.append(
            {
                "filename": wanted.get("filename") or posixpath.basename(got["path"]),
                "content": got["content"],
                "mimeType": wanted.get("mimeType") or got["mimeType"],
            }
        )
    return files


async def _send_mail(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    email = await ctx.component("email")
    attachments = await _attachments(ctx, list(args.get("attachments") or []))
    mail: dict[str, Any] = {"to": args["to"], "subject": args.get("subject") or ""}
    for name in ("from", "cc", "bcc", "replyTo", "text", "html"):
        if args.get(name) is not None:
            mail[name] = args[name]
    if attachments:
        mail["attachments"] = attachments
    sent = await email.call("send", mail)
    return {"messageId": sent["messageId"], "accepted": sent["accepted"]}


def mail_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec(
            app_id="send-mail",
            category="email",
            description=(
                "Send an email through the company's email component: `text` and/or `html` "
                "(both: the reader's mail program picks), `attachments` read from the "
                "storage component (needed only then). `bcc` recipients get the mail "
                "without being named in it. Line breaks in the subject or an address are "
                "refused. Not idempotent: a retried step sends again."
            ),
            args_schema={
                "type": "object",
                "properties": {
                    "to": _ADDRESSES,
                    "cc": _ADDRESSES,
                    "bcc": _ADDRESSES,
                    "from": {
                        "type": "string",
                        "minLength": 3,
                        "maxLength": 1024,
                        "description": "the sender (default: the component's `from`)",
                    },
                    "replyTo": _ADDRESSES,
                    "subject": {"type": "string", "maxLength": 998},
                    "text": {"type": "string"},
                    "html": {"type": "string"},
                    "attachments": {"type": "array", "items": _ATTACHMENT, "maxItems": 100},
                },
                "required": ["to", "subject"],
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "messageId": {"type": "string"},
                    "accepted": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "the recipients the server accepted",
                    },
                },
            },
            idempotent=False,  # sending twice sends two mails
            run=_send_mail,
            components=("email",),
            example={
                "to": "{{ $prev.order.email }}",
                "bcc": ["sales@example.com"],
                "subject": "Your order {{ $prev.order.id }}",
                "text": "Thank you! Your invoice is attached.",
                "attachments": ["invoices/{{ $prev.order.id }}.pdf"],
            },
        )
    ]
