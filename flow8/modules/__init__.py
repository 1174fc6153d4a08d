"""The module catalog: every ``appId`` a flowlet can call.

Public names: :class:`ModuleSpec`, :class:`ModuleRegistry`, :func:`default_registry`, the
:class:`ModuleContext` / :class:`KvAccess` protocols modules run against, and the errors.
"""

from __future__ import annotations

from ._ai import ai_modules
from ._console import console_modules
from ._control import AGGREGATOR, ITERATOR, SUBFLOW, control_modules, read_path
from ._data import data_modules
from ._db import db_modules
from ._http import http_modules
from ._kv import SCOPES, kv_modules
from ._mail import mail_modules
from ._registry import KvAccess, ModuleContext, ModuleRegistry, ModuleSpec, RunFn
from ._respond import RESPOND, respond_modules
from ._s3 import s3_modules
from ._schema import ArgsValidator, InvalidSchema
from ._storage import storage_modules
from ._utility import utility_modules
from .exceptions import DuplicateModule, InvalidArgs, ModuleError, ModuleFailure, UnknownModule


def default_registry() -> ModuleRegistry:
    """A fresh registry holding every built-in module."""
    registry = ModuleRegistry()
    for group in (
        data_modules(),
        utility_modules(),
        respond_modules(),
        kv_modules(),
        control_modules(),
        http_modules(),
        storage_modules(),
        s3_modules(),
        db_modules(),
        console_modules(),
        mail_modules(),
        ai_modules(),
    ):
        registry.extend(group)
    return registry


__all__ = [
    "AGGREGATOR",
    "ITERATOR",
    "RESPOND",
    "SCOPES",
    "SUBFLOW",
    "ArgsValidator",
    "DuplicateModule",
    "InvalidArgs",
    "InvalidSchema",
    "KvAccess",
    "ModuleContext",
    "ModuleError",
    "ModuleFailure",
    "ModuleRegistry",
    "ModuleSpec",
    "RunFn",
    "UnknownModule",
    "default_registry",
    "read_path",
]
