"""Errors raised by modules and the module registry.

Hierarchy::

    ModuleError
    ├── UnknownModule          no module registered under that appId
    ├── DuplicateModule        a second module registered under the same appId
    ├── InvalidArgs            resolved arguments do not satisfy the module's args schema
    └── ModuleFailure          a module reports that its work failed (e.g. the ``fail``
                               module, unparseable JSON, a missing subflow)
"""

from __future__ import annotations


class ModuleError(Exception):
    """Base of every module error."""


class UnknownModule(ModuleError):
    pass


class DuplicateModule(ModuleError):
    pass


class InvalidArgs(ModuleError):
    pass


class ModuleFailure(ModuleError):
    pass
