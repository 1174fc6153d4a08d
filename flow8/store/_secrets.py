"""Encrypting and decrypting the secret fields the catalog declares."""

from __future__ import annotations

from typing import Any

from ._catalog import CollectionSpec
from ._crypto import Keyring, aad
from ._updates import ParsedUpdate
from ._values import dumps, loads
from .exceptions import DecryptionFailed, KeyringError


def _ring(keyring: Keyring | None, spec: CollectionSpec) -> Keyring:
    if keyring is None:
        raise KeyringError(f"{spec.name} has secret fields but the store has no key ring")
    return keyring


def seal(
    keyring: Keyring | None,
    spec: CollectionSpec,
    company_id: str,
    doc_id: str,
    field: str,
    value: Any,
) -> str:
    ring = _ring(keyring, spec)
    return ring.encrypt(dumps(value).encode(), aad(company_id, spec.name, doc_id, field))


def open_value(
    keyring: Keyring | None,
    spec: CollectionSpec,
    company_id: str,
    doc_id: str,
    field: str,
    token: Any,
) -> Any:
    ring = _ring(keyring, spec)
    where = f"{spec.name} {doc_id!r} field {field!r}"
    if not isinstance(token, str):
        raise DecryptionFailed(f"{where}: stored value is not a ciphertext")
    plain = ring.decrypt(token, aad(company_id, spec.name, doc_id, field), where)
    return loads(plain.decode())


def seal_document(
    keyring: Keyring | None, spec: CollectionSpec, company_id: str, doc: dict[str, Any]
) -> dict[str, Any]:
    for field in spec.secret_fields & doc.keys():
        doc[field] = seal(keyring, spec, company_id, doc["_id"], field, doc[field])
    return doc


def open_document(
    keyring: Keyring | None, spec: CollectionSpec, company_id: str, doc_id: str, doc: dict[str, Any]
) -> dict[str, Any]:
    for field in spec.secret_fields & doc.keys():
        doc[field] = open_value(keyring, spec, company_id, doc_id, field, doc[field])
    return doc


def update_sealer(
    keyring: Keyring | None, spec: CollectionSpec, company_id: str, update: ParsedUpdate
) -> Any:
    """A Sealer for ``update`` if it sets secret fields, else None."""
    targets = [
        (op, path)
        for op in ("$set", "$setOnInsert")
        for path in update.doc.get(op, {})
        if path in spec.secret_fields
    ]
    if not targets:
        return None
    _ring(keyring, spec)

    def sealer(doc_id: str) -> ParsedUpdate:
        doc = {op: dict(fields) for op, fields in update.doc.items()}
        for op, path in targets:
            doc[op][path] = seal(keyring, spec, company_id, doc_id, path, update.doc[op][path])
        return ParsedUpdate(doc)

    return sealer
