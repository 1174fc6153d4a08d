"""Errors raised by expressions, templates and filters.

Hierarchy::

    ExpressionError          an expression does not parse, throws, or returns something
    │                        that is not JSON
    └── ExpressionLimit      it ran out of its budget (time, memory, depth) or a built-in
                             would exceed a cap (string length, items)

They are not engine errors (this package sits below the engine): the engine and the data
modules catch them where a step or a flow being saved meets them, and report them as a
failed step or as problems of the flow. ``FilterError`` (in ``_filters``) is the filters'
own ``ValueError``.
"""

from __future__ import annotations


class ExpressionError(Exception):
    def __init__(self, source: str, message: str, *, where: str = "") -> None:
        self.source = source
        self.message = message
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}expression {{{{ {source} }}}} {message}")

    def at(self, where: str) -> ExpressionError:
        """The same error, located at a flowlet field (``ref.args.x``)."""
        located = ExpressionError(self.source, self.message, where=where)
        located.__cause__ = self.__cause__
        return located


class ExpressionLimit(ExpressionError):
    """An evaluation exceeded one of its limits; ``limit`` names which (``time``,
    ``memory``, ``depth``, ``string``, ``items``, ``range``, ``picture``) and ``detail``
    says by how much, e.g. ``it ran longer than 250 ms``."""

    def __init__(self, source: str, limit: str, detail: str, *, where: str = "") -> None:
        self.limit = limit
        self.detail = detail
        super().__init__(source, f"exceeded a limit: {detail}", where=where)

    def at(self, where: str) -> ExpressionLimit:
        located = ExpressionLimit(self.source, self.limit, self.detail, where=where)
        located.__cause__ = self.__cause__
        return located
